//! The Application controller's reconcile: refresh (resolve the revision, render, compare with
//! the live cache), then the operation (a sync requested by a user, by `sluice app sync` or by
//! auto-sync) and the status, written through the main resource with its resourceVersion as
//! Argo CD writes it.
//!
//! An Application is reconciled when it changes, when an object it manages changes
//! ([`Live`]), when its `file://` repository gets a commit ([`crate::watch`]), and at least
//! every poll interval (Argo CD's `timeout.reconciliation`, 120 s plus jitter). A running
//! operation is recorded (`status.operationState`, phase Running) before anything is applied,
//! so a controller killed mid-sync runs it again when it starts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};
use sluice_api::Application;

mod delete;
mod operate;
mod orphans;
mod server_diff;
mod source;

use orphans::orphaned_warning;
use source::{Refresh, Refreshed, RenderKey, Rendered, operation_target, refresh};

use crate::{
    autosync::{self, Decision},
    compare::{self, Comparison, Scope},
    ignore,
    live::{Live, LiveError},
    manifests::Manifest,
    project,
    repository::Repositories,
    status,
};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The namespace Applications are read from (`argocd`).
    pub namespace: String,
    /// Where the git mirrors live.
    pub cache_dir: std::path::PathBuf,
    /// The poll interval (`timeout.reconciliation`); zero turns polling off.
    pub poll: Duration,
    /// The most jitter added to the poll.
    pub jitter: Duration,
    /// How long repository errors keep the last good state (`--repo-error-grace-period-seconds`).
    pub repo_grace: Duration,
    /// The delay between sync waves (Argo CD's `ARGOCD_SYNC_WAVE_DELAY`, 2 s).
    pub wave_delay: Duration,
    /// Operations running longer are terminated (`--sync-timeout`; none by default).
    pub sync_timeout: Option<Duration>,
}

impl Settings {
    /// Argo CD's defaults for Applications in `namespace`.
    pub fn new(namespace: &str, cache_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            namespace: namespace.to_owned(),
            cache_dir: cache_dir.into(),
            poll: Duration::from_secs(120),
            jitter: Duration::from_secs(60),
            repo_grace: Duration::from_secs(180),
            wave_delay: wave_delay_from_env(),
            sync_timeout: None,
        }
    }
}

