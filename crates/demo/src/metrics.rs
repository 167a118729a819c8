//! Prometheus metrics of the demo app in the text exposition format:
//! `http_requests_total{status}` and the `http_request_duration_seconds{method,path,status}`
//! histogram (Prometheus' default buckets), as podinfo names them.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex, time::Duration};

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Requests by status, and latency by method, path and status.
#[derive(Default)]
struct Counts {
    by_status: BTreeMap<u16, u64>,
    latency: BTreeMap<(String, String, u16), Histogram>,
}

/// Request counters and latency histograms.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counts>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.by_status.entry(status).or_default() += 1;
        let histogram = inner
            .latency
            .entry((method.to_owned(), path.to_owned(), status))
            .or_default();
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.buckets[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP http_requests_total The total number of HTTP requests.\n# TYPE http_requests_total counter\n");
        for (status, count) in &inner.by_status {
            let _ = writeln!(out, "http_requests_total{{status=\"{status}\"}} {count}");
        }
        out.push_str("# HELP http_request_duration_seconds The HTTP request latencies in seconds.\n# TYPE http_request_duration_seconds histogram\n");
        for ((method, path, status), h) in &inner.latency {
            let labels = format!(
                "method=\"{method}\",path=\"{}\",status=\"{status}\"",
                path.replace('"', "")
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}
