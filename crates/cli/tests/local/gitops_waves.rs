//! Sync waves and hooks on the embedded cluster (waves 300 ms apart here): the order of a
//! sync with waves −1/0/1 and hooks in every phase, read from the operation's `syncResult`
//! and the objects; a failing PreSync hook stopping the sync and running SyncFail; delete
//! policies; PruneLast and prune waves in reverse; the paused-Rollout rule both ways.

use std::time::Duration;

use k8s_openapi::api::{batch::v1::Job, core::v1::ConfigMap};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sluice_testkit::git::{commit, git, repository};

use super::gitops::{app_status, application, apps, as_refs, service_yaml};
use super::*;

/// Waits up to `seconds` until the Application's status satisfies `check`.
pub(super) async fn wait_for(
    name: &str,
    what: &str,
    seconds: u64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        let status = app_status(name).await;
        if check(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {name}: {what}; status: {}",
        app_status(name).await
    );
}

pub(super) fn config_map(name: &str, annotations: Value) -> String {
    serde_json::to_string(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "annotations": annotations}, "data": {"a": "1"}}))
    .unwrap()
}

pub(super) fn job(name_field: (&str, &str), image: &str, annotations: Value) -> String {
    serde_json::to_string(&json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {name_field.0: name_field.1, "annotations": annotations},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "hook", "image": image}]}}}}))
    .unwrap()
}

/// Asks for a sync as `argocd app sync` does: the `operation` field.
pub(super) async fn sync(name: &str, sync: Value) {
    let patch = json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}});
    apps()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn finished(s: &Value) -> bool {
    matches!(
        s["operationState"]["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Error")
    )
}

