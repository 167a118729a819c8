//! GitOps (Application controller) benchmark, with `sluice controller --controllers gitops` as
//! its own process against `sluice up --no-controllers`:
//!
//! 1. commit → object updated: a ConfigMap's value changed by a commit, until the live
//!    ConfigMap shows it — for a `file://` repository (watched on disk) and for a smart-HTTP
//!    one (polled; `--app-resync 5s --app-resync-jitter 1s`), p50/p99, and for the smart-HTTP
//!    one with a GitHub push webhook posted to `--webhook-listen` after each push;
//! 2. one manual sync of 100 objects: from the `operation` patch to the operation Succeeded;
//! 3. N Applications (default 1,000) on one HTTP repository, one ConfigMap each: time until
//!    all are Synced, the controller's CPU and memory, and at idle the repository fetches per
//!    minute (counted by the git server) beside Argo CD's one `ls-remote` per app per refresh.
//!
//! 4. one sync of 3 waves × 50 ConfigMaps, with Argo CD's 2 s wave delay and with it at 0
//!    (`ARGOCD_SYNC_WAVE_DELAY`), from the `operation` patch to Succeeded;
//! 5. the whole loop: commit a new image tag of a blue-green Rollout (with a ConfigMap in
//!    wave −1) → the preview ReplicaSet's pods Ready, p50/p99 over 10 commits (each promoted
//!    before the next).
//!
//! `cargo bench -p sluice --bench gitops [-- ROUNDS [N]]`; `-- waves` runs only 4 and 5.
//! Numbers, never pass/fail.

mod common;
#[path = "gitops/waves.rs"]
mod waves;

use common::usage;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_testkit::{git::git, git_http::GitHttp};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn config_map(name: &str, value: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    (at(0.5).as_secs_f64() * 1e3, at(0.99).as_secs_f64() * 1e3)
}

fn applications(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "argocd",
        &ApiResource::erase::<sluice_api::Application>(&()),
    )
}

async fn create_app(client: &Client, name: &str, url: &str, path: &str, ns: &str, automated: bool) {
    let mut spec = json!({"project": "default",
        "source": {"repoURL": url, "targetRevision": "main", "path": path},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}});
    if automated {
        spec["syncPolicy"] = json!({"automated": {"prune": true}});
    }
    let app: DynamicObject = serde_json::from_value(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application", "metadata": {"name": name, "namespace": "argocd"}, "spec": spec}))
    .unwrap();
    applications(client)
        .create(&PostParams::default(), &app)
        .await
        .unwrap();
}

