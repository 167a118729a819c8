//! The analysis gate both planners call where analysis guards the way on: blue-green's pre-
//! and post-promotion analysis, canary `analysis` steps and background analysis (research
//! §2.8). Pure: [`decide`] is a function of the run this gate follows (the one the status
//! tracks) and the Rollout's runs as observed; the planner side ([`Planner::analysis`]) turns
//! its answer into the plan — a run to create, a pause, an abort.
//!
//! - No run yet (or a retry after an abort): create one, named
//!   `<rollout>-<hash>-<revision>[-<step>|-pre|-post]` (`.1`, `.2` … when taken), and hold.
//! - Pending or Running: hold. Successful: open.
//! - Inconclusive: pause `InconclusiveAnalysisRun`. `promote` (which clears the pause) goes on:
//!   a step completes; pre-, post-promotion and background analysis start a fresh run, as
//!   Argo's `needsNewAnalysisRun` does.
//! - Failed or Error: abort with Argo's message and the run's own (which names the failing
//!   metric and its error, Argo's #1832).
//!
//! Idempotent: a run the status does not track yet (its write was lost with a restart) but
//! that is ours and still running is followed, not created again.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sluice_analysis::assess::phase_name;
use sluice_api::{AnalysisPhase, AnalysisRunSpec, PauseReason, names::event};

use crate::{
    model::{Degraded, Pause, Phase},
    planner::Planner,
};

/// Why a run exists: Argo's `rollout-type` label, with the step of a step run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunKind {
    /// Blue-green, before the active Service switches.
    PrePromotion,
    /// Blue-green, after it switched.
    PostPromotion,
    /// A canary `analysis` step (its index).
    Step(i32),
    /// Canary background analysis.
    Background,
}

impl RunKind {
    /// The `rollout-type` label's value.
    pub fn label(self) -> &'static str {
        use sluice_api::names::label::rollout_type;
        match self {
            Self::PrePromotion => rollout_type::PRE_PROMOTION,
            Self::PostPromotion => rollout_type::POST_PROMOTION,
            Self::Step(_) => rollout_type::STEP,
            Self::Background => rollout_type::BACKGROUND,
        }
    }

    /// The kind a run's `rollout-type` and `step-index` labels name.
    pub fn from_labels(kind: &str, step: Option<&str>) -> Option<Self> {
        use sluice_api::names::label::rollout_type;
        Some(match kind {
            rollout_type::PRE_PROMOTION => Self::PrePromotion,
            rollout_type::POST_PROMOTION => Self::PostPromotion,
            rollout_type::BACKGROUND => Self::Background,
            rollout_type::STEP => Self::Step(step?.parse().ok()?),
            _ => return None,
        })
    }

    /// The end of the run's name (after `<rollout>-<hash>-<revision>`).
    fn infix(self) -> Option<String> {
        match self {
            Self::PrePromotion => Some("pre".into()),
            Self::PostPromotion => Some("post".into()),
            Self::Step(index) => Some(index.to_string()),
            Self::Background => None,
        }
    }

    /// Argo's abort message for a failed run of this kind.
    fn failed(self) -> &'static str {
        match self {
            Self::PrePromotion => "Blue/green pre-promotion analysis phase error/failed",
            Self::PostPromotion => "Blue/green post-promotion analysis phase error/failed",
            Self::Step(_) => "Step-based analysis phase error/failed",
            Self::Background => "Background analysis phase error/failed",
        }
    }
}

/// An AnalysisRun of the Rollout, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// Name.
    pub name: String,
    /// Why it exists.
    pub kind: RunKind,
    /// Its `rollouts-pod-template-hash`.
    pub hash: String,
    /// Its phase (Pending before the analysis controller wrote one).
    pub phase: AnalysisPhase,
    /// Its message.
    pub message: String,
    /// `spec.terminate` is set.
    pub terminate: bool,
    /// When it was created.
    pub created: Option<Timestamp>,
    /// The first metric (not a dry run) that failed or errored.
    pub failed_metric: Option<String>,
}

/// A run the Rollout's status tracks (`status.canary.currentStepAnalysisRunStatus`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// The run's name.
    pub name: String,
    /// Its phase when last seen.
    pub phase: AnalysisPhase,
    /// Its message when last seen.
    pub message: Option<String>,
}

/// The runs the status tracks, one per place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackedRuns {
    /// The current step's.
    pub step: Option<Tracked>,
    /// The background run.
    pub background: Option<Tracked>,
    /// Pre-promotion.
    pub pre: Option<Tracked>,
    /// Post-promotion.
    pub post: Option<Tracked>,
}

impl TrackedRuns {
    fn slot(&mut self, kind: RunKind) -> &mut Option<Tracked> {
        match kind {
            RunKind::PrePromotion => &mut self.pre,
            RunKind::PostPromotion => &mut self.post,
            RunKind::Step(_) => &mut self.step,
            RunKind::Background => &mut self.background,
        }
    }

