//! A run's spec made ready to measure, as Argo's reconcile does before each pass: metrics with
//! their arguments applied, checked as Argo's `ValidateMetrics` checks them (its messages), the
//! metrics matched by `dryRun` rules, and the measurements each metric keeps. A spec that fails
//! here ends the run in Error with the message of [`Prepared::new`]'s error.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;
use sluice_api::{AnalysisRunSpec, Metric, duration::parse_duration};

use crate::args::Values;

/// How many measurements a metric keeps when no rule says (Argo's
/// `DefaultMeasurementHistoryLimit`).
pub const DEFAULT_RETENTION: usize = 10;

/// A run's metrics, resolved and checked.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The metrics with argument values applied (secrets redacted), in spec order.
    pub metrics: Vec<Metric>,
    /// Per metric: whether it is a dry run.
    pub dry_run: Vec<bool>,
    /// Per metric: how many measurements it keeps.
    pub retention: Vec<usize>,
}

/// Go's `intstr.IntValue`: the integer, or a string parsed as one (0 when it is not).
pub fn int_value(value: &IntOrString) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => s.parse().unwrap_or(0),
    }
}

/// A metric's limits and schedule as numbers (defaults applied), after argument resolution.
pub trait MetricExt {
    /// `failureLimit` (default 0; negative disables).
    fn failure_limit_value(&self) -> i32;
    /// `inconclusiveLimit` (default 0).
    fn inconclusive_limit_value(&self) -> i32;
    /// `consecutiveErrorLimit` (default 4).
    fn consecutive_error_limit_value(&self) -> i32;
    /// `consecutiveSuccessLimit` (default 0: off).
    fn consecutive_success_limit_value(&self) -> i32;
    /// Argo's `EffectiveCount`: the count; 1 with neither count nor interval; none (run until
    /// terminated) with only an interval.
    fn effective_count(&self) -> Option<i32>;
    /// The interval, when set and valid.
    fn interval_duration(&self) -> Option<Duration>;
    /// The initial delay, when set and valid.
    fn initial_delay_duration(&self) -> Option<Duration>;
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}

impl MetricExt for Metric {
    fn failure_limit_value(&self) -> i32 {
        self.failure_limit.as_ref().map_or(0, int_value)
    }

    fn inconclusive_limit_value(&self) -> i32 {
        self.inconclusive_limit.as_ref().map_or(0, int_value)
    }

    fn consecutive_error_limit_value(&self) -> i32 {
        self.consecutive_error_limit
            .as_ref()
            .map_or(sluice_api::defaults::CONSECUTIVE_ERROR_LIMIT, int_value)
    }

    fn consecutive_success_limit_value(&self) -> i32 {
        self.consecutive_success_limit.as_ref().map_or(0, int_value)
    }

    fn effective_count(&self) -> Option<i32> {
        match self.count.as_ref().map(int_value).unwrap_or(0) {
            0 if non_empty(&self.interval).is_none() => Some(1),
            0 => None,
            n => Some(n),
        }
    }

    fn interval_duration(&self) -> Option<Duration> {
        non_empty(&self.interval).and_then(|t| parse_duration(t).ok())
    }

    fn initial_delay_duration(&self) -> Option<Duration> {
        non_empty(&self.initial_delay).and_then(|t| parse_duration(t).ok())
    }
}

