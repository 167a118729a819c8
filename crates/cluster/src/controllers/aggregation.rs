//! kube-controller-manager's clusterrole-aggregation controller: the `rules` of every
//! ClusterRole with an `aggregationRule` are written as the union of the ClusterRoles its
//! selectors pick ([`crate::rbac::aggregate`]), so `kubectl get clusterrole view -o yaml` shows
//! what `view` grants. Authorization does not wait for it: the policy index aggregates the same
//! way at once.
//!
//! It runs whether or not the cluster runs the rest of the runtime (aggregation is part of the
//! API, as RBAC is).

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::ClusterRole as StoredRole;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
    runtime::watcher,
};
use serde_json::{Value, json};

use crate::rbac::{ClusterRole, PolicyRule, aggregate};

/// Watches ClusterRoles and rewrites aggregated rules whenever any ClusterRole changes.
pub async fn run(client: Client) {
    let api: Api<StoredRole> = Api::all(client);
    let mut changes = watcher(api.clone(), watcher::Config::default()).boxed();
    while let Some(event) = changes.next().await {
        match event {
            Ok(watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                if let Err(err) = sync(&api).await {
                    tracing::warn!("clusterrole aggregation: {err}");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::debug!("clusterrole aggregation watch: {err}"),
        }
    }
}

async fn sync(api: &Api<StoredRole>) -> Result<(), kube::Error> {
    let stored = api.list(&ListParams::default()).await?;
    let roles: Vec<(Value, ClusterRole)> = stored
        .items
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .map(|v| {
            let role = ClusterRole::from_json(&v);
            (v, role)
        })
        .collect();
    let parsed: Vec<ClusterRole> = roles.iter().map(|(_, r)| r.clone()).collect();
    for (name, rules) in aggregate(&parsed) {
        let Some((_, role)) = roles.iter().find(|(_, r)| r.name == name) else {
            continue;
        };
        if role.rules == rules {
            continue;
        }
        let rules: Vec<Value> = rules.iter().map(PolicyRule::to_json).collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": rules})),
        )
        .await?;
    }
    Ok(())
}
