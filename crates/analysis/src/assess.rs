//! Judging measurements, as Argo's `runMeasurements` bookkeeping, `assessMetricStatus` and
//! `assessRunStatus` do: a finished measurement moves its metric's counters; a metric is
//! Failed when `failed > failureLimit` (unless the limit is -1), Inconclusive when
//! `inconclusive > inconclusiveLimit`, Error when `consecutiveError > consecutiveErrorLimit`
//! (checked in that order, the later winning), Successful once `consecutiveSuccessLimit`
//! successes come in a row or the count is reached (then Inconclusive or Failed when a
//! consecutive-success limit was set and not met), and Successful when the run terminates. The
//! run is the worst of its non-dry-run metrics (Successful < Running < Pending < Inconclusive <
//! Error < Failed) once all are complete, or at once when it terminates — which it does when
//! asked (`spec.terminate`) or when any non-dry-run metric is Failed, Error or Inconclusive.

use sluice_api::{AnalysisPhase, Measurement, Metric, MetricResult, RunSummary};

use crate::prepare::MetricExt;

/// `phase` as Argo writes it.
pub fn phase_name(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Pending => "Pending",
        AnalysisPhase::Running => "Running",
        AnalysisPhase::Successful => "Successful",
        AnalysisPhase::Failed => "Failed",
        AnalysisPhase::Error => "Error",
        AnalysisPhase::Inconclusive => "Inconclusive",
    }
}

/// Rank for "worst": Argo's `analysisStatusOrder`.
fn rank(phase: AnalysisPhase) -> u8 {
    match phase {
        AnalysisPhase::Successful => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Pending => 2,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Failed => 5,
    }
}

/// An empty result for a metric's first measurement.
pub fn new_result(name: &str, dry_run: bool) -> MetricResult {
    MetricResult {
        name: name.to_owned(),
        phase: AnalysisPhase::Running,
        measurements: None,
        message: None,
        count: None,
        successful: None,
        failed: None,
        inconclusive: None,
        error: None,
        consecutive_error: None,
        consecutive_success: None,
        dry_run: dry_run.then_some(true),
        metadata: None,
    }
}

fn bump(counter: &mut Option<i32>) {
    *counter = Some(counter.unwrap_or(0) + 1);
}

/// Records `measurement` in `result`: appended when `new`, else it replaces the in-flight last
/// one; a finished one moves the counters as Argo's do (an Error does not count towards
/// `count`).
pub fn record(result: &mut MetricResult, measurement: Measurement, new: bool) {
    if measurement.phase.completed() {
        match measurement.phase {
            AnalysisPhase::Successful => {
                bump(&mut result.successful);
                bump(&mut result.count);
                result.consecutive_error = Some(0);
                bump(&mut result.consecutive_success);
            }
            AnalysisPhase::Failed | AnalysisPhase::Inconclusive => {
                if measurement.phase == AnalysisPhase::Failed {
                    bump(&mut result.failed);
                } else {
                    bump(&mut result.inconclusive);
                }
                bump(&mut result.count);
                result.consecutive_error = Some(0);
                result.consecutive_success = Some(0);
            }
            AnalysisPhase::Error => {
                bump(&mut result.error);
                bump(&mut result.consecutive_error);
                result.consecutive_success = Some(0);
            }
            AnalysisPhase::Pending | AnalysisPhase::Running => {}
        }
    }
    let measurements = result.measurements.get_or_insert_with(Vec::new);
    match measurements.last_mut() {
        Some(last) if !new => *last = measurement,
        _ => measurements.push(measurement),
    }
}

/// The limit a metric broke, if any: Failed, Inconclusive or Error with Argo's reason
/// (`failed (2) > failureLimit (1)`).
pub fn broken_limit(metric: &Metric, result: &MetricResult) -> Option<(AnalysisPhase, String)> {
    let mut broken = None;
    let failure_limit = metric.failure_limit_value();
    let failed = result.failed.unwrap_or(0);
    if failure_limit >= 0 && failed > failure_limit {
        broken = Some((
            AnalysisPhase::Failed,
            format!("failed ({failed}) > failureLimit ({failure_limit})"),
        ));
    }
    let inconclusive_limit = metric.inconclusive_limit_value();
    let inconclusive = result.inconclusive.unwrap_or(0);
    if inconclusive > inconclusive_limit {
        broken = Some((
            AnalysisPhase::Inconclusive,
            format!("inconclusive ({inconclusive}) > inconclusiveLimit ({inconclusive_limit})"),
        ));
    }
    let error_limit = metric.consecutive_error_limit_value();
    let errors = result.consecutive_error.unwrap_or(0);
    if errors > error_limit {
        broken = Some((
            AnalysisPhase::Error,
            format!("consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit})"),
        ));
    }
    broken
}

