//! The Prometheus text exposition format (version 0.0.4), as the controllers and the ingress
//! write it by hand: label values escaped, histograms as cumulative buckets. Hand-written
//! because Argo's and NGINX's series names must stay exactly theirs (Argo's counters carry no
//! `_total` suffix, which OpenMetrics libraries always add).

use std::fmt::Write;

/// A label value escaped for the text format (`\`, `"` and newlines).
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `name{labels} value` lines of a histogram: one cumulative `_bucket` per bound plus `+Inf`,
/// then `_sum` and `_count`. `labels` is the text inside the braces (without them), or empty;
/// `buckets[i]` counts the observations at or below `bounds[i]`.
pub fn histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    buckets: &[u64],
    sum: f64,
    count: u64,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in bounds.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_histograms_cumulative() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut out = String::new();
        histogram(&mut out, "x", "a=\"1\"", &[0.1, 1.0], &[2, 3], 1.5, 4);
        assert_eq!(
            out,
            "x_bucket{a=\"1\",le=\"0.1\"} 2\nx_bucket{a=\"1\",le=\"1\"} 3\nx_bucket{a=\"1\",le=\"+Inf\"} 4\nx_sum{a=\"1\"} 1.5\nx_count{a=\"1\"} 4\n"
        );
    }
}
