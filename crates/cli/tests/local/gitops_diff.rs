//! `sluice app diff` end to end: everything `+` before the first sync, nothing after it (exit
//! 0), then a commit's change, a Secret's change masked and a resource to prune (exit 1), and
//! an unknown Application (exit 2); `ignoreDifferences` by jq expression and by manager;
//! `ServerSideApply=true` and server-side diff.

use std::process::Output;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sluice_testkit::git::{commit, repository};

use super::gitops::{application, apps};
use super::gitops_apps::sluice;
use super::gitops_waves::wait_for;
use super::*;

fn settings(version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: \"{version}\"\n"
    )
}

fn secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: login\nstringData:\n  password: {password}\n  user: admin\n"
    )
}

const EXTRA: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n";

/// `sluice app diff NAME`'s output, its exit status asserted.
async fn app_diff(name: &str, code: i32) -> String {
    let out = sluice(&["app", "diff", name]).await;
    let diff = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{diff}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    diff
}

/// `sluice app sync NAME`, which must succeed.
async fn sync_app(name: &str) {
    let out = sluice(&["app", "sync", name, "--timeout", "60s"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Lines of a unified diff that remove (`-`) or add (`+`) a line containing every needle.
fn changed(diff: &str, sign: char, needles: &[&str]) -> bool {
    diff.lines().any(|line| {
        line.starts_with(sign)
            && !line.starts_with("---")
            && !line.starts_with("+++")
            && needles.iter().all(|n| line.contains(n))
    })
}

#[tokio::test]
async fn app_diff_shows_what_a_sync_would_change_with_argocds_exit_codes() {
    let ns = namespace(&client(), "gitops-diff").await;
    let repo = repository(&[
        ("settings.yaml", &settings("1")),
        ("secret.yaml", &secret("one")),
        ("extra.yaml", EXTRA),
    ]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    wait_for(&name, "a comparison", 30, |s| {
        s["sync"]["status"] == "OutOfSync"
    })
    .await;

    // Before the first sync: every resource is all `+`.
    let diff = app_diff(&name, 1).await;
    assert!(
        diff.contains(&format!("===== /ConfigMap {ns}/settings ======")),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("===== /Secret {ns}/login ======")),
        "{diff}"
    );
    assert!(changed(&diff, '+', &["version", "1"]), "{diff}");
    assert!(!changed(&diff, '-', &["version"]), "{diff}");

    sync_app(&name).await;
    assert_eq!(app_diff(&name, 0).await.trim(), "");

    // A commit changes a value and a password and drops a resource.
    std::fs::remove_file(repo.path().join("extra.yaml")).unwrap();
    let second = commit(
        repo.path(),
        &[
            ("settings.yaml", &settings("2")),
            ("secret.yaml", &secret("two")),
        ],
        "two",
    );
    wait_for(&name, "the new revision compared", 30, |s| {
        s["sync"]["revision"] == second.as_str()
            && s["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["requiresPruning"] == true))
    })
    .await;
    let diff = app_diff(&name, 1).await;
    assert!(changed(&diff, '-', &["version", "1"]), "{diff}");
    assert!(changed(&diff, '+', &["version", "2"]), "{diff}");
    // The Secret: its changed value masked, the unchanged one the same on both sides, and
    // neither value (nor its base64) printed.
    assert!(
        diff.contains(&format!("===== /Secret {ns}/login ======")),
        "{diff}"
    );
    assert!(changed(&diff, '+', &["password", "+++++++++"]), "{diff}");
    assert!(!changed(&diff, '+', &["user"]), "{diff}");
    for secret in ["one", "two", "b25l", "dHdv", "YWRtaW4"] {
        assert!(!diff.contains(secret), "{secret} printed: {diff}");
    }
    // The resource Git no longer has: all `-`.
    assert!(
        diff.contains(&format!("===== /ConfigMap {ns}/extra ======")),
        "{diff}"
    );
    assert!(changed(&diff, '-', &["name: extra"]), "{diff}");
    // A diff changes nothing.
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let live = maps.get("settings").await.unwrap().data.unwrap();
    assert_eq!(live["version"], "1");

    // An unknown Application: exit 2.
    let out = sluice(&["app", "diff", "no-such-app"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

fn resource_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .map_or(&Value::Null, |r| &r["status"])
}

/// `ignoreDifferences` by jq expression and by field manager: a hand edit of an ignored
/// field leaves the Application Synced (and `app diff` empty), one of a field no rule names
/// does not; an expression that does not compile is a ComparisonError naming it.
#[tokio::test]
async fn ignore_differences_by_jq_expression_and_by_manager() {
    let ns = namespace(&client(), "gitops-ignore-jq").await;
    let map = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  version: \"1\"\n  other: x\n"
        )
    };
    let repo = repository(&[
        ("by-jq.yaml", &map("by-jq")),
        ("by-manager.yaml", &map("by-manager")),
        ("control.yaml", &map("control")),
    ]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    let rules = json!({"spec": {"ignoreDifferences": [
        {"kind": "ConfigMap", "name": "by-jq",
         "jqPathExpressions": [".data | select(.other == \"x\") | .version"]},
        {"kind": "ConfigMap", "name": "by-manager", "managedFieldsManagers": ["hand-edit"]},
    ]}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&rules))
        .await
        .unwrap();
    sync_app(&name).await;

    // Hand edits of `version` in all three, by the manager `hand-edit`.
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let edit = PatchParams {
        field_manager: Some("hand-edit".into()),
        ..PatchParams::default()
    };
    for map in ["by-jq", "by-manager", "control"] {
        let patch = json!({"data": {"version": "edited"}});
        maps.patch(map, &edit, &Patch::Merge(&patch)).await.unwrap();
    }
    let s = wait_for(&name, "the control map out of sync", 30, |s| {
        resource_status(s, "control") == "OutOfSync"
    })
    .await;
    assert_eq!(resource_status(&s, "by-jq"), "Synced", "{s}");
    assert_eq!(resource_status(&s, "by-manager"), "Synced", "{s}");
    let diff = app_diff(&name, 1).await;
    assert!(
        diff.contains(&format!("/ConfigMap {ns}/control ")),
        "{diff}"
    );
    assert!(
        !diff.contains("by-jq") && !diff.contains("by-manager"),
        "{diff}"
    );

    // An expression that does not compile: a ComparisonError naming it.
    let broken = json!({"spec": {"ignoreDifferences": [
        {"kind": "ConfigMap", "jqPathExpressions": [".data["]}]}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&broken))
        .await
        .unwrap();
    let s = wait_for(&name, "a ComparisonError", 30, |s| {
        s["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == "ComparisonError"
                    && c["message"].as_str().is_some_and(|m| m.contains(".data["))
            })
        })
    })
    .await;
    assert!(s["conditions"].is_array());
}

fn result_message(s: &Value, name: &str) -> String {
    s["operationState"]["syncResult"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .and_then(|r| r["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// `ServerSideApply=true`: objects are server-side applied by `argocd-controller` (no
/// last-applied annotation, an `Apply` entry in managedFields, kubectl's `serverside-applied`),
/// one annotated `ServerSideApply=false` is applied client-side, and a field another manager
/// took is taken back at the next sync (`--force-conflicts`).
#[tokio::test]
async fn server_side_apply_writes_as_argocd_controller_and_takes_fields_back() {
    let ns = namespace(&client(), "gitops-ssa").await;
    let csa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: csa\n  annotations:\n    argocd.argoproj.io/sync-options: ServerSideApply=false\ndata:\n  a: \"1\"\n";
    let repo = repository(&[("ssa.yaml", &settings("1")), ("csa.yaml", csa)]);
    let name = format!("{ns}-app");
    application(
        &name,
        repo.path(),
        &ns,
        json!({"syncOptions": ["ServerSideApply=true"]}),
    )
    .await;
    sync_app(&name).await;
    let s = wait_for(&name, "synced", 30, |s| s["sync"]["status"] == "Synced").await;
    assert_eq!(
        result_message(&s, "settings"),
        "configmap/settings serverside-applied",
        "{s}"
    );
    assert_eq!(result_message(&s, "csa"), "configmap/csa created", "{s}");
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let live = maps.get("settings").await.unwrap();
    let annotations = live.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"),
        "{annotations:?}"
    );
    let managers = live.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("argocd-controller")
                && m.operation.as_deref() == Some("Apply")),
        "{managers:?}"
    );
    let csa_live = maps.get("csa").await.unwrap();
    assert!(
        csa_live
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );

    // Another manager applies the field; the next sync takes it back.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings"}, "data": {"version": "theirs"}});
    maps.patch(
        "settings",
        &PatchParams::apply("someone-else").force(),
        &Patch::Apply(&other),
    )
    .await
    .unwrap();
    wait_for(&name, "out of sync", 30, |s| {
        s["sync"]["status"] == "OutOfSync"
    })
    .await;
    sync_app(&name).await;
    let data = maps.get("settings").await.unwrap().data.unwrap();
    assert_eq!(data["version"], "1");
    wait_for(&name, "synced again", 30, |s| {
        s["sync"]["status"] == "Synced"
    })
    .await;
}

/// Server-side diff (`compare-options: ServerSideDiff=true` on the Application): a key
/// dropped from a server-side applied ConfigMap is drift, as the server's dry run predicts
/// (a client-side two-way diff cannot see it), `app diff` shows it going, and the sync
/// removes it.
#[tokio::test]
async fn server_side_diff_sees_a_field_the_manager_no_longer_applies() {
    let ns = namespace(&client(), "gitops-ssd").await;
    let with_other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: \"1\"\n  other: x\n";
    let repo = repository(&[("settings.yaml", with_other)]);
    let name = format!("{ns}-app");
    application(
        &name,
        repo.path(),
        &ns,
        json!({"syncOptions": ["ServerSideApply=true"]}),
    )
    .await;
    let annotate = json!({"metadata": {"annotations": {
        "argocd.argoproj.io/compare-options": "ServerSideDiff=true"}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    sync_app(&name).await;
    wait_for(&name, "synced", 30, |s| s["sync"]["status"] == "Synced").await;
    assert_eq!(app_diff(&name, 0).await.trim(), "");

    let second = commit(
        repo.path(),
        &[("settings.yaml", &settings("1"))],
        "no other",
    );
    wait_for(&name, "the dropped key seen as drift", 30, |s| {
        s["sync"]["revision"] == second.as_str() && s["sync"]["status"] == "OutOfSync"
    })
    .await;
    let diff = app_diff(&name, 1).await;
    assert!(changed(&diff, '-', &["other", "x"]), "{diff}");
    sync_app(&name).await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let data = maps.get("settings").await.unwrap().data.unwrap();
    assert!(!data.contains_key("other"), "{data:?}");
    wait_for(&name, "synced again", 30, |s| {
        s["sync"]["status"] == "Synced"
    })
    .await;
}
