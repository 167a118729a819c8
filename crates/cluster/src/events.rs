//! Events are one resource with two views: `core/v1` Event (what `kubectl get events` and older
//! clients read) and `events.k8s.io/v1` Event (what kube-rs' recorder writes). They are stored in
//! the core shape and converted at the API boundary, field by field as Kubernetes maps them.
//!
//! One departure: an event written through events.k8s.io/v1 without the `deprecated*` fields
//! gets the core `firstTimestamp`, `lastTimestamp` and `count` from its `eventTime` and
//! `series`, as client-go's core recorder would have written them. Kubernetes leaves them
//! empty, which is harmless on a real cluster where most components still write core events;
//! here every controller writes through events.k8s.io, and `kubectl get events
//! --sort-by=.lastTimestamp` would find nothing to sort by.

use serde_json::{Map, Value, json};

/// Renames `from` in `src` to `to` in `dst`, when present.
fn carry(src: &Map<String, Value>, from: &str, dst: &mut Map<String, Value>, to: &str) {
    if let Some(v) = src.get(from).filter(|v| !v.is_null()) {
        dst.insert(to.to_owned(), v.clone());
    }
}

/// The fields both views share, under the given `apiVersion`.
fn common(src: &Map<String, Value>, api_version: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    carry(src, "metadata", &mut out, "metadata");
    carry(src, "eventTime", &mut out, "eventTime");
    if let Some(series) = src.get("series").and_then(Value::as_object) {
        let mut s = Map::new();
        carry(series, "count", &mut s, "count");
        carry(series, "lastObservedTime", &mut s, "lastObservedTime");
        out.insert("series".into(), Value::Object(s));
    }
    out
}

/// A stored (core/v1) Event as events.k8s.io/v1 presents it.
pub fn to_events_v1(core: &Value) -> Value {
    let Some(src) = core.as_object() else {
        return core.clone();
    };
    let mut out = common(src, "events.k8s.io/v1");
    let source = src.get("source").and_then(Value::as_object);
    match src
        .get("reportingComponent")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(c) => {
            out.insert("reportingController".into(), json!(c));
        }
        None => {
            if let Some(c) = source.and_then(|s| s.get("component")) {
                out.insert("reportingController".into(), c.clone());
            }
        }
    }
    match src
        .get("reportingInstance")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(i) => {
            out.insert("reportingInstance".into(), json!(i));
        }
        None => {
            if let Some(h) = source.and_then(|s| s.get("host")) {
                out.insert("reportingInstance".into(), h.clone());
            }
        }
    }
    carry(src, "action", &mut out, "action");
    carry(src, "reason", &mut out, "reason");
    carry(src, "involvedObject", &mut out, "regarding");
    carry(src, "related", &mut out, "related");
    carry(src, "message", &mut out, "note");
    carry(src, "type", &mut out, "type");
    carry(src, "source", &mut out, "deprecatedSource");
    carry(src, "firstTimestamp", &mut out, "deprecatedFirstTimestamp");
    carry(src, "lastTimestamp", &mut out, "deprecatedLastTimestamp");
    carry(src, "count", &mut out, "deprecatedCount");
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in the stored (core/v1) shape.
pub fn from_events_v1(v1: &Value) -> Value {
    let Some(src) = v1.as_object() else {
        return v1.clone();
    };
    let mut out = common(src, "v1");
    carry(src, "reportingController", &mut out, "reportingComponent");
    carry(src, "reportingInstance", &mut out, "reportingInstance");
    carry(src, "action", &mut out, "action");
    carry(src, "reason", &mut out, "reason");
    carry(src, "regarding", &mut out, "involvedObject");
    carry(src, "related", &mut out, "related");
    carry(src, "note", &mut out, "message");
    carry(src, "type", &mut out, "type");
    match src.get("deprecatedSource").filter(|s| !s.is_null()) {
        Some(source) => {
            out.insert("source".into(), source.clone());
        }
        None => {
            let mut source = Map::new();
            carry(src, "reportingController", &mut source, "component");
            carry(src, "reportingInstance", &mut source, "host");
            if !source.is_empty() {
                out.insert("source".into(), Value::Object(source));
            }
        }
    }
    let given = |field: &str| src.get(field).filter(|v| !v.is_null()).cloned();
    let series = src.get("series").filter(|s| s.is_object());
    let event_time = src.get("eventTime").and_then(to_seconds);
    let first = given("deprecatedFirstTimestamp").or_else(|| event_time.clone());
    let last = series
        .and_then(|s| s.get("lastObservedTime"))
        .and_then(to_seconds)
        .or_else(|| given("deprecatedLastTimestamp"))
        .or(event_time);
    let count = series
        .and_then(|s| s.get("count"))
        .filter(|c| c.is_number())
        .cloned()
        .or_else(|| given("deprecatedCount"))
        .or_else(|| first.is_some().then(|| json!(1)));
    for (field, value) in [
        ("firstTimestamp", first),
        ("lastTimestamp", last),
        ("count", count),
    ] {
        if let Some(value) = value {
            out.insert(field.into(), value);
        }
    }
    Value::Object(out)
}

