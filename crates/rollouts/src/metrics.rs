//! The Rollout controller's Prometheus metrics, named as Argo Rollouts exports them on :8090 so
//! its dashboards and alerts keep working: `rollout_info` and the `rollout_info_replicas_*`
//! gauges (read from the Rollout store at scrape time, so a deleted Rollout leaves no series),
//! the `rollout_reconcile` histogram, `rollout_reconcile_error` and `rollout_events_total`.
//! Written in the Prometheus text format by hand: Argo's counters carry no `_total` suffix,
//! which OpenMetrics libraries always add.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

use kube::{ResourceExt, runtime::reflector::Store};
use sluice_api::Rollout;
use sluice_reconcile::exposition::{escape, histogram};

/// A per-Rollout gauge's value.
type Gauge = fn(&Rollout) -> i32;

/// Argo's `rollout_reconcile` buckets, in seconds.
const BUCKETS: [f64; 5] = [0.01, 0.15, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
struct Counters {
    reconciles: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    errors: u64,
    events: BTreeMap<(&'static str, String), u64>,
}

/// The controller's counters, and the Rollouts it reports on.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    rollouts: Mutex<Option<Store<Rollout>>>,
    analysis: Mutex<Option<std::sync::Arc<sluice_analysis::metrics::Metrics>>>,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports on the Rollouts in `store` (the controller's current one: a controller that
    /// lost and won back its Lease starts a new store).
    pub fn watch(&self, store: Store<Rollout>) {
        *self.rollouts.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
    }

    /// Counts analysis aborts in `analysis`'s `analysis_aborts_total` (the AnalysisRun
    /// controller's metrics, served beside these).
    pub fn count_aborts_in(&self, analysis: std::sync::Arc<sluice_analysis::metrics::Metrics>) {
        *self.analysis.lock().unwrap_or_else(|e| e.into_inner()) = Some(analysis);
    }

    /// A failed analysis `metric` aborted an update of `rollout`.
    pub fn analysis_aborted(&self, namespace: &str, rollout: &str, metric: &str) {
        if let Some(analysis) = self
            .analysis
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            analysis.aborted(namespace, rollout, metric);
        }
    }

    /// One reconcile took `seconds`.
    pub fn reconciled(&self, seconds: f64) {
        let mut counters = self.counters();
        for (bucket, bound) in counters.reconciles.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        counters.count += 1;
        counters.sum += seconds;
    }

    /// One reconcile failed.
    pub fn failed(&self) {
        self.counters().errors += 1;
    }

    /// One event was recorded.
    pub fn event(&self, warning: bool, reason: &str) {
        let kind = if warning { "Warning" } else { "Normal" };
        *self
            .counters()
            .events
            .entry((kind, reason.to_owned()))
            .or_default() += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rollouts = self
            .rollouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Store::state)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP rollout_info Information about rollout.\n# TYPE rollout_info gauge"
        );
        for r in &rollouts {
            let strategy = match r.spec.strategy.as_ref() {
                Some(s) if s.canary.is_some() => "canary",
                Some(s) if s.blue_green.is_some() => "blueGreen",
                _ => "none",
            };
            let phase = r
                .status
                .as_ref()
                .and_then(|s| s.phase.as_ref())
                .and_then(|p| serde_json::to_value(p).ok())
                .and_then(|p| p.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "rollout_info{{namespace=\"{}\",name=\"{}\",strategy=\"{strategy}\",traffic_router=\"\",phase=\"{}\"}} 1",
                escape(&r.namespace().unwrap_or_default()),
                escape(&r.name_any()),
                escape(&phase),
            );
        }
        let gauges: [(&str, Gauge); 4] = [
            ("available", |r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0)
            }),
            ("unavailable", |r| {
                let status = r.status.as_ref();
                let total = status.and_then(|s| s.replicas).unwrap_or(0);
                (total - status.and_then(|s| s.available_replicas).unwrap_or(0)).max(0)
            }),
            ("desired", |r| r.spec.replicas()),
            ("updated", |r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.updated_replicas)
                    .unwrap_or(0)
            }),
        ];
        for (suffix, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP rollout_info_replicas_{suffix} The number of {suffix} replicas per rollout.\n# TYPE rollout_info_replicas_{suffix} gauge"
            );
            for r in &rollouts {
                let _ = writeln!(
                    out,
                    "rollout_info_replicas_{suffix}{{namespace=\"{}\",name=\"{}\"}} {}",
                    escape(&r.namespace().unwrap_or_default()),
                    escape(&r.name_any()),
                    value(r)
                );
            }
        }
        let counters = self.counters();
        let _ = writeln!(
            out,
            "# HELP rollout_reconcile Rollout reconciliation performance.\n# TYPE rollout_reconcile histogram"
        );
        histogram(
            &mut out,
            "rollout_reconcile",
            "",
            &BUCKETS,
            &counters.reconciles,
            counters.sum,
            counters.count,
        );
        let _ = writeln!(
            out,
            "# HELP rollout_reconcile_error Error occurring during the rollout.\n# TYPE rollout_reconcile_error counter\nrollout_reconcile_error {}",
            counters.errors
        );
        let _ = writeln!(
            out,
            "# HELP rollout_events_total Count of rollout events.\n# TYPE rollout_events_total counter"
        );
        for ((kind, reason), count) in &counters.events {
            let _ = writeln!(
                out,
                "rollout_events_total{{type=\"{kind}\",reason=\"{}\"}} {count}",
                escape(reason)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_argos_names() {
        let metrics = Metrics::default();
        metrics.reconciled(0.2);
        metrics.reconciled(2.0);
        metrics.failed();
        metrics.event(false, "SwitchService");
        metrics.event(false, "SwitchService");
        let text = metrics.render();
        assert!(
            text.contains("rollout_reconcile_bucket{le=\"0.25\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("rollout_reconcile_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("rollout_reconcile_count 2\n"));
        assert!(text.contains("rollout_reconcile_error 1\n"));
        assert!(
            text.contains("rollout_events_total{type=\"Normal\",reason=\"SwitchService\"} 2\n")
        );
    }
}
