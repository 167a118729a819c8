//! The Rollout controller's wiring: one watch per kind (Rollouts; ReplicaSets, Services and
//! EndpointSlices, each a shared informer store that also wakes the Rollouts it concerns), and
//! the reconcile that runs observe ([`crate::observe`]) → plan ([`crate::blue_green`]) → apply
//! ([`crate::apply`]) → status ([`crate::status`]). Blue-green only for now; a canary Rollout
//! waits for its controller.
//!
//! Sharing the streams (kube-rs's `unstable-runtime-subscribe`) keeps one copy of each object
//! in memory and one watch per kind, where `owns`/`watches` would open a second watch beside
//! each store. EndpointSlices wake the Rollout because the old ReplicaSet is only scaled down
//! once the active Service's endpoints are all new pods — a change no other watch sees.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, future};
use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action as Requeue,
        events::{Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use sluice_api::{Rollout, names::label};

use crate::{
    apply::Target,
    blue_green,
    expectations::Expectations,
    index::Indexes,
    metrics::Metrics,
    observe::{self, Stores},
    status,
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
}

struct Context {
    client: Client,
    ready: Arc<AtomicBool>,
    stores: Stores,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    expectations: Expectations,
    /// Failed reconciles in a row, per Rollout.
    failures: std::sync::Mutex<std::collections::HashMap<ObjectRef<Rollout>, u32>>,
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

/// A shared informer for `K`: its store, the stream of changes for the controller, and the
/// task that drives the watch.
fn informer<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Arc<K>> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store_shared(1024);
    let subscriber = writer.subscribe().expect("a shared store has subscribers");
    // `managedFields` is bookkeeping the controller never reads; keeping it out of the stores
    // keeps a third of their memory free.
    let driver = watcher(api, config)
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .reflect_shared(writer)
        .for_each(|_| future::ready(()));
    (store, subscriber, driver)
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
    let namespace = namespace.unwrap_or_default();
    let reference = |name: &str| ObjectRef::new(name).within(&namespace);
    let index = &indexes.rollouts_by_service;
    index.retain(&namespace, service, |name| {
        rollouts.get(&reference(name)).is_some()
    });
    index
        .names(&namespace, service)
        .into_iter()
        .map(|name| reference(&name))
        .collect()
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
async fn prefill(
    replica_sets: Store<ReplicaSet>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    indexes: Arc<Indexes>,
    ready: Arc<AtomicBool>,
) {
    let lists = futures::future::join3(
        replica_sets.wait_until_ready(),
        services.wait_until_ready(),
        slices.wait_until_ready(),
    )
    .await;
    if lists.0.is_err() || lists.1.is_err() || lists.2.is_err() {
        return;
    }
    for rs in replica_sets.state() {
        index_replica_set(&indexes, &rs);
    }
    for slice in slices.state() {
        index_slice(&indexes, &slice);
    }
    ready.store(true, Ordering::Release);
}

/// Runs the controller until its watches end (the API server went away).
pub async fn run(client: Client, settings: Settings, metrics: Arc<Metrics>) {
    let instance = match &settings.instance_id {
        Some(id) => format!("{}={id}", label::CONTROLLER_INSTANCE_ID),
        None => format!("!{}", label::CONTROLLER_INSTANCE_ID),
    };
    let (rollouts, rollout_changes, rollout_watch) = informer(
        api::<Rollout>(&client, &settings),
        watcher::Config::default().labels(&instance),
    );
    let (replica_sets, set_changes, set_watch) = informer(
        api::<ReplicaSet>(&client, &settings),
        watcher::Config::default(),
    );
    let (services, service_changes, service_watch) = informer(
        api::<Service>(&client, &settings),
        watcher::Config::default(),
    );
    let (slices, slice_changes, slice_watch) = informer(
        api::<EndpointSlice>(&client, &settings),
        watcher::Config::default(),
    );
    metrics.watch(rollouts.clone());
    let indexes = Arc::new(Indexes::default());
    let ready = Arc::new(AtomicBool::new(false));
    // Reconciles wait until every store holds its first full list and the indexes cover it.
    let _prefill = AbortOnDrop(tokio::spawn(prefill(
        replica_sets.clone(),
        services.clone(),
        slices.clone(),
        indexes.clone(),
        ready.clone(),
    )));
    let (by_set, by_service, by_slice) = (indexes.clone(), indexes.clone(), indexes.clone());
    let (named_by_service, named_by_slice) = (rollouts.clone(), rollouts.clone());
    let controller = Controller::for_shared_stream(rollout_changes, rollouts)
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
        });
    let reporter = Reporter {
        controller: "rollouts-controller".into(),
        instance: None,
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        ready,
        stores: Stores {
            replica_sets,
            services,
            slices,
            indexes,
        },
        metrics,
        expectations: Expectations::default(),
        failures: Default::default(),
    });
    let controller = controller
        .run(reconcile, error_policy, context)
        .for_each(|_| future::ready(()));
    tokio::select! {
        () = controller => {}
        () = rollout_watch => {}
        () = set_watch => {}
        () = service_watch => {}
        () = slice_watch => {}
    }
}

