//! Applications end to end through `sluice app`: the paused-Rollout rule both ways (a canary
//! paused at a step and a blue-green waiting for promotion, default and
//! `sluice.dev/sync-wait: Healthy`), resource actions, rollback, terminate-op, cascading
//! delete, and an app of apps with a wave between its children.

use std::process::Output;

use k8s_openapi::api::{batch::v1::Job, core::v1::ConfigMap};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sluice_testkit::git::{commit, repository};

use super::gitops::{application, apps, as_refs, service_yaml};
use super::gitops_waves::{config_map, job, sync, wait_for};
use super::*;

/// Runs `sluice ARGS --kubeconfig …` (off the test's runtime: it may wait on the controller).
pub(super) async fn sluice(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .arg("--kubeconfig")
            .arg(SHARED.cluster.kubeconfig())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A Rollout of the demo image at `tag`: a canary paused at its second step, or a
/// blue-green waiting for promotion.
pub(super) fn rollout(strategy: &str, tag: &str, scale_down_delay: u32) -> String {
    let strategy = if strategy == "canary" {
        json!({"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}})
    } else {
        json!({"blueGreen": {"activeService": "web-active", "previewService": "web-preview",
            "autoPromotionEnabled": false, "scaleDownDelaySeconds": scale_down_delay}})
    };
    serde_json::to_string(&json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "web", "image": format!("argoproj/rollouts-demo:{tag}"),
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}}]}},
            "strategy": strategy}}))
    .unwrap()
}

async fn posted(ns: &str, revision: &str) -> bool {
    let maps: Api<ConfigMap> = Api::namespaced(client(), ns);
    let prefix = format!("posted-{}-postsync-", &revision[..7]);
    maps.list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|m| m.metadata.name.as_deref().unwrap().starts_with(&prefix))
}

