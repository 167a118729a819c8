//! The cluster's own controllers, as kube-controller-manager runs them, each talking to the API
//! through a kube-rs client like any other client: ReplicaSets, Deployments, Jobs, Endpoints and
//! EndpointSlices, the scheduler of pods the node did not take at once, and each namespace's
//! default ServiceAccount and root CA.
//! (The garbage collector and namespace lifecycle live in [`crate::gc`].)

pub mod aggregation;
pub mod deployment;
pub mod endpoints;
pub mod exact;
pub mod job;
pub mod namespace;
pub mod pods;
pub mod replicaset;
pub mod scheduler;

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use futures::Stream;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Client, Resource,
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use sluice_reconcile::{backoff::Backoff, expectations::Expectations};
pub(crate) use sluice_reconcile::{
    events::{Recorder, record, recorder},
    informer::watched,
};

/// Why a controller failed a reconcile (it retries).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An API call failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// An object could not be encoded.
    #[error("encoding an object: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Failures in a row per object version: a version that keeps failing is retried after 0.5 s,
/// doubling up to 5 minutes; a new version (the object changed) starts again at 0.5 s.
static BACKOFF: LazyLock<Backoff<(String, String, String, String)>> =
    LazyLock::new(Backoff::default);

pub(crate) fn error_policy<K, C>(object: Arc<K>, err: &ControllerError, _: Arc<C>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let meta = object.meta();
    let key = (
        K::kind(&()).into_owned(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
        meta.resource_version.clone().unwrap_or_default(),
    );
    let (failures, delay) = BACKOFF.failed(key);
    tracing::debug!("controller: {err} (failure {failures} in a row; retrying in {delay:?})");
    Action::requeue(delay)
}

/// How long a pod owner waits for its store to show the pods it created or deleted before
/// acting anyway.
const PATIENCE: Duration = Duration::from_secs(5);

/// What controllers of pods (ReplicaSets, Jobs) share: a client, every pod, their
/// expectations and an event recorder.
pub(crate) struct PodOwners {
    pub client: Client,
    pub pods: Store<Pod>,
    pub expectations: Expectations,
    pub recorder: Recorder,
}

impl PodOwners {
    /// The context and the pod change stream that should trigger the controller.
    pub fn start(
        client: &Client,
        controller: &str,
    ) -> (
        Arc<Self>,
        impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    ) {
        let (pods, events) = watched(client);
        let context = Self {
            client: client.clone(),
            pods,
            expectations: Expectations::with_patience(PATIENCE),
            recorder: recorder(client, controller),
        };
        (Arc::new(context), events)
    }

    /// Whether the pod store shows what the last reconcile of `owner` created and deleted (a
    /// pod being deleted counts as gone, as in Kubernetes' controllers).
    pub fn caught_up(&self, owner: &str) -> bool {
        self.expectations.satisfied(owner, |(_, namespace, name)| {
            let pod = self.pods.get(&ObjectRef::new(name).within(namespace))?;
            if pod.metadata.deletion_timestamp.is_some() {
                return None;
            }
            Some(sluice_reconcile::expectations::version(pod.as_ref()))
        })
    }

    /// Records what a reconcile of `owner` (in `namespace`) created (pod names with the
    /// `resourceVersion` the API server answered) and deleted.
    pub fn expect(
        &self,
        owner: &str,
        namespace: &str,
        created: &[(String, Option<u64>)],
        deleted: &[String],
    ) {
        for (name, version) in created {
            let key = ("Pod".to_owned(), namespace.to_owned(), name.clone());
            self.expectations.wrote_version(owner, key, *version);
        }
        for name in deleted {
            let key = ("Pod".to_owned(), namespace.to_owned(), name.clone());
            self.expectations.deleted(owner, key);
        }
    }
}

/// Starts every cluster controller: kube-controller-manager's loops on `controllers`, the
/// scheduler on `scheduler` (each client acting as its component's user).
pub fn spawn(
    controllers: &Client,
    scheduler: &Client,
    ca_pem: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = controllers;
    vec![
        tokio::spawn(namespace::run(client.clone(), ca_pem.to_owned())),
        tokio::spawn(scheduler::run(scheduler.clone())),
        tokio::spawn(replicaset::run(client.clone())),
        tokio::spawn(deployment::run(client.clone())),
        tokio::spawn(endpoints::run(client.clone())),
        tokio::spawn(job::run(client.clone())),
    ]
}
