//! The Rollout controller's wiring: one watch per kind (Rollouts; ReplicaSets, Services and
//! EndpointSlices, each a shared informer store that also wakes the Rollouts it concerns; pod
//! metadata for the applier), and the reconcile that runs observe ([`crate::observe`]) →
//! plan ([`crate::plan`]) → apply ([`crate::apply`]), status included.
//!
//! Sharing the streams (kube-rs's `unstable-runtime-subscribe`) keeps one copy of each object
//! in memory and one watch per kind, where `owns`/`watches` would open a second watch beside
//! each store. EndpointSlices wake the Rollout because the old ReplicaSet is only scaled down
//! once the active Service's endpoints are all new pods — a change no other watch sees.
//!
//! Two small watches, by name, look for Argo Rollouts' own controller ([`crate::rival`]): its
//! Deployment (whose appearance wakes every Rollout) and its Lease; a Rollout both controllers
//! would act on gets one Warning event.
//!
//! Each store keeps only what the planners read ([`crate::stored`]): ReplicaSets with their
//! template as raw JSON, Services with their selector, EndpointSlices with each endpoint's pod
//! and readiness, pods with their metadata and Ready condition, nothing with
//! `managedFields` or `last-applied-configuration` — the bulk of the controller's memory at
//! thousands of Rollouts (`cargo bench -p sluice --bench scale` prints where it goes).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, future};
use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
    networking::v1::Ingress,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{Action as Requeue, Config as ControllerConfig},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::json;
use sluice_api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout, RolloutAnalysis,
    names::{annotation, label},
};
use sluice_reconcile::{
    backoff::Backoff,
    events::{self, Recorder},
    expectations::{Expectations, Key},
    informer,
};

use crate::{
    apply::{Target, owner_key},
    index::{Index, Indexes},
    metrics::Metrics,
    observe::{self, Stores},
    plan, restart, rival, status,
    stored::{self, ReplicaSet},
    workload::{self, Resolved},
};

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An API call failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// The Rollout could not be read as JSON.
    #[error("encoding the Rollout: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What the controller handles.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Only Rollouts labelled `argo-rollouts.argoproj.io/controller-instance-id` with this
    /// value; without it, only Rollouts without that label (Argo's `--instance-id`).
    pub instance_id: Option<String>,
    /// Only this namespace (default: all).
    pub namespace: Option<String>,
    /// How many Rollouts reconcile at once (Argo's `--rollout-threads`; 0 means Argo's
    /// default, 10). Unbounded, an update of thousands of Rollouts holds thousands of
    /// reconciles' requests and responses in memory at once for no gain in speed: the API
    /// server is the bottleneck.
    pub threads: u16,
}

/// Argo's `--rollout-threads` default.
const THREADS: u16 = 10;

struct Context {
    client: Client,
    ready: Arc<AtomicBool>,
    rollouts: Store<Rollout>,
    stores: Stores,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    expectations: Expectations,
    backoff: Backoff<ObjectRef<Rollout>>,
    rivals: Rivals,
}

/// What the controller knows of Argo Rollouts' own controller ([`rival`]).
struct Rivals {
    /// Deployments named `argo-rollouts`.
    deployments: Store<Deployment>,
    /// Leases named `argo-rollouts-controller-lock`.
    leases: Store<Lease>,
    /// The Rollouts (by uid) warned about, and the controller named.
    warned: Mutex<HashMap<String, String>>,
}

fn api<K>(client: &Client, settings: &Settings) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &settings.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// The Rollouts a Service (or one of its EndpointSlices) concerns, from the index the
/// reconciles keep of the Services each Rollout names.
/// (Rollouts deleted since are dropped from the index.)
fn naming(
    indexes: &Indexes,
    rollouts: &Store<Rollout>,
    namespace: Option<String>,
    service: &str,
) -> Vec<ObjectRef<Rollout>> {
    named_in(&indexes.rollouts_by_service, rollouts, namespace, service)
}

/// The Rollouts `index` lists under `key` (Rollouts deleted since are dropped from it).
fn named_in(
    index: &Index,
    rollouts: &Store<Rollout>,
    namespace: Option<String>,
    key: &str,
) -> Vec<ObjectRef<Rollout>> {
    let namespace = namespace.unwrap_or_default();
    let reference = |name: &str| ObjectRef::new(name).within(&namespace);
    index.retain(&namespace, key, |name| {
        rollouts.get(&reference(name)).is_some()
    });
    index
        .names(&namespace, key)
        .into_iter()
        .map(|name| reference(&name))
        .collect()
}

