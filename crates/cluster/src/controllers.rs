//! The cluster's own controllers, as kube-controller-manager runs them, each talking to the API
//! through a kube-rs client like any other client: ReplicaSets, Deployments, Jobs, Endpoints and
//! EndpointSlices, the scheduler of pods the node did not take at once, and each namespace's
//! default ServiceAccount and root CA.
//! (The garbage collector and namespace lifecycle live in [`crate::gc`].)

pub mod deployment;
pub mod endpoints;
pub mod expectations;
pub mod job;
pub mod namespace;
pub mod pods;
pub mod replicaset;
pub mod scheduler;

use std::{fmt::Debug, sync::Arc, time::Duration};

use futures::Stream;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        reflector::Store,
        watcher,
    },
};
use serde::de::DeserializeOwned;

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

pub(crate) fn error_policy<K, C>(_: Arc<K>, err: &ControllerError, _: Arc<C>) -> Action {
    tracing::debug!("controller: {err}");
    Action::requeue(Duration::from_millis(500))
}

/// A store of every `K` and the stream of changes that fills it, as one: a reconcile woken by a
/// change always finds that change in the store.
pub(crate) fn watched<K>(
    client: &Client,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = kube::runtime::reflector::store();
    let events = kube::runtime::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .touched_objects();
    (store, events)
}

/// What controllers of pods (ReplicaSets, Jobs) share: a client, every pod, their
/// expectations and an event recorder.
pub(crate) struct PodOwners {
    pub client: Client,
    pub pods: Store<k8s_openapi::api::core::v1::Pod>,
    pub expectations: expectations::Expectations,
    pub recorder: Recorder,
}

impl PodOwners {
    /// The context and the pod change stream that should trigger the controller.
    pub fn start(
        client: &Client,
        controller: &str,
    ) -> (
        Arc<Self>,
        impl Stream<Item = Result<k8s_openapi::api::core::v1::Pod, watcher::Error>> + Send + 'static,
    ) {
        let (pods, events) = watched(client);
        let context = Self {
            client: client.clone(),
            pods,
            expectations: expectations::Expectations::default(),
            recorder: recorder(client, controller),
        };
        (Arc::new(context), events)
    }
}

pub(crate) fn recorder(client: &Client, controller: &str) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: controller.into(),
            instance: None,
        },
    )
}

pub(crate) async fn record(
    recorder: &Recorder,
    reference: &ObjectReference,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        action: action(reason, &note),
        note: Some(note),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, reference).await {
        tracing::debug!("recording event {reason}: {err}");
    }
}

/// Starts every cluster controller on `client`.
pub fn spawn(client: &Client, ca_pem: &str) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(namespace::run(client.clone(), ca_pem.to_owned())),
        tokio::spawn(scheduler::run(client.clone())),
        tokio::spawn(replicaset::run(client.clone())),
        tokio::spawn(deployment::run(client.clone())),
        tokio::spawn(endpoints::run(client.clone())),
        tokio::spawn(job::run(client.clone())),
    ]
}

/// The event's `action`: its reason and a digest of its message. kube-rs's Recorder folds
/// events into a series by reason and action, not message; with the digest, events with other
/// messages ("Scaled up … to 2" after "… to 1") stay separate, and only repeats fold.
fn action(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}
