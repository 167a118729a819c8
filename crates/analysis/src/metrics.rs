//! The AnalysisRun controller's Prometheus metrics, Argo's names where Argo has them:
//! `analysis_run_info` and `analysis_run_metric_phase` (read from the run store at scrape
//! time), the `analysis_run_reconcile` histogram and `analysis_run_reconcile_error`; plus
//! sluice's `analysis_run_measurements_total{type,phase}`, the
//! `analysis_run_measurement_delay_seconds` histogram (from a measurement's due time to its
//! recording) and `analysis_aborts_total{namespace,rollout,metric}` (Argo's #2087: which
//! metric aborted which Rollout, counted by the Rollout controller's analysis gates).

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

use kube::{ResourceExt, runtime::reflector::Store};
use sluice_api::{AnalysisPhase, AnalysisRun};
use sluice_reconcile::exposition::{escape, histogram};

use crate::{assess::phase_name, provider::provider_name};

/// Argo's `analysis_run_reconcile` buckets, in seconds.
const RECONCILE_BUCKETS: [f64; 5] = [0.01, 0.15, 0.25, 0.5, 1.0];
/// Scheduling-delay buckets, in seconds.
const DELAY_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Delay samples kept for [`Metrics::delays`] (the newest).
const SAMPLES: usize = 100_000;

#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Self {
            buckets: [0; N],
            count: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, bounds: &[f64; N], value: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(bounds) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }
}

#[derive(Debug, Default)]
struct Counters {
    reconciles: Histogram<5>,
    errors: u64,
    measurements: BTreeMap<(&'static str, &'static str), u64>,
    delay: Histogram<10>,
    samples: Vec<f64>,
    next_sample: usize,
    aborts: BTreeMap<(String, String, String), u64>,
}

/// The controller's counters, and the runs it reports on.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    runs: Mutex<Option<Store<AnalysisRun>>>,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports on the runs in `store` (the controller's current one).
    pub fn watch(&self, store: Store<AnalysisRun>) {
        *self.runs.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
    }

    /// One reconcile took `seconds`.
    pub fn reconciled(&self, seconds: f64) {
        self.counters()
            .reconciles
            .observe(&RECONCILE_BUCKETS, seconds);
    }

    /// One reconcile failed.
    pub fn failed(&self) {
        self.counters().errors += 1;
    }

    /// A measurement of a `kind` provider finished with `phase`.
    pub fn measured(&self, kind: &'static str, phase: AnalysisPhase) {
        *self
            .counters()
            .measurements
            .entry((kind, phase_name(phase)))
            .or_default() += 1;
    }

    /// A measurement due `seconds` ago was recorded.
    pub fn delayed(&self, seconds: f64) {
        let mut counters = self.counters();
        counters.delay.observe(&DELAY_BUCKETS, seconds);
        if counters.samples.len() < SAMPLES {
            counters.samples.push(seconds);
        } else {
            let at = counters.next_sample;
            counters.samples[at] = seconds;
            counters.next_sample = (at + 1) % SAMPLES;
        }
    }

    /// The newest scheduling delays recorded, in seconds (for benchmarks).
    pub fn delays(&self) -> Vec<f64> {
        self.counters().samples.clone()
    }

    /// A Rollout was aborted because `metric` of its analysis failed.
    pub fn aborted(&self, namespace: &str, rollout: &str, metric: &str) {
        *self
            .counters()
            .aborts
            .entry((namespace.into(), rollout.into(), metric.into()))
            .or_default() += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let runs = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Store::state)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP analysis_run_info Information about analysis run.\n# TYPE analysis_run_info gauge"
        );
        for run in &runs {
            let phase = run
                .status
                .as_ref()
                .map_or("Pending", |s| phase_name(s.phase));
            let _ = writeln!(
                out,
                "analysis_run_info{{namespace=\"{}\",name=\"{}\",phase=\"{phase}\"}} 1",
                escape(&run.namespace().unwrap_or_default()),
                escape(&run.name_any()),
            );
        }
        let _ = writeln!(
            out,
            "# HELP analysis_run_metric_phase Information on the duration of a specific metric in the Analysis Run\n# TYPE analysis_run_metric_phase gauge"
        );
        for run in &runs {
            let results = run.status.as_ref().and_then(|s| s.metric_results.as_ref());
            for result in results.into_iter().flatten() {
                let kind = run
                    .spec
                    .metrics
                    .iter()
                    .find(|m| m.name == result.name)
                    .map_or("", provider_name);
                let _ = writeln!(
                    out,
                    "analysis_run_metric_phase{{namespace=\"{}\",name=\"{}\",metric=\"{}\",type=\"{kind}\",phase=\"{}\"}} 1",
                    escape(&run.namespace().unwrap_or_default()),
                    escape(&run.name_any()),
                    escape(&result.name),
                    phase_name(result.phase),
                );
            }
        }
        let counters = self.counters();
        let _ = writeln!(
            out,
            "# HELP analysis_run_reconcile Analysis Run reconciliation performance.\n# TYPE analysis_run_reconcile histogram"
        );
        let r = &counters.reconciles;
        histogram(
            &mut out,
            "analysis_run_reconcile",
            "",
            &RECONCILE_BUCKETS,
            &r.buckets,
            r.sum,
            r.count,
        );
        let _ = writeln!(
            out,
            "# HELP analysis_run_reconcile_error Error occurring during the analysis run.\n# TYPE analysis_run_reconcile_error counter\nanalysis_run_reconcile_error {}",
            counters.errors
        );
        let _ = writeln!(
            out,
            "# HELP analysis_run_measurements_total Measurements taken, by provider type and phase.\n# TYPE analysis_run_measurements_total counter"
        );
        for ((kind, phase), n) in &counters.measurements {
            let _ = writeln!(
                out,
                "analysis_run_measurements_total{{type=\"{kind}\",phase=\"{phase}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP analysis_run_measurement_delay_seconds Time from a measurement's due time to its recording.\n# TYPE analysis_run_measurement_delay_seconds histogram"
        );
        let d = &counters.delay;
        histogram(
            &mut out,
            "analysis_run_measurement_delay_seconds",
            "",
            &DELAY_BUCKETS,
            &d.buckets,
            d.sum,
            d.count,
        );
        let _ = writeln!(
            out,
            "# HELP analysis_aborts_total Rollouts aborted by a failed analysis metric.\n# TYPE analysis_aborts_total counter"
        );
        for ((namespace, rollout, metric), n) in &counters.aborts {
            let _ = writeln!(
                out,
                "analysis_aborts_total{{namespace=\"{}\",rollout=\"{}\",metric=\"{}\"}} {n}",
                escape(namespace),
                escape(rollout),
                escape(metric)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::default();
        metrics.measured("Web", AnalysisPhase::Successful);
        metrics.measured("Web", AnalysisPhase::Successful);
        metrics.delayed(0.2);
        metrics.aborted("shop", "web", "error-rate");
        metrics.failed();
        let text = metrics.render();
        assert!(
            text.contains("analysis_run_measurements_total{type=\"Web\",phase=\"Successful\"} 2\n")
        );
        assert!(text.contains("analysis_run_measurement_delay_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains(
            "analysis_aborts_total{namespace=\"shop\",rollout=\"web\",metric=\"error-rate\"} 1\n"
        ));
        assert!(text.contains("analysis_run_reconcile_error 1\n"));
        assert!(text.contains("# TYPE analysis_run_info gauge\n"));
        assert_eq!(metrics.delays(), [0.2]);
    }
}