/// Posts GitHub's push payload for `url`'s `main` to the webhook endpoint (unsigned: no
/// `argocd-secret` here), as GitHub would after a push.
fn post_webhook(address: std::net::SocketAddr, url: &str) {
    use std::io::{Read, Write};
    let body = json!({"ref": "refs/heads/main",
        "repository": {"html_url": url.trim_end_matches(".git"), "default_branch": "main"}})
    .to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /api/webhook HTTP/1.1\r\nHost: {address}\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

async fn value(maps: &Api<ConfigMap>, name: &str) -> Option<String> {
    maps.get_opt(name).await.ok()??.data?.get("value").cloned()
}

/// Commits `rounds` new values and times each until the live ConfigMap shows it.
async fn latency(
    maps: &Api<ConfigMap>,
    work: &Path,
    name: &str,
    rounds: usize,
    push: impl Fn(),
) -> (f64, f64) {
    let mut samples = Vec::new();
    for i in 1..=rounds {
        write(work, "cm.yaml", &config_map(name, i));
        commit_all(work, &format!("value {i}"));
        let t = Instant::now();
        push();
        while value(maps, name).await.as_deref() != Some(&i.to_string()) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "round {i} not applied"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(t.elapsed());
    }
    percentiles(samples)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(20);
    let count = args.get(1).copied().unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let _up = common::bare_up(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    sluice_gitops::controller::ensure_home(&client, "argocd")
        .await
        .unwrap();
    // A free port for the webhook listener.
    let webhook = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    if std::env::args().any(|a| a == "waves") {
        waves::run(&client, dir.path(), &kubeconfig).await;
        return;
    }
    let controller = waves::controller(
        &kubeconfig,
        &dir.path().join("repos"),
        "gitops",
        None,
        Some(webhook),
    );
    let pid = controller.0.id();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // 1. Commit → applied.
    let local = tempfile::tempdir().unwrap();
    git(local.path(), &["init", "-q"]);
    write(local.path(), "cm.yaml", &config_map("local", 0));
    commit_all(local.path(), "initial");
    create_app(
        &client,
        "local",
        &format!("file://{}", local.path().display()),
        "",
        "default",
        true,
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let server = GitHttp::start(root.path().to_owned()).await.unwrap();
    let bare = root.path().join("cd.git");
    std::fs::create_dir(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q"]);
    write(remote.path(), "cm.yaml", &config_map("remote", 0));
    commit_all(remote.path(), "initial");
    let push_remote = || {
        git(
            remote.path(),
            &[
                "push",
                "-q",
                "-f",
                bare.to_str().unwrap(),
                "HEAD:refs/heads/main",
            ],
        );
    };
    push_remote();
    create_app(
        &client,
        "remote",
        &server.url("cd.git"),
        "",
        "default",
        true,
    )
    .await;
    for name in ["local", "remote"] {
        let t = Instant::now();
        while value(&maps, name).await.as_deref() != Some("0") {
            assert!(t.elapsed() < Duration::from_secs(60), "{name} never synced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (p50, p99) = latency(&maps, local.path(), "local", rounds, || {}).await;
    println!(
        "commit → ConfigMap updated, file:// repository (watched on disk), {rounds} rounds: p50 {p50:.0} ms, p99 {p99:.0} ms"
    );
    let (p50, p99) = latency(&maps, remote.path(), "remote", rounds.min(10), push_remote).await;
    println!(
        "push → ConfigMap updated, smart-HTTP repository polled every 5 s + up to 1 s jitter, {} rounds: p50 {p50:.0} ms, p99 {p99:.0} ms (Argo CD: 120 s + up to 60 s by default)",
        rounds.min(10)
    );
    let url = server.url("cd.git");
    let push_and_post = || {
        push_remote();
        post_webhook(webhook, &url);
    };
    let (p50, p99) = latency(&maps, remote.path(), "remote", rounds, push_and_post).await;
    println!(
        "push → webhook → ConfigMap updated, smart-HTTP repository (GitHub push payload), {rounds} rounds: p50 {p50:.0} ms, p99 {p99:.0} ms"
    );

    // 2. One sync of 100 objects.
    let hundred = tempfile::tempdir().unwrap();
    git(hundred.path(), &["init", "-q"]);
    for i in 0..100 {
        write(
            hundred.path(),
            &format!("cm{i}.yaml"),
            &config_map(&format!("h{i}"), 1),
        );
    }
    commit_all(hundred.path(), "hundred");
    create_app(
        &client,
        "hundred",
        &format!("file://{}", hundred.path().display()),
        "",
        "default",
        false,
    )
    .await;
    let apps = applications(&client);
    let t = Instant::now();
    while apps.get("hundred").await.unwrap().data["status"]["sync"]["status"] != "OutOfSync" {
        assert!(t.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, _, cpu_before) = usage(pid);
    let t = Instant::now();
    let operation = json!({"operation": {"sync": {}, "initiatedBy": {"username": "bench"}}});
    apps.patch(
        "hundred",
        &PatchParams::default(),
        &Patch::Merge(&operation),
    )
    .await
    .unwrap();
    loop {
        let app = apps.get("hundred").await.unwrap();
        if app.data["operation"].is_null()
            && app.data["status"]["operationState"]["phase"] == "Succeeded"
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the sync of 100 did not end"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, _, cpu_after) = usage(pid);
    println!(
        "one sync of 100 ConfigMaps (dry run of all, then apply): {:.0} ms, controller CPU {:.2} s",
        t.elapsed().as_secs_f64() * 1e3,
        cpu_after - cpu_before
    );

    // 3. N Applications on one HTTP repository.
    for i in 0..count {
        write(
            remote.path(),
            &format!("app{i}/cm.yaml"),
            &config_map(&format!("n{i}"), 1),
        );
    }
    commit_all(remote.path(), "many");
    push_remote();
    let (_, _, cpu_start) = usage(pid);
    let t = Instant::now();
    let url = server.url("cd.git");
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                create_app(
                    &client,
                    &format!("n{i}"),
                    &url,
                    &format!("app{i}"),
                    "default",
                    true,
                )
                .await
            }
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let list = apps.list(&Default::default()).await.unwrap();
        let synced = list
            .items
            .iter()
            .filter(|a| {
                a.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with('n'))
            })
            .filter(|a| a.data["status"]["sync"]["status"] == "Synced")
            .count();
        if synced == count {
            break;
        }
        assert!(Instant::now() < deadline, "only {synced} of {count} synced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (peak, rss, cpu) = usage(pid);
    println!(
        "{count} Applications (one ConfigMap each, one repository): all Synced after {:.1} s; controller CPU {:.1} s; memory peak {peak:.1} MiB, now {rss:.1} MiB",
        t.elapsed().as_secs_f64(),
        cpu - cpu_start
    );
    let (fetches_before, (_, _, idle_start)) = (server.fetches(), usage(pid));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (fetches_after, (_, _, idle_end)) = (server.fetches(), usage(pid));
    println!(
        "idle minute with {count} Applications polling every 5-6 s: {} repository fetches (one mirror shared by all; Argo CD: an ls-remote per Application per refresh, about {} a minute at this resync), controller CPU {:.1} s ({:.1} %)",
        fetches_after - fetches_before,
        count * 60 / 5,
        idle_end - idle_start,
        (idle_end - idle_start) * 100.0 / 60.0
    );
    drop(controller);
}