fn steps(s: &Value) -> Vec<String> {
    s["operationState"]["syncResult"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {}/{} {} {}",
                r["syncPhase"].as_str().unwrap_or_default(),
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["hookType"].as_str().unwrap_or("-"),
                r["hookPhase"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

fn resource_version(map: &ConfigMap) -> u64 {
    map.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_sync_runs_phases_waves_and_kinds_in_order_with_hooks() {
    let ns = namespace(&client(), "gitops-waves").await;
    let hook = |phase: &str| json!({"argocd.argoproj.io/hook": phase});
    let files = [
        (
            "early.yaml",
            config_map("early", json!({"argocd.argoproj.io/sync-wave": "-1"})),
        ),
        ("b.yaml", config_map("b", json!({}))),
        ("service.yaml", service_yaml("web")),
        (
            "late.yaml",
            config_map("late", json!({"argocd.argoproj.io/sync-wave": "1"})),
        ),
        ("skipped.yaml", config_map("skipped", hook("Skip"))),
        (
            "migrate.yaml",
            job(
                ("generateName", "migrate-"),
                "example.com/migrate:1",
                hook("PreSync"),
            ),
        ),
        (
            "smoke.yaml",
            job(
                ("name", "smoke"),
                "example.com/smoke-test:1",
                json!({"argocd.argoproj.io/hook": "PostSync",
                    "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
            ),
        ),
        (
            "during.yaml",
            config_map(
                "during",
                json!({"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "1"}),
            ),
        ),
        ("on-fail.yaml", config_map("on-fail", hook("SyncFail"))),
    ];
    let repo = repository(&as_refs(&files));
    let revision = git(repo.path(), &["rev-parse", "HEAD"]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    sync(&name, json!({"prune": true})).await;
    let s = wait_for(&name, "the sync to end", 60, finished).await;
    assert_eq!(s["operationState"]["phase"], "Succeeded", "{s}");
    let started: jiff::Timestamp = s["operationState"]["startedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let migrate = format!("migrate-{}-presync-{}", &revision[..7], started.as_second());
    assert_eq!(
        steps(&s),
        [
            format!("PreSync Job/{migrate} PreSync Succeeded"),
            "Sync ConfigMap/early - Succeeded".into(),
            "Sync ConfigMap/b - Succeeded".into(),
            "Sync Service/web - Succeeded".into(),
            "Sync ConfigMap/during Sync Succeeded".into(),
            "Sync ConfigMap/late - Succeeded".into(),
            "PostSync Job/smoke PostSync Succeeded".into(),
        ]
    );
    // Hooks are not the Application's resources; Skip is never applied; SyncFail did not run.
    let kinds: Vec<&str> = s["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["b", "early", "late", "web"], "{s}");
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("skipped").await.unwrap().is_none());
    assert!(maps.get_opt("on-fail").await.unwrap().is_none());
    // The creation order, from the store's resource versions.
    let version = |n: &'static str| {
        let maps = maps.clone();
        async move { resource_version(&maps.get(n).await.unwrap()) }
    };
    assert!(version("early").await < version("b").await);
    assert!(version("b").await < version("late").await);
    // BeforeHookCreation (the default) keeps the PreSync Job, without the hook finalizer;
    // HookSucceeded deletes the PostSync one.
    let jobs: Api<Job> = Api::namespaced(client(), &ns);
    let kept = jobs.get(&migrate).await.unwrap();
    assert!(
        !kept
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "argocd.argoproj.io/hook-finalizer")
    );
    eventually("the PostSync Job deleted", || async {
        jobs.get_opt("smoke").await.unwrap().is_none()
    })
    .await;
    assert_eq!(app_status(&name).await["sync"]["status"], "Synced");
}

#[tokio::test]
async fn a_failing_pre_sync_hook_stops_the_sync_and_runs_sync_fail() {
    let ns = namespace(&client(), "gitops-hookfail").await;
    let files = [
        ("never.yaml", config_map("never", json!({}))),
        (
            "check.yaml",
            job(
                ("name", "check"),
                "example.com/exits:1",
                json!({"argocd.argoproj.io/hook": "PreSync",
                    "argocd.argoproj.io/hook-delete-policy": "HookFailed"}),
            ),
        ),
        (
            "report.yaml",
            config_map("report", json!({"argocd.argoproj.io/hook": "SyncFail"})),
        ),
    ];
    let repo = repository(&as_refs(&files));
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    sync(&name, json!({})).await;
    let s = wait_for(&name, "the sync to end", 60, finished).await;
    assert_eq!(s["operationState"]["phase"], "Failed", "{s}");
    assert_eq!(
        s["operationState"]["message"],
        "one or more synchronization tasks completed unsuccessfully"
    );
    assert_eq!(
        steps(&s),
        [
            "PreSync Job/check PreSync Failed",
            "SyncFail ConfigMap/report SyncFail Succeeded",
        ]
    );
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("never").await.unwrap().is_none());
    assert!(maps.get_opt("report").await.unwrap().is_some());
    // HookFailed: the failed hook is deleted.
    let jobs: Api<Job> = Api::namespaced(client(), &ns);
    eventually("the failed hook deleted", || async {
        jobs.get_opt("check").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn prune_waves_run_in_reverse_and_prune_last_goes_last() {
    let ns = namespace(&client(), "gitops-prunelast").await;
    let wave = |w: &str| json!({"argocd.argoproj.io/sync-wave": w});
    let files = [
        ("keep.yaml", config_map("keep", json!({}))),
        ("x.yaml", config_map("x", wave("0"))),
        ("y.yaml", config_map("y", wave("1"))),
        (
            "z.yaml",
            config_map(
                "z",
                json!({"argocd.argoproj.io/sync-options": "PruneLast=true"}),
            ),
        ),
    ];
    let repo = repository(&as_refs(&files));
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    sync(&name, json!({})).await;
    wait_for(&name, "the first sync", 30, |s| {
        s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    for file in ["x.yaml", "y.yaml", "z.yaml"] {
        std::fs::remove_file(repo.path().join(file)).unwrap();
    }
    let changed = config_map("keep", json!({"changed": "yes"}));
    let second = commit(repo.path(), &[("keep.yaml", &changed)], "prune");
    wait_for(&name, "the new revision", 30, |s| {
        s["sync"]["revision"] == second.as_str()
    })
    .await;
    sync(&name, json!({"prune": true})).await;
    // `startedAt` has whole seconds: both syncs may start in the same one, so the prune sync
    // is told by its operation.
    let s = wait_for(&name, "the prune sync", 30, |s| {
        finished(s) && s["operationState"]["operation"]["sync"]["prune"] == true
    })
    .await;
    assert_eq!(s["operationState"]["phase"], "Succeeded", "{s}");
    // Prune waves mirrored (y, of wave 1, first; x after); PruneLast after everything.
    assert_eq!(
        steps(&s),
        [
            "Sync ConfigMap/y - Succeeded",
            "Sync ConfigMap/keep - Succeeded",
            "Sync ConfigMap/x - Succeeded",
            "Sync ConfigMap/z - Succeeded",
        ]
    );
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    for gone in ["x", "y", "z"] {
        assert!(maps.get_opt(gone).await.unwrap().is_none(), "{gone}");
    }
}
