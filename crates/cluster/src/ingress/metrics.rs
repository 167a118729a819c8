//! The ingress's Prometheus metrics, named and labelled as ingress-nginx exports them, so
//! analysis written for NGINX (`nginx_ingress_controller_requests{ingress=…,status!~"[4-5].*"}`)
//! works unchanged: the counter `nginx_ingress_controller_requests` and the histogram
//! `nginx_ingress_controller_request_duration_seconds`. Written out by hand in the Prometheus
//! text format because ingress-nginx's counter has no `_total` suffix, which OpenMetrics
//! libraries (prometheus-client) always add.

use std::{collections::HashMap, fmt::Write, sync::Mutex};

use sluice_reconcile::exposition::{escape, histogram};

/// Histogram buckets (Prometheus' defaults, as ingress-nginx uses), in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels {
    /// The Ingress's namespace.
    pub namespace: String,
    /// The Ingress that owns the route (the main one, also for canary traffic).
    pub ingress: String,
    /// The route's Service.
    pub service: String,
    /// The canary upstream (`namespace-service-port`) when the canary served it, else empty.
    pub canary: String,
    /// The route's host.
    pub host: String,
    /// The route's path.
    pub path: String,
    /// HTTP method.
    pub method: String,
    /// Response status.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Series {
    count: u64,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
}

/// Every series seen so far.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<HashMap<Labels, Series>>,
}

impl Metrics {
    /// Records one request that took `seconds`.
    pub fn observe(&self, labels: Labels, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let entry = series.entry(labels).or_default();
        entry.count += 1;
        entry.sum += seconds;
        for (bucket, bound) in entry.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<(&Labels, &Series)> = series.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let label_text = |l: &Labels| {
            format!(
                "canary=\"{}\",controller_class=\"k8s.io/ingress-nginx\",controller_namespace=\"sluice\",controller_pod=\"sluice-up\",host=\"{}\",ingress=\"{}\",method=\"{}\",namespace=\"{}\",path=\"{}\",service=\"{}\",status=\"{}\"",
                escape(&l.canary),
                escape(&l.host),
                escape(&l.ingress),
                escape(&l.method),
                escape(&l.namespace),
                escape(&l.path),
                escape(&l.service),
                l.status
            )
        };
        let mut out = String::new();
        out.push_str(
            "# HELP nginx_ingress_controller_requests The total number of client requests\n",
        );
        out.push_str("# TYPE nginx_ingress_controller_requests counter\n");
        for (labels, s) in &sorted {
            let _ = writeln!(
                out,
                "nginx_ingress_controller_requests{{{}}} {}",
                label_text(labels),
                s.count
            );
        }
        let name = "nginx_ingress_controller_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} The request processing time in seconds");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (labels, s) in &sorted {
            let text = label_text(labels);
            histogram(&mut out, name, &text, &BUCKETS, &s.buckets, s.sum, s.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_label_set_with_a_histogram() {
        let metrics = Metrics::default();
        let labels = Labels {
            namespace: "shop".into(),
            ingress: "web".into(),
            service: "web".into(),
            canary: String::new(),
            host: "shop.example".into(),
            path: "/".into(),
            method: "GET".into(),
            status: 200,
        };
        metrics.observe(labels.clone(), 0.003);
        metrics.observe(labels.clone(), 0.2);
        metrics.observe(
            Labels {
                status: 500,
                path: "/\"q\"".into(),
                ..labels
            },
            0.02,
        );
        let text = metrics.render();
        assert!(text.contains("nginx_ingress_controller_requests{canary=\"\",controller_class=\"k8s.io/ingress-nginx\",controller_namespace=\"sluice\",controller_pod=\"sluice-up\",host=\"shop.example\",ingress=\"web\",method=\"GET\",namespace=\"shop\",path=\"/\",service=\"web\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("path=\"/\\\"q\\\"\""), "{text}");
        assert!(text.contains("status=\"200\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("status=\"200\",le=\"0.25\"} 2\n"), "{text}");
        assert!(
            text.contains("_count{")
                && text
                    .contains("# TYPE nginx_ingress_controller_request_duration_seconds histogram")
        );
    }
}
