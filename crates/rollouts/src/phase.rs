//! The phase a planner decides, carrying its reason, so the status message and the
//! conditions are derived from it and never parsed back out of a string (Argo's
//! `CalculateRolloutPhase`, research §1.10).

use sluice_api::{PauseReason, RolloutPhase, names::reason};

/// Why a Rollout is Degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
    /// The spec is invalid: Argo's InvalidSpec message.
    InvalidSpec(String),
    /// The update was aborted: `Rollout aborted update to revision N[: …]`.
    Aborted(String),
    /// The current ReplicaSet did not progress within `progressDeadlineSeconds`.
    TimedOut {
        /// The ReplicaSet that timed out.
        replica_set: String,
    },
}

/// A Rollout's phase with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Fully promoted and available.
    Healthy,
    /// An update is in flight; why it is not done yet (Argo's message).
    Progressing(String),
    /// Paused by the user (`spec.paused`).
    ManuallyPaused,
    /// Paused by the controller, for this reason.
    Paused(PauseReason),
    /// Aborted, invalid, or past its progress deadline.
    Degraded(Degraded),
}

impl Phase {
    /// Progressing with Argo's message.
    pub fn progressing(message: impl Into<String>) -> Self {
        Self::Progressing(message.into())
    }

    /// The phase as the status writes it.
    pub fn rollout_phase(&self) -> RolloutPhase {
        match self {
            Self::Healthy => RolloutPhase::Healthy,
            Self::Progressing(_) => RolloutPhase::Progressing,
            Self::ManuallyPaused | Self::Paused(_) => RolloutPhase::Paused,
            Self::Degraded(_) => RolloutPhase::Degraded,
        }
    }

    /// `status.message`, as Argo writes it.
    pub fn message(&self) -> String {
        match self {
            Self::Healthy => String::new(),
            Self::Progressing(message) => message.clone(),
            Self::ManuallyPaused => "manually paused".into(),
            Self::Paused(reason) => reason.as_str().into(),
            Self::Degraded(Degraded::InvalidSpec(message)) => {
                format!("{}: {message}", reason::INVALID_SPEC)
            }
            Self::Degraded(Degraded::Aborted(message)) => {
                format!("{}: {message}", reason::ROLLOUT_ABORTED)
            }
            Self::Degraded(Degraded::TimedOut { replica_set }) => format!(
                "{}: {}",
                reason::PROGRESS_DEADLINE_EXCEEDED,
                timed_out_message(replica_set)
            ),
        }
    }
}

/// Argo's message for a ReplicaSet past its progress deadline.
pub fn timed_out_message(replica_set: &str) -> String {
    format!("ReplicaSet \"{replica_set}\" has timed out progressing.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_argos() {
        let cases = [
            (Phase::Healthy, RolloutPhase::Healthy, ""),
            (
                Phase::progressing("more replicas need to be updated"),
                RolloutPhase::Progressing,
                "more replicas need to be updated",
            ),
            (
                Phase::ManuallyPaused,
                RolloutPhase::Paused,
                "manually paused",
            ),
            (
                Phase::Paused(PauseReason::CanaryPauseStep),
                RolloutPhase::Paused,
                "CanaryPauseStep",
            ),
            (
                Phase::Degraded(Degraded::InvalidSpec("x".into())),
                RolloutPhase::Degraded,
                "InvalidSpec: x",
            ),
            (
                Phase::Degraded(Degraded::Aborted(
                    "Rollout aborted update to revision 2".into(),
                )),
                RolloutPhase::Degraded,
                "RolloutAborted: Rollout aborted update to revision 2",
            ),
            (
                Phase::Degraded(Degraded::TimedOut {
                    replica_set: "demo-abc".into(),
                }),
                RolloutPhase::Degraded,
                "ProgressDeadlineExceeded: ReplicaSet \"demo-abc\" has timed out progressing.",
            ),
        ];
        for (phase, rollout_phase, message) in cases {
            assert_eq!(phase.rollout_phase(), rollout_phase);
            assert_eq!(phase.message(), message);
        }
    }
}
