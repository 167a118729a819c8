//! What every strategy's planner reads and decides, strategy-neutral: the Rollout's
//! ReplicaSets and Services as observed, its progress so far (kept in its status), and the plan
//! — actions, events, the phase with its reason, the status to write and when to look again.
//! The per-strategy parts are enums ([`Strategy`], [`Targets`]).

use std::time::Duration;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;
use sluice_api::{BlueGreenStrategy, CanaryStrategy, PauseReason};

use crate::gate::{NewRun, Prepared, RunKind, RunState, TrackedRuns};
pub use crate::phase::{Degraded, Phase};

/// What the controller sees of one ReplicaSet of the Rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetState {
    /// Name.
    pub name: String,
    /// Its `rollouts-pod-template-hash`.
    pub hash: String,
    /// Its revision.
    pub revision: i64,
    /// The revision it had before it was last renumbered (its `revision-history`).
    pub previous_revision: Option<i64>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.replicas`: pods it has now.
    pub actual: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// Its `scale-down-deadline` annotation.
    pub scale_down_deadline: Option<Timestamp>,
    /// The pod metadata injected for its role (its `ephemeral-metadata`).
    pub ephemeral: Option<Value>,
}

/// A Service the Rollout names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// It does not exist.
    Missing,
    /// It exists; the hash its selector names, if any.
    Selects(Option<String>),
}

impl ServiceState {
    /// The hash the Service selects, if it exists and selects one.
    pub fn hash(&self) -> Option<&str> {
        match self {
            Self::Selects(hash) => hash.as_deref(),
            Self::Missing => None,
        }
    }
}

/// A Service the strategy names: the spec field that names it, its name, what it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedService {
    /// The strategy field (`activeService`, `canaryService`, …).
    pub field: &'static str,
    /// The Service's name.
    pub name: String,
    /// What it selects.
    pub state: ServiceState,
}

/// Everything a planner reads.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// The hash of the current template.
    pub hash: String,
    /// The Rollout's ReplicaSets; the one of the current template has `hash`.
    pub replica_sets: Vec<ReplicaSetState>,
    /// The status as last written.
    pub status: Progress,
    /// What the shared validation found wrong with the spec (Argo's InvalidSpec message).
    pub invalid: Option<String>,
    /// The progress deadline.
    pub deadline: Deadline,
    /// `spec.revisionHistoryLimit`: old ReplicaSets kept (at zero replicas) for undo.
    pub history_limit: i32,
    /// `spec.rollbackWindow.revisions`: an older version within this many revisions of the
    /// stable one comes back at once (no steps, no pause, no analysis).
    pub rollback_window: Option<i32>,
    /// A ReplicaSet of another owner holds the current template's name (a hash collision:
    /// `status.collisionCount` goes up and the template gets another hash).
    pub collision: bool,
    /// The strategy and what only it observes.
    pub strategy: Strategy<'a>,
    /// The Rollout's analyses, ready to run, and its AnalysisRuns.
    pub analysis: AnalysisObserved,
    /// `spec.restartAt` and, while a restart is due, the pods.
    pub restart: crate::restart::RestartObserved,
    /// The Deployment `spec.workloadRef` names, when it does and it was found.
    pub workload: Option<crate::workload::WorkloadObserved>,
}

/// The Rollout's analyses made ready to run (templates found, arguments resolved) and the
/// AnalysisRuns it owns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalysisObserved {
    /// The Rollout's name (runs are named after it).
    pub rollout: String,
    /// Its AnalysisRuns.
    pub runs: Vec<RunState>,
    /// `prePromotionAnalysis`.
    pub pre: Option<Prepared>,
    /// `postPromotionAnalysis`.
    pub post: Option<Prepared>,
    /// Canary background `analysis`.
    pub background: Option<Prepared>,
    /// Its `startingStep`.
    pub background_start: i32,
    /// Canary `analysis` steps, by index.
    pub steps: BTreeMap<i32, Prepared>,
    /// `analysis.successfulRunHistoryLimit`.
    pub successful_limit: i32,
    /// `analysis.unsuccessfulRunHistoryLimit`.
    pub unsuccessful_limit: i32,
}

impl AnalysisObserved {
    /// The analysis of `kind`, if the Rollout has one there.
    pub fn prepared(&self, kind: RunKind) -> Option<&Prepared> {
        match kind {
            RunKind::PrePromotion => self.pre.as_ref(),
            RunKind::PostPromotion => self.post.as_ref(),
            RunKind::Background => self.background.as_ref(),
            RunKind::Step(index) => self.steps.get(&index),
        }
    }
}

/// The strategy, with what only it observes.
#[derive(Debug, Clone)]
pub enum Strategy<'a> {
    /// Blue-green.
    BlueGreen(BlueGreenObserved<'a>),
    /// Canary.
    Canary(CanaryObserved<'a>),
}

/// What the blue-green planner observes beyond the common part.
#[derive(Debug, Clone)]
pub struct BlueGreenObserved<'a> {
    /// The strategy.
    pub spec: &'a BlueGreenStrategy,
    /// The active Service.
    pub active: ServiceState,
    /// The preview Service, when the strategy names one.
    pub preview: Option<ServiceState>,
    /// Whether the active Service's endpoints are all pods of the ReplicaSet it selects (the
    /// switch took effect), so the old ReplicaSet may go.
    pub switch_settled: bool,
}

/// What the canary planner observes beyond the common part.
#[derive(Debug, Clone)]
pub struct CanaryObserved<'a> {
    /// The strategy.
    pub spec: &'a CanaryStrategy,
    /// The canary Service, when the strategy names one.
    pub canary_service: Option<ServiceState>,
    /// The stable Service, when the strategy names one.
    pub stable_service: Option<ServiceState>,
    /// The hash of the steps as they are now (`status.currentStepHash` when written).
    pub step_hash: String,
    /// How the canary's traffic is split.
    pub routing: Routing,
}

/// How a canary's traffic is split.
#[derive(Debug, Clone)]
pub enum Routing {
    /// By replica ratio (no `trafficRouting`).
    Replicas,
    /// By a router sluice does not drive yet (named): the Rollout holds before its steps.
    Unsupported(String),
    /// By a router.
    Routed(Box<Routed>),
}

/// A traffic-routed canary as observed.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The router over the objects it owns.
    pub router: crate::router::Observed,
    /// `status.canary.weights` as last written.
    pub weights: Option<WeightStatus>,
    /// Whether the stable Service's endpoints are all pods of the current ReplicaSet (after
    /// the switch at the end of an update).
    pub stable_settled: bool,
}

/// `status.canary.weights`: the split last set on the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightStatus {
    /// The canary's weight.
    pub canary: i32,
    /// The stable's weight.
    pub stable: i32,
    /// The canary's hash.
    pub canary_hash: Option<String>,
    /// The stable's hash.
    pub stable_hash: Option<String>,
    /// Whether the data plane serves it (`None`: the router cannot tell).
    pub verified: Option<bool>,
}

/// `spec.progressDeadlineSeconds` and `spec.progressDeadlineAbort`, with when the Rollout last
/// made progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    /// Seconds without progress before the update counts as failed.
    pub seconds: i32,
    /// Abort the update when the deadline passes.
    pub abort: bool,
    /// When the Rollout last made progress.
    pub last_progress: LastProgress,
}

/// When the Rollout last made progress, as Argo's `RolloutProgressing` and `RolloutTimedOut`
/// read it from the Progressing condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastProgress {
    /// At this time: the condition's `lastUpdateTime`, or now when the counts moved.
    At(Timestamp),
    /// The deadline passed at an earlier reconcile (the condition says
    /// `ProgressDeadlineExceeded`) and nothing progressed since: the Rollout stays timed out
    /// until something does, however recent the condition's `lastUpdateTime`.
    TimedOut,
}

/// The Progressing condition's reason as last written, as far as the planners care: an event
/// is sent once, when it first becomes an abort or a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastReason {
    /// Anything else.
    #[default]
    Other,
    /// `RolloutAborted`.
    Aborted,
    /// `ProgressDeadlineExceeded`.
    TimedOut,
}

/// A pause the controller added (`status.pauseConditions[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Why.
    pub reason: PauseReason,
    /// Since when.
    pub since: Timestamp,
}

