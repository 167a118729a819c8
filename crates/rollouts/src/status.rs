//! The Rollout's status after a plan: counts, selectors, phase, conditions and the progress
//! the planner keeps there — written as a merge patch of only the fields that changed since
//! the status the reconcile read, as Argo's `persistRolloutStatus` does. A user's write that
//! raced the reconcile (`promote` clearing the pause, `abort`, `retry`) is not overwritten by
//! a stale copy: fields the plan did not change are not in the patch. Pure.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Map, Value, json};
use sluice_api::{Rollout, int_or_percent, names::label};

use crate::{
    conditions::{self, Facts},
    gate::Tracked,
    model::{Counts, Plan, ReplicaSetState, Targets, WeightStatus},
};

/// What the status is computed from besides the plan.
pub struct Inputs<'a> {
    /// The Rollout as read.
    pub rollout: &'a Rollout,
    /// The current template's hash.
    pub hash: &'a str,
    /// Its ReplicaSets as observed.
    pub states: &'a [ReplicaSetState],
    /// Whether the counts moved since the last status (the Progressing condition is updated).
    pub progressed: bool,
    /// A hash collision was found: `collisionCount` goes up.
    pub collision: bool,
    /// The template changed: a standing abort is lifted.
    pub reset: bool,
    /// Pods that must be available for the Available condition.
    pub min_available: i32,
    /// Now.
    pub now: Timestamp,
    /// `status.workloadObservedGeneration`: the referenced Deployment's generation (unset
    /// without a `workloadRef`).
    pub workload_generation: Option<String>,
}

/// Pods that must be available for the Available condition: every replica for blue-green
/// (the active ReplicaSet's), all but `maxUnavailable` for canary.
pub fn min_available(rollout: &Rollout) -> i32 {
    let replicas = rollout.spec.replicas();
    let canary = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.canary.as_ref());
    match canary {
        Some(canary) => {
            let unavailable = int_or_percent::resolve(&canary.max_unavailable(), replicas, false);
            (replicas - unavailable.unwrap_or(0)).max(0)
        }
        None => replicas,
    }
}