    /// The run tracked for `kind`.
    pub fn get(&self, kind: RunKind) -> Option<&Tracked> {
        match kind {
            RunKind::PrePromotion => self.pre.as_ref(),
            RunKind::PostPromotion => self.post.as_ref(),
            RunKind::Step(_) => self.step.as_ref(),
            RunKind::Background => self.background.as_ref(),
        }
    }

    /// Tracks `tracked` for `kind`.
    pub fn set(&mut self, kind: RunKind, tracked: Option<Tracked>) {
        *self.slot(kind) = tracked;
    }

    /// The names of the runs tracked.
    pub fn names(&self) -> Vec<&str> {
        [&self.step, &self.background, &self.pre, &self.post]
            .into_iter()
            .flatten()
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// An analysis of the Rollout made ready to run: the run's spec from its templates and
/// arguments, and the labels and annotations its `analysisRunMetadata` (and the Rollout's
/// selector) give it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prepared {
    /// The run's spec.
    pub spec: AnalysisRunSpec,
    /// Labels beyond the controller's own.
    pub labels: BTreeMap<String, String>,
    /// Annotations beyond the revision.
    pub annotations: BTreeMap<String, String>,
}

/// A run to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Its name.
    pub name: String,
    /// Why it exists.
    pub kind: RunKind,
    /// The hash of the ReplicaSet it analyses.
    pub hash: String,
    /// That ReplicaSet's revision.
    pub revision: i64,
    /// The spec and metadata.
    pub prepared: Prepared,
}

/// What a gate says.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// The analysis passed.
    Open,
    /// The run is still going.
    Hold,
    /// Create this run and hold.
    Create(Box<NewRun>),
    /// The run was inconclusive: pause for a human.
    Pause,
    /// The run failed: abort with this message; the failing metric, if known.
    Abort {
        /// Argo's message.
        message: String,
        /// The metric that failed.
        metric: Option<String>,
    },
}

/// What a gate decides from.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    /// Where the gate stands.
    pub kind: RunKind,
    /// The analysis, ready to run.
    pub prepared: &'a Prepared,
    /// The Rollout's name.
    pub rollout: &'a str,
    /// The current ReplicaSet's hash.
    pub hash: &'a str,
    /// The current ReplicaSet's revision.
    pub revision: i64,
    /// The run the status tracks for this place.
    pub tracked: Option<&'a Tracked>,
    /// Every run of the Rollout.
    pub runs: &'a [RunState],
    /// The status holds an `InconclusiveAnalysisRun` pause.
    pub paused_inconclusive: bool,
}

/// A gate's decision: what it says, the run the status tracks from now on, and the event
/// for a run whose phase changed (Argo's `AnalysisRun<Phase>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What the gate says.
    pub gate: Gate,
    /// The run to track.
    pub tracked: Option<Tracked>,
    /// The event, with whether it is a warning.
    pub event: Option<(bool, &'static str, String)>,
    /// A human resumed an inconclusive run (`promote`).
    pub resumed: bool,
}

/// `base`, or `base.N` for the smallest N free among `runs`.
fn free_name(base: &str, runs: &[RunState]) -> String {
    let taken = |name: &str| runs.iter().any(|r| r.name == name);
    if !taken(base) {
        return base.to_owned();
    }
    (1..)
        .map(|n| format!("{base}.{n}"))
        .find(|name| !taken(name))
        .unwrap_or_default()
}

fn create(input: &GateInput<'_>, resumed: bool) -> Decision {
    let mut base = format!("{}-{}-{}", input.rollout, input.hash, input.revision);
    if let Some(infix) = input.kind.infix() {
        base = format!("{base}-{infix}");
    }
    let name = free_name(&base, input.runs);
    Decision {
        tracked: Some(Tracked {
            name: name.clone(),
            phase: AnalysisPhase::Pending,
            message: None,
        }),
        gate: Gate::Create(Box::new(NewRun {
            name,
            kind: input.kind,
            hash: input.hash.to_owned(),
            revision: input.revision,
            prepared: input.prepared.clone(),
        })),
        event: None,
        resumed,
    }
}

