//! The Rollout's status conditions, derived from the phase the planner chose — Progressing,
//! Available, Paused, Completed, Healthy and, for a bad spec, InvalidSpec — with Argo's types
//! and reasons (research §1.9), so `kubectl wait --for=condition=Healthy` and tools reading
//! conditions work. A condition keeps its `lastTransitionTime` while its status stays. Pure.

use jiff::Timestamp;
use serde_json::{Value, json};
use sluice_api::names::{condition as kind, reason};

use crate::model::{Degraded, Phase};

/// What the conditions are derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    /// Phase, with its reason.
    pub phase: &'a Phase,
    /// `spec.paused` or a pause condition.
    pub paused: bool,
    /// The stable ReplicaSet is the current one.
    pub completed: bool,
    /// The Rollout has minimum availability.
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

/// The Progressing condition for `phase` (none while the spec is invalid).
fn progressing(phase: &Phase, replica_set: &str) -> Option<(&'static str, &'static str, String)> {
    Some(match phase {
        Phase::Degraded(Degraded::InvalidSpec(_)) => return None,
        Phase::Healthy => (
            "True",
            reason::NEW_REPLICA_SET_AVAILABLE,
            format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
        ),
        Phase::Progressing(_) => (
            "True",
            reason::REPLICA_SET_UPDATED,
            format!("ReplicaSet \"{replica_set}\" is progressing."),
        ),
        Phase::Paused(_) | Phase::ManuallyPaused => (
            "Unknown",
            reason::ROLLOUT_PAUSED,
            "Rollout is paused".to_owned(),
        ),
        Phase::Degraded(Degraded::TimedOut { replica_set }) => (
            "False",
            reason::PROGRESS_DEADLINE_EXCEEDED,
            crate::phase::timed_out_message(replica_set),
        ),
        Phase::Degraded(Degraded::Aborted(message)) => {
            ("False", reason::ROLLOUT_ABORTED, message.clone())
        }
    })
}

/// The conditions for `facts`, keeping transition times from `previous` where unchanged.
pub fn conditions(facts: &Facts<'_>, previous: &[Value], now: Timestamp) -> Vec<Value> {
    let mut next = Vec::new();
    if let Some((status, why, text)) = progressing(facts.phase, facts.replica_set) {
        next.push(condition(kind::PROGRESSING, status, why, &text));
    }
    if let Phase::Degraded(Degraded::InvalidSpec(text)) = facts.phase {
        next.push(condition(
            kind::INVALID_SPEC,
            "True",
            reason::INVALID_SPEC,
            text,
        ));
    }
    let flag = |on: bool| if on { "True" } else { "False" };
    let said = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    next.push(condition(
        kind::AVAILABLE,
        flag(facts.available),
        reason::AVAILABLE,
        said(
            facts.available,
            "Rollout has minimum availability",
            "Rollout does not have minimum availability",
        ),
    ));
    next.push(condition(
        kind::PAUSED,
        flag(facts.paused),
        reason::ROLLOUT_PAUSED,
        said(facts.paused, "Rollout is paused", "Rollout is not paused"),
    ));
    next.push(condition(
        kind::COMPLETED,
        flag(facts.completed),
        reason::ROLLOUT_COMPLETED,
        said(
            facts.completed,
            "Rollout completed update",
            "Rollout not completed",
        ),
    ));
    let healthy = *facts.phase == Phase::Healthy;
    next.push(condition(
        kind::HEALTHY,
        flag(healthy),
        reason::ROLLOUT_HEALTHY,
        said(healthy, "Rollout is healthy", "Rollout is not healthy"),
    ));
    let stamp = json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    for item in &mut next {
        let before = previous.iter().find(|c| c["type"] == item["type"]);
        let same = before.is_some_and(|b| b["status"] == item["status"]);
        item["lastTransitionTime"] = match before {
            Some(b) if same => b["lastTransitionTime"].clone(),
            _ => stamp.clone(),
        };
        let progressed = facts.progressed && item["type"] == kind::PROGRESSING;
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
    use sluice_api::PauseReason;

    fn facts(phase: &Phase) -> Facts<'_> {
        Facts {
            phase,
            paused: matches!(phase, Phase::Paused(_)),
            completed: *phase == Phase::Healthy,
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
        let first = conditions(&facts(&Phase::Healthy), &[], t0);
        assert_eq!(find(&first, "Healthy")["status"], "True");
        assert_eq!(
            find(&first, "Progressing")["reason"],
            "NewReplicaSetAvailable"
        );
        let paused = Phase::Paused(PauseReason::BlueGreenPause);
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
        let aborted = Phase::Degraded(Degraded::Aborted(
            "Rollout aborted update to revision 2".into(),
        ));
        let third = conditions(&facts(&aborted), &second, t1);
        assert_eq!(find(&third, "Progressing")["reason"], "RolloutAborted");
        assert_eq!(
            find(&third, "Progressing")["message"],
            "Rollout aborted update to revision 2"
        );
        let timed_out = Phase::Degraded(Degraded::TimedOut {
            replica_set: "demo-abc".into(),
        });
        let timed = conditions(&facts(&timed_out), &third, t1);
        assert_eq!(
            find(&timed, "Progressing")["reason"],
            "ProgressDeadlineExceeded"
        );
        let invalid = Phase::Degraded(Degraded::InvalidSpec("service \"x\" not found".into()));
        let fourth = conditions(&facts(&invalid), &third, t1);
        assert_eq!(
            find(&fourth, "InvalidSpec")["message"],
            "service \"x\" not found"
        );
        assert!(fourth.iter().all(|c| c["type"] != "Progressing"));
    }
}
