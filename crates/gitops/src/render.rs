//! Rendering an Application's source at one commit into manifests, as Argo CD's repo-server
//! does: the files of its path read from the repository mirror, the source type detected
//! ([`crate::sources`]), then a plain directory parsed ([`crate::manifests`]) or a kustomize
//! overlay built ([`crate::kustomize`]) with the Application's overrides.
//!
//! No cache and no cluster: the controller keeps its own cache around this, and `sluice app
//! diff` renders with it in the user's shell, so both see the same manifests.

use std::path::Path;

use kube::ResourceExt;
use sluice_api::{Application, ApplicationSource};

use crate::{
    kustomize,
    manifests::{self, Directory, Manifest},
    repository::Repositories,
    sources::{self, SourceType},
};

/// The directory options of `source` (`directory.recurse`, `include`, `exclude`).
pub fn directory_of(source: &ApplicationSource) -> Directory {
    Directory {
        recurse: source
            .directory
            .as_ref()
            .and_then(|d| d.recurse)
            .unwrap_or(false),
        include: source.directory.as_ref().and_then(|d| d.include.clone()),
        exclude: source.directory.as_ref().and_then(|d| d.exclude.clone()),
    }
}

/// The manifests of `source` at commit `revision` (resolved, so fetched, before), and the
/// tool that rendered them. A kustomize overlay is checked out whole in a temporary directory
/// under `scratch`, removed after. Errors are the messages an Application's ComparisonError
/// carries.
pub async fn render(
    repos: &Repositories,
    scratch: &Path,
    app: &Application,
    source: &ApplicationSource,
    revision: &str,
) -> Result<(Vec<Manifest>, SourceType), String> {
    let path = source.path.clone().unwrap_or_default();
    let files = repos
        .files(&source.repo_url, revision, &path)
        .await
        .map_err(|e| e.to_string())?;
    let source_type = sources::detect(source, &files).map_err(|e| e.to_string())?;
    let rendered = match source_type {
        SourceType::Kustomize => kustomize_at(repos, scratch, app, source, revision, &path).await?,
        _ => manifests::render(&files, &directory_of(source))
            .map_err(|e| format!("Failed to load target state: {e}"))?,
    };
    Ok((rendered, source_type))
}

/// Renders a kustomize source: the commit checked out whole (an overlay names files outside
/// its own path), the overrides written into the path's kustomization, `kustomize build` run
/// there.
async fn kustomize_at(
    repos: &Repositories,
    scratch: &Path,
    app: &Application,
    source: &ApplicationSource,
    revision: &str,
    path: &str,
) -> Result<Vec<Manifest>, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let checkout = tempfile::Builder::new()
        .prefix("kustomize-")
        .tempdir_in(scratch)
        .map_err(|e| format!("{}: {e}", scratch.display()))?;
    repos
        .checkout(&source.repo_url, revision, checkout.path())
        .await
        .map_err(|e| e.to_string())?;
    let dir = checkout.path().join(path.trim_matches('/'));
    let failed = |e: kustomize::KustomizeError| format!("Failed to load target state: {e}");
    if let Some(overrides) = &source.kustomize {
        let env = kustomize::AppEnv {
            name: app.name_any(),
            namespace: app.spec.destination.namespace.clone().unwrap_or_default(),
            revision: revision.to_owned(),
            repo_url: source.repo_url.clone(),
            path: path.to_owned(),
            target_revision: source.target_revision().to_owned(),
        };
        kustomize::write_overrides(&dir, overrides, &env).map_err(failed)?;
    }
    let output = kustomize::build(&dir).await.map_err(failed)?;
    manifests::parse("kustomize build output", &output)
        .map_err(|e| format!("Failed to load target state: {e}"))
}