/// A failed reconcile is retried after 0.5 s, doubling with each failure in a row of the same
/// Rollout up to 5 minutes, so a lasting error (RBAC, a rejected write) does not spin.
fn error_policy(rollout: Arc<Rollout>, err: &ControllerError, context: Arc<Context>) -> Requeue {
    context.metrics.failed();
    let key = ObjectRef::from_obj(rollout.as_ref());
    let failures = {
        let mut failures = context.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key).or_default();
        *count = count.saturating_add(1);
        *count
    };
    let delay = Duration::from_millis(500)
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(Duration::from_secs(300));
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

async fn reconcile(
    rollout: Arc<Rollout>,
    context: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let started = Instant::now();
    if !context.ready.load(Ordering::Acquire) {
        return Ok(Requeue::requeue(Duration::from_millis(200)));
    }
    let Some(strategy) = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.blue_green.as_ref())
    else {
        return Ok(Requeue::await_change());
    };
    let now = Timestamp::now();
    let (observation, progressed) = observe::observe(&rollout, strategy, &context.stores, now)?;
    // The stores may not show the controller's own last writes yet: plan once they do.
    let expectations = &context.expectations;
    let namespace = rollout.namespace().unwrap_or_default();
    let services = [
        Some(strategy.active_service.as_str()),
        strategy.preview_service(),
    ];
    let caught_up = expectations.seen(rollout.as_ref())
        && observation
            .owned
            .iter()
            .all(|rs| expectations.seen(rs.as_ref()))
        && services.into_iter().flatten().all(|name| {
            let service = context
                .stores
                .services
                .get(&ObjectRef::new(name).within(&namespace));
            service.is_none_or(|s| expectations.seen(s.as_ref()))
        });
    if !caught_up {
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }
    let plan = blue_green::plan(&observation.observed, now);
    let target = Target {
        client: &context.client,
        recorder: &context.recorder,
        metrics: &context.metrics,
        expectations,
        rollout: &rollout,
    };
    let applied = target.apply(&plan.actions, &observation).await?;
    for event in &plan.events {
        target
            .record(event.warning, event.reason, event.message.clone())
            .await;
    }
    let inputs = status::Inputs {
        rollout: &rollout,
        hash: &observation.observed.hash,
        states: &observation.observed.replica_sets,
        progressed,
        collision: applied.collision,
        reset: observation.reset,
        now,
    };
    let desired = status::desired(&inputs, &plan);
    let old = serde_json::to_value(rollout.status.clone().unwrap_or_default())?;
    if let Some(patch) = status::merge_diff(&old, &desired) {
        let api: Api<Rollout> = Api::namespaced(
            context.client.clone(),
            &rollout.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({"status": patch});
        let written = api
            .patch_status(
                &rollout.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        expectations.wrote(&written);
    }
    context.metrics.reconciled(started.elapsed().as_secs_f64());
    context
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&ObjectRef::from_obj(rollout.as_ref()));
    Ok(match plan.requeue {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(50)).min(RESYNC)),
        None => Requeue::requeue(RESYNC),
    })
}
