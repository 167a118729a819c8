//! `Application.status` (and the auto-sync `operation`) as Argo CD writes them, built as merge
//! patches from a comparison or an operation's report: `sync` with the revision and what it was
//! compared to, `health`, `resources[]`, `conditions`, `reconciledAt`, `sourceType`,
//! `summary.images`, `operationState` and `history` (capped by `revisionHistoryLimit`).
//! Pure: time is a parameter.

use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{Value, json};
use sluice_api::Application;

use sluice_api::ResourceResult;

use crate::{
    autosync::{Last, Policy},
    compare::Comparison,
};

/// The annotation asking for a refresh (`normal` or `hard`).
pub const REFRESH: &str = "argocd.argoproj.io/refresh";
/// The in-cluster destination server.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";

fn time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn status_json(app: &Application) -> Value {
    serde_json::to_value(&app.status).unwrap_or(Value::Null)
}

/// Why the spec cannot be reconciled here, if it cannot.
pub fn invalid_spec(app: &Application) -> Option<String> {
    let destination = &app.spec.destination;
    let server = destination.server.as_deref().unwrap_or_default();
    let name = destination.name.as_deref().unwrap_or_default();
    let in_cluster = server == IN_CLUSTER || (server.is_empty() && name == "in-cluster");
    if !in_cluster {
        let named = if server.is_empty() {
            format!("name {name:?}")
        } else {
            format!("server {server:?}")
        };
        return Some(format!(
            "application destination {named} is not this cluster: sluice deploys only to its own (server {IN_CLUSTER} or name in-cluster)"
        ));
    }
    if app.spec.has_multiple_sources() {
        return Some(
            "multiple sources (spec.sources) are not supported yet: use a single spec.source"
                .into(),
        );
    }
    if app.spec.source_hydrator.is_some() {
        return Some(
            "spec.sourceHydrator is not supported yet: use a spec.source with the hydrated path"
                .into(),
        );
    }
    let source = app.source()?;
    if source.repo_url.is_empty() {
        return Some("spec.source.repoURL is required".into());
    }
    let http = ["http://", "https://"]
        .iter()
        .any(|scheme| source.repo_url.starts_with(scheme));
    if source.chart.is_some() && !http {
        return Some(if source.repo_url.starts_with("oci://") {
            "Helm OCI registries (oci://) are not supported yet: use an http(s) chart repository or a chart in Git".into()
        } else {
            format!(
                "spec.source.repoURL {:?}: a Helm chart repository is an http(s) URL",
                source.repo_url
            )
        });
    }
    None
}

/// Conditions: `fresh` (type, message) pairs, keeping the transition time of those already
/// present.
fn conditions(app: &Application, fresh: &[(&str, String)], now: Timestamp) -> Value {
    let old = status_json(app)["conditions"].clone();
    let list: Vec<Value> = fresh
        .iter()
        .map(|(kind, message)| {
            let same = old
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == *kind && c["message"] == *message);
            let at = same
                .map(|c| c["lastTransitionTime"].clone())
                .unwrap_or_else(|| json!(time(now)));
            json!({"type": kind, "message": message, "lastTransitionTime": at})
        })
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::Array(list)
    }
}

fn compared_to(app: &Application) -> Value {
    json!({"source": app.source(), "destination": app.spec.destination})
}

/// The patch for a spec that cannot be reconciled.
pub fn invalid(app: &Application, message: &str, now: Timestamp) -> Value {
    json!({"status": {
        "sync": {"status": "Unknown", "comparedTo": compared_to(app)},
        "health": {"status": "Unknown"},
        "conditions": conditions(app, &[("InvalidSpecError", message.to_owned())], now),
        "reconciledAt": time(now),
    }})
}

