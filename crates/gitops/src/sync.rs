//! What a sync operation does, as a pure plan over a [`Comparison`]: one task per resource to
//! apply or prune and one per hook phase, ordered as gitops-engine orders them (phase, sync
//! wave, then Helm's kind order — Namespaces and CRDs before what lives in them, custom
//! resources last — then name; prunes first within a step, their waves mirrored). `ApplyOutOfSyncOnly=true` drops resources already in sync,
//! a selective sync (`--resource`) keeps only the resources named, and a prune without
//! permission (or against a `Prune=false` resource) is reported as skipped.

use serde_json::Value;

use crate::{
    compare::Comparison,
    hooks::{DeletePolicy, Phase},
    tracking::ResourceKey,
};

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

/// One task of a sync: what to do, in which phase and wave, and for hooks their delete policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncTask {
    /// The phase it runs in.
    pub phase: Phase,
    /// Its wave within the phase.
    pub wave: i64,
    /// `Some` for a hook.
    pub hook: Option<DeletePolicy>,
    /// What to do.
    pub task: Task,
}

impl SyncTask {
    /// Its (phase, wave) step.
    pub fn step(&self) -> (Phase, i64) {
        (self.phase, self.wave)
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
    /// Run no hooks (`--strategy apply`, or a selective sync).
    pub skip_hooks: bool,
    /// `PruneLast=true` for the whole Application.
    pub prune_last: bool,
    /// The revision synced (hook names take its first 7 characters).
    pub revision: String,
    /// When the operation started, Unix seconds (hook names end with it).
    pub started: i64,
}

fn annotated_wave(object: Option<&Value>) -> i64 {
    let annotation = |name: &str| {
        object
            .and_then(|o| o["metadata"]["annotations"][name].as_str())
            .map(|w| w.trim().parse().unwrap_or(0))
    };
    annotation(SYNC_WAVE)
        .or_else(|| annotation(crate::hooks::HELM_WEIGHT))
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

/// The tasks of a sync, in the order they run: phase, then wave, then (prunes first) Helm's
/// kind order, then name. A Namespace or a CRD moves to the step of its first user; prune
/// waves are mirrored (deletion runs in reverse creation order), or all last with
/// `PruneLast=true`.
pub fn plan(comparison: &Comparison, settings: &Settings) -> Vec<SyncTask> {
    let selected = |key: &ResourceKey| {
        settings.only.is_empty()
            || settings
                .only
                .iter()
                .any(|(g, k, n)| *g == key.group && *k == key.kind && *n == key.name)
    };
    let mut tasks = Vec::new();
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
                tasks.push(SyncTask {
                    phase: Phase::Sync,
                    wave: annotated_wave(Some(target)),
                    hook: None,
                    task: Task::Apply {
                        key,
                        api_version,
                        object: target.clone(),
                        live: resource.live.clone(),
                        kind_unknown: resource.kind_unknown,
                    },
                });
            }
            None if resource.requires_pruning => {
                let live = resource.live.as_ref();
                let refused = has_option(live, "Prune=false");
                let last = settings.prune_last || has_option(live, "PruneLast=true");
                let task = if settings.prune && !refused {
                    Task::Prune { key, api_version }
                } else {
                    Task::PruneSkipped { key, api_version }
                };
                prunes.push((annotated_wave(live), last, task));
            }
            None => {}
        }
    }
    if !settings.skip_hooks {
        for hook in &comparison.hooks {
            for phase in &hook.phases {
                let object = crate::hooks::prepared(
                    &hook.target,
                    &settings.revision,
                    *phase,
                    settings.started,
                );
                let mut key = hook.key.clone();
                key.name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                tasks.push(SyncTask {
                    phase: *phase,
                    wave: annotated_wave(Some(&object)),
                    hook: Some(crate::hooks::delete_policy(&object)),
                    task: Task::Apply {
                        key,
                        api_version: hook.api_version.clone(),
                        object,
                        live: None,
                        kind_unknown: false,
                    },
                });
            }
        }
    }
    bubble(&mut tasks);
    // Prune waves mirrored: the distinct waves swapped end for end.
    let mut waves: Vec<i64> = prunes.iter().map(|(w, _, _)| *w).collect();
    waves.sort_unstable();
    waves.dedup();
    let last_wave = tasks
        .iter()
        .filter(|t| t.phase == Phase::Sync)
        .map(|t| t.wave)
        .chain(waves.iter().copied())
        .max()
        .unwrap_or(0);
    for (wave, last, task) in prunes {
        let index = waves.iter().position(|w| *w == wave).unwrap_or(0);
        let mirrored = waves[waves.len() - 1 - index];
        tasks.push(SyncTask {
            phase: Phase::Sync,
            wave: if last { last_wave + 1 } else { mirrored },
            hook: None,
            task,
        });
    }
    tasks.sort_by_key(order);
    tasks
}

