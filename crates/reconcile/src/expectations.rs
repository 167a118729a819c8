//! Writes a controller made that its informer stores have not shown it yet — client-go's
//! "expectations", one design for every controller here. A reconcile that ran on a store
//! older than the controller's own last write would plan from the past: pods created twice,
//! the same event twice, a pause planned again over a `promote` that came in between. So each
//! write is recorded under the object it was made for (its *owner*: a ReplicaSet for the pods
//! it creates, a Rollout for everything its reconcile writes) as the `resourceVersion` the API
//! server answered with, or as "gone" for a deletion; the owner's next reconcile waits until
//! its stores show at least those versions and none of the deleted objects.
//!
//! A store that never catches up (the object was deleted or replaced by someone else meanwhile)
//! must not stall a controller: an owner's expectations lapse after a patience period.
//! Resource versions are compared as integers, which is what the API servers in use (etcd's
//! revisions, sluice's store) give; a version that does not parse never holds a reconcile up.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use kube::Resource;

/// Which object: kind, namespace, name.
pub type Key = (String, String, String);

/// What the store must show of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// At least this version.
    Version(u64),
    /// At least this version, or nothing (an object being deleted, which may go before the
    /// store shows the version).
    VersionOrGone(u64),
    /// Nothing.
    Gone,
}

#[derive(Debug)]
struct Pending {
    objects: HashMap<Key, Expected>,
    since: Instant,
}

/// Expectations per owner.
#[derive(Debug)]
pub struct Expectations {
    owners: Mutex<HashMap<String, Pending>>,
    patience: Duration,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::with_patience(Duration::from_secs(30))
    }
}

/// The key of `object`.
pub fn key<K: Resource<DynamicType = ()>>(object: &K) -> Key {
    let meta = object.meta();
    (
        K::kind(&()).into_owned(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The `resourceVersion` of `object` as an integer, if it is one.
pub fn version<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

impl Expectations {
    /// Expectations that lapse after `patience` without being met.
    pub fn with_patience(patience: Duration) -> Self {
        Self {
            owners: Mutex::new(HashMap::new()),
            patience,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expect(&self, owner: &str, key: Key, expected: Expected) {
        let mut map = self.map();
        let pending = map.entry(owner.to_owned()).or_insert_with(|| Pending {
            objects: HashMap::new(),
            since: Instant::now(),
        });
        pending.since = Instant::now();
        let entry = pending.objects.entry(key).or_insert(expected);
        *entry = match (*entry, expected) {
            (Expected::Version(a), Expected::Version(b)) => Expected::Version(a.max(b)),
            (Expected::Version(a) | Expected::VersionOrGone(a), Expected::VersionOrGone(b)) => {
                Expected::VersionOrGone(a.max(b))
            }
            (_, newer) => newer,
        };
    }

    /// `written` is what the API server answered a write made for `owner` with.
    pub fn wrote<K: Resource<DynamicType = ()>>(&self, owner: &str, written: &K) {
        self.wrote_version(owner, key(written), version(written));
    }

    /// A write made for `owner` left `key` at `version` (an unparsable one is not waited for).
    pub fn wrote_version(&self, owner: &str, key: Key, version: Option<u64>) {
        if let Some(v) = version {
            self.expect(owner, key, Expected::Version(v));
        }
    }

    /// `terminating` is what the API server answered for an object `owner` asked to go
    /// gracefully (an evicted pod): the stores must show that version, or the object gone.
    pub fn terminating<K: Resource<DynamicType = ()>>(&self, owner: &str, terminating: &K) {
        if let Some(v) = version(terminating) {
            self.expect(owner, key(terminating), Expected::VersionOrGone(v));
        }
    }

    /// The object `key` was deleted for `owner`.
    pub fn deleted(&self, owner: &str, key: Key) {
        self.expect(owner, key, Expected::Gone);
    }

    /// Whether the stores show everything written for `owner`: `lookup` gives the version a
    /// store holds of an object (`Some(None)` for a version that does not parse, `None` when
    /// the store has no such object). Met expectations are forgotten; all of them lapse after
    /// the patience period.
    pub fn satisfied(&self, owner: &str, lookup: impl Fn(&Key) -> Option<Option<u64>>) -> bool {
        let mut map = self.map();
        let Some(pending) = map.get_mut(owner) else {
            return true;
        };
        pending.objects.retain(|key, expected| {
            let met = match (*expected, lookup(key)) {
                (Expected::Gone, seen) => seen.is_none(),
                (Expected::Version(_), None) => false,
                (Expected::VersionOrGone(_), None) => true,
                (Expected::Version(_) | Expected::VersionOrGone(_), Some(None)) => true,
                (Expected::Version(want) | Expected::VersionOrGone(want), Some(Some(have))) => {
                    have >= want
                }
            };
            !met
        });
        if pending.objects.is_empty() || pending.since.elapsed() >= self.patience {
            map.remove(owner);
            return true;
        }
        false
    }

    /// Forgets everything expected for `owner` (deleted).
    pub fn forget(&self, owner: &str) {
        self.map().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    fn service(name: &str, version: &str) -> Service {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name, "namespace": "n",
            "resourceVersion": version}}),
        )
        .unwrap()
    }

    #[test]
    fn a_store_older_than_the_last_write_is_not_seen_yet() {
        let e = Expectations::default();
        let store = |v: &'static str| move |_: &Key| Some(v.parse().ok());
        assert!(e.satisfied("r", store("5")), "nothing written");
        e.wrote("r", &service("a", "7"));
        assert!(!e.satisfied("r", store("6")));
        assert!(e.satisfied("other", store("6")), "per owner");
        assert!(e.satisfied("r", store("7")));
        assert!(e.satisfied("r", store("6")), "forgotten once seen");
        e.wrote("r", &service("a", "9"));
        assert!(
            e.satisfied("r", store("opaque")),
            "unparsable versions never wait"
        );
    }

    #[test]
    fn a_terminating_object_is_seen_at_its_version_or_gone() {
        let e = Expectations::default();
        e.terminating("r", &service("a", "7"));
        assert!(!e.satisfied("r", |_| Some(Some(6))), "the store is older");
        assert!(
            e.satisfied("r", |_| None),
            "gone before the store showed it"
        );
        e.terminating("r", &service("a", "7"));
        assert!(e.satisfied("r", |_| Some(Some(7))));
    }

    #[test]
    fn created_objects_must_appear_and_deleted_ones_go() {
        let e = Expectations::default();
        e.wrote("rs", &service("p1", "3"));
        e.deleted("rs", key(&service("p2", "1")));
        let shows = |p1: bool, p2: bool| {
            move |k: &Key| match k.2.as_str() {
                "p1" if p1 => Some(Some(3)),
                "p2" if p2 => Some(Some(1)),
                _ => None,
            }
        };
        assert!(!e.satisfied("rs", shows(false, true)), "p1 not yet seen");
        assert!(!e.satisfied("rs", shows(true, true)), "p2 still there");
        assert!(e.satisfied("rs", shows(true, false)));
    }

    #[test]
    fn expectations_lapse_after_their_patience() {
        let e = Expectations::with_patience(Duration::ZERO);
        e.wrote("r", &service("a", "7"));
        assert!(e.satisfied("r", |_| None));
    }
}
