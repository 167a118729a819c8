//! Helm sources through the controller and the real `helm`: a chart in a private Git
//! repository over smart HTTP (password Secret) with value files, inline values, parameters and
//! a Helm hook, beside the seed's kustomize overlay, both refreshed by one push webhook; and a chart from a private Helm chart repository,
//! its version picked by a constraint, upgraded when the index gains a version.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use sluice_testkit::{git::commit, git_http::GitHttp};

use super::gitops::{
    MANDELBROT_DEPLOYMENT, app_status, apps, automated, cloud_overlay, create_application, post,
    push, served_repository, sync_is, until,
};
use super::*;

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const VALUES: &str = "color: blue\nreplicas: 1\ntag: latest\n";
const CONFIG: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  color: {{ .Values.color | quote }}
  replicas: {{ .Values.replicas | quote }}
  tag: {{ .Values.tag | quote }}
  chart: {{ .Chart.Version | quote }}
  namespace: {{ .Release.Namespace | quote }}
"#;
const HOOK: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-migrated
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
data:
  done: "yes"
"#;

/// The seed's base settings at `tier`.
fn settings(tier: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  cloud: none\n  tier: {tier}\n"
    )
}

fn helm_present() -> bool {
    sluice_testkit::process::tool("helm", "scripts/test.sh installs it").is_some()
}

/// A repository Secret for `url` (`type` git or helm) with a username and password.
async fn repository_secret(name: &str, kind: &str, url: &str, password: &str) {
    let secrets: Api<Secret> = Api::namespaced(client(), "argocd");
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"type": kind, "url": url, "username": "ci-bot", "password": password},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Deletes the Application `name` and the repository Secret `secret`.
async fn remove(name: &str, secret: &str) {
    apps().delete(name, &DeleteParams::default()).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client(), "argocd");
    secrets
        .delete(secret, &DeleteParams::default())
        .await
        .unwrap();
}

async fn config(ns: &str, name: &str) -> Option<Value> {
    let maps: Api<ConfigMap> = Api::namespaced(client(), ns);
    let map = maps.get_opt(name).await.unwrap()?;
    Some(serde_json::to_value(map.data).unwrap())
}

fn no_password_in(status: &Value, password: &str) {
    assert!(!status.to_string().contains(password), "{status}");
}

/// The issue's "done when": the seed's kustomize overlay and a chart in the same private Git
/// repository (smart HTTP, password Secret) sync — for the chart, value files, `valuesObject`,
/// a parameter and the release name render and the Helm hook is applied as a PreSync hook —
/// and a commit to both is applied on one push webhook's word.
#[tokio::test]
async fn a_chart_and_an_overlay_in_a_private_git_repository_sync_and_follow_a_webhook() {
    if !helm_present() {
        return;
    }
    let ns = namespace(&client(), "gitops-helm").await;
    let root = tempfile::tempdir().unwrap();
    let password = "helm-pw-41ad-never-shown";
    let server = GitHttp::start_private(root.path().to_owned(), "ci-bot", password)
        .await
        .unwrap();
    let work = served_repository(
        root.path(),
        "charts.git",
        &[
            ("charts/web/Chart.yaml", CHART),
            ("charts/web/values.yaml", VALUES),
            ("charts/web/values-prod.yaml", "replicas: 3\n"),
            ("charts/web/templates/config.yaml", CONFIG),
            ("charts/web/templates/migrate.yaml", HOOK),
            (
                "apps/mandelbrot/base/kustomization.yaml",
                "resources:\n- deployment.yaml\n- settings.yaml\n",
            ),
            (
                "apps/mandelbrot/base/deployment.yaml",
                MANDELBROT_DEPLOYMENT,
            ),
            ("apps/mandelbrot/base/settings.yaml", &settings("one")),
            (
                "apps/mandelbrot/overlays/aws/kustomization.yaml",
                &cloud_overlay("aws"),
            ),
        ],
    );
    let url = server.url("charts.git");
    let secret = format!("{ns}-repo");
    repository_secret(&secret, "git", &url, password).await;
    let hook =
        sluice_gitops::webhook::listener::start("127.0.0.1:0".parse().unwrap(), client(), "argocd")
            .await
            .unwrap();
    let name = format!("{ns}-app");
    let source = json!({
        "repoURL": url, "targetRevision": "main", "path": "charts/web",
        "helm": {
            "releaseName": "shop",
            "valueFiles": ["values-prod.yaml"],
            "valuesObject": {"color": "green"},
            "parameters": [{"name": "tag", "value": "v1"}],
        },
    });
    create_application(&name, "default", source, &ns, automated()).await;
    let overlay = format!("{ns}-aws");
    let overlay_source = json!({
        "repoURL": url, "targetRevision": "main", "path": "apps/mandelbrot/overlays/aws",
        "kustomize": {"replicas": [{"name": "web", "count": 0}]},
    });
    create_application(&overlay, "default", overlay_source, &ns, automated()).await;
    let s = until(&overlay, "the overlay Synced", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    assert_eq!(s["sourceType"], "Kustomize", "{s}");
    assert_eq!(
        config(&ns, "aws-settings").await,
        Some(json!({"cloud": "aws", "tier": "one"}))
    );
    let s = until(&name, "Synced and Healthy", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    assert_eq!(s["sourceType"], "Helm", "{s}");
    assert_eq!(
        config(&ns, "shop-config").await,
        Some(
            json!({"color": "green", "replicas": "3", "tag": "v1", "chart": "0.1.0",
            "namespace": ns})
        )
    );
    let hook_map = config(&ns, "shop-migrated").await;
    assert_eq!(
        hook_map,
        Some(json!({"done": "yes"})),
        "the pre-install hook"
    );
    let phases = s["operationState"]["syncResult"]["resources"].to_string();
    assert!(
        phases.contains("PreSync"),
        "the hook ran as PreSync: {phases}"
    );

    // A commit, then GitLab's push webhook (no GitLab secret is configured: unsigned is
    // accepted, as in Argo CD).
    commit(
        work.path(),
        &[
            ("charts/web/values-prod.yaml", "replicas: 5\n"),
            ("apps/mandelbrot/base/settings.yaml", &settings("two")),
        ],
        "five, tier two",
    );
    push(work.path(), root.path(), "charts.git");
    let payload = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "project": {"web_url": url.trim_end_matches(".git"), "default_branch": "main"},
    }))
    .unwrap();
    let (status, body) = post(hook, "POST", &[("X-Gitlab-Event", "Push Hook")], &payload).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "refreshed 2 application(s)\n")
    );
    eventually(
        "replicas 5 and tier two applied after the webhook",
        || async {
            let chart = config(&ns, "shop-config").await;
            let overlay = config(&ns, "aws-settings").await;
            chart.is_some_and(|d| d["replicas"] == "5")
                && overlay.is_some_and(|d| d["tier"] == "two")
        },
    )
    .await;
    no_password_in(&app_status(&name).await, password);
    no_password_in(&app_status(&overlay).await, password);
    apps()
        .delete(&overlay, &DeleteParams::default())
        .await
        .unwrap();
    remove(&name, &secret).await;
}

