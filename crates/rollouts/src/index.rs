//! Secondary indexes over the informer stores, so a reconcile and a change event cost the
//! handful of objects they concern, not a scan of every object of the kind: at thousands of
//! Rollouts a scan per reconcile is quadratic work (it was most of the controller's CPU).
//!
//! An index maps a key within a namespace (an owner's uid, a Service's name) to object
//! names. It is filled from the change streams, which announce every object when the watch
//! starts and on every change — but not deletions, so readers drop names the store no longer
//! holds ([`Index::retain`]).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
};

/// Names of objects by `(namespace, key)`.
#[derive(Debug, Default)]
pub struct Index {
    names: Mutex<HashMap<(String, String), BTreeSet<String>>>,
}

impl Index {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), BTreeSet<String>>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `name` in `namespace` belongs under `key`.
    pub fn insert(&self, namespace: &str, key: &str, name: &str) {
        let mut map = self.map();
        let entry = map
            .entry((namespace.to_owned(), key.to_owned()))
            .or_default();
        if !entry.contains(name) {
            entry.insert(name.to_owned());
        }
    }

    /// The names under `key` in `namespace`.
    pub fn names(&self, namespace: &str, key: &str) -> Vec<String> {
        self.map()
            .get(&(namespace.to_owned(), key.to_owned()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Keeps, under `key`, only the names `exists` holds (the others were deleted).
    pub fn retain(&self, namespace: &str, key: &str, exists: impl Fn(&str) -> bool) {
        let mut map = self.map();
        let id = (namespace.to_owned(), key.to_owned());
        if let Some(names) = map.get_mut(&id) {
            names.retain(|name| exists(name));
            if names.is_empty() {
                map.remove(&id);
            }
        }
    }
}

/// The indexes the Rollout controller keeps.
#[derive(Debug, Default)]
pub struct Indexes {
    /// ReplicaSets by their controlling Rollout's uid.
    pub sets_by_owner: Index,
    /// EndpointSlices by their Service's name.
    pub slices_by_service: Index,
    /// Rollouts by the Services they name (recorded by each reconcile).
    pub rollouts_by_service: Index,
    /// AnalysisRuns by their controlling Rollout's uid.
    pub runs_by_owner: Index,
    /// Rollouts by the stable Ingresses their router names (recorded by each reconcile).
    pub rollouts_by_ingress: Index,
    /// Rollouts by the Deployment their `workloadRef` names (recorded by each reconcile).
    pub rollouts_by_workload: Index,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_per_namespace_and_key_until_gone() {
        let index = Index::default();
        index.insert("a", "svc", "r1");
        index.insert("a", "svc", "r2");
        index.insert("b", "svc", "r3");
        assert_eq!(index.names("a", "svc"), ["r1", "r2"]);
        index.retain("a", "svc", |name| name != "r1");
        assert_eq!(index.names("a", "svc"), ["r2"]);
        assert_eq!(index.names("b", "svc"), ["r3"]);
        index.retain("b", "svc", |_| false);
        assert!(index.names("b", "svc").is_empty());
    }
}
