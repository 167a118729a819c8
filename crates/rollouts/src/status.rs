//! The Rollout's status after a plan: counts, selectors, phase, conditions and the progress
//! the planner keeps there — written as a merge patch of only the fields that changed since
//! the status the reconcile read, as Argo's `persistRolloutStatus` does. A user's write that
//! raced the reconcile (`promote` clearing the pause, `abort`, `retry`) is not overwritten by
//! a stale copy: fields the plan did not change are not in the patch.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Map, Value, json};
use sluice_api::{Rollout, names::label};

use crate::{
    blue_green::{Plan, ReplicaSetState},
    conditions::{self, Facts},
    observe,
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
    /// Now.
    pub now: Timestamp,
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
    let active_hash = plan.selectors.0.as_deref();
    let active = active_hash.and_then(|h| states.iter().find(|rs| rs.hash == h));
    let previous: Vec<Value> = serde_json::to_value(&old.conditions)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let facts = Facts {
        phase: &plan.phase,
        paused: rollout.spec.paused() || progress.paused_since.is_some(),
        completed: progress.stable.as_deref() == Some(*hash),
        available: active.is_some_and(|rs| rs.available >= rollout.spec.replicas()),
        replica_set: current.map_or("", |rs| rs.name.as_str()),
        progressed: inputs.progressed,
    };
    let conditions = conditions::conditions(&facts, &previous, inputs.now);
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(active_hash.map(|h| format!("{}={h}", label::POD_TEMPLATE_HASH)))
        .collect::<Vec<_>>()
        .join(",");
    let [replicas, updated, ready, available] = observe::counts(states, hash, active_hash);
    let collisions = old.collision_count.unwrap_or(0) + i32::from(inputs.collision);
    json!({
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
        "pauseConditions": progress
            .paused_since
            .map(|since| json!([{"reason": "BlueGreenPause", "startTime": Time(since)}])),
        "phase": plan.phase.0,
        "message": plan.phase.1,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "HPAReplicas": active.map_or(0, |rs| rs.replicas),
        "selector": selector,
        "collisionCount": (collisions > 0).then_some(collisions),
        "conditions": conditions,
        "blueGreen": {
            "activeSelector": plan.selectors.0,
            "previewSelector": plan.selectors.1,
            "scaleUpPreviewCheckPoint": progress.scale_up_preview.then_some(true),
        },
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
