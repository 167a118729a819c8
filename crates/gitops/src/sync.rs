//! What a sync operation does, as a pure plan over a [`Comparison`]: one task per resource to
//! apply or prune, ordered as gitops-engine orders them (sync wave, then Helm's kind order —
//! Namespaces and CRDs before what lives in them, custom resources last — then name), prunes
//! after applies and in reverse. `ApplyOutOfSyncOnly=true` drops resources already in sync,
//! a selective sync (`--resource`) keeps only the resources named, and a prune without
//! permission (or against a `Prune=false` resource) is reported as skipped.

use serde_json::Value;

use crate::{compare::Comparison, tracking::ResourceKey};

/// Helm's install order (gitops-engine's `kindOrder`); kinds not listed go last.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// The annotation carrying per-resource sync options.
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
/// The annotation carrying a resource's sync wave.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Apply the object (create it when `live` is `None`).
    Apply {
        /// Identity.
        key: ResourceKey,
        /// apiVersion.
        api_version: String,
        /// The object to apply.
        object: Value,
        /// The live object.
        live: Option<Value>,
        /// Its kind is not served yet (its CRD is in this sync).
        kind_unknown: bool,
    },
    /// Delete the object.
    Prune {
        /// Identity.
        key: ResourceKey,
        /// apiVersion.
        api_version: String,
    },
    /// Report that the object requires pruning, and leave it.
    PruneSkipped {
        /// Identity.
        key: ResourceKey,
        /// apiVersion.
        api_version: String,
    },
}

impl Task {
    /// The resource the task is about.
    pub fn key(&self) -> &ResourceKey {
        match self {
            Self::Apply { key, .. } | Self::Prune { key, .. } | Self::PruneSkipped { key, .. } => {
                key
            }
        }
    }
}

/// How the operation asked to sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Delete resources Git dropped.
    pub prune: bool,
    /// `ApplyOutOfSyncOnly=true`.
    pub apply_out_of_sync_only: bool,
    /// Only these resources (`--resource`): (group, kind, name); empty means all.
    pub only: Vec<(String, String, String)>,
}

fn wave(object: Option<&Value>) -> i64 {
    object
        .and_then(|o| o["metadata"]["annotations"][SYNC_WAVE].as_str())
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Whether an object's sync options annotation contains `option`.
pub fn has_option(object: Option<&Value>, option: &str) -> bool {
    object
        .and_then(|o| o["metadata"]["annotations"][SYNC_OPTIONS].as_str())
        .is_some_and(|all| all.split(',').any(|o| o.trim() == option))
}

/// The tasks of a sync, in the order they run.
pub fn plan(comparison: &Comparison, settings: &Settings) -> Vec<Task> {
    let selected = |key: &ResourceKey| {
        settings.only.is_empty()
            || settings
                .only
                .iter()
                .any(|(g, k, n)| *g == key.group && *k == key.kind && *n == key.name)
    };
    let mut applies = Vec::new();
    let mut prunes = Vec::new();
    for resource in &comparison.resources {
        if !selected(&resource.key) {
            continue;
        }
        let key = resource.key.clone();
        let api_version = resource.api_version.clone();
        match &resource.target {
            Some(target) => {
                if settings.apply_out_of_sync_only && !resource.out_of_sync {
                    continue;
                }
                applies.push(Task::Apply {
                    key,
                    api_version,
                    object: target.clone(),
                    live: resource.live.clone(),
                    kind_unknown: resource.kind_unknown,
                });
            }
            None if resource.requires_pruning => {
                let live = resource.live.as_ref();
                let refused = has_option(live, "Prune=false");
                prunes.push(if settings.prune && !refused {
                    Task::Prune { key, api_version }
                } else {
                    Task::PruneSkipped { key, api_version }
                });
            }
            None => {}
        }
    }
    let order = |task: &Task| {
        let object = match task {
            Task::Apply { object, .. } => Some(object),
            _ => None,
        };
        let key = task.key();
        (wave(object), kind_rank(&key.kind), key.name.clone())
    };
    applies.sort_by_key(order);
    prunes.sort_by_key(|t| {
        let key = t.key();
        (std::cmp::Reverse(kind_rank(&key.kind)), key.name.clone())
    });
    applies.extend(prunes);
    applies
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::compare::Resource;

    fn resource(kind: &str, name: &str, target: bool, out_of_sync: bool) -> Resource {
        let object = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        Resource {
            key: ResourceKey {
                group: String::new(),
                kind: kind.into(),
                namespace: "demo".into(),
                name: name.into(),
            },
            api_version: "v1".into(),
            target: target.then(|| object.clone()),
            live: Some(object),
            out_of_sync,
            requires_pruning: !target,
            health: None,
            kind_unknown: false,
        }
    }

    fn names(tasks: &[Task]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| {
                let kind = match t {
                    Task::Apply { .. } => "apply",
                    Task::Prune { .. } => "prune",
                    Task::PruneSkipped { .. } => "skip",
                };
                format!("{kind} {}/{}", t.key().kind, t.key().name)
            })
            .collect()
    }

    #[test]
    fn kind_order_then_name_and_prunes_last() {
        let comparison = Comparison {
            resources: vec![
                resource("Rollout", "r", true, true),
                resource("Service", "b", true, true),
                resource("Service", "a", true, true),
                resource("Namespace", "n", true, true),
                resource("ConfigMap", "gone", false, true),
            ],
            warnings: vec![],
        };
        let with_prune = Settings {
            prune: true,
            ..Settings::default()
        };
        assert_eq!(
            names(&plan(&comparison, &with_prune)),
            [
                "apply Namespace/n",
                "apply Service/a",
                "apply Service/b",
                "apply Rollout/r",
                "prune ConfigMap/gone"
            ]
        );
        let without = plan(&comparison, &Settings::default());
        assert_eq!(names(&without).last().unwrap(), "skip ConfigMap/gone");
    }

    #[test]
    fn out_of_sync_only_selective_and_prune_false() {
        let mut gone = resource("ConfigMap", "keep", false, true);
        gone.live.as_mut().unwrap()["metadata"]["annotations"] =
            json!({SYNC_OPTIONS: "Prune=false"});
        let comparison = Comparison {
            resources: vec![
                resource("Service", "same", true, false),
                resource("Service", "changed", true, true),
                gone,
            ],
            warnings: vec![],
        };
        let settings = Settings {
            prune: true,
            apply_out_of_sync_only: true,
            only: vec![],
        };
        assert_eq!(
            names(&plan(&comparison, &settings)),
            ["apply Service/changed", "skip ConfigMap/keep"]
        );
        let selective = Settings {
            only: vec![(String::new(), "Service".into(), "same".into())],
            ..Settings::default()
        };
        assert_eq!(
            names(&plan(&comparison, &selective)),
            ["apply Service/same"]
        );
    }

    #[test]
    fn waves_come_first() {
        let mut early = resource("Rollout", "early", true, true);
        early.target.as_mut().unwrap()["metadata"]["annotations"] = json!({SYNC_WAVE: "-1"});
        let comparison = Comparison {
            resources: vec![resource("Namespace", "n", true, true), early],
            warnings: vec![],
        };
        assert_eq!(
            names(&plan(&comparison, &Settings::default())),
            ["apply Rollout/early", "apply Namespace/n"]
        );
    }
}
