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
    sync::Arc,
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
    stores: Stores,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    expectations: Expectations,
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
    let driver = watcher(api, config)
        .default_backoff()
        .reflect_shared(writer)
        .for_each(|_| future::ready(()));
    (store, subscriber, driver)
}

/// The Rollouts in `store` that name `service` as active or preview Service.
fn naming(
    store: &Store<Rollout>,
    namespace: Option<String>,
    service: &str,
) -> Vec<ObjectRef<Rollout>> {
    store
        .state()
        .into_iter()
        .filter(|r| r.namespace() == namespace)
        .filter(|r| {
            let strategy = r.spec.strategy.as_ref().and_then(|s| s.blue_green.as_ref());
            strategy.is_some_and(|bg| {
                bg.active_service == service || bg.preview_service() == Some(service)
            })
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
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
    let (by_service, by_slice) = (rollouts.clone(), rollouts.clone());
    let controller = Controller::for_shared_stream(rollout_changes, rollouts)
        .owns_shared_stream(set_changes)
        .watches_shared_stream(service_changes, move |service| {
            naming(&by_service, service.namespace(), &service.name_any())
        })
        .watches_shared_stream(slice_changes, move |slice| {
            match slice.labels().get("kubernetes.io/service-name") {
                Some(service) => naming(&by_slice, slice.namespace(), service),
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
        stores: Stores {
            replica_sets,
            services,
            slices,
        },
        metrics,
        expectations: Expectations::default(),
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

fn error_policy(_: Arc<Rollout>, err: &ControllerError, context: Arc<Context>) -> Requeue {
    tracing::debug!("rollouts controller: {err}");
    context.metrics.failed();
    Requeue::requeue(Duration::from_millis(500))
}

async fn reconcile(
    rollout: Arc<Rollout>,
    context: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let started = Instant::now();
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
    Ok(match plan.requeue {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(50))),
        None => Requeue::await_change(),
    })
}