/// The patch for a source that cannot be loaded or compared: Unknown, the error in a
/// ComparisonError, resources and history untouched.
pub fn comparison_error(app: &Application, message: &str, now: Timestamp) -> Value {
    json!({"status": {
        "sync": {"status": "Unknown", "comparedTo": compared_to(app)},
        "conditions": conditions(app, &[("ComparisonError", message.to_owned())], now),
        "reconciledAt": time(now),
    }})
}

/// The automated policy, when auto-sync is on.
pub fn automated(app: &Application) -> Option<Policy> {
    let policy = app.spec.sync_policy.as_ref()?;
    if !policy.automated_enabled() {
        return None;
    }
    let automated = policy.automated.as_ref()?;
    Some(Policy {
        prune: automated.prune(),
        self_heal: automated.self_heal(),
        allow_empty: automated.allow_empty(),
    })
}

fn parse_time(value: &Value) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

/// The last completed operation, from `status.operationState`.
pub fn last_operation(app: &Application) -> Option<Last> {
    let state = status_json(app)["operationState"].clone();
    let phase = state["phase"].as_str()?;
    if !matches!(phase, "Succeeded" | "Failed" | "Error") {
        return None;
    }
    Some(Last {
        revision: state["syncResult"]["revision"]
            .as_str()
            .or(state["operation"]["sync"]["revision"].as_str())
            .unwrap_or_default()
            .to_owned(),
        succeeded: phase == "Succeeded",
        message: state["message"].as_str().unwrap_or_default().to_owned(),
        finished_at: parse_time(&state["finishedAt"]),
        heal_attempts: state["operation"]["sync"]["autoHealAttemptsCount"]
            .as_i64()
            .unwrap_or(0),
    })
}

/// The operation auto-sync requests (Argo CD's: `initiatedBy.automated`, the policy's prune,
/// the app's sync options, retry as configured or 5 attempts; self-heal syncs only the
/// resources out of sync).
pub fn auto_operation(
    app: &Application,
    revision: &str,
    self_heal: bool,
    heal_attempts: i64,
    comparison: &Comparison,
) -> Value {
    let policy = app.spec.sync_policy.as_ref();
    let prune = automated(app).is_some_and(|p| p.prune);
    let mut sync = json!({"revision": revision, "prune": prune});
    if let Some(options) = policy.and_then(|p| p.sync_options.as_ref()) {
        sync["syncOptions"] = json!(options);
    }
    if heal_attempts > 0 {
        sync["autoHealAttemptsCount"] = json!(heal_attempts);
    }
    if self_heal {
        let resources: Vec<Value> = comparison
            .resources
            .iter()
            .filter(|r| r.out_of_sync)
            .map(|r| json!({"group": r.key.group, "kind": r.key.kind, "name": r.key.name, "namespace": r.key.namespace}))
            .collect();
        sync["resources"] = json!(resources);
    }
    let retry = policy
        .and_then(|p| p.retry.as_ref())
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .unwrap_or_else(|| json!({"limit": 5}));
    json!({"sync": sync, "initiatedBy": {"automated": true}, "retry": retry})
}

fn resources(comparison: &Comparison) -> Value {
    let list: Vec<Value> = comparison
        .resources
        .iter()
        .map(|r| {
            let version = r.api_version.rsplit('/').next().unwrap_or_default();
            let mut entry = json!({
                "version": version,
                "kind": r.key.kind,
                "name": r.key.name,
                "status": if r.out_of_sync { "OutOfSync" } else { "Synced" },
            });
            if !r.key.group.is_empty() {
                entry["group"] = json!(r.key.group);
            }
            if !r.key.namespace.is_empty() {
                entry["namespace"] = json!(r.key.namespace);
            }
            if let Some(health) = &r.health {
                entry["health"] = json!({"status": health.code.as_str()});
                if !health.message.is_empty() {
                    entry["health"]["message"] = json!(health.message);
                }
            }
            if r.requires_pruning {
                entry["requiresPruning"] = json!(true);
            }
            entry
        })
        .collect();
    Value::Array(list)
}