/// The label selector text of `match_labels` plus, if given, the pod-template hash.
fn selector_text(rollout: &Rollout, hash: Option<&str>) -> String {
    rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(hash.map(|h| format!("{}={h}", label::POD_TEMPLATE_HASH)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The whole status `plan` leads to, in the Rollout's JSON shape.
pub fn desired(inputs: &Inputs<'_>, plan: &Plan) -> Value {
    let Inputs {
        rollout,
        hash,
        states,
        ..
    } = inputs;
    let progress = &plan.progress;
    let old = rollout.status.clone().unwrap_or_default();
    let current = states.iter().find(|rs| rs.hash == *hash);
    let active = match &plan.targets {
        Targets::BlueGreen { active, .. } => active
            .as_deref()
            .filter(|h| states.iter().any(|rs| rs.hash == *h)),
        Targets::Canary { .. } => None,
    };
    let counts = Counts::of(states, hash, active);
    let previous: Vec<Value> = serde_json::to_value(&old.conditions)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let facts = Facts {
        phase: &plan.phase,
        paused: rollout.spec.paused() || !progress.pauses.is_empty(),
        completed: progress.stable.as_deref() == Some(*hash),
        available: counts.available >= inputs.min_available,
        replica_set: current.map_or("", |rs| rs.name.as_str()),
        progressed: inputs.progressed,
    };
    let conditions = conditions::conditions(&facts, &previous, inputs.now);
    let collisions = old.collision_count.unwrap_or(0) + i32::from(inputs.collision);
    let pauses: Vec<Value> = progress
        .pauses
        .iter()
        .map(|p| json!({"reason": p.reason, "startTime": Time(p.since)}))
        .collect();
    let mut status = json!({
        "observedGeneration": rollout.metadata.generation.unwrap_or(0).to_string(),
        "currentPodHash": hash,
        "stableRS": progress.stable,
        "abort": match () {
            () if progress.abort => Some(true),
            () if inputs.reset => None,
            () => old.abort,
        },
        "abortedAt": progress.aborted_at.map(Time),
        "controllerPause": progress.controller_pause.then_some(true),
        "promoteFull": progress.promote_full.then_some(true),
        "pauseConditions": (!pauses.is_empty()).then_some(pauses),
        "phase": plan.phase.rollout_phase(),
        "message": plan.phase.message(),
        "replicas": counts.replicas,
        "updatedReplicas": counts.updated,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.available,
        "HPAReplicas": counts.hpa,
        "selector": selector_text(rollout, active),
        "collisionCount": (collisions > 0).then_some(collisions),
        "conditions": conditions,
    });
    if let Some(at) = plan.restarted_at {
        status["restartedAt"] = json!(Time(at));
    }
    status["workloadObservedGeneration"] = json!(inputs.workload_generation);
    let run = |tracked: Option<&Tracked>| {
        tracked.map(|t| json!({"name": t.name, "status": t.phase, "message": t.message}))
    };
    let runs = &progress.runs;
    match &plan.targets {
        Targets::BlueGreen { active, preview } => {
            status["blueGreen"] = json!({
                "activeSelector": active,
                "previewSelector": preview,
                "scaleUpPreviewCheckPoint": progress.scale_up_preview.then_some(true),
                "prePromotionAnalysisRunStatus": run(runs.pre.as_ref()),
                "postPromotionAnalysisRunStatus": run(runs.post.as_ref()),
            });
        }
        Targets::Canary {
            step_hash,
            steps,
            weights,
        } => {
            status["currentStepHash"] = json!(step_hash);
            // Argo always writes the (Go struct) `canary` field.
            status["canary"] = json!({
                "currentStepAnalysisRunStatus": run(runs.step.as_ref()),
                "currentBackgroundAnalysisRunStatus": run(runs.background.as_ref()),
                "weights": weights.as_ref().map(|w| weights_json(rollout, w)),
            });
            if old.canary.is_none()
                && runs.step.is_none()
                && runs.background.is_none()
                && weights.is_none()
            {
                status["canary"] = json!({});
            }
            status["currentStepIndex"] = json!((*steps > 0).then_some(progress.step.unwrap_or(0)));
        }
    }
    status
}

/// `status.canary.weights` in Argo's shape (`TrafficWeights`).
fn weights_json(rollout: &Rollout, weights: &WeightStatus) -> Value {
    let canary = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.canary.as_ref());
    let service = |name: Option<&String>| name.filter(|n| !n.is_empty()).cloned();
    json!({
        "canary": {
            "weight": weights.canary,
            "podTemplateHash": weights.canary_hash,
            "serviceName": service(canary.and_then(|c| c.canary_service.as_ref())),
        },
        "stable": {
            "weight": weights.stable,
            "podTemplateHash": weights.stable_hash,
            "serviceName": service(canary.and_then(|c| c.stable_service.as_ref())),
        },
        "verified": weights.verified,
    })
}

/// The merge patch that takes `old` to `new` over `new`'s keys only (keys `new` does not name
/// are left alone); `None` when nothing changed. Objects recurse, anything else is replaced.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    let Value::Object(new) = new else {
        return (old != new).then(|| new.clone());
    };
    let mut patch = Map::new();
    for (key, want) in new {
        let have = old.get(key).unwrap_or(&Value::Null);
        match want {
            Value::Null if have.is_null() => {}
            Value::Object(_) if have.is_object() => {
                if let Some(inner) = merge_diff(have, want) {
                    patch.insert(key.clone(), inner);
                }
            }
            _ if have != want => {
                patch.insert(key.clone(), want.clone());
            }
            _ => {}
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_patched() {
        let old = json!({"phase": "Paused", "pauseConditions": [{"reason": "BlueGreenPause"}],
            "blueGreen": {"activeSelector": "a", "previewSelector": "b"}, "abort": true});
        // The user cleared pauseConditions after the reconcile read `old`; the plan (from the
        // stale copy) keeps them: they are not in the patch, so the user's change stands.
        let new = json!({"phase": "Paused", "pauseConditions": [{"reason": "BlueGreenPause"}],
            "blueGreen": {"activeSelector": "a", "previewSelector": "c", "scaleUpPreviewCheckPoint": null}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"blueGreen": {"previewSelector": "c"}}))
        );
        assert_eq!(merge_diff(&old, &old), None);
        let cleared = json!({"pauseConditions": null});
        assert_eq!(merge_diff(&old, &cleared), Some(cleared.clone()));
    }
}