/// The Rollout a pod's change concerns, if that Rollout is restarting (a pod that goes or
/// becomes available lets the next one go); other pod changes wake nothing.
fn restarting(
    sets: &Store<ReplicaSet>,
    rollouts: &Store<Rollout>,
    pod: &Pod,
) -> Option<ObjectRef<Rollout>> {
    let namespace = pod.namespace().unwrap_or_default();
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")?;
    let rs = sets.get(&ObjectRef::new(&owner.name).within(&namespace))?;
    let (name, _) = controller_of(rs.as_ref())?;
    let reference = ObjectRef::new(&name).within(&namespace);
    let rollout = rollouts.get(&reference)?;
    let restart_at = rollout.spec.restart_at.as_ref().map(|t| t.0);
    let restarted_at = rollout
        .status
        .as_ref()
        .and_then(|s| s.restarted_at.as_ref())
        .map(|t| t.0);
    restart::due(restart_at, restarted_at, Timestamp::now()).then_some(reference)
}

/// The controlling owner of an object, and its uid.
fn controller_of<K: Resource>(object: &K) -> Option<(String, String)> {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "Rollout")
        .map(|o| (o.name.clone(), o.uid.clone()))
}

/// Indexes a ReplicaSet under its controlling Rollout's uid; the Rollout to wake.
fn index_replica_set(indexes: &Indexes, rs: &ReplicaSet) -> Option<ObjectRef<Rollout>> {
    let namespace = rs.namespace().unwrap_or_default();
    let (owner, uid) = controller_of(rs)?;
    indexes
        .sets_by_owner
        .insert(&namespace, &uid, &rs.name_any());
    Some(ObjectRef::new(&owner).within(&namespace))
}

/// Indexes an AnalysisRun under its controlling Rollout's uid; the Rollout to wake.
fn index_run(indexes: &Indexes, run: &AnalysisRun) -> Option<ObjectRef<Rollout>> {
    let namespace = run.namespace().unwrap_or_default();
    let (owner, uid) = controller_of(run)?;
    indexes
        .runs_by_owner
        .insert(&namespace, &uid, &run.name_any());
    Some(ObjectRef::new(&owner).within(&namespace))
}

/// Whether `rollout` refers to the template `name` (`cluster`: a ClusterAnalysisTemplate).
fn refers_to(rollout: &Rollout, name: &str, cluster: bool) -> bool {
    let Some(strategy) = rollout.spec.strategy.as_ref() else {
        return false;
    };
    let mut analyses: Vec<&RolloutAnalysis> = Vec::new();
    if let Some(bg) = &strategy.blue_green {
        analyses.extend(bg.pre_promotion_analysis.iter());
        analyses.extend(bg.post_promotion_analysis.iter());
    }
    if let Some(canary) = &strategy.canary {
        analyses.extend(canary.analysis.iter().map(|a| &a.analysis));
        analyses.extend(canary.steps().iter().filter_map(|s| s.analysis.as_ref()));
    }
    // Nested templates are not followed: a change to one wakes the Rollout at its next resync.
    analyses.iter().flat_map(|a| a.templates()).any(|t| {
        t.template_name.as_deref() == Some(name) && t.cluster_scope.unwrap_or(false) == cluster
    })
}

