//! When measurements are due, as Argo's `generateMetricTasks` and `calculateNextReconcileTime`
//! decide it, with `now` a parameter: a metric's first measurement once its `initialDelay` has
//! passed since the run started; the next one `interval` after the last finished (10 s after an
//! error when the metric has no interval); none once `count` is reached or the metric is
//! complete; an in-flight measurement resumed at its `resumeAt`; while the run terminates, no
//! new measurement, and in-flight ones terminated at once.

use std::time::Duration;

use jiff::Timestamp;
use sluice_api::{AnalysisPhase, Measurement, Metric, MetricResult};

use crate::prepare::MetricExt;

/// How soon a measurement that ended in Error is retried when its metric has no interval
/// (Argo's `DefaultErrorRetryInterval`).
pub const ERROR_RETRY: Duration = Duration::from_secs(10);

/// What a metric needs now.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Take a new measurement.
    Take,
    /// Check on the in-flight measurement (the last one).
    Resume(Measurement),
    /// Stop the in-flight measurement: the run is terminating.
    Terminate(Measurement),
}

/// A task for the metric at an index of the run's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// Index into the metrics.
    pub metric: usize,
    /// What to do.
    pub task: Task,
    /// Since when it has been due (for the scheduling-delay metric).
    pub since: Timestamp,
}

/// The result recorded for `name`.
pub fn result<'a>(results: &'a [MetricResult], name: &str) -> Option<&'a MetricResult> {
    results.iter().find(|r| r.name == name)
}

/// The last measurement of a result.
pub fn last(result: Option<&MetricResult>) -> Option<&Measurement> {
    result
        .and_then(|r| r.measurements.as_ref())
        .and_then(|m| m.last())
}