/// The patch after a comparison.
pub fn compared(
    app: &Application,
    revision: &str,
    source_type: &str,
    comparison: &Comparison,
    sync_error: Option<&str>,
    now: Timestamp,
) -> Value {
    let mut fresh: Vec<(&str, String)> = comparison
        .warnings
        .iter()
        .map(|(k, m)| (*k, m.clone()))
        .collect();
    if let Some(message) = sync_error {
        fresh.push(("SyncError", message.to_owned()));
    }
    let (health, mut message) = comparison.health();
    // The paused-Rollout rule (crate::operation): say that the sync went on past it.
    if health == crate::health::HealthCode::Suspended
        && let Some(paused) = status_json(app)["operationState"]["syncResult"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| {
                r["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with(crate::operation::PAUSED_APPLIED))
            })
    {
        message = format!(
            "{} {} is paused{}; the last sync counted it as applied (sluice.dev/sync-wait: Healthy waits for Healthy)",
            paused["kind"].as_str().unwrap_or_default(),
            paused["name"].as_str().unwrap_or_default(),
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            },
        );
    }
    let mut health = json!({"status": health.as_str()});
    if !message.is_empty() {
        health["message"] = json!(message);
    }
    json!({"status": {
        "sync": {
            "status": if comparison.synced() { "Synced" } else { "OutOfSync" },
            "revision": revision,
            "comparedTo": compared_to(app),
        },
        "health": health,
        "resources": resources(comparison),
        "conditions": conditions(app, &fresh, now),
        "reconciledAt": time(now),
        "sourceType": source_type,
        "summary": {"images": comparison.images()},
        "controllerNamespace": app.namespace(),
    }})
}

/// When the current operation started: the running one's start, else now.
pub fn operation_started(app: &Application, now: Timestamp) -> Timestamp {
    let state = &status_json(app)["operationState"];
    if state["phase"] == "Running" {
        return parse_time(&state["startedAt"]).unwrap_or(now);
    }
    now
}

/// The patch recording a new running operation (no task run yet).
pub fn running(app: &Application, operation: &Value, started: Timestamp, revision: &str) -> Value {
    let retry_count = status_json(app)["operationState"]["retryCount"].clone();
    let phase_is_running = status_json(app)["operationState"]["phase"] == "Running";
    let recorded = &status_json(app)["operationState"]["operation"];
    json!({"status": {"operationState": {
        "operation": replacing(recorded, operation),
        "phase": "Running",
        "message": "one or more tasks are running",
        "startedAt": time(started),
        "finishedAt": null,
        "retryCount": if phase_is_running { retry_count } else { Value::Null },
        "syncResult": {"revision": revision, "resources": null},
    }}})
}

/// A merge patch that turns `old` into `new` as a whole: fields of `old` that `new` lacks are
/// removed (`null`), so a new operation does not keep its predecessor's options.
fn replacing(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                let old = old.get(key).unwrap_or(&Value::Null);
                patch.insert(key.clone(), replacing(old, value));
            }
            Value::Object(patch)
        }
        (_, new) => new.clone(),
    }
}

/// The patch recording a running operation's progress: its tasks' results so far.
pub fn progress(
    operation: &Value,
    started: Timestamp,
    revision: &str,
    results: &[ResourceResult],
    message: &str,
) -> Value {
    json!({"status": {"operationState": {
        "operation": operation,
        "phase": "Running",
        "message": message,
        "startedAt": time(started),
        "syncResult": results_json(results, revision, None),
    }}})
}

fn results_json(results: &[ResourceResult], revision: &str, app: Option<&Application>) -> Value {
    let mut result = json!({"resources": results, "revision": revision});
    if let Some(source) = app.and_then(Application::source) {
        result["source"] = json!(source);
    }
    result
}

