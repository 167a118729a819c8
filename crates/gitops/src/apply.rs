//! Runs a sync's tasks against the API server, as Argo CD's default client-side apply does:
//! a server dry run of every object first (nothing is applied when one fails; objects in a
//! namespace the same sync creates are not dry-run), then each
//! object created, or patched with the three-way strategic merge patch (JSON merge patch for
//! custom resources) computed from its `last-applied-configuration`, which the apply records
//! anew; then the prunes, with the requested propagation. `CreateNamespace=true` creates the
//! destination namespace (with `managedNamespaceMetadata`) before anything else.
//!
//! `Replace=true` (app-wide, per operation or in the object's `argocd.argoproj.io/sync-options`)
//! replaces an existing object instead (`kubectl replace`; CRDs and Namespaces are updated,
//! never replaced, as Argo CD does). `Force=true` (or `argocd app sync --force`) deletes and
//! re-creates an object the server refuses to update (422 Invalid, such as a Job's immutable
//! template, or 409): `kubectl apply --force` does so, and `kubectl replace --force` as Argo CD
//! runs it re-creates every time; sluice re-creates only when the update is refused.
//!
//! `ServerSideApply=true` (app-wide, per operation or per object; `ServerSideApply=false` on
//! an object opts it out) sends the object as a server-side apply instead, as `kubectl apply
//! --server-side --force-conflicts --field-manager=argocd-controller` does: no last-applied
//! annotation, the server merging by field ownership, conflicts with other managers taken
//! over; kubectl's message `KIND/NAME serverside-applied`.

use std::{collections::BTreeMap, time::Duration};

use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
        PropagationPolicy,
    },
};
use serde_json::Value;
use sluice_api::sync_option;

use crate::{
    diff::{self, LAST_APPLIED},
    live::{Kind, Live, LiveError},
    sync::{Task, has_option},
    tracking::ResourceKey,
};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "argocd-controller";

/// How a resource's task ended (Argo CD's `ResourceSyncResult` status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Applied.
    Synced,
    /// The apply (or its dry run) failed.
    SyncFailed,
    /// Deleted.
    Pruned,
    /// Requires pruning, left alone.
    PruneSkipped,
}

impl Status {
    /// Argo CD's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::SyncFailed => "SyncFailed",
            Self::Pruned => "Pruned",
            Self::PruneSkipped => "PruneSkipped",
        }
    }
}

/// One resource's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Identity.
    pub key: ResourceKey,
    /// apiVersion.
    pub api_version: String,
    /// How it ended.
    pub status: Status,
    /// kubectl's message (`service/demo created`).
    pub message: String,
}

/// A namespace to create first (`CreateNamespace=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewNamespace {
    /// Its name.
    pub name: String,
    /// `managedNamespaceMetadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `managedNamespaceMetadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stop after the dry run (`operation.sync.dryRun`).
    pub dry_run: bool,
    /// `PrunePropagationPolicy` (foreground by default).
    pub propagation: Option<PropagationPolicy>,
    /// `CreateNamespace=true`.
    pub create_namespace: Option<NewNamespace>,
    /// `Replace=true` for every object.
    pub replace: bool,
    /// `Force=true` (or `syncStrategy.*.force`) for every object.
    pub force: bool,
    /// `ServerSideApply=true` for every object.
    pub server_side: bool,
}

/// How one object is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Write {
    /// Replaced (`kubectl replace`), not applied.
    pub replace: bool,
    /// Deleted and re-created when the server refuses the update.
    pub force: bool,
    /// Server-side applied.
    pub server_side: bool,
}

impl Write {
    /// The write of one object: the sync's options, or its own annotation (`Replace=true` on
    /// the target or the live object, `Force=true` on the target, as gitops-engine reads them).
    pub fn of(options: &Options, target: &Value, live: Option<&Value>) -> Self {
        Self {
            replace: options.replace
                || has_option(Some(target), sync_option::REPLACE)
                || has_option(live, sync_option::REPLACE),
            force: options.force || has_option(Some(target), sync_option::FORCE),
            server_side: (options.server_side
                || has_option(Some(target), sync_option::SERVER_SIDE_APPLY))
                && !has_option(Some(target), sync_option::SERVER_SIDE_APPLY_FALSE),
        }
    }
}