impl Prepared {
    /// Resolves `spec`'s metrics with `values` (pass [`Values::redacted`]), validates them and
    /// matches the dry-run and retention rules.
    ///
    /// # Errors
    /// The run's Error message, in Argo's words: `Unable to resolve metric arguments: …` or
    /// `Analysis spec invalid: …`.
    pub fn new(spec: &AnalysisRunSpec, values: &Values) -> Result<Self, String> {
        let metrics = spec
            .metrics
            .iter()
            .map(|m| values.apply(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("Unable to resolve metric arguments: {e}"))?;
        let invalid = |e: String| format!("Analysis spec invalid: {e}");
        validate_metrics(&metrics).map_err(invalid)?;
        let mut dry_run = vec![false; metrics.len()];
        for (i, rule) in spec.dry_run.iter().flatten().enumerate() {
            let matched = matching(&rule.metric_name, &metrics);
            if matched.is_empty() {
                return Err(invalid(format!(
                    "dryRun[{i}]: Rule didn't match any metric name(s)"
                )));
            }
            for m in matched {
                dry_run[m] = true;
            }
        }
        let mut retention = vec![DEFAULT_RETENTION; metrics.len()];
        for (i, rule) in spec.measurement_retention.iter().flatten().enumerate() {
            let matched = matching(&rule.metric_name, &metrics);
            if matched.is_empty() {
                return Err(invalid(format!(
                    "measurementRetention[{i}]: Rule didn't match any metric name(s)"
                )));
            }
            for m in matched {
                retention[m] = usize::try_from(rule.limit)
                    .ok()
                    .filter(|l| *l > 0)
                    .unwrap_or(DEFAULT_RETENTION);
            }
        }
        Ok(Self {
            metrics,
            dry_run,
            retention,
        })
    }
}

/// The metrics whose name a rule's regex matches (Go's `regexp.MatchString`: unanchored; a bad
/// regex matches nothing).
fn matching(pattern: &str, metrics: &[Metric]) -> Vec<usize> {
    let Ok(regex) = Regex::new(pattern) else {
        return Vec::new();
    };
    (0..metrics.len())
        .filter(|i| regex.is_match(&metrics[*i].name))
        .collect()
}

/// Argo's `ValidateMetrics`.
fn validate_metrics(metrics: &[Metric]) -> Result<(), String> {
    if metrics.is_empty() {
        return Err("no metrics specified".into());
    }
    for (i, metric) in metrics.iter().enumerate() {
        if metrics[..i].iter().any(|m| m.name == metric.name) {
            return Err(format!("metrics[{i}]: duplicate name '{}'", metric.name));
        }
        validate_metric(metric).map_err(|e| format!("metrics[{i}]: {e}"))?;
    }
    Ok(())
}

/// Argo's `ValidateMetric`.
fn validate_metric(metric: &Metric) -> Result<(), String> {
    let count = metric.count.as_ref().map_or(0, int_value);
    let failure = metric.failure_limit_value();
    let success = metric.consecutive_success_limit_value();
    let inconclusive = metric.inconclusive_limit_value();
    if success < 0 {
        return Err("consecutiveSuccessLimit must be >= 0".into());
    }
    if failure < -1 {
        return Err("failureLimit must be >= 0, or -1 to be disabled".into());
    }
    if success == 0 && failure == -1 {
        return Err("failureLimit and consecutiveSuccessLimit cannot both be disabled".into());
    }
    if inconclusive < 0 {
        return Err("inconclusiveLimit must be >= 0".into());
    }
    if metric.consecutive_error_limit.as_ref().map_or(0, int_value) < 0 {
        return Err("consecutiveErrorLimit must be >= 0".into());
    }
    if count > 0 {
        if failure >= 0 && count < failure + success {
            return Err(format!(
                "count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure} + {success}) if both >= 0"
            ));
        }
        if failure < 0 && count < success {
            return Err("count must be >= consecutiveSuccessLimit".into());
        }
        if count < inconclusive {
            return Err("count must be >= inconclusiveLimit".into());
        }
    }
    if count > 1 && non_empty(&metric.interval).is_none() {
        return Err("interval must be specified when count > 1".into());
    }
    if let Some(text) = non_empty(&metric.interval)
        && let Err(e) = parse_duration(text)
    {
        return Err(format!("invalid interval string: {e}"));
    }
    if let Some(text) = non_empty(&metric.initial_delay)
        && let Err(e) = parse_duration(text)
    {
        return Err(format!("invalid startDelay string: {e}"));
    }
    let p = &metric.provider;
    let providers = [
        p.prometheus.is_some(),
        p.web.is_some(),
        p.job.is_some(),
        p.kayenta.is_some(),
        p.datadog.is_some(),
        p.wavefront.is_some(),
        p.new_relic.is_some(),
        p.cloud_watch.is_some(),
        p.graphite.is_some(),
        p.influxdb.is_some(),
        p.skywalking.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count()
        + p.plugin.as_ref().map_or(0, |m| m.len());
    match providers {
        0 => Err("no provider specified".into()),
        1 => Ok(()),
        _ => Err("multiple providers specified".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: serde_json::Value) -> AnalysisRunSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn argos_runtime_checks_give_argos_messages() {
        let values = Values::default();
        let cases = [
            (
                json!({"metrics": []}),
                "Analysis spec invalid: no metrics specified",
            ),
            (
                json!({"metrics": [{"name": "m", "count": 3, "provider": {"web": {"url": "x"}}}]}),
                "Analysis spec invalid: metrics[0]: interval must be specified when count > 1",
            ),
            (
                json!({"metrics": [{"name": "m", "failureLimit": -1, "provider": {"web": {"url": "x"}}}]}),
                "Analysis spec invalid: metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
            ),
            (
                json!({"metrics": [{"name": "m", "provider": {}}]}),
                "Analysis spec invalid: metrics[0]: no provider specified",
            ),
            (
                json!({"metrics": [{"name": "m", "provider": {"web": {"url": "{{args.x}}"}}}]}),
                "Unable to resolve metric arguments: failed to resolve {{args.x}}",
            ),
            (
                json!({"metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}],
                    "dryRun": [{"metricName": "other"}]}),
                "Analysis spec invalid: dryRun[0]: Rule didn't match any metric name(s)",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(Prepared::new(&run(spec), &values).unwrap_err(), message);
        }
    }

    #[test]
    fn dry_run_and_retention_rules_match_by_regex() {
        let spec = run(json!({"metrics": [
                {"name": "latency", "provider": {"web": {"url": "x"}}},
                {"name": "errors", "provider": {"web": {"url": "x"}}}],
            "dryRun": [{"metricName": "lat.*"}],
            "measurementRetention": [{"metricName": ".*", "limit": 3}]}));
        let prepared = Prepared::new(&spec, &Values::default()).unwrap();
        assert_eq!(prepared.dry_run, [true, false]);
        assert_eq!(prepared.retention, [3, 3]);
    }

    #[test]
    fn effective_count_follows_count_and_interval() {
        let metric = |v: serde_json::Value| -> Metric { serde_json::from_value(v).unwrap() };
        let p = json!({"web": {"url": "x"}});
        assert_eq!(
            metric(json!({"name": "m", "provider": p})).effective_count(),
            Some(1)
        );
        assert_eq!(
            metric(json!({"name": "m", "interval": "1s", "provider": p})).effective_count(),
            None
        );
        assert_eq!(
            metric(json!({"name": "m", "interval": "1s", "count": "3", "provider": p}))
                .effective_count(),
            Some(3)
        );
    }
}
