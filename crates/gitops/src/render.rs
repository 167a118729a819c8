//! Rendering an Application's source at one commit into manifests, as Argo CD's repo-server
//! does: the files of its path read from the repository mirror, the source type detected
//! ([`crate::sources`]), then a plain directory parsed ([`crate::manifests`]), a kustomize
//! overlay built ([`crate::kustomize`]) with the Application's overrides, or a chart rendered
//! by `helm template` ([`crate::helm`]) — from the Git path, or from a chart repository's
//! package ([`crate::charts`]) when `source.chart` is set.
//!
//! No cache and no cluster: the controller keeps its own cache around this, and `sluice app
//! diff` renders with it in the user's shell, so both see the same manifests.

use std::path::Path;

use kube::ResourceExt;
use sluice_api::{Application, ApplicationSource};

use crate::{
    helm, kustomize,
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

/// The manifests of `source` at `revision` (a commit, or a chart version for a chart
/// repository; resolved, so fetched, before), and the tool that rendered them. A kustomize
/// overlay or a Helm chart is checked out whole in a temporary directory under `scratch`,
/// removed after. Errors are the messages an Application's ComparisonError carries.
pub async fn render(
    repos: &Repositories,
    scratch: &Path,
    app: &Application,
    source: &ApplicationSource,
    revision: &str,
) -> Result<(Vec<Manifest>, SourceType), String> {
    if let Some(chart) = source.chart.as_deref().filter(|c| !c.is_empty()) {
        let work = scratch_dir(scratch, "helm-")?;
        let dir = repos
            .charts()
            .extract(&source.repo_url, chart, revision, work.path())
            .await
            .map_err(|e| e.to_string())?;
        let rendered = helm_at(app, source, &dir, &dir, work.path()).await?;
        return Ok((rendered, SourceType::Helm));
    }
    let path = source.path.clone().unwrap_or_default();
    let files = repos
        .files(&source.repo_url, revision, &path)
        .await
        .map_err(|e| e.to_string())?;
    let source_type = sources::detect(source, &files).map_err(|e| e.to_string())?;
    let rendered = match source_type {
        SourceType::Kustomize => kustomize_at(repos, scratch, app, source, revision, &path).await?,
        SourceType::Helm => {
            let work = scratch_dir(scratch, "helm-")?;
            let checkout = work.path().join("repo");
            repos
                .checkout(&source.repo_url, revision, &checkout)
                .await
                .map_err(|e| e.to_string())?;
            let chart = checkout.join(path.trim_matches('/'));
            helm_at(app, source, &chart, &checkout, work.path()).await?
        }
        SourceType::Directory => manifests::render(&files, &directory_of(source))
            .map_err(|e| format!("Failed to load target state: {e}"))?,
    };
    Ok((rendered, source_type))
}

/// A temporary directory under `scratch` (created), removed when dropped.
fn scratch_dir(scratch: &Path, prefix: &str) -> Result<tempfile::TempDir, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch)
        .map_err(|e| format!("{}: {e}", scratch.display()))
}

/// Renders the chart at `chart` (value files confined to `root`) with `helm template`.
async fn helm_at(
    app: &Application,
    source: &ApplicationSource,
    chart: &Path,
    root: &Path,
    work: &Path,
) -> Result<Vec<Manifest>, String> {
    let name = app.name_any();
    let release = helm::Release {
        app: &name,
        namespace: app
            .spec
            .destination
            .namespace
            .as_deref()
            .unwrap_or_default(),
        chart,
        root,
        work,
    };
    let failed = |e: String| format!("Failed to load target state: {e}");
    let output = helm::template(&release, source.helm.as_ref())
        .await
        .map_err(|e| failed(e.to_string()))?;
    manifests::parse("helm template output", output.as_bytes()).map_err(|e| failed(e.to_string()))
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
    let checkout = scratch_dir(scratch, "kustomize-")?;
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
