//! Informers: a watch that fills a store and announces changes. Two shapes:
//!
//! - [`shared`]: a store several controllers (or several `watches`) read, with a subscriber
//!   stream of changed objects and the task that drives the watch (kube-rs's
//!   `unstable-runtime-subscribe`): one copy of each object in memory and one watch per kind;
//! - [`watched`]: a store and the stream of touched objects as one, for a controller that
//!   alone reads it — a reconcile woken by a change always finds that change in the store.
//!
//! Both keep `managedFields` out of the store: bookkeeping no controller reads, a third of
//! the stores' memory.

use std::{fmt::Debug, sync::Arc};

use futures::{Stream, StreamExt, future};
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;

/// A shared informer for `K`: its store, the stream of changes for a controller, and the task
/// that drives the watch (the store fills only while it runs).
pub fn shared<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Arc<K>> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    shared_trimmed(api, config, |_| {})
}

/// As [`shared`], each object passed through `trim` before it is stored: the store keeps only
/// the fields its readers use (a pod's metadata and Ready condition, say).
pub fn shared_trimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    mut trim: impl FnMut(&mut K) + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Arc<K>> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store_shared(1024);
    let subscriber = writer.subscribe().expect("a shared store has subscribers");
    let driver = watcher(api, config)
        .default_backoff()
        .modify(move |object| {
            object.meta_mut().managed_fields = None;
            trim(object);
        })
        .reflect_shared(writer)
        .for_each(report::<K>);
    (store, subscriber, driver)
}

/// A store of `K` alone, without a change stream (nothing reconciles on its changes), and the
/// task that drives its watch. With `K = PartialObjectMeta<…>` the watch asks for metadata
/// only (labels, annotations, owners — no spec or status): for a controller that only needs
/// to find objects, at a fraction of the memory.
pub fn store_only<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let driver = watcher(api, config)
        .default_backoff()
        .modify(|object| object.meta_mut().managed_fields = None)
        .reflect(writer)
        .for_each(report::<K>);
    (store, driver)
}

/// Logs a watch that fails, at error level when the API server refused it (a missing RBAC
/// rule: the store would stay empty and the controller stall in silence), naming Kubernetes'
/// message — the verb and resource refused.
fn report<K: Resource<DynamicType = ()>>(
    event: Result<watcher::Event<K>, watcher::Error>,
) -> future::Ready<()> {
    if let Err(err) = event {
        let refused = match &err {
            watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 403,
            watcher::Error::WatchError(s) => s.code == 403,
            _ => false,
        };
        if refused {
            tracing::error!("watching {}: the API server refused: {err}", K::plural(&()));
        } else {
            tracing::debug!("watching {}: {err}", K::plural(&()));
        }
    }
    future::ready(())
}

/// A store of every `K` in the cluster and the stream of changes that fills it, as one.
pub fn watched<K>(
    client: &Client,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .modify(|object| object.meta_mut().managed_fields = None),
    )
    .touched_objects();
    (store, events)
}