/// A metric's phase from its result (Argo's `assessMetricStatus`).
pub fn metric_phase(metric: &Metric, result: &MetricResult, terminating: bool) -> AnalysisPhase {
    if result.phase.completed() {
        return result.phase;
    }
    let Some(last) = result.measurements.as_ref().and_then(|m| m.last()) else {
        return if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Pending
        };
    };
    if !last.phase.completed() {
        return AnalysisPhase::Running;
    }
    if let Some((phase, _)) = broken_limit(metric, result) {
        return phase;
    }
    let success_limit = metric.consecutive_success_limit_value();
    if success_limit > 0 && result.consecutive_success.unwrap_or(0) >= success_limit {
        return AnalysisPhase::Successful;
    }
    if let Some(count) = metric.effective_count()
        && result.count.unwrap_or(0) >= count
    {
        let failure_applies = metric.failure_limit_value() >= 0;
        return match (failure_applies, success_limit > 0) {
            (true, true) => AnalysisPhase::Inconclusive,
            (false, true) => AnalysisPhase::Failed,
            _ => AnalysisPhase::Successful,
        };
    }
    if terminating {
        AnalysisPhase::Successful
    } else {
        AnalysisPhase::Running
    }
}

/// Whether the run terminates: asked to, or a non-dry-run metric is Failed, Error or
/// Inconclusive (Argo's `IsTerminating`).
pub fn terminating(terminate: bool, results: &[MetricResult]) -> bool {
    terminate
        || results.iter().any(|r| {
            !r.dry_run.unwrap_or(false)
                && matches!(
                    r.phase,
                    AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                )
        })
}

/// A metric whose phase changed to a completed one: its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricCompleted {
    /// The metric.
    pub name: String,
    /// Its new phase.
    pub phase: AnalysisPhase,
}

/// The run's assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAssessment {
    /// The run's phase.
    pub phase: AnalysisPhase,
    /// Why (empty while Running).
    pub message: String,
    /// Counts over the metrics that count.
    pub run_summary: RunSummary,
    /// Counts over the dry-run metrics.
    pub dry_run_summary: RunSummary,
    /// Metrics that completed in this assessment.
    pub completed: Vec<MetricCompleted>,
}

fn count(summary: &mut RunSummary, phase: AnalysisPhase) {
    match phase {
        AnalysisPhase::Error => bump(&mut summary.error),
        AnalysisPhase::Failed => bump(&mut summary.failed),
        AnalysisPhase::Inconclusive => bump(&mut summary.inconclusive),
        _ => bump(&mut summary.successful),
    }
}

fn zero_summary() -> RunSummary {
    RunSummary {
        count: Some(0),
        successful: Some(0),
        failed: Some(0),
        inconclusive: Some(0),
        error: Some(0),
    }
}

/// Assesses every metric (updating `results`' phases and messages) and the run (Argo's
/// `assessRunStatus`). `dry_run[i]` tells whether `metrics[i]` is a dry run.
pub fn run(
    metrics: &[Metric],
    dry_run: &[bool],
    results: &mut [MetricResult],
    terminate: bool,
) -> RunAssessment {
    let terminating = terminating(terminate, results);
    let mut worst: Option<AnalysisPhase> = None;
    let mut message = if terminate {
        "Run Terminated".to_owned()
    } else {
        String::new()
    };
    let mut everything_completed = true;
    let (mut run_summary, mut dry_run_summary) = (zero_summary(), zero_summary());
    let mut completed = Vec::new();
    for (metric, dry) in metrics.iter().zip(dry_run.iter().copied()) {
        bump(if dry {
            &mut dry_run_summary.count
        } else {
            &mut run_summary.count
        });
        let Some(result) = results.iter_mut().find(|r| r.name == metric.name) else {
            everything_completed = false;
            continue;
        };
        let phase = metric_phase(metric, result, terminating);
        if result.phase != phase {
            if phase.completed() {
                completed.push(MetricCompleted {
                    name: metric.name.clone(),
                    phase,
                });
            }
            if let Some(last) = result.measurements.as_ref().and_then(|m| m.last()) {
                result.message = last.message.clone().filter(|m| !m.is_empty());
            }
            result.phase = phase;
        }
        if !phase.completed() {
            everything_completed = false;
            continue;
        }
        let broken = broken_limit(metric, result);
        let counted = broken.as_ref().map_or(AnalysisPhase::Successful, |b| b.0);
        if dry {
            worst.get_or_insert(AnalysisPhase::Successful);
            if let Some((_, reason)) = &broken {
                result.message = Some(format!(
                    "Metric assessed {} due to {reason}",
                    phase_name(phase)
                ));
            }
            count(&mut dry_run_summary, counted);
        } else {
            if worst.is_none_or(|w| rank(phase) > rank(w)) {
                worst = Some(phase);
                if let Some((_, reason)) = &broken {
                    message = format!(
                        "Metric \"{}\" assessed {} due to {reason}",
                        metric.name,
                        phase_name(phase)
                    );
                    if let Some(text) = result.message.as_deref().filter(|m| !m.is_empty()) {
                        message.push_str(&format!(": \"Error Message: {text}\""));
                    }
                }
            }
            count(&mut run_summary, counted);
        }
    }
    let message = message.trim().to_owned();
    let (phase, message) = if terminating {
        (worst.unwrap_or(AnalysisPhase::Successful), message)
    } else {
        match worst {
            Some(worst) if everything_completed => (worst, message),
            _ => (AnalysisPhase::Running, String::new()),
        }
    };
    RunAssessment {
        phase,
        message,
        run_summary,
        dry_run_summary,
        completed,
    }
}
