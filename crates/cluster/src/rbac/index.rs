//! The [`Policy`] of the store's current RBAC objects, kept in memory: each request asks the
//! store when an RBAC kind last changed (one read lock, four map lookups) and reuses the parsed
//! policy while nothing did; a change to any Role, ClusterRole or binding rebuilds it once, at
//! the next request. So a binding applies from the request after its write returns (no
//! informer lag), and a request costs no parsing.

use std::sync::{Arc, RwLock};

use super::{Binding, ClusterRole, Policy, rules_of};
use crate::store::{ResourceKey, Store};

const GROUP: &str = "rbac.authorization.k8s.io";

fn kinds() -> [ResourceKey; 4] {
    [
        ResourceKey::new(GROUP, "roles"),
        ResourceKey::new(GROUP, "clusterroles"),
        ResourceKey::new(GROUP, "rolebindings"),
        ResourceKey::new(GROUP, "clusterrolebindings"),
    ]
}

/// The policy, rebuilt when the store's RBAC objects change.
#[derive(Default)]
pub struct PolicyIndex {
    /// The policy and the store's change stamp it was built at.
    current: RwLock<Option<(u64, Arc<Policy>)>>,
}

impl PolicyIndex {
    /// The policy as of now.
    pub fn policy(&self, store: &Store) -> Arc<Policy> {
        let [roles, cluster_roles, bindings, cluster_bindings] = kinds();
        let stamp = store.changed_at(&[
            roles.clone(),
            cluster_roles.clone(),
            bindings.clone(),
            cluster_bindings.clone(),
        ]);
        if let Some((built, policy)) = &*self.current.read().unwrap_or_else(|e| e.into_inner())
            && *built == stamp
        {
            return policy.clone();
        }
        let values = |kind: &ResourceKey| {
            let (objects, _) = store.list(kind, None);
            objects
                .iter()
                .map(|o| o.value())
                .collect::<Vec<serde_json::Value>>()
        };
        let roles = values(&roles)
            .iter()
            .map(|r| {
                let meta = &r["metadata"];
                let text = |f: &str| meta[f].as_str().unwrap_or_default().to_owned();
                (text("namespace"), text("name"), rules_of(r))
            })
            .collect();
        let cluster_roles: Vec<ClusterRole> = values(&cluster_roles)
            .iter()
            .map(ClusterRole::from_json)
            .collect();
        let all_bindings = values(&bindings)
            .iter()
            .chain(values(&cluster_bindings).iter())
            .map(Binding::from_json)
            .collect();
        let policy = Arc::new(Policy::new(roles, &cluster_roles, all_bindings));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some((stamp, policy.clone()));
        policy
    }
}