/// Packages `version` of a chart into `repo` and indexes the repository with `helm`.
fn publish(chart: &Path, repo: &Path, version: &str) {
    for args in [
        vec![
            "package",
            chart.to_str().unwrap(),
            "--version",
            version,
            "--destination",
            repo.to_str().unwrap(),
        ],
        vec!["repo", "index", repo.to_str().unwrap()],
    ] {
        let out = std::process::Command::new("helm")
            .args(&args)
            .env("HELM_CONFIG_HOME", repo.join(".helm"))
            .env("HELM_CACHE_HOME", repo.join(".helm"))
            .output()
            .unwrap();
        assert!(out.status.success(), "helm {args:?}: {out:?}");
    }
}

/// A chart repository source: refused without credentials, then the newest version the
/// constraint admits, a newer one once the index has it and a refresh is asked for.
#[tokio::test]
async fn a_chart_from_a_private_helm_repository_follows_its_version_constraint() {
    if !helm_present() {
        return;
    }
    let ns = namespace(&client(), "gitops-chartrepo").await;
    let root = tempfile::tempdir().unwrap();
    let chart = tempfile::tempdir().unwrap();
    let files = [
        ("Chart.yaml", CHART.replace("name: web", "name: demo")),
        ("values.yaml", VALUES.to_owned()),
        ("templates/config.yaml", CONFIG.to_owned()),
    ];
    for (path, text) in &files {
        let path = chart.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let repo = root.path().join("charts");
    std::fs::create_dir_all(&repo).unwrap();
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        publish(chart.path(), &repo, version);
    }
    let password = "chart-pw-93be-never-shown";
    let server = GitHttp::start_private(root.path().to_owned(), "ci-bot", password)
        .await
        .unwrap();
    let url = server.url("charts");
    let name = format!("{ns}-app");
    let source = json!({
        "repoURL": url, "chart": "demo", "targetRevision": "^1.0.0",
        "helm": {"valuesObject": {"tag": "from-values"}},
    });
    create_application(&name, "default", source, &ns, automated()).await;
    let s = until(&name, "refused without credentials", |s| {
        s["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ComparisonError"))
    })
    .await;
    assert!(s.to_string().contains("401"), "{s}");

    let secret = format!("{ns}-charts");
    repository_secret(&secret, "helm", &url, password).await;
    let s = until(&name, "Synced at 1.1.0", |s| {
        sync_is(s, "Synced", "Healthy") && s["sync"]["revision"] == "1.1.0"
    })
    .await;
    assert_eq!(s["sourceType"], "Helm", "{s}");
    let data = config(&ns, &format!("{name}-config")).await.unwrap();
    assert_eq!(
        (&data["chart"], &data["tag"]),
        (&json!("1.1.0"), &json!("from-values"))
    );

    publish(chart.path(), &repo, "1.2.0");
    let refresh = json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&refresh))
        .await
        .unwrap();
    let s = until(&name, "Synced at 1.2.0", |s| {
        sync_is(s, "Synced", "Healthy") && s["sync"]["revision"] == "1.2.0"
    })
    .await;
    eventually("1.2.0 applied", || async {
        config(&ns, &format!("{name}-config"))
            .await
            .is_some_and(|d| d["chart"] == "1.2.0")
    })
    .await;
    no_password_in(&s, password);
    remove(&name, &secret).await;
}