/// The controller's progress, as kept in the Rollout's status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// `status.stableRS`.
    pub stable: Option<String>,
    /// `status.abort`.
    pub abort: bool,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// `status.pauseConditions`.
    pub pauses: Vec<Pause>,
    /// `status.controllerPause`: the controller paused (and a user may since have resumed).
    pub controller_pause: bool,
    /// `status.abortedAt`.
    pub aborted_at: Option<Timestamp>,
    /// The Progressing condition's reason as last written.
    pub reason: LastReason,
    /// `status.blueGreen.scaleUpPreviewCheckPoint`.
    pub scale_up_preview: bool,
    /// `status.currentStepIndex` (canary).
    pub step: Option<i32>,
    /// The AnalysisRuns the status tracks.
    pub runs: TrackedRuns,
    /// The Progressing condition's message while it says `RolloutAborted` (an abort by
    /// analysis keeps its reason there).
    pub abort_message: Option<String>,
}

impl Progress {
    /// The start of the pause for `reason`, if the status holds one.
    pub fn paused_since(&self, reason: PauseReason) -> Option<Timestamp> {
        self.pauses
            .iter()
            .find(|p| p.reason == reason)
            .map(|p| p.since)
    }

    /// Removes the pause for `reason`.
    pub fn unpause(&mut self, reason: PauseReason) {
        self.pauses.retain(|p| p.reason != reason);
    }
}

