//! The source side of a reconcile: resolving the Application's revision (fetching when a
//! refresh is asked for, a commit was seen on disk, the source changed, or the poll is due),
//! rendering its manifests (cached per repository, revision, path and directory options),
//! keeping the last good state through repository errors for the grace period, and the
//! revision an operation syncs.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt, api::ListParams};
use sluice_api::Application;

use super::{Context, lock};
use crate::{
    credentials::{self, Credentials},
    known_hosts::{self, KnownHosts},
    manifests::Manifest,
    render,
    sources::SourceType,
};

/// What one refresh produced (kept between reconciles for the repository grace period).
#[derive(Debug, Clone)]
pub(super) struct Refreshed {
    pub(super) revision: String,
    pub(super) manifests: Arc<Vec<Manifest>>,
    pub(super) source_type: SourceType,
}

/// What a rendering depends on: repository, revision, path and the rendering options.
pub(super) type RenderKey = (String, String, String, String);

/// A rendering: the manifests and the tool that rendered them.
pub(super) type Rendered = (Arc<Vec<Manifest>>, SourceType);

/// What refreshing found.
pub(super) enum Refresh {
    /// Manifests at a revision.
    Ok(Refreshed),
    /// The source could not be read (ComparisonError, sync Unknown).
    Failed(String),
    /// A repository error within the grace period: keep the last state.
    Grace,
}

pub(super) async fn refresh(
    app: &Application,
    context: &Context,
    hard: bool,
    now: Timestamp,
) -> Refresh {
    let name = app.name_any();
    let Some(source) = app.source() else {
        return Refresh::Failed("spec.source: an Application needs a source".into());
    };
    let url = source.repo_url.clone();
    // A change seen on disk after the last fetch started is not in the mirror yet. (A flag
    // taken by the first refresh would lose a change whose last event came while that refresh
    // fetched: git creates `main.lock` before renaming it to `main`.)
    let changed = lock(&context.stale_repos).get(&url).copied();
    let stale = match changed {
        Some(at) => context
            .repos
            .fetched_at(&url)
            .await
            .is_none_or(|fetched| fetched <= at),
        None => false,
    };
    let compared = &app
        .status
        .as_ref()
        .and_then(|s| s.sync.as_ref())
        .and_then(|s| s.compared_to.as_ref());
    let spec_changed = compared.is_none_or(|c| c.source.as_ref() != Some(source));
    // A refresh asked for, or a commit seen on disk, fetches now; a new or changed source
    // takes a fetch at most a second old (1,000 new Applications on one repository share one
    // fetch, not a thousand); otherwise the poll interval.
    let max_age = if hard || stale {
        Duration::ZERO
    } else if spec_changed {
        Duration::from_secs(1)
    } else if context.settings.poll.is_zero() {
        Duration::MAX
    } else {
        context.settings.poll
    };
    let credentials = credentials(context, &url).await;
    let revision = match context
        .repos
        .resolve_source(source, source.target_revision(), max_age, &credentials)
        .await
    {
        Ok(revision) => revision,
        Err(e @ crate::repository::RepoError::Fetch { .. }) => {
            let mut last = lock(&context.last_good);
            if let Some((_, since)) = last.get_mut(&name) {
                let first = *since.get_or_insert(now);
                let grace =
                    jiff::SignedDuration::try_from(context.settings.repo_grace).unwrap_or_default();
                if now.duration_since(first) < grace {
                    return Refresh::Grace;
                }
            }
            return Refresh::Failed(e.to_string());
        }
        Err(e) => return Refresh::Failed(e.to_string()),
    };
    let (manifests, source_type) = match render_at(context, app, source, &revision, hard).await {
        Ok(m) => m,
        Err(message) => return Refresh::Failed(message),
    };
    let refreshed = Refreshed {
        revision,
        manifests,
        source_type,
    };
    lock(&context.last_good).insert(name, (refreshed.clone(), None));
    Refresh::Ok(refreshed)
}

/// The credentials for `url` from the repository Secrets of the controller's namespace, with
/// the ssh host keys of its `argocd-ssh-known-hosts-cm` (each read at most every 3 s; none
/// when they cannot be read).
async fn credentials(context: &Context, url: &str) -> Credentials {
    Credentials {
        known_hosts: known_hosts(context).await,
        ..secret_credentials(context, url).await
    }
}