fn noun(key: &ResourceKey) -> String {
    let kind = key.kind.to_ascii_lowercase();
    if key.group.is_empty() {
        format!("{kind}/{}", key.name)
    } else {
        format!("{kind}.{}/{}", key.group, key.name)
    }
}

/// The API of `kind` in `namespace` (all namespaces for a cluster-scoped kind).
pub fn api(kind: &Kind, live: &Live, namespace: &str) -> Api<DynamicObject> {
    let client = live.client().clone();
    if kind.namespaced {
        Api::namespaced_with(client, namespace, &kind.resource)
    } else {
        Api::all_with(client, &kind.resource)
    }
}

/// The object as applied: the last-applied annotation records it.
pub fn with_last_applied(object: &Value) -> Value {
    let mut recorded = object.clone();
    if let Some(annotations) = recorded["metadata"]["annotations"].as_object_mut() {
        annotations.remove(LAST_APPLIED);
    }
    let mut applied = recorded.clone();
    applied["metadata"]["annotations"][LAST_APPLIED] = Value::String(recorded.to_string());
    applied
}

fn message_of(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Finds a kind, waiting a little for one a CRD of this sync has just defined.
async fn kind_of(
    live: &Live,
    api_version: &str,
    kind: &str,
    patient: bool,
) -> Result<std::sync::Arc<Kind>, LiveError> {
    let mut tries = if patient { 40 } else { 1 };
    loop {
        match live.kind(api_version, kind).await {
            Err(LiveError::UnknownKind { .. }) if tries > 1 => {
                tries -= 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Applies one object; kubectl's message.
async fn apply_one(
    api: &Api<DynamicObject>,
    key: &ResourceKey,
    api_version: &str,
    (object, live): (&Value, Option<&Value>),
    write: Write,
    dry_run: bool,
) -> Result<String, String> {
    let desired = with_last_applied(object);
    let noun = noun(key);
    let updated = match live {
        Some(live) if write.replace => replace(api, key, &desired, live, dry_run).await,
        _ if write.server_side => server_side_apply(api, key, object, dry_run).await,
        _ => apply(api, key, api_version, &desired, live, dry_run).await,
    };
    match (updated, live) {
        (Err(e), Some(live)) if write.force && refused(&e) => {
            if dry_run {
                return Ok(format!("{noun} re-created (dry run)"));
            }
            recreate(api, key, &desired, live).await?;
            Ok(format!("{noun} re-created"))
        }
        (result, _) => result.map_err(|e| message_of(&e)),
    }
}

/// Whether the server refused an update that a delete and re-create would make (kubectl's
/// `--force`: 422 Invalid or 409 Conflict).
fn refused(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422 || s.code == 409)
}

/// `kubectl replace` (a CRD or a Namespace is updated instead: replacing one would delete
/// what it holds).
async fn replace(
    api: &Api<DynamicObject>,
    key: &ResourceKey,
    desired: &Value,
    live: &Value,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let params = PostParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    let noun = noun(key);
    let mut object: DynamicObject =
        serde_json::from_value(desired.clone()).map_err(kube::Error::SerdeError)?;
    let kept = (key.group.is_empty() && key.kind == "Namespace")
        || (key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition");
    if kept {
        object.metadata.resource_version = live["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
    }
    api.replace(&key.name, &params, &object).await?;
    Ok(if kept {
        format!("{noun} updated")
    } else {
        format!("{noun} replaced")
    })
}

/// Deletes the live object (this one: its uid is the precondition), waits for it to be gone
/// and creates the desired one.
async fn recreate(
    api: &Api<DynamicObject>,
    key: &ResourceKey,
    desired: &Value,
    live: &Value,
) -> Result<(), String> {
    let uid = live["metadata"]["uid"].as_str().map(str::to_owned);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&key.name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => return Err(message_of(&e)),
    }
    let mut tries = 100;
    loop {
        match api.get_opt(&key.name).await.map_err(|e| message_of(&e))? {
            Some(o) if o.metadata.uid == uid && tries > 0 => {
                tries -= 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(o) if o.metadata.uid == uid => {
                return Err(format!("{} is still being deleted", noun(key)));
            }
            _ => break,
        }
    }
    let object: DynamicObject =
        serde_json::from_value(desired.clone()).map_err(|e| e.to_string())?;
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    api.create(&params, &object)
        .await
        .map_err(|e| message_of(&e))?;
    Ok(())
}

/// `kubectl apply --server-side --force-conflicts`: the object as the manager
/// `argocd-controller` applies it.
async fn server_side_apply(
    api: &Api<DynamicObject>,
    key: &ResourceKey,
    object: &Value,
    dry_run: bool,
) -> Result<String, kube::Error> {
    server_side(api, &key.name, object, dry_run).await?;
    Ok(format!("{} serverside-applied", noun(key)))
}

/// Live as a server-side apply of `target` by `argocd-controller` would leave it: the
/// server's answer to the apply as a dry run (server-side diff's predicted live).
pub async fn predict_server_side(
    api: &Api<DynamicObject>,
    name: &str,
    target: &Value,
) -> Result<Value, kube::Error> {
    let predicted = server_side(api, name, target, true).await?;
    serde_json::to_value(predicted).map_err(kube::Error::SerdeError)
}

/// The server-side apply of `object` (its last-applied annotation left out) by
/// `argocd-controller`, taking conflicting fields over.
async fn server_side(
    api: &Api<DynamicObject>,
    name: &str,
    object: &Value,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let mut object = object.clone();
    if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
        annotations.remove(LAST_APPLIED);
    }
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    api.patch(name, &params, &Patch::Apply(&object)).await
}

/// Creates the object, or patches it from its last-applied configuration (`kubectl apply`).
async fn apply(
    api: &Api<DynamicObject>,
    key: &ResourceKey,
    api_version: &str,
    desired: &Value,
    live: Option<&Value>,
    dry_run: bool,
) -> Result<String, kube::Error> {
    let noun = noun(key);
    match live {
        None => {
            let object: DynamicObject =
                serde_json::from_value(desired.clone()).map_err(kube::Error::SerdeError)?;
            let params = PostParams {
                dry_run,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            api.create(&params, &object).await?;
            Ok(format!("{noun} created"))
        }
        Some(live) => {
            let patch = diff::apply_patch(
                api_version,
                diff::last_applied(live).as_ref(),
                desired,
                &diff::normalize(live),
            );
            if patch.as_object().is_some_and(|p| p.is_empty()) {
                return Ok(format!("{noun} unchanged"));
            }
            let params = PatchParams {
                dry_run,
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            let patch = if diff::is_built_in(api_version) {
                Patch::Strategic(patch)
            } else {
                Patch::Merge(patch)
            };
            api.patch(&key.name, &params, &patch).await?;
            Ok(format!("{noun} configured"))
        }
    }
}

async fn create_namespace(live: &Live, namespace: &NewNamespace) -> Result<(), String> {
    let kind = live
        .kind("v1", "Namespace")
        .await
        .map_err(|e| e.to_string())?;
    if kind.get("", &namespace.name).is_some() {
        return Ok(());
    }
    let api: Api<DynamicObject> = Api::all_with(
        live.client().clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace.name, "labels": namespace.labels, "annotations": namespace.annotations},
    }))
    .map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(format!("namespace/{}: {}", namespace.name, message_of(&e))),
    }
}

/// Creates the destination namespace (`CreateNamespace=true`) when absent.
pub async fn ensure_namespace(live: &Live, namespace: &NewNamespace) -> Result<(), String> {
    create_namespace(live, namespace).await
}

/// The dry run of a sync's first step: every object the server already knows the kind of,
/// except those in a namespace this sync creates (the server would answer that it does not
/// exist yet). The failures.
pub async fn dry_run(live: &Live, tasks: &[&Task], options: &Options) -> Vec<Outcome> {
    let created_namespaces: std::collections::HashSet<&str> = tasks
        .iter()
        .filter_map(|t| match t {
            Task::Apply {
                key, live: None, ..
            } if key.group.is_empty() && key.kind == "Namespace" => Some(key.name.as_str()),
            _ => None,
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        let Task::Apply {
            key,
            api_version,
            object,
            live: current,
            kind_unknown: false,
        } = task
        else {
            continue;
        };
        if created_namespaces.contains(key.namespace.as_str()) {
            continue;
        }
        let result = match kind_of(live, api_version, &key.kind, false).await {
            Ok(kind) => {
                apply_one(
                    &api(&kind, live, &key.namespace),
                    key,
                    api_version,
                    (object, current.as_ref()),
                    Write::of(options, object, current.as_ref()),
                    true,
                )
                .await
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(message) = result {
            failures.push(Outcome {
                key: key.clone(),
                api_version: api_version.clone(),
                status: Status::SyncFailed,
                message,
            });
        }
    }
    failures
}

/// Deletes an object (absent is fine).
pub async fn delete(
    live: &Live,
    key: &ResourceKey,
    api_version: &str,
    propagation: PropagationPolicy,
) -> Result<(), String> {
    let kind = kind_of(live, api_version, &key.kind, false)
        .await
        .map_err(|e| e.to_string())?;
    let params = DeleteParams {
        propagation_policy: Some(propagation),
        ..DeleteParams::default()
    };
    match api(&kind, live, &key.namespace)
        .delete(&key.name, &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(message_of(&e)),
    }
}

/// Removes a finalizer from an object (absent object or finalizer is fine).
pub async fn remove_finalizer(
    live: &Live,
    key: &ResourceKey,
    api_version: &str,
    finalizer: &str,
) -> Result<(), String> {
    let kind = kind_of(live, api_version, &key.kind, false)
        .await
        .map_err(|e| e.to_string())?;
    let api = api(&kind, live, &key.namespace);
    let Some(object) = api.get_opt(&key.name).await.map_err(|e| message_of(&e))? else {
        return Ok(());
    };
    let finalizers = object.metadata.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
    let patch = serde_json::json!({"metadata": {
        "finalizers": kept, "resourceVersion": object.metadata.resource_version}});
    match api
        .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(message_of(&e)),
    }
}

/// Runs one task (a dry run when `options.dry_run`).
pub async fn one(live: &Live, task: &Task, options: &Options) -> Outcome {
    let skipped = |key: &ResourceKey, api_version: &String| Outcome {
        key: key.clone(),
        api_version: api_version.clone(),
        status: Status::PruneSkipped,
        message: "ignored (requires pruning)".into(),
    };
    match task {
        Task::Apply {
            key,
            api_version,
            object,
            live: current,
            kind_unknown,
        } => {
            let result = if options.dry_run {
                Ok(format!("{} (dry run)", noun(key)))
            } else {
                match kind_of(live, api_version, &key.kind, *kind_unknown).await {
                    Ok(kind) => {
                        apply_one(
                            &api(&kind, live, &key.namespace),
                            key,
                            api_version,
                            (object, current.as_ref()),
                            Write::of(options, object, current.as_ref()),
                            false,
                        )
                        .await
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            let (status, message) = match result {
                Ok(message) => (Status::Synced, message),
                Err(message) => (Status::SyncFailed, message),
            };
            Outcome {
                key: key.clone(),
                api_version: api_version.clone(),
                status,
                message,
            }
        }
        Task::Prune { key, api_version } if options.dry_run => skipped(key, api_version),
        Task::Prune { key, api_version } => {
            let propagation = options
                .propagation
                .clone()
                .unwrap_or(PropagationPolicy::Foreground);
            match delete(live, key, api_version, propagation).await {
                Ok(()) => Outcome {
                    key: key.clone(),
                    api_version: api_version.clone(),
                    status: Status::Pruned,
                    message: "pruned".into(),
                },
                Err(message) => Outcome {
                    key: key.clone(),
                    api_version: api_version.clone(),
                    status: Status::SyncFailed,
                    message,
                },
            }
        }
        Task::PruneSkipped { key, api_version } => skipped(key, api_version),
    }
}
