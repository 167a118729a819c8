//! One reconcile of an AnalysisRun as two pure steps around the providers' IO, with `now` a
//! parameter: [`begin`] decides what the pass does (a finished run only waits for its TTL; a
//! spec that cannot be measured ends the run in Error; otherwise the tasks due now), and
//! [`finish`] records what the providers measured, judges every metric and the run
//! ([`crate::assess`]), trims old measurements, and says when to look again. The applier
//! writes the status it returns only when it differs from the stored one.
//!
//! Times are kept to the second, as the API stores them, so a plan made from a status read
//! back equals the plan made before the write.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sluice_api::{AnalysisPhase, AnalysisRun, AnalysisRunStatus, Measurement, MetricResult};

use crate::{
    args::Values,
    assess::{self, phase_name},
    prepare::Prepared,
    schedule::{self, Due},
};

/// A Kubernetes event the pass records on the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Warning (Error, Failed) or Normal.
    pub warning: bool,
    /// Argo's reason (`AnalysisRunFailed`, `MetricSuccessful`).
    pub reason: String,
    /// Argo's message.
    pub message: String,
}

/// What a finished run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing: no TTL applies.
    Keep,
    /// Its TTL has passed: delete it.
    Delete,
    /// Its TTL passes at this time.
    At(Timestamp),
}

/// What this pass does.
#[derive(Debug)]
pub enum Pass {
    /// The run is complete; only its TTL matters.
    Complete(Expiry),
    /// The run cannot be measured: write this (phase Error).
    Invalid(Outcome),
    /// Measure: the tasks due now (possibly none) over the prepared metrics.
    Measure {
        /// The run's metrics, resolved and checked.
        prepared: Prepared,
        /// The tasks due.
        due: Vec<Due>,
    },
}

/// A measurement a provider took, resumed or terminated.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Index into the run's metrics.
    pub metric: usize,
    /// A new measurement (else it replaces the in-flight one).
    pub new: bool,
    /// The measurement.
    pub measurement: Measurement,
    /// The provider's metadata for the metric's result, set when the result is created.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The status to write, the events to record and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The run's new status.
    pub status: AnalysisRunStatus,
    /// Events to record.
    pub events: Vec<Event>,
    /// When the run next needs a look (`None`: only when it changes).
    pub requeue: Option<Timestamp>,
    /// Metrics whose measurements were trimmed, with the number kept (for the provider's own
    /// garbage collection, e.g. old Jobs).
    pub trimmed: Vec<(usize, usize)>,
}

/// `now` to the second, as stored.
pub fn stamp(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn truncate(time: &mut Option<Time>) {
    if let Some(t) = time {
        *t = stamp(t.0);
    }
}

fn empty_status() -> AnalysisRunStatus {
    AnalysisRunStatus {
        phase: AnalysisPhase::Pending,
        message: None,
        metric_results: None,
        started_at: None,
        completed_at: None,
        run_summary: None,
        dry_run_summary: None,
    }
}

fn completion_event(phase: AnalysisPhase) -> Event {
    Event {
        warning: matches!(phase, AnalysisPhase::Error | AnalysisPhase::Failed),
        reason: format!("AnalysisRun{}", phase_name(phase)),
        message: format!("Analysis Completed. Result: {}", phase_name(phase)),
    }
}

/// When a complete run is deleted by its `ttlStrategy` (seconds after success, after failure,
/// else after completion; Argo deletes once the whole seconds passed exceed the TTL).
pub fn expiry(run: &AnalysisRun) -> Expiry {
    let (Some(status), Some(ttl)) = (&run.status, &run.spec.ttl_strategy) else {
        return Expiry::Keep;
    };
    let Some(completed) = &status.completed_at else {
        return Expiry::Keep;
    };
    let seconds = match status.phase {
        AnalysisPhase::Successful if ttl.seconds_after_success.is_some() => {
            ttl.seconds_after_success
        }
        AnalysisPhase::Failed if ttl.seconds_after_failure.is_some() => ttl.seconds_after_failure,
        _ => ttl.seconds_after_completion,
    };
    match seconds {
        None => Expiry::Keep,
        Some(s) => completed
            .0
            .checked_add(jiff::SignedDuration::from_secs(i64::from(s) + 1))
            .map_or(Expiry::Keep, Expiry::At),
    }
}

/// What this pass of `run` does. `values` are its arguments' values (their resolution's
/// error ends the run).
pub fn begin(
    run: &AnalysisRun,
    values: Result<&Values, &crate::args::ArgsError>,
    now: Timestamp,
) -> Pass {
    let status = run.status.clone().unwrap_or_else(empty_status);
    if status.phase.completed() {
        return Pass::Complete(match expiry(run) {
            Expiry::At(at) if at <= now => Expiry::Delete,
            other => other,
        });
    }
    let prepared = values
        .map_err(|e| format!("Unable to resolve metric arguments: {e}"))
        .and_then(|values| Prepared::new(&run.spec, &values.redacted()));
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(message) => return Pass::Invalid(fail(run, message, now)),
    };
    let results = status.metric_results.as_deref().unwrap_or_default();
    let terminating = assess::terminating(run.spec.terminate(), results);
    let started = status.started_at.as_ref().map(|t| t.0);
    let due = schedule::due(&prepared.metrics, results, started, terminating, now);
    Pass::Measure { prepared, due }
}

