//! The Deployment controller: one ReplicaSet per pod template, rolled from old to new by
//! RollingUpdate (within `maxSurge` and `maxUnavailable`) or Recreate, with revision
//! annotations, status, the Available and Progressing conditions and the progress deadline.
//! Observe (the Deployment's ReplicaSets) → [`plan`] → apply.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{apps::v1::DeploymentStatus, core::v1::PodTemplateSpec},
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_api::Preserved;
use sluice_reconcile::hash::{OFFSET, fnv1a, safe_encode};

mod sync;

pub use sync::run;

use super::replicaset::ReplicaSet;
use crate::object::timestamp;

/// The annotation holding a revision on Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label carrying the template hash on ReplicaSets and pods.
pub const HASH_LABEL: &str = "pod-template-hash";

/// A Deployment whose pod template is kept exactly as written.
#[derive(kube::Resource, Clone, Debug, Deserialize, Serialize)]
#[resource(inherit = "k8s_openapi::api::apps::v1::Deployment")]
pub struct Deployment {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: Option<DeploymentSpec>,
    /// Status.
    pub status: Option<DeploymentStatus>,
}

/// The parts of a Deployment's spec the controller reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Desired pods (default 1).
    pub replicas: Option<i32>,
    /// Pod selector.
    pub selector: Option<LabelSelector>,
    /// Pod template, as written.
    pub template: Option<Preserved<PodTemplateSpec>>,
    /// Replacement strategy.
    pub strategy: Option<Strategy>,
    /// Seconds a pod must be ready to count as available.
    pub min_ready_seconds: Option<i32>,
    /// Old ReplicaSets kept (default 10).
    pub revision_history_limit: Option<i32>,
    /// Seconds without progress before Progressing turns False (default 600).
    pub progress_deadline_seconds: Option<i32>,
    /// Paused: no rollout.
    pub paused: Option<bool>,
}

/// `spec.strategy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// `RollingUpdate` (default) or `Recreate`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Rolling update bounds.
    pub rolling_update: Option<RollingUpdate>,
}

/// `spec.strategy.rollingUpdate`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdate {
    /// Pods above `replicas` (default 25%, rounded up).
    pub max_surge: Option<IntOrString>,
    /// Pods below `replicas` (default 25%, rounded down).
    pub max_unavailable: Option<IntOrString>,
}

/// A value of `maxSurge`/`maxUnavailable` against `total` (default `default`).
fn scaled(value: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    let fallback = IntOrString::String(default.to_owned());
    sluice_api::int_or_percent::resolve(value.unwrap_or(&fallback), total, round_up)
        .or_else(|| sluice_api::int_or_percent::resolve(&fallback, total, round_up))
        .unwrap_or(0)
}

/// The template with the hash label removed, for comparing a ReplicaSet with the Deployment.
fn template_without_hash(template: Option<&Preserved<PodTemplateSpec>>) -> Value {
    let mut value = template.map_or(Value::Null, |t| Value::Object(t.as_object().clone()));
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    value
}

/// A short stable hash of a template: FNV-1a over its JSON and the collision count, in
/// Kubernetes' safe alphabet (the primitives of the Rollout's pod-template hash; the input
/// differs, so existing Deployments keep their ReplicaSets' names).
pub fn template_hash(template: &Value, collisions: i32) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let hash = fnv1a(&collisions.to_le_bytes(), fnv1a(&bytes, OFFSET));
    safe_encode(&hash.to_string())
}

/// One change to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create the ReplicaSet for the current template with this name, hash and revision.
    Create {
        /// Name.
        name: String,
        /// Template hash.
        hash: String,
        /// Revision.
        revision: i64,
        /// Initial replicas.
        replicas: i32,
    },
    /// Scale a ReplicaSet.
    Scale {
        /// Name.
        name: String,
        /// From.
        from: i32,
        /// To.
        to: i32,
    },
    /// Delete an old, empty ReplicaSet beyond the history limit.
    Delete(String),
    /// Renumber the current ReplicaSet to the newest revision.
    Revision {
        /// Name.
        name: String,
        /// Revision.
        revision: i64,
    },
}

