//! What the blue-green planner reads — the Rollout's strategy, its ReplicaSets and Services as
//! observed, its progress so far — and what it decides: actions, events, phase and status.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use sluice_api::{BlueGreenStrategy, RolloutPhase};

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
    /// `status.availableReplicas`.
    pub available: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// Its `scale-down-deadline` annotation.
    pub scale_down_deadline: Option<Timestamp>,
    /// The pod metadata injected while it is active or preview (its `ephemeral-metadata`).
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

/// Everything the planner reads.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The strategy.
    pub strategy: &'a BlueGreenStrategy,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// The hash of the current template.
    pub hash: String,
    /// The Rollout's ReplicaSets; the one of the current template has `hash`.
    pub replica_sets: Vec<ReplicaSetState>,
    /// The active Service.
    pub active: ServiceState,
    /// The preview Service, when the strategy names one.
    pub preview: Option<ServiceState>,
    /// Whether the active Service's endpoints are all pods of the active ReplicaSet (the switch
    /// took effect), so the old ReplicaSet may go.
    pub switch_settled: bool,
    /// The status as last written.
    pub status: Progress,
    /// What the shared validation found wrong with the spec (Argo's InvalidSpec message).
    pub invalid: Option<String>,
    /// The progress deadline.
    pub deadline: Deadline,
    /// `spec.revisionHistoryLimit`: old ReplicaSets kept (at zero replicas) for undo.
    pub history_limit: i32,
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

/// The controller's progress, as kept in the Rollout's status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// `status.stableRS`.
    pub stable: Option<String>,
    /// `status.abort`.
    pub abort: bool,
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// Start of the `BlueGreenPause` pause condition, if present.
    pub paused_since: Option<Timestamp>,
    /// `status.controllerPause`: the controller paused (and a user may since have resumed).
    pub controller_pause: bool,
    /// `status.blueGreen.scaleUpPreviewCheckPoint`.
    pub scale_up_preview: bool,
    /// `status.abortedAt`.
    pub aborted_at: Option<Timestamp>,
    /// The reason of the Progressing condition as last written (an event is sent once, when it
    /// first becomes `RolloutAborted` or `ProgressDeadlineExceeded`).
    pub reason: Option<String>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the ReplicaSet of the current template (at zero replicas) with this revision.
    CreateReplicaSet {
        /// Its revision.
        revision: i64,
        /// The hash of the pods its pods avoid (`antiAffinity`: the stable ReplicaSet's).
        avoid: Option<String>,
    },
    /// Delete an old ReplicaSet at zero replicas beyond `revisionHistoryLimit`.
    DeleteReplicaSet {
        /// The ReplicaSet.
        name: String,
    },
    /// Set the pod metadata a ReplicaSet carries for its role (`activeMetadata` or
    /// `previewMetadata`) on its template and its pods; `None` removes what was injected.
    EphemeralMetadata {
        /// The ReplicaSet.
        name: String,
        /// What was injected before (to remove keys no longer wanted).
        before: Option<Value>,
        /// What to inject.
        after: Option<Value>,
    },
    /// Set a ReplicaSet's replicas.
    Scale {
        /// The ReplicaSet.
        name: String,
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
    /// Point a Service's selector at a hash.
    SwitchService {
        /// The Service.
        service: String,
        /// The hash it selected.
        from: Option<String>,
        /// The hash to select.
        to: String,
    },
}

/// An event for the Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Argo's reason.
    pub reason: &'static str,
    /// Argo's message.
    pub message: String,
}

/// The plan for one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// The progress to write.
    pub progress: Progress,
    /// Phase and message.
    pub phase: (RolloutPhase, String),
    /// What the active and preview Services should select (status.blueGreen).
    pub selectors: (Option<String>, Option<String>),
    /// Events.
    pub events: Vec<Event>,
    /// When to look again (a pause or a scale-down deadline ends).
    pub requeue: Option<Duration>,
}

/// Argo's reason (condition and event) for an update that stopped making progress.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Argo's reason (condition and event) for an aborted update.
pub const ABORTED: &str = "RolloutAborted";