/// The patch after a failed attempt that will be retried (the tasks start over).
pub fn retrying(
    operation: &Value,
    started: Timestamp,
    revision: &str,
    message: &str,
    retry_count: i64,
    delay: Duration,
    now: Timestamp,
) -> Value {
    let at = now
        .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
        .unwrap_or(now);
    json!({"status": {"operationState": {
        "operation": operation,
        "phase": "Running",
        "message": format!("{message}. Retrying attempt #{retry_count} at {}.", at.strftime("%-I:%M%P")),
        "startedAt": time(started),
        "retryCount": retry_count,
        "syncResult": {"revision": revision, "resources": null},
    }}})
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending<'a> {
    /// The operation.
    pub operation: &'a Value,
    /// When it started.
    pub started: Timestamp,
    /// The revision synced.
    pub revision: &'a str,
    /// Every task's result.
    pub results: &'a [ResourceResult],
    /// `Succeeded`, `Failed` or `Error`.
    pub phase: &'a str,
    /// Argo CD's message.
    pub message: &'a str,
    /// Retries made.
    pub retry_count: i64,
}

/// The patch after the operation ended: its final state, the cleared `operation`, and on
/// success a history entry.
pub fn finished(app: &Application, ending: &Ending<'_>, now: Timestamp) -> Value {
    let Ending {
        operation,
        started,
        revision,
        results,
        phase,
        message,
        retry_count,
    } = *ending;
    let mut patch = json!({
        "operation": null,
        "status": {"operationState": {
            "operation": operation,
            "phase": phase,
            "message": message,
            "startedAt": time(started),
            "finishedAt": time(now),
            "retryCount": if retry_count > 0 { json!(retry_count) } else { Value::Null },
            "syncResult": results_json(results, revision, Some(app)),
        }},
    });
    let dry_run = operation["sync"]["dryRun"].as_bool().unwrap_or(false);
    if phase == "Succeeded" && !dry_run {
        let mut history: Vec<Value> = status_json(app)["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let id = history
            .iter()
            .filter_map(|h| h["id"].as_i64())
            .max()
            .map_or(0, |m| m + 1);
        let source = if operation["sync"]["source"].is_object() {
            operation["sync"]["source"].clone()
        } else {
            json!(app.source())
        };
        history.push(json!({
            "id": id,
            "revision": revision,
            "source": source,
            "deployStartedAt": time(started),
            "deployedAt": time(now),
            "initiatedBy": operation["initiatedBy"],
        }));
        let limit = usize::try_from(app.spec.revision_history_limit()).unwrap_or(0);
        let skip = history.len().saturating_sub(limit);
        patch["status"]["history"] = Value::Array(history.into_iter().skip(skip).collect());
    }
    patch
}

/// Whether a new status differs from the old one only in its timestamps.
pub fn same_but_time(old: &Value, new: &Value) -> bool {
    let mut merged = old.clone();
    if sluice_patch::apply(sluice_patch::PatchKind::Merge, &mut merged, new).is_err() {
        return false;
    }
    let strip = |v: &mut Value| {
        if let Some(map) = v.as_object_mut() {
            map.remove("reconciledAt");
            map.remove("observedAt");
        }
    };
    let (mut a, mut b) = (old.clone(), merged);
    strip(&mut a);
    strip(&mut b);
    a == b
}

/// The age of the last reconciliation recorded in a status.
pub fn reconciled_at(app: &Application) -> Option<Timestamp> {
    parse_time(&status_json(app)["reconciledAt"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_operation_replaces_the_recorded_one() {
        let old = json!({"sync": {"syncOptions": ["Replace=true"], "prune": true},
            "initiatedBy": {"username": "a"}});
        let new = json!({"sync": {"prune": false}, "initiatedBy": {"username": "b"}});
        let patch = replacing(&old, &new);
        assert_eq!(
            patch,
            json!({"sync": {"syncOptions": null, "prune": false},
                "initiatedBy": {"username": "b"}})
        );
    }

    fn app(spec: Value) -> Application {
        serde_json::from_value(
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "argocd"}, "spec": spec}),
        )
        .unwrap()
    }

    fn spec(destination: Value) -> Value {
        json!({"project": "default", "destination": destination,
            "source": {"repoURL": "file:///cd", "path": "."}})
    }

    #[test]
    fn only_this_cluster_is_a_destination() {
        let here = app(spec(json!({"server": IN_CLUSTER, "namespace": "x"})));
        assert_eq!(invalid_spec(&here), None);
        let named = app(spec(json!({"name": "in-cluster", "namespace": "x"})));
        assert_eq!(invalid_spec(&named), None);
        let elsewhere = app(spec(json!({"server": "https://prod.example.com"})));
        let message = invalid_spec(&elsewhere).unwrap();
        assert!(
            message.contains("\"https://prod.example.com\""),
            "{message}"
        );
        let other = app(spec(json!({"name": "prod"})));
        assert!(invalid_spec(&other).unwrap().contains("name \"prod\""));
        let patch = invalid(&elsewhere, &message, Timestamp::from_second(0).unwrap());
        assert_eq!(patch["status"]["conditions"][0]["type"], "InvalidSpecError");
        assert_eq!(patch["status"]["sync"]["status"], "Unknown");
    }

    #[test]
    fn a_finished_sync_records_history_capped_by_the_limit() {
        let mut a = app(json!({"project": "default", "revisionHistoryLimit": 2,
            "destination": {"server": IN_CLUSTER}, "source": {"repoURL": "file:///cd"}}));
        let operation = json!({"sync": {"revision": "abc"}, "initiatedBy": {"automated": true}});
        let t = Timestamp::from_second(100).unwrap();
        for round in 0..3 {
            let revision = format!("rev{round}");
            let ending = Ending {
                operation: &operation,
                started: t,
                revision: &revision,
                results: &[],
                phase: "Succeeded",
                message: "ok",
                retry_count: 0,
            };
            let patch = finished(&a, &ending, t);
            assert_eq!(patch["operation"], Value::Null);
            assert_eq!(patch["status"]["operationState"]["phase"], "Succeeded");
            let mut status = serde_json::to_value(&a.status).unwrap();
            if status.is_null() {
                status = json!({});
            }
            sluice_patch::apply(
                sluice_patch::PatchKind::Merge,
                &mut status,
                &patch["status"],
            )
            .unwrap();
            a.status = serde_json::from_value(status).unwrap();
        }
        let history = serde_json::to_value(&a.status).unwrap()["history"].clone();
        let ids: Vec<i64> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(history[1]["revision"], "rev2");
        let last = last_operation(&a).unwrap();
        assert!(last.succeeded);
    }

    #[test]
    fn several_sources_and_the_hydrator_are_invalid() {
        let sources = app(
            json!({"project": "default", "destination": {"server": IN_CLUSTER},
            "sources": [{"repoURL": "file:///a"}, {"repoURL": "file:///b"}]}),
        );
        assert!(invalid_spec(&sources).unwrap().contains("spec.sources"));
        let hydrator = app(
            json!({"project": "default", "destination": {"server": IN_CLUSTER},
            "sourceHydrator": {"drySource": {"repoURL": "file:///a", "targetRevision": "HEAD", "path": "."},
                "syncSource": {"targetBranch": "env", "path": "."}}}),
        );
        assert!(invalid_spec(&hydrator).unwrap().contains("sourceHydrator"));
    }

    #[test]
    fn statuses_that_differ_only_in_time_are_the_same() {
        let old = json!({"sync": {"status": "Synced"}, "reconciledAt": "2026-01-01T00:00:00Z"});
        let same = json!({"sync": {"status": "Synced"}, "reconciledAt": "2026-01-01T00:05:00Z"});
        let other =
            json!({"sync": {"status": "OutOfSync"}, "reconciledAt": "2026-01-01T00:05:00Z"});
        assert!(same_but_time(&old, &same));
        assert!(!same_but_time(&old, &other));
    }
}