/// Anti-affinity against another version's pods, for a new ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avoid {
    /// The hash whose pods to avoid (the stable ReplicaSet's).
    pub hash: String,
    /// `preferred` with its weight, or `required` (`None`).
    pub preferred: Option<i32>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the ReplicaSet of the current template (at zero replicas) with this revision.
    CreateReplicaSet {
        /// Its revision.
        revision: i64,
        /// The pods its pods avoid (`antiAffinity`).
        avoid: Option<Avoid>,
    },
    /// Delete an old ReplicaSet at zero replicas beyond `revisionHistoryLimit`.
    DeleteReplicaSet {
        /// The ReplicaSet.
        name: String,
    },
    /// Set the pod metadata a ReplicaSet carries for its role (`activeMetadata`,
    /// `previewMetadata`, `canaryMetadata`, `stableMetadata`) on its template and its pods;
    /// `None` removes what was injected.
    EphemeralMetadata {
        /// The ReplicaSet.
        name: String,
        /// Its pods' hash.
        hash: String,
        /// What was injected before (to remove keys no longer wanted).
        before: Option<Value>,
        /// What to inject.
        after: Option<Value>,
    },
    /// Set a ReplicaSet's replicas.
    Scale {
        /// The ReplicaSet.
        name: String,
        /// Its revision (for the event).
        revision: i64,
        /// Replicas it had.
        from: i32,
        /// Replicas.
        replicas: i32,
    },
    /// Set or clear a ReplicaSet's `scale-down-deadline`.
    ScaleDownDeadline {
        /// The ReplicaSet.
        name: String,
        /// The deadline; `None` clears it.
        at: Option<Timestamp>,
    },
    /// Give a ReplicaSet the next revision (its template came back: undo, or re-applied).
    Renumber {
        /// The ReplicaSet.
        name: String,
        /// Its new revision.
        revision: i64,
        /// The revision it had (kept in `revision-history`).
        previous: i64,
    },
    /// Create an AnalysisRun.
    CreateRun(Box<NewRun>),
    /// Terminate an AnalysisRun (`spec.terminate`).
    TerminateRun {
        /// The run.
        name: String,
    },
    /// Delete a finished AnalysisRun beyond the history limits.
    DeleteRun {
        /// The run.
        name: String,
    },
    /// A traffic router's write (the canary Ingress, …).
    Route(crate::router::RouteWrite),
    /// Point a Service's selector at a hash.
    SwitchService {
        /// The Service.
        service: String,
        /// The hash it selected.
        from: Option<String>,
        /// The hash to select.
        to: String,
    },
    /// Evict pods through `pods/eviction` (a restart), in order, until `budget` evictions
    /// succeeded; a pod a PodDisruptionBudget protects (429) is skipped.
    Evict {
        /// The pods, in order.
        candidates: Vec<String>,
        /// How many may go.
        budget: i32,
    },
    /// Scale the Deployment `spec.workloadRef` names (`scaleDown`).
    ScaleWorkload {
        /// The Deployment.
        name: String,
        /// Its replicas.
        replicas: i32,
    },
}

