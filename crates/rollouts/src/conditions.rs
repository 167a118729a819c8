//! The Rollout's status conditions, derived from the phase the planner chose — Progressing,
//! Available, Paused, Completed, Healthy and, for a bad spec, InvalidSpec — with Argo's types
//! and reasons (research §1.9), so `kubectl wait --for=condition=Healthy` and tools reading
//! conditions work. A condition keeps its `lastTransitionTime` while its status stays. Pure.

use jiff::Timestamp;
use serde_json::{Value, json};
use sluice_api::RolloutPhase;

use crate::blue_green::{ABORTED, TIMED_OUT};

/// What the conditions are derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    /// Phase and message.
    pub phase: &'a (RolloutPhase, String),
    /// `spec.paused` or a pause condition.
    pub paused: bool,
    /// The stable ReplicaSet is the current one.
    pub completed: bool,
    /// The active ReplicaSet has all its pods available.
    pub available: bool,
    /// The current ReplicaSet's name.
    pub replica_set: &'a str,
    /// The Rollout made progress since the last status: Progressing's `lastUpdateTime` moves
    /// (the progress deadline counts from it).
    pub progressed: bool,
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message})
}

/// The conditions for `facts`, keeping transition times from `previous` where unchanged.
pub fn conditions(facts: &Facts<'_>, previous: &[Value], now: Timestamp) -> Vec<Value> {
    let (phase, message) = facts.phase;
    let mut next = Vec::new();
    let invalid = message.strip_prefix("InvalidSpec: ");
    let progressing = match (phase, invalid) {
        (_, Some(_)) => None,
        (RolloutPhase::Healthy, _) => Some((
            "True",
            "NewReplicaSetAvailable",
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                facts.replica_set
            ),
        )),
        (RolloutPhase::Progressing, _) => Some((
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{}\" is progressing.", facts.replica_set),
        )),
        (RolloutPhase::Paused, _) => {
            Some(("Unknown", "RolloutPaused", "Rollout is paused".to_owned()))
        }
        (RolloutPhase::Degraded, _) => match message.split_once(": ") {
            Some((TIMED_OUT, text)) => Some(("False", TIMED_OUT, text.to_owned())),
            Some((_, text)) => Some(("False", ABORTED, text.to_owned())),
            None => Some(("False", ABORTED, message.clone())),
        },
    };
    if let Some((status, reason, text)) = progressing {
        next.push(condition("Progressing", status, reason, &text));
    }
    if let Some(text) = invalid {
        next.push(condition("InvalidSpec", "True", "InvalidSpec", text));
    }
    let flag = |on: bool| if on { "True" } else { "False" };
    next.push(condition(
        "Available",
        flag(facts.available),
        "AvailableReason",
        if facts.available {
            "Rollout has minimum availability"
        } else {
            "Rollout does not have minimum availability"
        },
    ));
    next.push(condition(
        "Paused",
        flag(facts.paused),
        "RolloutPaused",
        if facts.paused {
            "Rollout is paused"
        } else {
            "Rollout is not paused"
        },
    ));
    next.push(condition(
        "Completed",
        flag(facts.completed),
        "RolloutCompleted",
        if facts.completed {
            "Rollout completed update"
        } else {
            "Rollout not completed"
        },
    ));
    let healthy = *phase == RolloutPhase::Healthy;
    next.push(condition(
        "Healthy",
        flag(healthy),
        "RolloutHealthy",
        if healthy {
            "Rollout is healthy"
        } else {
            "Rollout is not healthy"
        },
    ));
    let stamp = json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    for item in &mut next {
        let before = previous.iter().find(|c| c["type"] == item["type"]);
        let same = before.is_some_and(|b| b["status"] == item["status"]);
        item["lastTransitionTime"] = match before {
            Some(b) if same => b["lastTransitionTime"].clone(),
            _ => stamp.clone(),
        };
        let progressed = facts.progressed && item["type"] == "Progressing";
        let unchanged = before.is_some_and(|b| {
            same && b["reason"] == item["reason"] && b["message"] == item["message"]
        }) && !progressed;
        item["lastUpdateTime"] = match before {
            Some(b) if unchanged => b["lastUpdateTime"].clone(),
            _ => stamp.clone(),
        };
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(phase: &(RolloutPhase, String)) -> Facts<'_> {
        Facts {
            phase,
            paused: phase.0 == RolloutPhase::Paused,
            completed: phase.0 == RolloutPhase::Healthy,
            available: true,
            replica_set: "demo-abc",
            progressed: false,
        }
    }

    fn find<'a>(conditions: &'a [Value], type_: &str) -> &'a Value {
        conditions.iter().find(|c| c["type"] == type_).unwrap()
    }

    #[test]
    fn conditions_follow_the_phase_and_keep_their_transition_times() {
        let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-01T10:05:00Z".parse().unwrap();
        let healthy = (RolloutPhase::Healthy, String::new());
        let first = conditions(&facts(&healthy), &[], t0);
        assert_eq!(find(&first, "Healthy")["status"], "True");
        assert_eq!(
            find(&first, "Progressing")["reason"],
            "NewReplicaSetAvailable"
        );
        let paused = (RolloutPhase::Paused, "BlueGreenPause".to_owned());
        let second = conditions(&facts(&paused), &first, t1);
        assert_eq!(find(&second, "Paused")["status"], "True");
        assert_eq!(
            find(&second, "Paused")["lastTransitionTime"],
            "2026-11-01T10:05:00Z"
        );
        assert_eq!(
            find(&second, "Available")["lastTransitionTime"],
            "2026-11-01T10:00:00Z",
            "unchanged"
        );
        assert_eq!(find(&second, "Progressing")["status"], "Unknown");
        let aborted = (
            RolloutPhase::Degraded,
            "RolloutAborted: Rollout aborted update to revision 2".to_owned(),
        );
        let third = conditions(&facts(&aborted), &second, t1);
        assert_eq!(find(&third, "Progressing")["reason"], "RolloutAborted");
        assert_eq!(
            find(&third, "Progressing")["message"],
            "Rollout aborted update to revision 2"
        );
        let invalid = (
            RolloutPhase::Degraded,
            "InvalidSpec: service \"x\" not found".to_owned(),
        );
        let fourth = conditions(&facts(&invalid), &third, t1);
        assert_eq!(
            find(&fourth, "InvalidSpec")["message"],
            "service \"x\" not found"
        );
        assert!(fourth.iter().all(|c| c["type"] != "Progressing"));
    }
}