/// A `MicroTime` (`2026-11-01T10:00:00.123456Z`) as a `Time` (`2026-11-01T10:00:00Z`).
fn to_seconds(time: &Value) -> Option<Value> {
    let text = time.as_str()?;
    let stamp: jiff::Timestamp = text.parse().ok()?;
    let whole = jiff::Timestamp::from_second(stamp.as_second()).ok()?;
    Some(json!(whole.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_views_round_trip() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "demo.1", "namespace": "default"},
            "eventTime": "2026-11-01T10:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-11-01T10:00:05.000000Z"},
            "reportingController": "sluice", "reportingInstance": "sluice-0",
            "action": "Reconcile", "reason": "SwitchService", "note": "Switched selector",
            "type": "Normal",
            "regarding": {"kind": "Rollout", "name": "demo", "namespace": "default", "apiVersion": "argoproj.io/v1alpha1"}
        });
        let core = from_events_v1(&v1);
        assert_eq!(core["involvedObject"]["kind"], "Rollout");
        assert_eq!(core["message"], "Switched selector");
        assert_eq!(core["source"]["component"], "sluice");
        assert_eq!(core["firstTimestamp"], "2026-11-01T10:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-11-01T10:00:05Z");
        assert_eq!(core["count"], 3);
        let back = to_events_v1(&core);
        let mut expected = v1.clone();
        expected["deprecatedSource"] = json!({"component": "sluice", "host": "sluice-0"});
        expected["deprecatedFirstTimestamp"] = json!("2026-11-01T10:00:00Z");
        expected["deprecatedLastTimestamp"] = json!("2026-11-01T10:00:05Z");
        expected["deprecatedCount"] = json!(3);
        assert_eq!(back, expected);
        // A later observation moves lastTimestamp, whatever the view carried.
        let mut again = back.clone();
        again["series"] = json!({"count": 4, "lastObservedTime": "2026-11-01T10:01:00.500000Z"});
        let core = from_events_v1(&again);
        assert_eq!(core["lastTimestamp"], "2026-11-01T10:01:00Z");
        assert_eq!(core["count"], 4);
    }

    #[test]
    fn core_events_read_as_v1() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "x"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Scheduled",
            "message": "assigned", "source": {"component": "default-scheduler"},
            "firstTimestamp": "2026-11-01T10:00:00Z", "count": 1, "type": "Normal"
        });
        let v1 = to_events_v1(&core);
        assert_eq!(v1["reportingController"], "default-scheduler");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["deprecatedCount"], 1);
        let mut expected = core.clone();
        expected["reportingComponent"] = json!("default-scheduler");
        assert_eq!(from_events_v1(&v1), expected);
    }
}