/// An event for the Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Argo's reason (from `sluice_api::names::event`).
    pub reason: &'static str,
    /// Argo's message.
    pub message: String,
}

/// What the strategy's Services should select, and the strategy's own status.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// `status.blueGreen`.
    BlueGreen {
        /// The hash the active Service selects.
        active: Option<String>,
        /// The hash the preview Service selects.
        preview: Option<String>,
    },
    /// `status.canary` and the step pointer.
    Canary {
        /// The hash of the steps (`status.currentStepHash`).
        step_hash: String,
        /// The number of steps (`currentStepIndex` is absent when there are none).
        steps: usize,
        /// `status.canary.weights` (traffic routing only).
        weights: Option<WeightStatus>,
    },
}

/// The plan for one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// The progress to write.
    pub progress: Progress,
    /// Phase, with its reason.
    pub phase: Phase,
    /// What the strategy's Services select, and its status.
    pub targets: Targets,
    /// Events.
    pub events: Vec<Event>,
    /// When to look again (a pause or a scale-down deadline ends).
    pub requeue: Option<Duration>,
    /// A failed analysis aborted the update in this plan: the metric that failed (empty when
    /// unknown), for `analysis_aborts_total`.
    pub analysis_abort: Option<String>,
    /// A restart finished: `status.restartedAt` becomes this.
    pub restarted_at: Option<Timestamp>,
}

/// The counts a Rollout's status reports, as Argo's `calculateBaseStatus` and
/// `syncRolloutStatus{BlueGreen,Canary}` count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// `status.replicas`: pods of every ReplicaSet.
    pub replicas: i32,
    /// `status.updatedReplicas`: pods of the current ReplicaSet.
    pub updated: i32,
    /// `status.readyReplicas`: ready pods (blue-green: of the active ReplicaSet).
    pub ready: i32,
    /// `status.availableReplicas`: available pods (blue-green: of the active ReplicaSet).
    pub available: i32,
    /// `status.HPAReplicas`: pods the scale subresource reports (blue-green: the active
    /// ReplicaSet's).
    pub hpa: i32,
}

impl Counts {
    /// The counts over `sets` for the current `hash`; `active` (blue-green) is the hash the
    /// active Service selects, whose ReplicaSet alone gives ready, available and HPA replicas.
    pub fn of(sets: &[ReplicaSetState], hash: &str, active: Option<&str>) -> Self {
        let current = sets.iter().find(|rs| rs.hash == hash);
        let all = Self {
            replicas: sets.iter().map(|rs| rs.actual).sum(),
            updated: current.map_or(0, |rs| rs.actual),
            ready: sets.iter().map(|rs| rs.ready).sum(),
            available: sets.iter().map(|rs| rs.available).sum(),
            hpa: sets.iter().map(|rs| rs.actual).sum(),
        };
        match active.and_then(|h| sets.iter().find(|rs| rs.hash == h)) {
            Some(active) => Self {
                ready: active.ready,
                available: active.available,
                hpa: active.actual,
                ..all
            },
            None => all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(hash: &str, actual: i32, ready: i32, available: i32) -> ReplicaSetState {
        ReplicaSetState {
            name: hash.into(),
            hash: hash.into(),
            revision: 1,
            previous_revision: None,
            replicas: actual,
            actual,
            available,
            ready,
            scale_down_deadline: None,
            ephemeral: None,
        }
    }

    #[test]
    fn counts_are_argos_for_each_strategy() {
        // Blue-green paused with the preview up: ready, available and HPA replicas are the
        // active ReplicaSet's alone (Argo's syncRolloutStatusBlueGreen), not all four pods'.
        let sets = [rs("blue", 2, 2, 2), rs("yellow", 2, 2, 2)];
        let blue_green = Counts::of(&sets, "yellow", Some("blue"));
        assert_eq!(
            blue_green,
            Counts {
                replicas: 4,
                updated: 2,
                ready: 2,
                available: 2,
                hpa: 2
            }
        );
        // Canary: every ReplicaSet counts.
        let canary = Counts::of(
            &[rs("blue", 1, 1, 1), rs("yellow", 1, 1, 0)],
            "yellow",
            None,
        );
        assert_eq!(
            canary,
            Counts {
                replicas: 2,
                updated: 1,
                ready: 2,
                available: 1,
                hpa: 2
            }
        );
    }
}