/// The Rollouts (of `namespace`, or of every namespace for a cluster template) that refer to
/// a template: a template that appears, changes or goes may change what they may do.
fn referring(
    rollouts: &Store<Rollout>,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<Rollout>> {
    rollouts
        .state()
        .iter()
        .filter(|r| namespace.is_none_or(|ns| r.namespace().as_deref() == Some(ns)))
        .filter(|r| refers_to(r, name, namespace.is_none()))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Indexes an EndpointSlice under its Service; that Service's name.
fn index_slice(indexes: &Indexes, slice: &EndpointSlice) -> Option<String> {
    let service = slice.labels().get("kubernetes.io/service-name")?.clone();
    let namespace = slice.namespace().unwrap_or_default();
    indexes
        .slices_by_service
        .insert(&namespace, &service, &slice.name_any());
    Some(service)
}

/// Aborts a task when dropped (the controller's future was dropped: killed, or lost its lease).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the first full list of each store, indexes it, and opens the gate.
async fn prefill(stores: Stores, ready: Arc<AtomicBool>) {
    let lists = futures::future::join4(
        stores.replica_sets.wait_until_ready(),
        stores.services.wait_until_ready(),
        stores.slices.wait_until_ready(),
        stores.pods.wait_until_ready(),
    )
    .await;
    if lists.0.is_err() || lists.1.is_err() || lists.2.is_err() || lists.3.is_err() {
        return;
    }
    if stores.deployments.wait_until_ready().await.is_err() {
        return;
    }
    let analysis = futures::future::join4(
        stores.runs.wait_until_ready(),
        stores.templates.wait_until_ready(),
        stores.cluster_templates.wait_until_ready(),
        stores.ingresses.wait_until_ready(),
    )
    .await;
    if analysis.0.is_err() || analysis.1.is_err() || analysis.2.is_err() || analysis.3.is_err() {
        return;
    }
    for rs in stores.replica_sets.state() {
        index_replica_set(&stores.indexes, &rs);
    }
    for run in stores.runs.state() {
        index_run(&stores.indexes, &run);
    }
    for slice in stores.slices.state() {
        index_slice(&stores.indexes, &slice);
    }
    ready.store(true, Ordering::Release);
}

/// Runs the controller until its watches end (the API server went away).
pub async fn run(client: Client, settings: Settings, metrics: Arc<Metrics>) {
    let instance = match &settings.instance_id {
        Some(id) => format!("{}={id}", label::CONTROLLER_INSTANCE_ID),
        None => format!("!{}", label::CONTROLLER_INSTANCE_ID),
    };
    let (rollouts, rollout_changes, rollout_watch) = informer::shared_trimmed(
        api::<Rollout>(&client, &settings),
        watcher::Config::default().labels(&instance),
        stored::trim_applied,
    );
    let (replica_sets, set_changes, set_watch) = informer::shared(
        api::<ReplicaSet>(&client, &settings),
        watcher::Config::default(),
    );
    let (services, service_changes, service_watch) = informer::shared_trimmed(
        api::<Service>(&client, &settings),
        watcher::Config::default(),
        stored::trim_service,
    );
    let (slices, slice_changes, slice_watch) = informer::shared_trimmed(
        api::<EndpointSlice>(&client, &settings),
        watcher::Config::default(),
        stored::trim_slice,
    );
    // Only pods of Rollouts: the hash label is on every pod a Rollout's ReplicaSet makes.
    let (pods, pod_changes, pod_watch) = informer::shared_trimmed(
        api::<Pod>(&client, &settings),
        watcher::Config::default().labels(label::POD_TEMPLATE_HASH),
        stored::trim_pod,
    );
    let (deployments, deployment_changes, deployment_watch) = informer::shared(
        api::<Deployment>(&client, &settings),
        watcher::Config::default(),
    );
    let (runs, run_changes, run_watch) = informer::shared(
        api::<AnalysisRun>(&client, &settings),
        watcher::Config::default().labels(label::ROLLOUT_TYPE),
    );
    let (templates, template_changes, template_watch) = informer::shared(
        api::<AnalysisTemplate>(&client, &settings),
        watcher::Config::default(),
    );
    let (cluster_templates, cluster_template_changes, cluster_template_watch) = informer::shared(
        Api::<ClusterAnalysisTemplate>::all(client.clone()),
        watcher::Config::default(),
    );
    let (ingresses, ingress_changes, ingress_watch) = informer::shared(
        api::<Ingress>(&client, &settings),
        watcher::Config::default(),
    );
    // Argo Rollouts' controller: its Deployment and its Lease, by name.
    let (argo_deployments, argo_changes, argo_watch) = informer::shared(
        api::<Deployment>(&client, &settings),
        watcher::Config::default().fields(&format!("metadata.name={}", rival::DEPLOYMENT)),
    );
    let (argo_leases, argo_lease_watch) = informer::store_only(
        api::<Lease>(&client, &settings),
        watcher::Config::default().fields(&format!("metadata.name={}", rival::LEASE)),
    );
    metrics.watch(rollouts.clone());
    let indexes = Arc::new(Indexes::default());
    let ready = Arc::new(AtomicBool::new(false));
    let stores = Stores {
        replica_sets,
        services,
        slices,
        pods,
        deployments,
        runs,
        templates,
        cluster_templates,
        ingresses,
        indexes: indexes.clone(),
    };
    // Reconciles wait until every store holds its first full list and the indexes cover it.
    let _prefill = AbortOnDrop(tokio::spawn(prefill(stores.clone(), ready.clone())));
    let (by_set, by_service, by_slice) = (indexes.clone(), indexes.clone(), indexes.clone());
    let (named_by_service, named_by_slice) = (rollouts.clone(), rollouts.clone());
    let by_run = indexes.clone();
    let (by_template, by_cluster_template) = (rollouts.clone(), rollouts.clone());
    let (by_ingress, named_by_ingress) = (indexes.clone(), rollouts.clone());
    let (pod_sets, pod_rollouts) = (stores.replica_sets.clone(), rollouts.clone());
    let (by_workload, named_by_workload) = (indexes.clone(), rollouts.clone());
    let all_rollouts = rollouts.clone();
    let seen_rivals: Mutex<HashMap<String, Option<rival::Rival>>> = Mutex::default();
    let controller = Controller::for_shared_stream(rollout_changes, rollouts.clone())
        .watches_shared_stream(set_changes, move |rs| index_replica_set(&by_set, &rs))
        .watches_shared_stream(service_changes, move |service| {
            naming(
                &by_service,
                &named_by_service,
                service.namespace(),
                &service.name_any(),
            )
        })
        .watches_shared_stream(slice_changes, move |slice| {
            match index_slice(&by_slice, &slice) {
                Some(service) => naming(&by_slice, &named_by_slice, slice.namespace(), &service),
                None => Vec::new(),
            }
        })
        .watches_shared_stream(run_changes, move |run| index_run(&by_run, &run))
        .watches_shared_stream(pod_changes, move |pod| {
            restarting(&pod_sets, &pod_rollouts, &pod)
        })
        .watches_shared_stream(deployment_changes, move |deployment| {
            named_in(
                &by_workload.rollouts_by_workload,
                &named_by_workload,
                deployment.namespace(),
                &deployment.name_any(),
            )
        })
        .watches_shared_stream(argo_changes, move |deployment| {
            // Argo's controller appearing (or changing) wakes every Rollout, once.
            let now = rival::from_deployment(&deployment);
            let namespace = deployment.namespace().unwrap_or_default();
            let before = lock(&seen_rivals).insert(namespace, now.clone());
            if before.flatten() == now {
                return Vec::new();
            }
            all_rollouts
                .state()
                .iter()
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect()
        })
        .watches_shared_stream(template_changes, move |template| {
            let namespace = template.namespace().unwrap_or_default();
            referring(&by_template, Some(namespace.as_str()), &template.name_any())
        })
        .watches_shared_stream(cluster_template_changes, move |template| {
            referring(&by_cluster_template, None, &template.name_any())
        })
        .watches_shared_stream(ingress_changes, move |ingress| {
            // A canary Ingress wakes its Rollout (the data plane's report, a hand edit); a
            // stable Ingress the Rollouts whose router names it.
            let namespace = ingress.namespace().unwrap_or_default();
            if let Some((owner, _)) = controller_of(ingress.as_ref()) {
                return vec![ObjectRef::new(&owner).within(&namespace)];
            }
            let index = &by_ingress.rollouts_by_ingress;
            let stable = ingress.name_any();
            index.retain(&namespace, &stable, |name| {
                named_by_ingress
                    .get(&ObjectRef::new(name).within(&namespace))
                    .is_some()
            });
            index
                .names(&namespace, &stable)
                .into_iter()
                .map(|name| ObjectRef::new(&name).within(&namespace))
                .collect()
        });
    let context = Arc::new(Context {
        recorder: events::recorder(&client, "rollouts-controller"),
        client,
        ready,
        rollouts,
        stores,
        metrics,
        expectations: Expectations::default(),
        backoff: Backoff::default(),
        rivals: Rivals {
            deployments: argo_deployments,
            leases: argo_leases,
            warned: Mutex::default(),
        },
    });
    let controller = controller
        .with_config(
            ControllerConfig::default().concurrency(match settings.threads {
                0 => THREADS,
                n => n,
            }),
        )
        .run(reconcile, error_policy, context)
        .for_each(|_| future::ready(()));
    tokio::select! {
        () = controller => {}
        () = rollout_watch => {}
        () = set_watch => {}
        () = service_watch => {}
        () = slice_watch => {}
        () = pod_watch => {}
        () = deployment_watch => {}
        () = run_watch => {}
        () = template_watch => {}
        () = cluster_template_watch => {}
        () = ingress_watch => {}
        () = argo_watch => {}
        () = argo_lease_watch => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One Warning event per Rollout while Argo Rollouts' controller would act on it too (again
/// if that controller goes and comes back).
async fn warn_of_rival(context: &Context, rollout: &Rollout, now: Timestamp) {
    let rivals = &context.rivals;
    let deployments = rivals.deployments.state();
    let leases = rivals.leases.state();
    let found = rival::find(
        deployments.iter().map(AsRef::as_ref),
        leases.iter().map(AsRef::as_ref),
        now,
    );
    let instance = rollout
        .labels()
        .get(label::CONTROLLER_INSTANCE_ID)
        .map(String::as_str);
    let contender = rival::contending(&found, instance);
    let first = {
        let mut warned = lock(&rivals.warned);
        if found.is_empty() {
            warned.clear();
        }
        let uid = rollout.uid().unwrap_or_default();
        match contender {
            Some(r) => warned.insert(uid, r.location.clone()).as_ref() != Some(&r.location),
            None => {
                warned.remove(&uid);
                false
            }
        }
    };
    if let (true, Some(contender)) = (first, contender) {
        tracing::warn!(
            "rollout {}/{}: {}",
            rollout.namespace().unwrap_or_default(),
            rollout.name_any(),
            contender.message()
        );
        events::record(
            &context.recorder,
            &rollout.object_ref(&()),
            true,
            rival::REASON,
            contender.message(),
        )
        .await;
    }
}

/// A failed reconcile is retried with back-off ([`Backoff`]), logged at warn.
/// The reason of the Warning event a refused request leaves on the Rollout (Argo's
/// `RolloutReconciliationErrorReason`).
pub const RECONCILIATION_ERROR: &str = "ReconciliationError";

fn error_policy(rollout: Arc<Rollout>, err: &ControllerError, context: Arc<Context>) -> Requeue {
    context.metrics.failed();
    let (failures, delay) = context
        .backoff
        .failed(ObjectRef::from_obj(rollout.as_ref()));
    // A request the API server refused (a missing RBAC rule) never heals by retrying: say so
    // loudly, in the log and on the Rollout, naming the verb and resource Kubernetes' message
    // names — a controller that lacks a right must not stall in silence.
    if let ControllerError::Api(kube::Error::Api(status)) = err
        && status.code == 403
    {
        tracing::error!(
            "rollout {}/{}: the API server refused a request: {} (failure {failures} in a row; retrying in {delay:?})",
            rollout.namespace().unwrap_or_default(),
            rollout.name_any(),
            status.message
        );
        let note = format!("Reconciliation failed with error: {}", status.message);
        let reference = rollout.object_ref(&());
        tokio::spawn(async move {
            events::record(
                &context.recorder,
                &reference,
                true,
                RECONCILIATION_ERROR,
                note,
            )
            .await;
        });
        return Requeue::requeue(delay);
    }
    tracing::warn!(
        "rollout {}/{}: {err} (failure {failures} in a row; retrying in {delay:?})",
        rollout.namespace().unwrap_or_default(),
        rollout.name_any()
    );
    Requeue::requeue(delay)
}

/// How long a Rollout with nothing pending waits before it is looked at again anyway (Argo's
/// resync): deletions are not announced to the controller, so a deleted EndpointSlice or
/// ReplicaSet is noticed here at the latest.
const RESYNC: Duration = Duration::from_secs(15 * 60);

/// The version a store holds of the object `key` (see [`Expectations::satisfied`]).
fn stored_version(context: &Context, key: &Key) -> Option<Option<u64>> {
    let (kind, namespace, name) = key;
    let version = |meta: &kube::api::ObjectMeta| meta.resource_version.as_deref()?.parse().ok();
    match kind.as_str() {
        "Rollout" => context
            .rollouts
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "ReplicaSet" => context
            .stores
            .replica_sets
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "Service" => context
            .stores
            .services
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "AnalysisRun" => context
            .stores
            .runs
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "Ingress" => context
            .stores
            .ingresses
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "Pod" => context
            .stores
            .pods
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        "Deployment" => context
            .stores
            .deployments
            .get(&ObjectRef::new(name).within(namespace))
            .map(|o| version(o.meta())),
        _ => Some(None),
    }
}

async fn reconcile(
    rollout: Arc<Rollout>,
    context: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let started = Instant::now();
    if !context.ready.load(Ordering::Acquire) {
        return Ok(Requeue::requeue(Duration::from_millis(200)));
    }
    // The stores may not show the controller's own last writes yet: plan once they do.
    let owner = owner_key(&rollout);
    if !context
        .expectations
        .satisfied(&owner, |key| stored_version(&context, key))
    {
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }
    // The Rollout as the store holds it now: the one this reconcile was handed may have been
    // read before the controller's last write of it reached the store (a reconcile held
    // behind a running one is handed the object as it was when it was queued).
    let Some(rollout) = context.rollouts.get(&ObjectRef::from_obj(rollout.as_ref())) else {
        return Ok(Requeue::await_change());
    };
    let now = Timestamp::now();
    warn_of_rival(&context, &rollout, now).await;
    let namespace = rollout.namespace().unwrap_or_default();
    if let Some(name) = rollout
        .spec
        .workload_ref
        .as_ref()
        .and_then(|w| w.name.as_deref())
    {
        context
            .stores
            .indexes
            .rollouts_by_workload
            .insert(&namespace, name, &rollout.name_any());
    }
    // A `workloadRef` is read as the Rollout with the Deployment's template in place.
    let resolution = workload::resolve(&rollout, &context.stores.deployments);
    let (source, workload, problem) = match &resolution {
        Resolved::Plain => (rollout.as_ref(), None, None),
        Resolved::Resolved(resolved, workload) => (resolved.as_ref(), Some(workload), None),
        Resolved::Invalid(problem) => (rollout.as_ref(), None, Some(problem.clone())),
    };
    let Some(mut observation) = observe::observe(source, &context.stores, now)? else {
        return Ok(Requeue::await_change());
    };
    observation.observed.workload = workload.cloned();
    if problem.is_some() {
        observation.observed.invalid = problem;
    }
    let target = Target {
        client: &context.client,
        recorder: &context.recorder,
        metrics: &context.metrics,
        expectations: &context.expectations,
        stores: &context.stores,
        rollout: &rollout,
    };
    // The Deployment's generation on the Rollout, as Argo's resolver keeps it.
    if !matches!(resolution, Resolved::Invalid(_)) {
        let want = workload.map(|w| w.generation.to_string());
        if rollout.annotations().get(annotation::WORKLOAD_GENERATION) != want.as_ref() {
            let api: Api<Rollout> = Api::namespaced(context.client.clone(), &namespace);
            let patch =
                json!({"metadata": {"annotations": {annotation::WORKLOAD_GENERATION: want}}});
            let written = api
                .patch(
                    &rollout.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
            context.expectations.wrote(&owner, &written);
        }
    }
    // A restart's evictions first, as Argo's reconcile: a canary that evicted stops there —
    // its ReplicaSets' counts do not show those pods gone yet.
    if let Some(evict) = plan::restart(&observation.observed, now).action() {
        let applied = target.apply(&[evict], &[], &observation).await?;
        let canary = matches!(
            observation.observed.strategy,
            crate::model::Strategy::Canary(_)
        );
        if applied.evicted > 0 && canary {
            return Ok(Requeue::requeue(restart::CHECK));
        }
    }
    let plan = plan::plan(&observation.observed, now);
    target
        .apply(&plan.actions, &plan.events, &observation)
        .await?;
    if let Some(metric) = &plan.analysis_abort {
        context
            .metrics
            .analysis_aborted(&namespace, &rollout.name_any(), metric);
    }
    let workload_generation = match &resolution {
        Resolved::Plain => None,
        Resolved::Resolved(_, w) => Some(w.generation.to_string()),
        Resolved::Invalid(_) => rollout
            .status
            .as_ref()
            .and_then(|s| s.workload_observed_generation.clone()),
    };
    let inputs = status::Inputs {
        rollout: source,
        hash: &observation.observed.hash,
        states: &observation.observed.replica_sets,
        progressed: observation.progressed,
        collision: observation.observed.collision,
        reset: observation.reset,
        min_available: status::min_available(source),
        now,
        workload_generation,
    };
    let desired = status::desired(&inputs, &plan);
    let old = serde_json::to_value(rollout.status.clone().unwrap_or_default())?;
    if let Some(patch) = status::merge_diff(&old, &desired) {
        target.write_status(patch).await?;
    }
    context.metrics.reconciled(started.elapsed().as_secs_f64());
    context
        .backoff
        .succeeded(&ObjectRef::from_obj(rollout.as_ref()));
    Ok(match plan.requeue {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(50)).min(RESYNC)),
        None => Requeue::requeue(RESYNC),
    })
}