/// The run ends in Error with `message` (a spec that cannot be measured, arguments that cannot
/// be resolved). (Argo leaves `completedAt` unset here, so no TTL ever applies to such a run;
/// sluice sets it.)
pub fn fail(run: &AnalysisRun, message: String, now: Timestamp) -> Outcome {
    let mut status = run.status.clone().unwrap_or_else(empty_status);
    status.phase = AnalysisPhase::Error;
    status.message = Some(message);
    status.completed_at.get_or_insert_with(|| stamp(now));
    Outcome {
        status,
        events: vec![completion_event(AnalysisPhase::Error)],
        requeue: None,
        trimmed: Vec::new(),
    }
}

/// Records `taken` (messages and values redacted with `values`), assesses, trims and
/// schedules.
pub fn finish(
    run: &AnalysisRun,
    prepared: &Prepared,
    values: &Values,
    taken: Vec<Taken>,
    now: Timestamp,
) -> Outcome {
    let mut status = run.status.clone().unwrap_or_else(empty_status);
    let mut results: Vec<MetricResult> = status.metric_results.take().unwrap_or_default();
    for mut t in taken {
        let Some(metric) = prepared.metrics.get(t.metric) else {
            continue;
        };
        let m = &mut t.measurement;
        m.message = m
            .message
            .as_deref()
            .map(|text| values.redact(text))
            .filter(|text| !text.is_empty());
        m.value = m.value.as_deref().map(|text| values.redact(text));
        if m.phase.completed() && m.finished_at.is_none() {
            m.finished_at = Some(stamp(now));
        }
        truncate(&mut m.started_at);
        truncate(&mut m.finished_at);
        truncate(&mut m.resume_at);
        let index = match results.iter().position(|r| r.name == metric.name) {
            Some(i) => i,
            None => {
                let mut result = assess::new_result(&metric.name, prepared.dry_run[t.metric]);
                result.metadata = t.metadata.take();
                results.push(result);
                results.len() - 1
            }
        };
        assess::record(&mut results[index], t.measurement, t.new);
    }
    status.started_at.get_or_insert_with(|| stamp(now));
    let mut assessment = assess::run(
        &prepared.metrics,
        &prepared.dry_run,
        &mut results,
        run.spec.terminate(),
    );
    // A metric that just failed terminates the run: Argo sees it on its next pass, sluice
    // assesses once more at once, so the run ends with the measurement that ended it.
    if !assessment.phase.completed() && assess::terminating(run.spec.terminate(), &results) {
        let first = assessment.completed;
        assessment = assess::run(
            &prepared.metrics,
            &prepared.dry_run,
            &mut results,
            run.spec.terminate(),
        );
        assessment.completed.splice(0..0, first);
    }
    let mut events: Vec<Event> = assessment
        .completed
        .iter()
        .map(|c| Event {
            warning: matches!(c.phase, AnalysisPhase::Error | AnalysisPhase::Failed),
            reason: format!("Metric{}", phase_name(c.phase)),
            message: format!(
                "Metric '{}' Completed. Result: {}",
                c.name,
                phase_name(c.phase)
            ),
        })
        .collect();
    status.run_summary = Some(assessment.run_summary);
    status.dry_run_summary = Some(assessment.dry_run_summary);
    if run.status.is_none() || status.phase != assessment.phase {
        status.phase = assessment.phase;
        status.message = Some(assessment.message).filter(|m| !m.is_empty());
        if assessment.phase.completed() {
            events.push(completion_event(assessment.phase));
            status.completed_at.get_or_insert_with(|| stamp(now));
        }
    }
    let mut trimmed = Vec::new();
    for result in &mut results {
        let Some(i) = prepared.metrics.iter().position(|m| m.name == result.name) else {
            continue;
        };
        let limit = prepared.retention[i];
        if let Some(measurements) = &mut result.measurements
            && measurements.len() > limit
        {
            measurements.drain(..measurements.len() - limit);
            trimmed.push((i, limit));
        }
    }
    let started = status.started_at.as_ref().map(|t| t.0);
    let requeue = if status.phase.completed() {
        match expiry(&AnalysisRun {
            metadata: run.metadata.clone(),
            spec: run.spec.clone(),
            status: Some(status.clone()),
        }) {
            Expiry::At(at) => Some(at),
            _ => None,
        }
    } else {
        schedule::next(&prepared.metrics, &results, started, now)
    };
    status.metric_results = Some(results);
    Outcome {
        status,
        events,
        requeue,
        trimmed,
    }
}

#[cfg(test)]
mod tests;
