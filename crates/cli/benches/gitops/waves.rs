//! Parts 4 and 5 of the GitOps benchmark: a sync of 3 waves × 50 objects with Argo CD's wave
//! delay and without, and commit → preview pods Ready through the whole loop.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;
use sluice_testkit::git::git;

use super::common::Child;
use super::{applications, commit_all, create_app, percentiles, write};

/// `sluice controller --controllers CONTROLLERS` against the bench's cluster, with
/// `ARGOCD_SYNC_WAVE_DELAY` when given.
pub fn controller(
    kubeconfig: &Path,
    cache: &Path,
    controllers: &str,
    wave_delay: Option<&str>,
    webhook: Option<std::net::SocketAddr>,
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args([
            "controller",
            "--controllers",
            controllers,
            "--leader-elect=false",
        ])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--app-resync",
            "5s",
            "--app-resync-jitter",
            "1s",
            "--cache-dir",
        ])
        .arg(cache)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::null());
    if let Some(address) = webhook {
        command.args(["--webhook-listen", address.to_string().as_str()]);
    }
    if let Some(delay) = wave_delay {
        command.env("ARGOCD_SYNC_WAVE_DELAY", delay);
    }
    Child(command.spawn().unwrap())
}

fn wave_map(name: &str, wave: i32) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/sync-wave: \"{wave}\"\ndata:\n  value: \"1\"\n"
    )
}

/// One manual sync of 3 waves × 50 ConfigMaps: from the operation patch to Succeeded.
async fn three_waves(client: &Client, name: &str) -> Duration {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    for wave in -1..=1 {
        for i in 0..50 {
            let object = format!("{name}-w{}-{i}", wave + 1);
            write(
                repo.path(),
                &format!("{object}.yaml"),
                &wave_map(&object, wave),
            );
        }
    }
    commit_all(repo.path(), "waves");
    let url = format!("file://{}", repo.path().display());
    create_app(client, name, &url, "", "default", false).await;
    let apps = applications(client);
    let t = Instant::now();
    while apps.get(name).await.unwrap().data["status"]["sync"]["status"] != "OutOfSync" {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{name} never compared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let operation = json!({"operation": {"sync": {}, "initiatedBy": {"username": "bench"}}});
    let t = Instant::now();
    apps.patch(name, &PatchParams::default(), &Patch::Merge(&operation))
        .await
        .unwrap();
    loop {
        let app = apps.get(name).await.unwrap();
        if app.data["operation"].is_null()
            && app.data["status"]["operationState"]["phase"] == "Succeeded"
        {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(120), "{name} did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rollout(tag: usize) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: example.com/web:{tag}
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 5
"#
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n"
    )
}

/// The preview Service's ReplicaSet hash when `replicas` of its pods are Ready.
async fn preview_ready(client: &Client, ns: &str, previous: &str) -> Option<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let preview = services.get_opt("web-preview").await.ok()??;
    let hash = preview
        .spec?
        .selector?
        .get("rollouts-pod-template-hash")?
        .clone();
    if hash == previous {
        return None;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("rollouts-pod-template-hash={hash}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .ok()?;
    let ready = list
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    (ready >= 2).then_some(hash)
}

/// Commit → preview pods Ready over `rounds` commits, each promoted before the next.
async fn whole_loop(client: &Client, kubeconfig: &Path, rounds: usize) -> (f64, f64) {
    let ns = "loop";
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let object = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    namespaces
        .create(&Default::default(), &object)
        .await
        .unwrap();
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    write(repo.path(), "rollout.yaml", &rollout(0));
    write(repo.path(), "active-service.yaml", &service("web-active"));
    write(repo.path(), "preview-service.yaml", &service("web-preview"));
    write(repo.path(), "config.yaml", &wave_map("web-config", -1));
    commit_all(repo.path(), "v0");
    let url = format!("file://{}", repo.path().display());
    create_app(client, "loop", &url, "", ns, true).await;
    let apps = applications(client);
    let healthy = || async {
        let app = apps.get("loop").await.unwrap();
        app.data["status"]["health"]["status"] == "Healthy"
            && app.data["status"]["sync"]["status"] == "Synced"
    };
    let t = Instant::now();
    while !healthy().await {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the loop app never got Healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let active_hash = || async {
        let active = services.get("web-active").await.unwrap();
        active.spec.unwrap().selector.unwrap()["rollouts-pod-template-hash"].clone()
    };
    let mut samples = Vec::new();
    for round in 1..=rounds {
        let previous = active_hash().await;
        write(repo.path(), "rollout.yaml", &rollout(round));
        commit_all(repo.path(), &format!("v{round}"));
        let t = Instant::now();
        loop {
            if preview_ready(client, ns, &previous).await.is_some() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "round {round}: no preview"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(t.elapsed());
        // Promoted once paused (a promote before the pause lands is retried).
        let t = Instant::now();
        let mut last_promote: Option<Instant> = None;
        while active_hash().await == previous {
            if last_promote.is_none_or(|at| at.elapsed() > Duration::from_secs(2)) {
                let promoted = Command::new(env!("CARGO_BIN_EXE_sluice"))
                    .args(["promote", "web", "-n", ns, "--kubeconfig"])
                    .arg(kubeconfig)
                    .output()
                    .unwrap();
                assert!(promoted.status.success(), "{promoted:?}");
                last_promote = Some(Instant::now());
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "round {round}: not promoted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    percentiles(samples)
}

/// Parts 4 and 5, each with its own controller process.
pub async fn run(client: &Client, dir: &Path, kubeconfig: &Path) {
    let cache = dir.join("repos");
    let gitops = controller(kubeconfig, &cache, "gitops", None, None);
    let default = three_waves(client, "waves-default").await;
    drop(gitops);
    let gitops = controller(kubeconfig, &cache, "gitops", Some("0"), None);
    let none = three_waves(client, "waves-nodelay").await;
    drop(gitops);
    println!(
        "one sync of 3 waves × 50 ConfigMaps: {:.0} ms with the 2 s wave delay (Argo CD's default), {:.0} ms with ARGOCD_SYNC_WAVE_DELAY=0",
        default.as_secs_f64() * 1e3,
        none.as_secs_f64() * 1e3
    );
    let both = controller(kubeconfig, &cache, "rollouts,gitops", None, None);
    let (p50, p99) = whole_loop(client, kubeconfig, 10).await;
    drop(both);
    println!(
        "commit → preview pods Ready (blue-green, 2 replicas, ConfigMap in wave -1, 2 s wave delay, file:// repository), 10 commits: p50 {p50:.0} ms, p99 {p99:.0} ms"
    );
}
