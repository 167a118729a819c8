//! Writes the controller made that its informer stores have not shown it yet. A reconcile
//! that ran on a store older than the controller's own last write would plan from the past:
//! the same event twice ("Initial deploy" on a Rollout whose status already says stable), a
//! pause planned again over a `promote` that came in between. So every write records the
//! `resourceVersion` the API server answered with, and a reconcile waits until the stores
//! hold at least that version of each object it reads (client-go's "expectations").
//!
//! Resource versions are compared as integers, which is what the API servers in use (etcd's
//! revisions, sluice's store) give; a version that does not parse never holds a reconcile up.

use std::{collections::HashMap, sync::Mutex};

use kube::Resource;

/// Which object: kind, namespace, name.
type Key = (String, String, String);

/// The newest version written of each object not yet seen in a store.
#[derive(Debug, Default)]
pub struct Expectations {
    written: Mutex<HashMap<Key, u64>>,
}

fn key<K: Resource<DynamicType = ()>>(object: &K) -> Key {
    let meta = object.meta();
    (
        K::kind(&()).into_owned(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn version<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

impl Expectations {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `written` is what the API server answered a write with.
    pub fn wrote<K: Resource<DynamicType = ()>>(&self, written: &K) {
        if let Some(version) = version(written) {
            let mut map = self.map();
            let entry = map.entry(key(written)).or_default();
            *entry = (*entry).max(version);
        }
    }

    /// Whether `seen` (from a store) is at least as new as the last write of it; forgets the
    /// write once it is.
    pub fn seen<K: Resource<DynamicType = ()>>(&self, seen: &K) -> bool {
        let mut map = self.map();
        let key = key(seen);
        let Some(&written) = map.get(&key) else {
            return true;
        };
        match version(seen) {
            Some(version) if version < written => false,
            _ => {
                map.remove(&key);
                true
            }
        }
    }

    /// Forgets the object `namespace/name` of kind `K` (deleted).
    pub fn forget<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        self.map().remove(&(
            K::kind(&()).into_owned(),
            namespace.to_owned(),
            name.to_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    fn service(version: &str) -> Service {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "a", "namespace": "n",
            "resourceVersion": version}}),
        )
        .unwrap()
    }

    #[test]
    fn a_store_older_than_the_last_write_is_not_seen_yet() {
        let expectations = Expectations::default();
        assert!(expectations.seen(&service("5")), "nothing written");
        expectations.wrote(&service("7"));
        assert!(!expectations.seen(&service("6")));
        assert!(expectations.seen(&service("7")));
        assert!(expectations.seen(&service("6")), "forgotten once seen");
        expectations.wrote(&service("9"));
        assert!(
            expectations.seen(&service("opaque")),
            "unparsable versions never wait"
        );
    }
}