/// The gate's decision (see the module docs).
pub fn decide(input: &GateInput<'_>) -> Decision {
    let ours = |r: &&RunState| r.kind == input.kind && r.hash == input.hash;
    let tracked = input
        .tracked
        .and_then(|t| input.runs.iter().filter(ours).find(|r| r.name == t.name));
    let current = tracked.or_else(|| {
        input
            .runs
            .iter()
            .filter(ours)
            .filter(|r| !r.phase.completed() && !r.terminate)
            .max_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)))
    });
    let Some(run) = current else {
        return create(input, false);
    };
    let before = input.tracked.filter(|t| t.name == run.name);
    let resumed = run.phase == AnalysisPhase::Inconclusive
        && before.is_some_and(|t| t.phase == AnalysisPhase::Inconclusive)
        && !input.paused_inconclusive;
    if resumed && !matches!(input.kind, RunKind::Step(_)) {
        return create(input, true);
    }
    let changed = input.tracked.is_none() || before.is_some_and(|t| t.phase != run.phase);
    let event = (changed && run.phase != AnalysisPhase::Pending).then(|| {
        let phase = phase_name(run.phase);
        let previous = before.map_or("NoPreviousStatus", |t| phase_name(t.phase));
        let reason = match run.phase {
            AnalysisPhase::Successful => event::ANALYSIS_RUN_SUCCESSFUL,
            AnalysisPhase::Failed => event::ANALYSIS_RUN_FAILED,
            AnalysisPhase::Error => event::ANALYSIS_RUN_ERROR,
            AnalysisPhase::Inconclusive => event::ANALYSIS_RUN_INCONCLUSIVE,
            AnalysisPhase::Pending | AnalysisPhase::Running => event::ANALYSIS_RUN_RUNNING,
        };
        (
            matches!(run.phase, AnalysisPhase::Failed | AnalysisPhase::Error),
            reason,
            format!(
                "{} Analysis Run '{}' Status New: '{phase}' Previous: '{previous}'",
                input.kind.label(),
                run.name
            ),
        )
    });
    let gate = match run.phase {
        AnalysisPhase::Successful => Gate::Open,
        AnalysisPhase::Pending | AnalysisPhase::Running => Gate::Hold,
        AnalysisPhase::Inconclusive if resumed => Gate::Open,
        AnalysisPhase::Inconclusive => Gate::Pause,
        AnalysisPhase::Failed | AnalysisPhase::Error => {
            let mut message = input.kind.failed().to_owned();
            if !run.message.is_empty() {
                message = format!("{message}: {}", run.message);
            }
            Gate::Abort {
                message,
                metric: run.failed_metric.clone(),
            }
        }
    };
    Decision {
        gate,
        tracked: Some(Tracked {
            name: run.name.clone(),
            phase: run.phase,
            message: Some(run.message.clone()).filter(|m| !m.is_empty()),
        }),
        event,
        resumed,
    }
}

/// How the planner may go on after a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// Past the gate.
    Open,
    /// Waiting for the run: the caller says why in the phase.
    Wait,
    /// Paused or aborted: the phase is set, the caller stops here.
    Stopped,
}

impl Planner<'_> {
    /// The gate for `kind` (`skip`: a fast rollback or `promote --full` passes it, and its run
    /// is no longer tracked — so it is terminated). A Rollout without this analysis passes.
    pub fn analysis(&mut self, kind: RunKind, skip: bool) -> Passage {
        let prepared = self.observed.analysis.prepared(kind);
        let (Some(prepared), false) = (prepared, skip) else {
            self.plan.progress.runs.set(kind, None);
            return Passage::Open;
        };
        let Some(current) = self.observed.replica_set(&self.observed.hash) else {
            return Passage::Wait;
        };
        let input = GateInput {
            kind,
            prepared,
            rollout: &self.observed.analysis.rollout,
            hash: &self.observed.hash,
            revision: current.revision,
            tracked: self.plan.progress.runs.get(kind),
            runs: &self.observed.analysis.runs,
            paused_inconclusive: self
                .observed
                .status
                .paused_since(PauseReason::InconclusiveAnalysisRun)
                .is_some(),
        };
        let decision = decide(&input);
        let revision = current.revision;
        self.plan.progress.runs.set(kind, decision.tracked);
        if let Some((warning, reason, message)) = decision.event {
            self.event(warning, reason, message);
        }
        if decision.resumed {
            // The human's `promote` ended the inconclusive pause: later pauses are the
            // controller's again.
            self.plan.progress.controller_pause = false;
        }
        match decision.gate {
            Gate::Open => Passage::Open,
            Gate::Hold => Passage::Wait,
            Gate::Create(run) => {
                self.plan.actions.push(crate::model::Action::CreateRun(run));
                Passage::Wait
            }
            Gate::Pause => {
                let reason = PauseReason::InconclusiveAnalysisRun;
                if self.plan.progress.paused_since(reason).is_none() {
                    let since = self.now;
                    self.plan.progress.pauses.push(Pause { reason, since });
                    self.event(
                        false,
                        event::ROLLOUT_PAUSED,
                        "Rollout is paused (InconclusiveAnalysisRun)".into(),
                    );
                }
                self.plan.progress.controller_pause = true;
                self.phase(Phase::Paused(reason));
                Passage::Stopped
            }
            Gate::Abort { message, metric } => {
                let progress = &mut self.plan.progress;
                progress.abort = true;
                progress.aborted_at = Some(self.now);
                progress.pauses.clear();
                progress.controller_pause = false;
                let message = format!("Rollout aborted update to revision {revision}: {message}");
                self.event(true, event::ROLLOUT_ABORTED, message.clone());
                self.phase(Phase::Degraded(Degraded::Aborted(message)));
                self.plan.analysis_abort = Some(metric.unwrap_or_default());
                self.plan.requeue = Some(std::time::Duration::ZERO);
                Passage::Stopped
            }
        }
    }
}

#[cfg(test)]
mod tests;