/// `ARGOCD_SYNC_WAVE_DELAY` (whole seconds, as Argo CD reads it), else 2 s.
fn wave_delay_from_env() -> Duration {
    std::env::var("ARGOCD_SYNC_WAVE_DELAY")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(crate::operation::DEFAULT_WAVE_DELAY, Duration::from_secs)
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An API call failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// Encoding JSON failed.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Context {
    client: Client,
    settings: Settings,
    repos: Arc<Repositories>,
    live: Arc<Live>,
    /// Per Application: the last good refresh and when the repository first failed since.
    last_good: Mutex<HashMap<String, (Refreshed, Option<Timestamp>)>>,
    /// Rendered manifests by (url, revision, path, directory).
    rendered: Mutex<HashMap<RenderKey, Rendered>>,
    /// Per local repository, when a change was last seen on disk: a refresh fetches when the
    /// last fetch started before that.
    stale_repos: Arc<Mutex<HashMap<String, std::time::Instant>>>,
    /// The Secrets of the controller's namespace (repository credentials), with when read.
    repo_secrets: Mutex<
        Option<(
            std::time::Instant,
            Arc<Vec<k8s_openapi::api::core::v1::Secret>>,
        )>,
    >,
    /// The trusted ssh host keys (ConfigMap `argocd-ssh-known-hosts-cm`), with when read.
    known_hosts: Mutex<Option<(std::time::Instant, Arc<crate::known_hosts::KnownHosts>)>>,
    /// AppProjects by name, with when they were read.
    projects: Mutex<HashMap<String, (std::time::Instant, Option<Value>)>>,
    /// Per Application: (the running operation's start, when its last step was applied).
    applied_at: Mutex<HashMap<String, (Timestamp, Timestamp)>>,
    /// Whether argocd-cm opts child Applications into health, with when it was read.
    application_health: Mutex<Option<(std::time::Instant, bool)>>,
    /// Events (self-heal says why it undid a live change).
    recorder: sluice_reconcile::events::Recorder,
    /// Server-side diff's predictions: by object, (live resourceVersion, target, predicted).
    predicted: Mutex<HashMap<crate::tracking::ResourceKey, (String, String, Value)>>,
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client, settings: Settings) {
    let (live, woken) = Live::new(client.clone());
    let apps: Api<Application> = Api::namespaced(client.clone(), &settings.namespace);
    let namespace = settings.namespace.clone();
    let repos = Arc::new(Repositories::new(&settings.cache_dir));
    let stale_repos = Arc::new(Mutex::new(HashMap::new()));
    let controller = Controller::new(apps, watcher::Config::default());
    let store = controller.store();
    let (repo_wake, repo_woken) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _watcher = crate::watch::RepoWatcher::start(store.clone(), repo_wake, stale_repos.clone());
    let by_name = {
        let namespace = namespace.clone();
        tokio_stream_of(woken)
            .map(move |app| ObjectRef::<Application>::new(&app).within(&namespace))
    };
    let by_repo = {
        let (store, namespace) = (store.clone(), namespace.clone());
        tokio_stream_of(repo_woken).flat_map(move |url| {
            let refs: Vec<ObjectRef<Application>> = store
                .state()
                .iter()
                .filter(|a| a.source().is_some_and(|s| s.repo_url == url))
                .map(|a| ObjectRef::new(&a.name_any()).within(&namespace))
                .collect();
            futures::stream::iter(refs)
        })
    };
    let context = Arc::new(Context {
        client: client.clone(),
        settings,
        repos,
        live,
        last_good: Mutex::new(HashMap::new()),
        rendered: Mutex::new(HashMap::new()),
        predicted: Mutex::new(HashMap::new()),
        stale_repos,
        repo_secrets: Mutex::new(None),
        known_hosts: Mutex::new(None),
        projects: Mutex::new(HashMap::new()),
        applied_at: Mutex::new(HashMap::new()),
        application_health: Mutex::new(None),
        recorder: sluice_reconcile::events::recorder(&client, "argocd-application-controller"),
    });
    controller
        .reconcile_on(futures::stream::select(by_name, by_repo))
        .run(
            |app, context| Box::pin(reconcile(app, context)),
            error_policy,
            context,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn tokio_stream_of<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

fn error_policy(app: Arc<Application>, err: &ControllerError, _: Arc<Context>) -> Action {
    tracing::warn!("application {}: {err}", app.name_any());
    Action::requeue(Duration::from_secs(2))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches every kind the manifests and the last status name; the scope of each.
async fn scopes(
    context: &Context,
    manifests: &[Manifest],
    app: &Application,
) -> Result<HashMap<(String, String), Scope>, String> {
    let mut kinds: Vec<(String, String)> = manifests
        .iter()
        .map(|m| {
            (
                m.object["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                m.object["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let previous = app
        .status
        .as_ref()
        .and_then(|s| s.resources.clone())
        .unwrap_or_default();
    for resource in previous {
        let group = resource.group.unwrap_or_default();
        let version = resource.version.unwrap_or_default();
        let api_version = if group.is_empty() {
            version
        } else {
            format!("{group}/{version}")
        };
        kinds.push((api_version, resource.kind.unwrap_or_default()));
    }
    kinds.sort();
    kinds.dedup();
    let mut scopes = HashMap::new();
    for (api_version, kind) in kinds {
        let group = crate::tracking::group_of(&api_version).to_owned();
        let scope = match context.live.kind(&api_version, &kind).await {
            Ok(k) if k.namespaced => Scope::Namespaced,
            Ok(_) => Scope::Cluster,
            Err(LiveError::UnknownKind { .. }) => Scope::Unknown,
            Err(e) => return Err(e.to_string()),
        };
        scopes.insert((group, kind), scope);
    }
    Ok(scopes)
}

/// Whether argocd-cm carries Argo CD's health check for Applications (the app-of-apps
/// opt-in: wave ordering between child Applications then waits for their health). Read at
/// most every 2 s.
async fn application_health(context: &Context) -> bool {
    if let Some((at, on)) = *lock(&context.application_health)
        && at.elapsed() < Duration::from_secs(2)
    {
        return on;
    }
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(context.client.clone(), &context.settings.namespace);
    let on = match maps.get_opt("argocd-cm").await {
        Ok(map) => map
            .and_then(|m| m.data)
            .is_some_and(|d| d.contains_key(crate::health::APPLICATION_HEALTH_KEY)),
        Err(_) => false,
    };
    *lock(&context.application_health) = Some((std::time::Instant::now(), on));
    on
}

fn compare_now(
    context: &Context,
    app: &Application,
    manifests: &[Manifest],
    scopes: &HashMap<(String, String), Scope>,
    application_health: bool,
    predicted: &HashMap<crate::tracking::ResourceKey, Value>,
) -> Result<Comparison, compare::CompareError> {
    let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
    let scope = |group: &str, kind: &str| {
        scopes
            .get(&(group.to_owned(), kind.to_owned()))
            .copied()
            .unwrap_or(Scope::Unknown)
    };
    let live = |key: &crate::tracking::ResourceKey| {
        context
            .live
            .watched(&key.group, &key.kind)
            .and_then(|k| k.get(&key.namespace, &key.name))
    };
    let options = app.spec.sync_options();
    let manifests = compare::home_child_applications(manifests, &context.settings.namespace);
    compare::compare(compare::Inputs {
        app: &app.name_any(),
        namespace: &namespace,
        manifests: &manifests,
        skip_missing_kinds: options.skip_dry_run_on_missing_resource(),
        scope: &scope,
        live: &live,
        managed: context.live.managed_by(&app.name_any()),
        ignore: app.spec.ignore_differences.as_deref().unwrap_or_default(),
        application_health,
        predicted: &|key| predicted.get(key).cloned(),
    })
}

async fn reconcile(
    app: Arc<Application>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    let now = Timestamp::now();
    let name = app.name_any();
    let api: Api<Application> =
        Api::namespaced(context.client.clone(), &context.settings.namespace);
    // The Application as it is now: a reconcile queued behind a running one is handed the
    // object as it was when queued — with an operation the running one has since finished.
    let Some(app) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if app.metadata.deletion_timestamp.is_some() {
        return delete::deleting(&api, &app, &context).await;
    }
    let app = Arc::new(app);
    let refresh_annotation = app.annotations().get(status::REFRESH).cloned();
    if refresh_annotation.is_some() {
        let patch = json!({"metadata": {"annotations": {status::REFRESH: null}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let hard = refresh_annotation.as_deref() == Some("hard");
    let poll = requeue_after(&context.settings, &name);
    if let Some(invalid) = status::invalid_spec(&app) {
        let patch = status::invalid(&app, &invalid, now);
        write_status(&api, &app, patch).await?;
        return Ok(Action::requeue(poll));
    }
    // The AppProject's sources and destinations, before anything is read or applied.
    let project_name = project::name_of(&app.spec.project).to_owned();
    let project = orphans::project(&context, &project_name).await;
    let repo_urls: Vec<&str> = app.sources().iter().map(|s| s.repo_url.as_str()).collect();
    let destination = &app.spec.destination;
    if let Some(invalid) = project::invalid_spec(
        &project_name,
        project.as_ref(),
        &repo_urls,
        (
            destination.server.as_deref().unwrap_or_default(),
            destination.name.as_deref().unwrap_or_default(),
            destination.namespace.as_deref().unwrap_or_default(),
        ),
    ) {
        let patch = status::invalid(&app, &invalid, now);
        write_status(&api, &app, patch).await?;
        return Ok(Action::requeue(poll.min(Duration::from_secs(10))));
    }
    if let Some(message) =
        ignore::invalid(app.spec.ignore_differences.as_deref().unwrap_or_default())
    {
        write_status(&api, &app, status::comparison_error(&app, &message, now)).await?;
        return Ok(Action::requeue(poll));
    }
    let refreshed = match Box::pin(refresh(
        &app,
        &context,
        hard || refresh_annotation.is_some(),
        now,
    ))
    .await
    {
        Refresh::Ok(r) => r,
        Refresh::Grace => return Ok(Action::requeue(Duration::from_secs(10))),
        Refresh::Failed(message) => {
            let patch = status::comparison_error(&app, &message, now);
            write_status(&api, &app, patch).await?;
            return Ok(Action::requeue(poll.min(Duration::from_secs(30))));
        }
    };
    let scopes = match scopes(&context, &refreshed.manifests, &app).await {
        Ok(s) => s,
        Err(message) => {
            write_status(&api, &app, status::comparison_error(&app, &message, now)).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    };
    let app_health = application_health(&context).await;
    let predicted = server_diff::predictions(&context, &app, &refreshed.manifests, &scopes).await;
    let comparison = match compare_now(
        &context,
        &app,
        &refreshed.manifests,
        &scopes,
        app_health,
        &predicted,
    ) {
        Ok(c) => c,
        Err(e) => {
            let patch = status::comparison_error(&app, &e.to_string(), now);
            write_status(&api, &app, patch).await?;
            return Ok(Action::requeue(poll.min(Duration::from_secs(30))));
        }
    };
    let mut comparison = comparison;
    if let Some(warning) = orphaned_warning(&context, &app, &comparison).await {
        comparison
            .warnings
            .push(("OrphanedResourceWarning", warning));
    }
    let mut app = (*app).clone();
    let mut requeue = poll;
    // Auto-sync: request an operation when the policy says so.
    let mut sync_error = None;
    if app.operation.is_none()
        && let Some(policy) = status::automated(&app)
    {
        let state = autosync::State {
            synced: comparison.synced(),
            operating: false,
            deleting: app.metadata.deletion_timestamp.is_some(),
            revision: &refreshed.revision,
            needs_apply: comparison
                .resources
                .iter()
                .any(|r| r.out_of_sync && r.target.is_some()),
            wipes_everything: comparison.resources.iter().all(|r| r.target.is_none())
                && !comparison.resources.is_empty(),
        };
        match autosync::decide(policy, &state, status::last_operation(&app).as_ref(), now) {
            Decision::Nothing => {}
            Decision::WaitToHeal(wait) => requeue = requeue.min(wait),
            Decision::Error(message) => sync_error = Some(message),
            Decision::Sync {
                self_heal,
                heal_attempts,
            } => {
                let operation = status::auto_operation(
                    &app,
                    &refreshed.revision,
                    self_heal,
                    heal_attempts,
                    &comparison,
                );
                let patch = json!({"operation": operation});
                app = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                announce(&context, &app, &refreshed.revision, self_heal, &comparison).await;
            }
        }
    }
    if app.operation.is_some() {
        // Sync status and health stay current while an operation runs (a multi-step sync
        // may wait on them for long).
        let patch = status::compared(
            &app,
            &refreshed.revision,
            refreshed.source_type.as_str(),
            &comparison,
            None,
            now,
        );
        let app = write_status(&api, &app, patch).await?;
        let target = match operation_target(&app, &context, &refreshed).await {
            Ok(target) => target,
            Err(message) => {
                write_status(&api, &app, status::comparison_error(&app, &message, now)).await?;
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        };
        let comparison = if target.revision == refreshed.revision {
            comparison
        } else {
            let target_scopes = match self::scopes(&context, &target.manifests, &app).await {
                Ok(s) => s,
                Err(message) => {
                    write_status(&api, &app, status::comparison_error(&app, &message, now)).await?;
                    return Ok(Action::requeue(Duration::from_secs(5)));
                }
            };
            let predicted =
                server_diff::predictions(&context, &app, &target.manifests, &target_scopes).await;
            match compare_now(
                &context,
                &app,
                &target.manifests,
                &target_scopes,
                app_health,
                &predicted,
            ) {
                Ok(c) => c,
                Err(e) => {
                    write_status(
                        &api,
                        &app,
                        status::comparison_error(&app, &e.to_string(), now),
                    )
                    .await?;
                    return Ok(Action::requeue(Duration::from_secs(5)));
                }
            }
        };
        let project = project.unwrap_or_default();
        return Box::pin(operate::operate(
            &api,
            app,
            &context,
            (&project_name, &project),
            &target,
            comparison,
            (now, app_health),
        ))
        .await;
    }
    let patch = status::compared(
        &app,
        &refreshed.revision,
        refreshed.source_type.as_str(),
        &comparison,
        sync_error.as_deref(),
        now,
    );
    write_status(&api, &app, patch).await?;
    Ok(Action::requeue(requeue))
}

/// Events for an automated sync: on the Application (Argo CD's `OperationStarted`), and for
/// self-heal on each resource put back, saying why (Git is the source of truth).
async fn announce(
    context: &Context,
    app: &Application,
    revision: &str,
    self_heal: bool,
    comparison: &Comparison,
) {
    use k8s_openapi::api::core::v1::ObjectReference;
    use sluice_reconcile::events::record;
    let short: String = revision.chars().take(7).collect();
    let reference = ObjectReference {
        api_version: Some("argoproj.io/v1alpha1".into()),
        kind: Some("Application".into()),
        name: Some(app.name_any()),
        namespace: app.namespace(),
        uid: app.uid(),
        ..ObjectReference::default()
    };
    let mut note = format!("Initiated automated sync to '{revision}'");
    if self_heal {
        note.push_str(" (self-heal: live resources differ from Git)");
    }
    record(
        &context.recorder,
        &reference,
        false,
        "OperationStarted",
        note,
    )
    .await;
    if !self_heal {
        return;
    }
    for resource in comparison.resources.iter().filter(|r| r.out_of_sync) {
        let Some(live) = &resource.live else { continue };
        let reference = ObjectReference {
            api_version: Some(resource.api_version.clone()),
            kind: Some(resource.key.kind.clone()),
            name: Some(resource.key.name.clone()),
            namespace: (!resource.key.namespace.is_empty()).then(|| resource.key.namespace.clone()),
            uid: live["metadata"]["uid"].as_str().map(str::to_owned),
            ..ObjectReference::default()
        };
        let note = format!(
            "put back to Git revision {short} by Application {}: self-heal is on and Git is the source of truth (commit the change to Git, or turn selfHeal off, to keep a live change)",
            app.name_any()
        );
        record(&context.recorder, &reference, false, "SelfHeal", note).await;
    }
}

/// Writes a status patch through the main resource, guarded by the resourceVersion it read.
async fn write_status(
    api: &Api<Application>,
    app: &Application,
    mut patch: Value,
) -> Result<Application, ControllerError> {
    let old = serde_json::to_value(&app.status)?;
    let new_status = patch["status"].clone();
    let recent = status::reconciled_at(app).is_some_and(|at| {
        Timestamp::now().duration_since(at) < jiff::SignedDuration::from_secs(60)
    });
    if patch.get("operation").is_none() && recent && status::same_but_time(&old, &new_status) {
        return Ok(app.clone());
    }
    patch["metadata"]["resourceVersion"] = json!(app.resource_version());
    match api
        .patch(
            &app.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(app) => Ok(app),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let fresh = api.get(&app.name_any()).await?;
            patch["metadata"]["resourceVersion"] = json!(fresh.resource_version());
            // A terminate-op that came in meanwhile is not overwritten by progress.
            let terminating = fresh
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|o| o.phase == "Terminating");
            if terminating && patch["status"]["operationState"]["phase"] == "Running" {
                patch["status"]["operationState"]["phase"] = json!("Terminating");
            }
            Ok(api
                .patch(
                    &app.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The poll interval with this Application's jitter (stable per name).
fn requeue_after(settings: &Settings, name: &str) -> Duration {
    if settings.poll.is_zero() {
        return Duration::from_secs(24 * 3600);
    }
    let jitter_ms = settings.jitter.as_millis() as u64;
    let hash =
        sluice_reconcile::hash::fnv1a(name.as_bytes(), sluice_reconcile::hash::OFFSET) as u64;
    settings.poll + Duration::from_millis(if jitter_ms == 0 { 0 } else { hash % jitter_ms })
}

/// Creates the controller's namespace and the `default` AppProject Argo CD creates, when
/// absent (as `sluice up` does at start, so Applications written for Argo CD apply unchanged).
pub async fn ensure_home(client: &Client, namespace: &str) -> Result<(), ControllerError> {
    use kube::api::{ApiResource, DynamicObject, PostParams};
    let create = |api: Api<DynamicObject>, object: Value| async move {
        let object: DynamicObject = serde_json::from_value(object)?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(ControllerError::Api(e)),
        }
    };
    let namespaces = ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&());
    create(
        Api::all_with(client.clone(), &namespaces),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .await?;
    let projects = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    );
    create(
        Api::namespaced_with(client.clone(), namespace, &projects),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": namespace},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}),
    )
    .await
}