/// The trusted ssh host keys: the ConfigMap `argocd-ssh-known-hosts-cm` of the controller's
/// namespace, read at most every 3 s (none trusted when it is missing or unreadable).
async fn known_hosts(context: &Context) -> Arc<KnownHosts> {
    if let Some((at, hosts)) = lock(&context.known_hosts).as_ref()
        && at.elapsed() < Duration::from_secs(3)
    {
        return hosts.clone();
    }
    let maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), &context.settings.namespace);
    let hosts = match maps.get_opt(known_hosts::CONFIG_MAP).await {
        Ok(map) => Arc::new(
            map.map(|m| KnownHosts::from_config_map(&m))
                .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!("reading ConfigMap {}: {e}", known_hosts::CONFIG_MAP);
            Arc::default()
        }
    };
    *lock(&context.known_hosts) = Some((std::time::Instant::now(), hosts.clone()));
    hosts
}

/// The credentials for `url` from the repository Secrets of the controller's namespace (the
/// Secrets listed at most every 3 s; none when they cannot be read).
async fn secret_credentials(context: &Context, url: &str) -> Credentials {
    let cached = lock(&context.repo_secrets)
        .as_ref()
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(3))
        .map(|(_, secrets)| secrets.clone());
    let secrets = match cached {
        Some(secrets) => secrets,
        None => {
            let api: Api<Secret> =
                Api::namespaced(context.client.clone(), &context.settings.namespace);
            let secrets = match api.list(&ListParams::default()).await {
                Ok(list) => Arc::new(list.items),
                Err(e) => {
                    tracing::warn!("reading repository Secrets: {e}");
                    Arc::new(Vec::new())
                }
            };
            *lock(&context.repo_secrets) = Some((std::time::Instant::now(), secrets.clone()));
            secrets
        }
    };
    credentials::select(&secrets, url).unwrap_or_default()
}

/// The manifests of `source` at commit `revision` (cached per repository, revision, path and
/// rendering options unless `hard`).
async fn render_at(
    context: &Context,
    app: &Application,
    source: &sluice_api::ApplicationSource,
    revision: &str,
    hard: bool,
) -> Result<Rendered, String> {
    // `${ARGOCD_APP_NAME}` in kustomize's envsubst, and a Helm release named after the
    // Application, make a rendering the Application's own; others are shared by every
    // Application with the same source. A shared rendering is looked up first; a rendering
    // found to be Helm's is kept under the Application's name.
    let envsubst = source
        .kustomize
        .as_ref()
        .and_then(|k| k.common_annotations_envsubst)
        .unwrap_or(false);
    let key = |owner: String| {
        (
            source.repo_url.clone(),
            revision.to_owned(),
            source.path.clone().unwrap_or_default(),
            format!(
                "{:?} {:?} {:?} {:?} {:?} {owner}",
                render::directory_of(source),
                source.kustomize,
                source.helm,
                source.chart,
                app.spec.destination.namespace
            ),
        )
    };
    let (shared, own) = (key(String::new()), key(app.name_any()));
    if !hard {
        let cache = lock(&context.rendered);
        let cached = if envsubst { None } else { cache.get(&shared) };
        if let Some(cached) = cached.or_else(|| cache.get(&own)).cloned() {
            return Ok(cached);
        }
    }
    let scratch = context.settings.cache_dir.join("render");
    let (manifests, source_type) =
        render::render(&context.repos, &scratch, app, source, revision).await?;
    let rendered = (Arc::new(manifests), source_type);
    let mut cache = lock(&context.rendered);
    if cache.len() > 4096 {
        cache.clear();
    }
    let app_specific = envsubst || source_type == SourceType::Helm;
    cache.insert(if app_specific { own } else { shared }, rendered.clone());
    Ok(rendered)
}

/// The revision and manifests an operation syncs: its own `sync.revision` when it names
/// another one than the target (a sync to a past revision, a rollback), else the refresh's.
pub(super) async fn operation_target(
    app: &Application,
    context: &Context,
    refreshed: &Refreshed,
) -> Result<Refreshed, String> {
    let wanted = app
        .operation
        .as_ref()
        .and_then(|o| o.sync.as_ref())
        .and_then(|s| s.revision.clone())
        .filter(|r| !r.is_empty() && *r != refreshed.revision);
    // `retry.refresh`: a retried operation syncs the latest revision instead.
    let retrying = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .is_some_and(|o| o.phase == "Running" && o.retry_count.unwrap_or(0) > 0);
    let refresh = app.operation.as_ref().is_some_and(|o| o.retry().refresh());
    let (Some(wanted), Some(source), false) = (wanted, app.source(), retrying && refresh) else {
        return Ok(refreshed.clone());
    };
    let credentials = credentials(context, &source.repo_url).await;
    let revision = context
        .repos
        .resolve_source(
            source,
            &wanted,
            context.settings.poll.max(Duration::from_secs(1)),
            &credentials,
        )
        .await
        .map_err(|e| e.to_string())?;
    if revision == refreshed.revision {
        return Ok(refreshed.clone());
    }
    let (manifests, source_type) = render_at(context, app, source, &revision, false).await?;
    Ok(Refreshed {
        revision,
        manifests,
        source_type,
    })
}