/// The paused-Rollout rule: a commit pauses the Rollout (at a canary step, or waiting for
/// blue-green promotion); by default the PostSync hook runs and the operation succeeds while
/// the Application is Suspended; with `sluice.dev/sync-wait: Healthy` the operation waits
/// until `sluice app actions run … promote-full` makes the Rollout Healthy.
async fn paused_rollout_rule(strategy: &str, strict: bool) {
    let ns = namespace(
        &client(),
        &format!(
            "paused-{}{}",
            strategy.to_lowercase(),
            if strict { "-strict" } else { "" }
        ),
    )
    .await;
    let hook = config_map(
        "posted-",
        json!({"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}),
    )
    .replace("\"name\":\"posted-\"", "\"generateName\":\"posted-\"");
    let files = |tag: &str| {
        vec![
            ("rollout.yaml", rollout(strategy, tag, 30)),
            ("active-service.yaml", service_yaml("web-active")),
            ("preview-service.yaml", service_yaml("web-preview")),
            ("posted.yaml", hook.clone()),
        ]
    };
    let first = files("blue");
    let repo = repository(&as_refs(&first));
    let name = format!("{ns}-app");
    application(
        &name,
        repo.path(),
        &ns,
        json!({"automated": {"prune": true, "selfHeal": true}}),
    )
    .await;
    if strict {
        let patch = json!({"metadata": {"annotations": {"sluice.dev/sync-wait": "Healthy"}}});
        apps()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    wait_for(&name, "Synced and Healthy", 60, |s| {
        s["sync"]["status"] == "Synced"
            && s["health"]["status"] == "Healthy"
            && s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    let second = files("green");
    let revision = commit(repo.path(), &as_refs(&second), "green");
    let on_revision =
        |s: &Value| s["operationState"]["syncResult"]["revision"] == revision.as_str();
    if !strict {
        let s = wait_for(&name, "the operation Succeeded, Suspended", 60, |s| {
            on_revision(s)
                && s["operationState"]["phase"] == "Succeeded"
                && s["health"]["status"] == "Suspended"
        })
        .await;
        assert_eq!(s["sync"]["status"], "Synced", "{s}");
        let message = s["health"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("Rollout web is paused") && message.contains("sync-wait"),
            "{s}"
        );
        assert!(
            s["operationState"]["message"]
                .as_str()
                .unwrap()
                .contains("counted as applied"),
            "{s}"
        );
        assert!(
            posted(&ns, &revision).await,
            "PostSync ran while paused: {s}"
        );
        return;
    }
    let s = wait_for(&name, "Suspended, the operation Running", 60, |s| {
        on_revision(s)
            && s["operationState"]["phase"] == "Running"
            && s["health"]["status"] == "Suspended"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let s2 = apps().get(&name).await.unwrap().data["status"].clone();
    assert_eq!(s2["operationState"]["phase"], "Running", "{s}");
    assert!(!posted(&ns, &revision).await, "PostSync waits: {s2}");
    let out = sluice(&[
        "app",
        "actions",
        "run",
        &name,
        "promote-full",
        "--kind",
        "Rollout",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let s = wait_for(&name, "the operation Succeeded after promotion", 60, |s| {
        on_revision(s) && s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(s["health"]["status"], "Healthy", "{s}");
    assert!(posted(&ns, &revision).await);
}

#[tokio::test]
async fn a_canary_paused_at_a_step_counts_as_applied() {
    paused_rollout_rule("canary", false).await;
}

#[tokio::test]
async fn a_canary_paused_at_a_step_holds_the_sync_when_healthy_is_asked_for() {
    paused_rollout_rule("canary", true).await;
}

#[tokio::test]
async fn a_blue_green_waiting_for_promotion_counts_as_applied() {
    paused_rollout_rule("blueGreen", false).await;
}

#[tokio::test]
async fn a_blue_green_waiting_for_promotion_holds_the_sync_when_healthy_is_asked_for() {
    paused_rollout_rule("blueGreen", true).await;
}

#[tokio::test]
async fn rollback_syncs_a_history_entry_and_is_refused_with_auto_sync() {
    let ns = namespace(&client(), "gitops-rollback").await;
    let version = |v: &str| {
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"}, "data": {"version": v}}))
        .unwrap()
    };
    let repo = repository(&[("settings.yaml", &version("1"))]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    let out = sluice(&["app", "sync", &name, "--timeout", "60s"]).await;
    assert!(
        out.status.success(),
        "{}: {}",
        text(&out),
        apps().get(&name).await.unwrap().data
    );
    let second = commit(repo.path(), &[("settings.yaml", &version("2"))], "two");
    wait_for(&name, "the new revision", 30, |s| {
        s["sync"]["revision"] == second.as_str()
    })
    .await;
    let out = sluice(&["app", "sync", &name, "--timeout", "60s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let data = |m: ConfigMap| m.data.unwrap()["version"].clone();
    assert_eq!(data(maps.get("settings").await.unwrap()), "2");
    // Without an ID: the entry before the latest.
    let out = sluice(&["app", "rollback", &name, "--timeout", "60s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(data(maps.get("settings").await.unwrap()), "1");
    let s = apps().get(&name).await.unwrap().data["status"].clone();
    assert_eq!(s["history"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(s["sync"]["status"], "OutOfSync", "{s}");
    let out = sluice(&["app", "rollback", &name, "1", "--timeout", "60s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(data(maps.get("settings").await.unwrap()), "2");
    // Refused while auto-sync is on, with Argo CD's message.
    let patch = json!({"spec": {"syncPolicy": {"automated": {"prune": true}}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let out = sluice(&["app", "rollback", &name, "0"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("rollback cannot be initiated when auto-sync is enabled"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn terminate_op_ends_a_sync_waiting_on_a_hook() {
    let ns = namespace(&client(), "gitops-terminate").await;
    let files = [
        ("a.yaml", config_map("a", json!({}))),
        (
            "wait.yaml",
            job(
                ("name", "wait"),
                "example.com/listener:1",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            ),
        ),
    ];
    let repo = repository(&as_refs(&files));
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    let out = sluice(&["app", "sync", &name, "--async"]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_for(&name, "waiting on the hook", 30, |s| {
        s["operationState"]["phase"] == "Running"
            && s["operationState"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Job/wait"))
    })
    .await;
    let out = sluice(&["app", "terminate-op", &name]).await;
    assert!(out.status.success(), "{}", text(&out));
    let s = wait_for(&name, "the operation terminated", 30, |s| {
        s["operationState"]["phase"] == "Failed"
    })
    .await;
    assert_eq!(s["operationState"]["message"], "Operation terminated");
    let jobs: Api<Job> = Api::namespaced(client(), &ns);
    eventually("the running hook deleted", || async {
        jobs.get_opt("wait").await.unwrap().is_none()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_cascades_by_default_and_not_with_cascade_false() {
    let ns = namespace(&client(), "gitops-delete").await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    for (app, cascade) in [("kept", false), ("gone", true)] {
        let repo = repository(&[("cm.yaml", &config_map(app, json!({})))]);
        let name = format!("{ns}-{app}");
        application(&name, repo.path(), &ns, json!({"automated": {}})).await;
        eventually("the ConfigMap synced", || async {
            maps.get_opt(app).await.unwrap().is_some()
        })
        .await;
        let mut args = vec!["app", "delete", name.as_str()];
        if !cascade {
            args.push("--cascade=false");
        }
        let out = sluice(&args).await;
        assert!(out.status.success(), "{}", text(&out));
        assert!(apps().get_opt(&name).await.unwrap().is_none());
        assert_eq!(
            maps.get_opt(app).await.unwrap().is_some(),
            !cascade,
            "{app}"
        );
    }
}

#[tokio::test]
async fn an_app_of_apps_waits_for_its_first_child_when_health_is_opted_in() {
    let ns = namespace(&client(), "gitops-appofapps").await;
    // The opt-in: Argo CD's health check for Applications in argocd-cm.
    let maps: Api<ConfigMap> = Api::namespaced(client(), "argocd");
    let cm: ConfigMap = from(json!({"metadata": {"name": "argocd-cm"}, "data": {
        "resource.customizations.health.argoproj.io_Application": "hs = {}\nhs.status = obj.status.health.status\nreturn hs\n"}}));
    sluice_gitops::controller::ensure_home(&client(), "argocd")
        .await
        .unwrap();
    if let Err(e) = maps.create(&Default::default(), &cm).await {
        assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e}");
    }
    let read = maps.get("argocd-cm").await.unwrap();
    assert!(
        read.data
            .unwrap()
            .contains_key("resource.customizations.health.argoproj.io_Application")
    );
    // The controller reads argocd-cm at most every 2 s.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let platform = repository(&[("crd-like.yaml", &config_map("platform", json!({})))]);
    let workload = repository(&[("app.yaml", &config_map("workload", json!({})))]);
    let child = |name: &str, repo: &std::path::Path, wave: &str| {
        serde_json::to_string(&json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": format!("{ns}-{name}"), "annotations": {"argocd.argoproj.io/sync-wave": wave}},
            "spec": {"project": "default",
                "source": {"repoURL": format!("file://{}", repo.display()), "targetRevision": "HEAD", "path": "."},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                "syncPolicy": {"automated": {"prune": true}}}}))
        .unwrap()
    };
    let files = [
        ("platform.yaml", child("platform", platform.path(), "-1")),
        ("workload.yaml", child("workload", workload.path(), "0")),
    ];
    let root_repo = repository(&as_refs(&files));
    let root = format!("{ns}-root");
    application(&root, root_repo.path(), &ns, json!({})).await;
    sync(&root, json!({"prune": true})).await;
    let s = wait_for(&root, "the root synced", 60, |s| {
        s["operationState"]["phase"] == "Succeeded"
    })
    .await;
    let names: Vec<&str> = s["operationState"]["syncResult"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{ns}-platform"), format!("{ns}-workload")],
        "{s}"
    );
    // The children landed in the controller's namespace; the first was Healthy before the
    // second was created.
    let platform_app = apps().get(&format!("{ns}-platform")).await.unwrap();
    let workload_app = apps().get(&format!("{ns}-workload")).await.unwrap();
    let healthy_at: jiff::Timestamp = platform_app.data["status"]["operationState"]["finishedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let created = workload_app.metadata.creation_timestamp.unwrap().0;
    assert!(
        created.as_second() >= healthy_at.as_second(),
        "{created} before {healthy_at}"
    );
    let platform_health = s["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("{ns}-platform"))
        .unwrap()["health"]["status"]
        .clone();
    assert_eq!(platform_health, "Healthy", "{s}");
    let tenant: Api<ConfigMap> = Api::namespaced(client(), &ns);
    eventually("the workload child synced", || async {
        tenant.get_opt("workload").await.unwrap().is_some()
    })
    .await;
}