/// What the controller does next for one Deployment.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Changes, in order.
    pub steps: Vec<Step>,
    /// Status to write, when it changed.
    pub status: Option<Value>,
    /// The Deployment's revision annotation, when it changed.
    pub revision: Option<i64>,
    /// When to look again (the progress deadline).
    pub requeue: Option<Duration>,
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// The pods a ReplicaSet reports it has.
fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// Available pods of a ReplicaSet, never more than it is scaled to: right after a scale-down its
/// status may still count pods that are going away.
fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
        .min(spec_replicas(rs))
}

/// The next step for `deployment`, given the ReplicaSets it controls.
pub fn plan(deployment: &Deployment, owned: &[&ReplicaSet], now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let spec = deployment.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let wanted = template_without_hash(spec.template.as_ref());
    let new = owned.iter().copied().find(|rs| {
        template_without_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == wanted
    });
    let mut old: Vec<&ReplicaSet> = owned
        .iter()
        .copied()
        .filter(|rs| Some(rs.uid()) != new.map(|n| n.uid()))
        .collect();
    old.sort_by_key(|rs| revision_of(rs));
    let max_revision = owned.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
    let paused = spec.paused.unwrap_or(false);
    // Desired replicas per ReplicaSet name, starting from what they have.
    let mut target: BTreeMap<String, i32> = owned
        .iter()
        .map(|rs| (rs.name_any(), spec_replicas(rs)))
        .collect();
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let new_name = match new {
        Some(rs) => {
            if revision_of(rs) < max_revision || revision_of(rs) == 0 {
                let revision = max_revision.max(revision_of(rs))
                    + if revision_of(rs) < max_revision { 1 } else { 0 };
                let revision = revision.max(1);
                plan.steps.push(Step::Revision {
                    name: rs.name_any(),
                    revision,
                });
            }
            Some(rs.name_any())
        }
        None if !paused => {
            let collisions = deployment
                .status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0);
            let hash = template_hash(&wanted, collisions);
            let name = format!("{}-{hash}", deployment.name_any());
            plan.steps.push(Step::Create {
                name: name.clone(),
                hash,
                revision: max_revision + 1,
                replicas: 0,
            });
            target.insert(name.clone(), 0);
            Some(name)
        }
        None => None,
    };
    let new_available = new.map_or(0, available);
    let old_pods: i32 = old.iter().map(|rs| status_replicas(rs)).sum();
    if !paused && let Some(new_name) = &new_name {
        if recreate {
            for rs in &old {
                target.insert(rs.name_any(), 0);
            }
            if old_pods == 0 {
                target.insert(new_name.clone(), replicas);
            }
        } else {
            let rolling = spec
                .strategy
                .as_ref()
                .and_then(|s| s.rolling_update.clone())
                .unwrap_or_default();
            let surge = scaled(rolling.max_surge.as_ref(), "25%", replicas, true);
            let mut unavailable = scaled(rolling.max_unavailable.as_ref(), "25%", replicas, false);
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            // Pods that still exist count against the surge until their ReplicaSet has removed
            // them (its status lags its spec), so the pods never exceed replicas + maxSurge.
            // A departure: Kubernetes' `NewRSNewReplicas` sums only `spec.replicas`, so its
            // pods can briefly exceed the surge while an old ReplicaSet's pods go.
            let total: i32 = owned
                .iter()
                .map(|rs| target[&rs.name_any()].max(status_replicas(rs)))
                .sum();
            let current_new = target[new_name];
            if current_new < replicas {
                let room = (replicas + surge - total).max(0);
                target.insert(new_name.clone(), (current_new + room).min(replicas));
            } else if current_new > replicas {
                target.insert(new_name.clone(), replicas);
            }
            // Scale old ReplicaSets down as far as availability allows.
            let min_available = replicas - unavailable;
            let new_target = target[new_name];
            let new_unavailable = (new.map_or(0, spec_replicas) - new_available).max(0);
            let all_pods: i32 = owned.iter().map(|rs| spec_replicas(rs)).sum::<i32>();
            let mut cleanup = (all_pods - min_available - new_unavailable).max(0);
            for rs in &old {
                let unhealthy = (spec_replicas(rs) - available(rs)).max(0);
                let cut = unhealthy.min(cleanup);
                if cut > 0 {
                    *target.get_mut(&rs.name_any()).expect("old set") -= cut;
                    cleanup -= cut;
                }
            }
            let available_all: i32 = owned.iter().map(|rs| available(rs)).sum();
            let mut scale_down = (available_all - min_available).max(0);
            for rs in &old {
                let current = target[&rs.name_any()];
                let cut = current.min(scale_down);
                if cut > 0 {
                    target.insert(rs.name_any(), current - cut);
                    scale_down -= cut;
                }
            }
            let _ = new_target;
        }
    }
    for rs in owned {
        let to = target[&rs.name_any()];
        if to != spec_replicas(rs) {
            plan.steps.push(Step::Scale {
                name: rs.name_any(),
                from: spec_replicas(rs),
                to,
            });
        }
    }
    if let Some(Step::Create { name, .. }) = plan.steps.first() {
        let to = target[name];
        if let Some(Step::Create { replicas, .. }) = plan.steps.first_mut() {
            *replicas = to;
        }
    }
    // History: delete the oldest empty ReplicaSets beyond the limit.
    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let empty_old: Vec<&&ReplicaSet> = old
        .iter()
        .filter(|rs| {
            target[&rs.name_any()] == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
        })
        .collect();
    if empty_old.len() > limit {
        for rs in &empty_old[..empty_old.len() - limit] {
            plan.steps.push(Step::Delete(rs.name_any()));
        }
    }
    let revision = match new {
        Some(rs) => plan
            .steps
            .iter()
            .find_map(|s| match s {
                Step::Revision { revision, .. } => Some(*revision),
                _ => None,
            })
            .unwrap_or_else(|| revision_of(rs)),
        None => max_revision + 1,
    };
    if deployment.annotations().get(REVISION).map(String::as_str)
        != Some(revision.to_string().as_str())
        && new_name.is_some()
    {
        plan.revision = Some(revision);
    }
    // Status.
    let count = |f: &dyn Fn(&ReplicaSet) -> i32| owned.iter().map(|rs| f(rs)).sum::<i32>();
    let status_replicas = count(&|rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let ready = count(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available_all = count(&available);
    let updated = new.map_or(0, |rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.clone())
        .unwrap_or_default();
    let unavailable_allowed = if recreate {
        0
    } else {
        scaled(rolling.max_unavailable.as_ref(), "25%", replicas, false)
    };
    let complete = new.is_some()
        && updated == replicas
        && status_replicas == replicas
        && available_all >= replicas
        && new.is_some_and(|rs| spec_replicas(rs) == replicas && available(rs) >= replicas);
    let previous = deployment.status.clone().unwrap_or_default();
    let old_condition = |type_: &str| {
        previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .cloned()
    };
    let progressed = !plan.steps.is_empty()
        || previous.updated_replicas.unwrap_or(0) != updated
        || previous.available_replicas.unwrap_or(0) != available_all
        || previous.ready_replicas.unwrap_or(0) != ready;
    let deadline = i64::from(spec.progress_deadline_seconds.unwrap_or(600));
    let progressing = old_condition("Progressing");
    let last_progress = progressing
        .as_ref()
        .and_then(|c| c.last_update_time.as_ref().map(|t| t.0))
        .unwrap_or(now);
    let (p_status, p_reason, p_message) = if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                new_name.clone().unwrap_or_default()
            ),
        )
    } else if !progressed && now >= last_progress + SignedDuration::from_secs(deadline) {
        (
            "False",
            "ProgressDeadlineExceeded",
            format!(
                "ReplicaSet \"{}\" has timed out progressing.",
                new_name.clone().unwrap_or_default()
            ),
        )
    } else if matches!(plan.steps.first(), Some(Step::Create { .. })) {
        (
            "True",
            "NewReplicaSetCreated",
            format!(
                "Created new replica set \"{}\"",
                new_name.clone().unwrap_or_default()
            ),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!(
                "ReplicaSet \"{}\" is progressing.",
                new_name.clone().unwrap_or_default()
            ),
        )
    };
    let progress_update = if progressed || complete || progressing.is_none() {
        now
    } else {
        last_progress
    };
    let condition =
        |type_: &str, status: &str, reason: &str, message: &str, updated_at: Timestamp| {
            let transition = old_condition(type_)
                .filter(|c| c.status == status)
                .and_then(|c| c.last_transition_time.map(|t| timestamp(t.0)))
                .unwrap_or_else(|| timestamp(now));
            let last_update = old_condition(type_)
                .filter(|c| {
                    c.status == status && c.reason.as_deref() == Some(reason) && updated_at != now
                })
                .and_then(|c| c.last_update_time.map(|t| timestamp(t.0)))
                .unwrap_or_else(|| timestamp(updated_at));
            json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastUpdateTime": last_update, "lastTransitionTime": transition})
        };
    let min_available = replicas - unavailable_allowed;
    let is_available = available_all >= min_available;
    let available_condition = condition(
        "Available",
        if is_available { "True" } else { "False" },
        if is_available {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        if is_available {
            "Deployment has minimum availability."
        } else {
            "Deployment does not have minimum availability."
        },
        old_condition("Available")
            .filter(|c| c.status == if is_available { "True" } else { "False" })
            .and_then(|c| c.last_update_time.map(|t| t.0))
            .unwrap_or(now),
    );
    let progressing_condition = condition(
        "Progressing",
        p_status,
        p_reason,
        &p_message,
        progress_update,
    );
    let status = json!({
        "observedGeneration": deployment.metadata.generation.unwrap_or(0),
        "replicas": status_replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available_all,
        "unavailableReplicas": (replicas - available_all).max(0),
        "conditions": [available_condition, progressing_condition],
    });
    let current: Value = serde_json::to_value(&previous).unwrap_or(Value::Null);
    let comparable = |v: &Value| {
        let mut v = v.clone();
        if let Some(conditions) = v["conditions"].as_array_mut() {
            for c in conditions {
                if let Some(c) = c.as_object_mut() {
                    c.remove("lastUpdateTime");
                    c.remove("lastTransitionTime");
                }
            }
        }
        for field in [
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "unavailableReplicas",
            "replicas",
            "observedGeneration",
        ] {
            if v[field].is_null() {
                v[field] = json!(0);
            }
        }
        v
    };
    if comparable(&status) != comparable(&current) || (progressed && !complete) {
        plan.status = Some(status);
    }
    if !complete && p_status == "True" {
        let remaining = (last_progress + SignedDuration::from_secs(deadline)).duration_since(now);
        plan.requeue =
            Some(Duration::try_from(remaining).unwrap_or_default() + Duration::from_millis(100));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "IMAGE"}]}}"#;

    fn template(image: &str) -> Value {
        serde_json::from_str(&TEMPLATE.replace("IMAGE", image)).unwrap()
    }

    fn replica_set(
        name: &str,
        image: &str,
        revision: i32,
        spec: i32,
        status: [i32; 2],
    ) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": name,
                "annotations": {REVISION: revision.to_string()}},
            "spec": {"replicas": spec, "selector": {"matchLabels": {"app": "web"}},
                "template": template(image)},
            "status": {"replicas": status[0], "availableReplicas": status[1]},
        }))
        .unwrap()
    }

    #[test]
    fn pods_a_scaled_down_set_still_has_count_against_the_surge() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 4, "template": template("nginx:1.26"),
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
        }))
        .unwrap();
        let now: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let scales = |plan: &Plan| -> Vec<(String, i32)> {
            plan.steps
                .iter()
                .filter_map(|step| match step {
                    Step::Scale { name, to, .. } => Some((name.clone(), *to)),
                    _ => None,
                })
                .collect()
        };
        // The old set was scaled to 3 but still has its 4 pods: the new one waits at 1.
        let old = replica_set("web-old", "nginx:1.25", 1, 3, [4, 4]);
        let new = replica_set("web-new", "nginx:1.26", 2, 1, [1, 0]);
        assert_eq!(scales(&plan(&deployment, &[&old, &new], now)), vec![]);
        // Once the old set has let its pod go, the new one grows into the room.
        let old = replica_set("web-old", "nginx:1.25", 1, 3, [3, 3]);
        assert_eq!(
            scales(&plan(&deployment, &[&old, &new], now)),
            vec![("web-new".to_owned(), 2)]
        );
    }
}