fn time(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

/// When the metric's next measurement is due after `last` finished: `None` when none is (count
/// reached, or no interval and no error to retry).
fn next_after(metric: &Metric, result: &MetricResult, last: &Measurement) -> Option<Timestamp> {
    let finished = time(&last.finished_at)?;
    if let Some(count) = metric.effective_count()
        && result.count.unwrap_or(0) >= count
    {
        return None;
    }
    let interval = if last.phase == AnalysisPhase::Error {
        ERROR_RETRY
    } else {
        metric.interval_duration()?
    };
    finished.checked_add(interval).ok()
}

/// The tasks due at `now`. `started_at` is the run's `status.startedAt`; `terminating` whether
/// the run is terminating ([`crate::assess::terminating`]).
pub fn due(
    metrics: &[Metric],
    results: &[MetricResult],
    started_at: Option<Timestamp>,
    terminating: bool,
    now: Timestamp,
) -> Vec<Due> {
    let mut tasks = Vec::new();
    for (i, metric) in metrics.iter().enumerate() {
        let result = result(results, &metric.name);
        if result.is_some_and(|r| r.phase.completed()) {
            continue;
        }
        let task = match last(result) {
            Some(m) if m.finished_at.is_none() => {
                let resume = time(&m.resume_at);
                if terminating {
                    Some((Task::Terminate(m.clone()), now))
                } else if resume.is_some_and(|at| at > now) {
                    None
                } else {
                    Some((Task::Resume(m.clone()), resume.unwrap_or(now)))
                }
            }
            _ if terminating => None,
            None => {
                let delay = metric.initial_delay_duration();
                match (delay, started_at) {
                    (None, _) => Some((Task::Take, started_at.unwrap_or(now))),
                    (Some(_), None) => None,
                    (Some(delay), Some(start)) => start
                        .checked_add(delay)
                        .ok()
                        .filter(|at| *at <= now)
                        .map(|at| (Task::Take, at)),
                }
            }
            Some(m) => {
                let result = result.expect("a measurement has a result");
                next_after(metric, result, m)
                    .filter(|at| *at <= now)
                    .map(|at| (Task::Take, at))
            }
        };
        if let Some((task, since)) = task {
            tasks.push(Due {
                metric: i,
                task,
                since,
            });
        }
    }
    tasks
}

/// When the run next needs a look: the earliest initial delay's end, in-flight `resumeAt` or
/// next due measurement; `None` when nothing is scheduled. `started_at` defaults to `now`.
pub fn next(
    metrics: &[Metric],
    results: &[MetricResult],
    started_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    metrics
        .iter()
        .filter_map(|metric| {
            let result = result(results, &metric.name);
            if result.is_some_and(|r| r.phase.completed()) {
                return None;
            }
            match last(result) {
                None => started_at
                    .unwrap_or(now)
                    .checked_add(metric.initial_delay_duration()?)
                    .ok(),
                Some(m) if m.finished_at.is_none() => time(&m.resume_at),
                Some(m) => next_after(metric, result?, m),
            }
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn metric(extra: serde_json::Value) -> Metric {
        let mut value = json!({"name": "m", "provider": {"web": {"url": "x"}}});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn measured(phase: AnalysisPhase, finished: Option<i64>, resume: Option<i64>) -> Measurement {
        Measurement {
            phase,
            message: None,
            started_at: Some(Time(at(0))),
            finished_at: finished.map(|s| Time(at(s))),
            value: None,
            metadata: None,
            resume_at: resume.map(|s| Time(at(s))),
        }
    }

    fn results(count: i32, measurements: Vec<Measurement>) -> Vec<MetricResult> {
        vec![MetricResult {
            name: "m".into(),
            phase: AnalysisPhase::Running,
            measurements: Some(measurements),
            message: None,
            count: Some(count),
            successful: None,
            failed: None,
            inconclusive: None,
            error: None,
            consecutive_error: None,
            consecutive_success: None,
            dry_run: None,
            metadata: None,
        }]
    }

    fn tasks(m: &Metric, r: &[MetricResult], terminating: bool, now: i64) -> Vec<Task> {
        due(
            std::slice::from_ref(m),
            r,
            Some(at(0)),
            terminating,
            at(now),
        )
        .into_iter()
        .map(|d| d.task)
        .collect()
    }

    #[test]
    fn the_first_measurement_waits_for_the_initial_delay() {
        let m = metric(json!({"initialDelay": "5s"}));
        assert_eq!(tasks(&m, &[], false, 4), []);
        assert_eq!(tasks(&m, &[], false, 5), [Task::Take]);
        assert_eq!(
            next(std::slice::from_ref(&m), &[], Some(at(0)), at(1)),
            Some(at(5))
        );
        // Without a start time (the run's first pass), nothing is taken yet.
        assert!(due(std::slice::from_ref(&m), &[], None, false, at(100)).is_empty());
        assert_eq!(tasks(&metric(json!({})), &[], false, 0), [Task::Take]);
    }

    #[test]
    fn measurements_follow_the_interval_until_the_count() {
        let m = metric(json!({"interval": "10s", "count": 3}));
        let r = results(1, vec![measured(AnalysisPhase::Successful, Some(2), None)]);
        assert_eq!(tasks(&m, &r, false, 11), []);
        assert_eq!(tasks(&m, &r, false, 12), [Task::Take]);
        assert_eq!(
            next(std::slice::from_ref(&m), &r, None, at(3)),
            Some(at(12))
        );
        let r = results(3, vec![measured(AnalysisPhase::Successful, Some(2), None)]);
        assert_eq!(tasks(&m, &r, false, 100), []);
        assert_eq!(next(std::slice::from_ref(&m), &r, None, at(3)), None);
    }

    #[test]
    fn without_count_an_interval_runs_until_terminated() {
        let m = metric(json!({"interval": "1s"}));
        let r = results(
            1000,
            vec![measured(AnalysisPhase::Successful, Some(2), None)],
        );
        assert_eq!(tasks(&m, &r, false, 3), [Task::Take]);
        assert_eq!(tasks(&m, &r, true, 3), []);
    }

    #[test]
    fn an_error_is_retried_after_ten_seconds_without_an_interval() {
        let m = metric(json!({}));
        let r = results(0, vec![measured(AnalysisPhase::Error, Some(2), None)]);
        assert_eq!(tasks(&m, &r, false, 11), []);
        assert_eq!(tasks(&m, &r, false, 12), [Task::Take]);
        // With an interval, an error is also retried after ten seconds (Argo).
        let m = metric(json!({"interval": "1s"}));
        assert_eq!(tasks(&m, &r, false, 5), []);
    }

    #[test]
    fn in_flight_measurements_resume_at_their_time_or_terminate() {
        let m = metric(json!({}));
        let flight = measured(AnalysisPhase::Running, None, Some(8));
        let r = results(0, vec![flight.clone()]);
        assert_eq!(tasks(&m, &r, false, 7), []);
        assert_eq!(tasks(&m, &r, false, 8), [Task::Resume(flight.clone())]);
        assert_eq!(tasks(&m, &r, true, 1), [Task::Terminate(flight)]);
        assert_eq!(next(std::slice::from_ref(&m), &r, None, at(0)), Some(at(8)));
    }

    #[test]
    fn completed_metrics_need_nothing() {
        let m = metric(json!({"interval": "1s"}));
        let mut r = results(1, vec![measured(AnalysisPhase::Failed, Some(1), None)]);
        r[0].phase = AnalysisPhase::Failed;
        assert_eq!(tasks(&m, &r, false, 50), []);
        assert_eq!(next(std::slice::from_ref(&m), &r, None, at(0)), None);
    }
}