fn order(task: &SyncTask) -> (Phase, i64, bool, usize, String) {
    let key = task.task.key();
    let applies = matches!(task.task, Task::Apply { .. });
    let rank = kind_rank(&key.kind);
    // Prunes first within a step, and in reverse kind order.
    let rank = if applies {
        rank
    } else {
        KIND_ORDER.len() - rank
    };
    (task.phase, task.wave, applies, rank, key.name.clone())
}

/// Moves each Namespace and CRD to the step of its first user, when that is earlier.
fn bubble(tasks: &mut [SyncTask]) {
    let defines = |task: &SyncTask| -> Option<(bool, String, String)> {
        let Task::Apply { key, object, .. } = &task.task else {
            return None;
        };
        match (key.group.as_str(), key.kind.as_str(), &task.hook) {
            ("", "Namespace", None) => Some((true, key.name.clone(), String::new())),
            ("apiextensions.k8s.io", "CustomResourceDefinition", None) => Some((
                false,
                object["spec"]["group"].as_str()?.to_owned(),
                object["spec"]["names"]["kind"].as_str()?.to_owned(),
            )),
            _ => None,
        }
    };
    for i in 0..tasks.len() {
        let Some((namespace, a, b)) = defines(&tasks[i]) else {
            continue;
        };
        let first_user = tasks
            .iter()
            .filter(|t| {
                let key = t.task.key();
                if namespace {
                    key.namespace == a
                } else {
                    key.group == a && key.kind == b
                }
            })
            .map(SyncTask::step)
            .min();
        if let Some(step) = first_user
            && step < tasks[i].step()
        {
            (tasks[i].phase, tasks[i].wave) = step;
        }
    }
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

    fn names(tasks: &[SyncTask]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| {
                let kind = match t.task {
                    Task::Apply { .. } if t.hook.is_some() => "hook",
                    Task::Apply { .. } => "apply",
                    Task::Prune { .. } => "prune",
                    Task::PruneSkipped { .. } => "skip",
                };
                let key = t.task.key();
                format!("{kind} {}/{}", key.kind, key.name)
            })
            .collect()
    }

    fn steps(tasks: &[SyncTask]) -> Vec<String> {
        tasks
            .iter()
            .map(|t| {
                let key = t.task.key();
                format!("{} {} {}/{}", t.phase.as_str(), t.wave, key.kind, key.name)
            })
            .collect()
    }

    fn annotated(mut r: Resource, annotations: Value) -> Resource {
        if let Some(target) = r.target.as_mut() {
            target["metadata"]["annotations"] = annotations.clone();
        }
        if r.target.is_none()
            && let Some(live) = r.live.as_mut()
        {
            live["metadata"]["annotations"] = annotations;
        }
        r
    }

    fn hook(kind: &str, name: &str, annotations: Value) -> crate::compare::Hook {
        let mut object = json!({"apiVersion": "batch/v1", "kind": kind,
            "metadata": {"annotations": annotations}});
        if name.ends_with('-') {
            object["metadata"]["generateName"] = json!(name);
        } else {
            object["metadata"]["name"] = json!(name);
        }
        let phases = match crate::hooks::role(&object) {
            crate::hooks::Role::Hook(p) => p,
            _ => panic!("not a hook"),
        };
        crate::compare::Hook {
            key: ResourceKey {
                group: "batch".into(),
                kind: kind.into(),
                namespace: "demo".into(),
                name: if name.ends_with('-') {
                    String::new()
                } else {
                    name.into()
                },
            },
            api_version: "batch/v1".into(),
            target: object,
            phases,
        }
    }

    #[test]
    fn phases_then_waves_then_kinds_with_hooks_in_every_phase() {
        use crate::hooks::HOOK;
        let comparison = Comparison {
            resources: vec![
                annotated(
                    resource("ConfigMap", "early", true, true),
                    json!({SYNC_WAVE: "-1"}),
                ),
                resource("Service", "web", true, true),
                resource("ConfigMap", "web", true, true),
                annotated(
                    resource("Service", "late", true, true),
                    json!({SYNC_WAVE: "1"}),
                ),
            ],
            warnings: vec![],
            hooks: vec![
                hook("Job", "migrate-", json!({HOOK: "PreSync"})),
                hook("Job", "smoke", json!({HOOK: "PostSync"})),
                hook("Pod", "during", json!({HOOK: "Sync", SYNC_WAVE: "1"})),
                hook("Job", "cleanup", json!({HOOK: "SyncFail"})),
            ],
        };
        let settings = Settings {
            revision: "0123456789".into(),
            started: 42,
            ..Settings::default()
        };
        let tasks = plan(&comparison, &settings);
        assert_eq!(
            steps(&tasks),
            [
                "PreSync 0 Job/migrate-0123456-presync-42",
                "Sync -1 ConfigMap/early",
                "Sync 0 ConfigMap/web",
                "Sync 0 Service/web",
                "Sync 1 Service/late",
                "Sync 1 Pod/during",
                "PostSync 0 Job/smoke",
                "SyncFail 0 Job/cleanup",
            ]
        );
        let skipped = plan(
            &comparison,
            &Settings {
                skip_hooks: true,
                ..settings
            },
        );
        assert!(skipped.iter().all(|t| t.hook.is_none()));
    }

    #[test]
    fn namespaces_and_crds_bubble_to_their_first_user() {
        let mut ns = resource("Namespace", "apps", true, true);
        ns.key.namespace.clear();
        let mut user = annotated(
            resource("ConfigMap", "c", true, true),
            json!({SYNC_WAVE: "-2"}),
        );
        user.key.namespace = "apps".into();
        let mut crd = resource(
            "CustomResourceDefinition",
            "widgets.example.com",
            true,
            true,
        );
        crd.key.group = "apiextensions.k8s.io".into();
        crd.target.as_mut().unwrap()["spec"] =
            json!({"group": "example.com", "names": {"kind": "Widget"}});
        let mut widget = annotated(
            resource("Widget", "w", true, true),
            json!({SYNC_WAVE: "-1"}),
        );
        widget.key.group = "example.com".into();
        let comparison = Comparison {
            resources: vec![ns, user, crd, widget],
            warnings: vec![],
            hooks: vec![],
        };
        assert_eq!(
            steps(&plan(&comparison, &Settings::default())),
            [
                "Sync -2 Namespace/apps",
                "Sync -2 ConfigMap/c",
                "Sync -1 CustomResourceDefinition/widgets.example.com",
                "Sync -1 Widget/w",
            ]
        );
    }

    #[test]
    fn prune_waves_are_mirrored_or_last() {
        let gone = |name: &str, wave: &str| {
            annotated(
                resource("ConfigMap", name, false, true),
                json!({SYNC_WAVE: wave}),
            )
        };
        let comparison = Comparison {
            resources: vec![
                annotated(
                    resource("Service", "kept", true, true),
                    json!({SYNC_WAVE: "5"}),
                ),
                gone("a", "-1"),
                gone("b", "0"),
                gone("c", "1"),
            ],
            warnings: vec![],
            hooks: vec![],
        };
        let settings = Settings {
            prune: true,
            ..Settings::default()
        };
        assert_eq!(
            steps(&plan(&comparison, &settings)),
            [
                "Sync -1 ConfigMap/c",
                "Sync 0 ConfigMap/b",
                "Sync 1 ConfigMap/a",
                "Sync 5 Service/kept",
            ]
        );
        let last = Settings {
            prune: true,
            prune_last: true,
            ..Settings::default()
        };
        assert_eq!(
            steps(&plan(&comparison, &last)),
            [
                "Sync 5 Service/kept",
                "Sync 6 ConfigMap/a",
                "Sync 6 ConfigMap/b",
                "Sync 6 ConfigMap/c",
            ]
        );
    }

    #[test]
    fn prunes_first_then_kind_order_then_name() {
        let comparison = Comparison {
            resources: vec![
                resource("Rollout", "r", true, true),
                resource("Service", "b", true, true),
                resource("Service", "a", true, true),
                resource("Namespace", "n", true, true),
                resource("ConfigMap", "gone", false, true),
            ],
            warnings: vec![],
            hooks: vec![],
        };
        let with_prune = Settings {
            prune: true,
            ..Settings::default()
        };
        assert_eq!(
            names(&plan(&comparison, &with_prune)),
            [
                "prune ConfigMap/gone",
                "apply Namespace/n",
                "apply Service/a",
                "apply Service/b",
                "apply Rollout/r",
            ]
        );
        let without = plan(&comparison, &Settings::default());
        assert_eq!(names(&without)[0], "skip ConfigMap/gone");
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
            hooks: vec![],
        };
        let settings = Settings {
            prune: true,
            apply_out_of_sync_only: true,
            ..Settings::default()
        };
        assert_eq!(
            names(&plan(&comparison, &settings)),
            ["skip ConfigMap/keep", "apply Service/changed"]
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
            hooks: vec![],
        };
        assert_eq!(
            names(&plan(&comparison, &Settings::default())),
            ["apply Rollout/early", "apply Namespace/n"]
        );
    }
}
