//! The user's flow as the user runs it, every step a process: `sluice up`, `kubectl apply -f
//! examples/blue-green/`, `sluice set image`, `sluice status`, `sluice get rollout`, `sluice
//! promote`, `sluice undo`, `sluice abort`, with production read through the ingress. And
//! `sluice controller` against `sluice up --no-controllers`: two replicas, one Lease, /healthz,
//! /metrics, a failover when the leader is killed, the Lease given up on SIGTERM.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sluice_testkit::{
    git::git,
    process::{Running, kubectl, run_kubectl, start_up, start_up_with},
};

/// The `sluice` binary under test.
const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// `sluice ARGS --kubeconfig K`: success, stdout, stderr.
fn sluice_on(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(SLUICE)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("run sluice");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One GET with a Host header: status and body ("" when the connection fails).
fn get(address: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// Waits up to `seconds` for `check`.
fn until(what: &str, seconds: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {seconds} s waiting for {what}");
}

#[test]
fn the_seed_flow_through_kubectl_and_the_sluice_cli() {
    let Some(kubectl) = kubectl() else {
        eprintln!("!!! SKIPPED: no kubectl on PATH; the seed flow did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = start_up_with(
        SLUICE,
        dir.path(),
        &[
            "--ingress-listen",
            "127.0.0.1:0",
            "--ingress-metrics-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--webhook-listen",
            "127.0.0.1:0",
        ],
    );
    let ingress: SocketAddr = ready
        .split("ingress http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no ingress address in {ready:?}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let k = |args: &[&str]| run_kubectl(&kubectl, &kubeconfig, args);
    let s = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-n", "bluegreen"]);
        sluice_on(&kubeconfig, &all)
    };
    let colour = || {
        let (status, body) = get(ingress, "rollouts-demo.local", "/color");
        (status == 200).then(|| body.trim_matches('"').to_owned())
    };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/blue-green/");
    let (ok, out) = k(&["apply", "-f", examples.to_str().unwrap()]);
    assert!(
        ok && out.contains("rollout.argoproj.io/rollouts-demo created"),
        "{out}"
    );
    let (ok, out) = k(&[
        "wait",
        "-n",
        "bluegreen",
        "--for=condition=Healthy",
        "rollout/rollouts-demo",
        "--timeout=90s",
    ]);
    assert!(ok, "{out}");
    until("production answers blue", 30, || {
        colour().as_deref() == Some("blue")
    });

    let (ok, out, err) = s(&[
        "set",
        "image",
        "rollouts-demo",
        "rollouts-demo=argoproj/rollouts-demo:yellow",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "rollout 'rollouts-demo' image updated\n");
    until("paused", 60, || {
        s(&["status", "rollouts-demo", "--watch=false"]).1 == "Paused - BlueGreenPause\n"
    });
    // Paused is not an end: a watch with a timeout fails, saying so.
    let (ok, _, err) = s(&["status", "rollouts-demo", "--timeout", "1s"]);
    assert!(
        !ok && err.contains("Rollout status watch exceeded timeout"),
        "{err}"
    );
    let (ok, tree, err) = s(&["get", "rollout", "rollouts-demo"]);
    assert!(ok, "{err}");
    assert!(tree.contains("Status:          ॥ Paused"), "{tree}");
    assert!(
        tree.contains("argoproj/rollouts-demo:yellow (preview)"),
        "{tree}"
    );
    assert!(
        tree.contains("argoproj/rollouts-demo:blue (stable, active)"),
        "{tree}"
    );
    assert!(
        tree.contains("├──# revision:2") && tree.contains("└──# revision:1"),
        "{tree}"
    );
    assert_eq!(
        tree.matches("Pod  ").count(),
        4,
        "two pods per version: {tree}"
    );
    assert_eq!(
        colour().as_deref(),
        Some("blue"),
        "production untouched while paused"
    );

    let (ok, out, err) = s(&["promote", "rollouts-demo"]);
    assert!(ok && out == "rollout 'rollouts-demo' promoted\n", "{err}");
    let (ok, out, err) = s(&["status", "rollouts-demo", "--timeout", "90s"]);
    assert!(ok, "{out}{err}");
    assert!(out.ends_with("Healthy\n"), "{out}");
    until("production answers yellow", 30, || {
        colour().as_deref() == Some("yellow")
    });

    // Undo inside the scale-down delay: blue is still up, production goes back at once.
    let (ok, out, err) = s(&["undo", "rollouts-demo"]);
    assert!(ok && out == "rollout 'rollouts-demo' undo\n", "{err}");
    let (ok, out, err) = s(&["status", "rollouts-demo", "--timeout", "90s"]);
    assert!(ok, "{out}{err}");
    until("production answers blue again", 30, || {
        colour().as_deref() == Some("blue")
    });
    let (_, tree, _) = s(&["get", "rollout", "rollouts-demo"]);
    assert!(tree.contains("├──# revision:3"), "blue renumbered: {tree}");

    // A bad version aborted: `status` exits non-zero with the reason.
    let (ok, _, err) = s(&[
        "set",
        "image",
        "rollouts-demo",
        "*=argoproj/rollouts-demo:green",
    ]);
    assert!(ok, "{err}");
    until("paused on green", 60, || {
        s(&["status", "rollouts-demo", "--watch=false"]).1 == "Paused - BlueGreenPause\n"
    });
    let (ok, out, _) = s(&["abort", "rollouts-demo"]);
    assert!(ok && out == "rollout 'rollouts-demo' aborted\n");
    let (ok, out, err) = s(&["status", "rollouts-demo", "--timeout", "30s"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("The rollout is in a degraded state with message: RolloutAborted: Rollout aborted update to revision 4"),
        "{err}"
    );
    assert_eq!(colour().as_deref(), Some("blue"));
    let (ok, _, err) = s(&["set", "image", "rollouts-demo", "nope=x"]);
    assert!(
        !ok && err.contains("unable to find container named \"nope\""),
        "{err}"
    );
    let (ok, _, err) = s(&["status", "no-such-rollout"]);
    assert!(!ok && err.contains("not found"), "{err}");
}

/// Reads a child's stderr lines into a shared buffer.
fn collect(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = buffer.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    buffer
}

fn controller(kubeconfig: &Path) -> (Running, Arc<Mutex<String>>) {
    let mut child = Command::new(SLUICE)
        .args([
            "controller",
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--leader-election-lease-duration",
            "3s",
            "--leader-election-renew-deadline",
            "2s",
            "--leader-election-retry-period",
            "500ms",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice controller");
    let log = collect(&mut child);
    (Running(child), log)
}

/// The `/healthz` and `/metrics` addresses a controller printed.
fn addresses(log: &Arc<Mutex<String>>) -> (SocketAddr, SocketAddr) {
    let mut found = None;
    until("the controller's addresses", 30, || {
        let text = log.lock().unwrap().clone();
        let address = |marker: &str| {
            text.split(marker)
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        found = address("health on http://").zip(address("metrics on http://"));
        found.is_some()
    });
    found.unwrap()
}

const ROLLOUTS: &str = "apiVersion: v1
kind: Service
metadata: {name: active}
spec:
  selector: {app: demo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers: [{name: app, image: example.com/app:1}]
  strategy:
    blueGreen: {activeService: active, scaleDownDelaySeconds: 1}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: elsewhere
  labels: {argo-rollouts.argoproj.io/controller-instance-id: other}
spec:
  replicas: 1
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers: [{name: app, image: example.com/app:1}]
  strategy:
    blueGreen: {activeService: active}
";

#[test]
fn sluice_controller_elects_one_leader_and_fails_over() {
    let Some(kubectl) = kubectl() else {
        eprintln!("!!! SKIPPED: no kubectl on PATH; the controller test did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = start_up(SLUICE, dir.path());
    assert!(ready.starts_with("sluice: ready"), "{ready}");
    let kubeconfig = dir.path().join("kubeconfig");
    let k = |args: &[&str]| run_kubectl(&kubectl, &kubeconfig, args);
    // The install manifest applies as it is (on `sluice up` its pods run simulated).
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/install.yaml");
    let (ok, out) = k(&["apply", "-f", install.to_str().unwrap()]);
    assert!(
        ok && out.contains("deployment.apps/sluice-controller created"),
        "{out}"
    );
    let (_, args) = k(&[
        "get",
        "deploy",
        "-n",
        "sluice",
        "sluice-controller",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ]);
    assert!(
        args.contains("--health-listen=0.0.0.0:8080")
            && args.contains("--metrics-listen=0.0.0.0:8090"),
        "{args}"
    );
    let (_, resources) = k(&[
        "get",
        "clusterrole",
        "sluice-controller",
        "-o",
        "jsonpath={.rules[*].resources}",
    ]);
    for resource in [
        "rollouts",
        "rollouts/status",
        "replicasets",
        "services",
        "pods",
        "endpointslices",
        "events",
        "analysisruns",
        "analysistemplates",
        "clusteranalysistemplates",
        "jobs",
        "secrets",
    ] {
        assert!(
            resources.contains(&format!("\"{resource}\"")),
            "{resource} not in {resources}"
        );
    }

    let mut replicas = vec![controller(&kubeconfig), controller(&kubeconfig)];
    let manifest = dir.path().join("rollouts.yaml");
    std::fs::write(&manifest, ROLLOUTS).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = k(&[
        "wait",
        "--for=condition=Healthy",
        "rollout/demo",
        "--timeout=60s",
    ]);
    assert!(ok, "{out}");

    let holder = || {
        k(&[
            "get",
            "lease",
            "sluice-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .1
    };
    let leader = replicas
        .iter()
        .position(|(_, log)| {
            log.lock()
                .unwrap()
                .contains("leads (lease sluice-controller)")
        })
        .expect("one replica leads");
    let follower = 1 - leader;
    assert!(
        !replicas[follower]
            .1
            .lock()
            .unwrap()
            .contains("leads (lease"),
        "only one leads"
    );
    let identity = holder();
    assert!(
        replicas[leader]
            .1
            .lock()
            .unwrap()
            .contains(&format!("{identity} leads")),
        "{identity}"
    );
    for (_, log) in &replicas {
        let (health, _) = addresses(log);
        assert_eq!(get(health, "x", "/healthz"), (200, "ok".into()));
    }
    let (_, metrics) = addresses(&replicas[leader].1);
    let (status, text) = get(metrics, "x", "/metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains("rollout_info{namespace=\"default\",name=\"demo\",strategy=\"blueGreen\",traffic_router=\"\",phase=\"Healthy\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rollout_events_total{type=\"Normal\",reason=\"RolloutCompleted\"} 1"),
        "{text}"
    );
    let (_, other) = k(&[
        "get",
        "rollout",
        "elsewhere",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(other, "", "another instance's Rollout is left alone");

    // The leader dies without giving the Lease up: the other takes over once it expires.
    let (mut dead, _) = replicas.remove(leader);
    dead.0.kill().unwrap();
    let survivor = &replicas[0].1;
    until("the follower leads", 30, || {
        survivor.lock().unwrap().contains("leads (lease")
    });
    let (ok, out) = k(&[
        "patch",
        "rollout",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"example.com/app:2"}]"#,
    ]);
    assert!(ok, "{out}");
    until("the new leader promotes version 2", 60, || {
        let (_, image) = k(&[
            "get",
            "rs",
            "-l",
            "app=demo",
            "-o",
            "jsonpath={range .items[?(@.spec.replicas>0)]}{.spec.template.spec.containers[0].image}{end}",
        ]);
        let (_, phase) = k(&["get", "rollout", "demo", "-o", "jsonpath={.status.phase}"]);
        image == "example.com/app:2" && phase == "Healthy"
    });

    // SIGTERM: the leader gives the Lease up.
    let pid = replicas[0].0.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    until("the Lease released", 20, || holder().is_empty());
}

/// `sluice controller --controllers gitops` as its own process.
fn gitops_controller(kubeconfig: &Path, cache: &Path) -> Running {
    let child = Command::new(SLUICE)
        .args([
            "controller",
            "--controllers",
            "gitops",
            "--leader-elect=false",
        ])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--cache-dir")
        .arg(cache)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sluice controller");
    Running(child)
}

#[test]
fn a_gitops_controller_killed_mid_sync_resumes_and_sluice_app_reports() {
    let Some(kubectl) = kubectl() else {
        eprintln!("!!! SKIPPED: no kubectl on PATH; the GitOps process test did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = start_up(SLUICE, dir.path());
    assert!(ready.starts_with("sluice: ready"), "{ready}");
    let kubeconfig = dir.path().join("kubeconfig");
    let k = |args: &[&str]| run_kubectl(&kubectl, &kubeconfig, args);
    // A CD repository of 300 ConfigMaps, so the sync takes a moment.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    let many: String = (0..300)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  i: \"{i}\"\n"))
        .collect();
    std::fs::write(repo.path().join("many.yaml"), many).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "many"]);
    let app = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: argocd}}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: many, namespace: argocd}}\nspec:\n  project: default\n  source: {{repoURL: 'file://{}', targetRevision: HEAD, path: .}}\n  destination: {{server: 'https://kubernetes.default.svc', namespace: default}}\n",
        repo.path().display()
    );
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, app).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "{out}");
    let cache = dir.path().join("repos");
    let first = gitops_controller(&kubeconfig, &cache);
    let status = |path: &str| {
        k(&[
            "get",
            "application",
            "-n",
            "argocd",
            "many",
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
        .1
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(".status.sync.status") != "OutOfSync" {
        assert!(Instant::now() < deadline, "never compared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, _, err) = sluice_on(&kubeconfig, &["app", "sync", "many", "--async"]);
    assert!(ok, "{err}");
    // Killed while the operation runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(".status.operationState.phase") != "Running"
        && status(".status.operationState.phase") != "Succeeded"
    {
        assert!(Instant::now() < deadline, "the operation never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(first);
    let count = || {
        let (_, names) = k(&["get", "configmaps", "-n", "default", "-o", "name"]);
        names
            .lines()
            .filter(|l| l.starts_with("configmap/cm"))
            .count()
    };
    eprintln!(
        "killed with {} of 300 applied, phase {}",
        count(),
        status(".status.operationState.phase")
    );
    let _second = gitops_controller(&kubeconfig, &cache);
    let (ok, out, err) = sluice_on(&kubeconfig, &["app", "wait", "many", "--timeout", "90s"]);
    assert!(ok, "{out}{err}");
    assert_eq!(count(), 300);
    assert_eq!(status(".status.operationState.phase"), "Succeeded");
    assert_eq!(
        status(".status.history[*].id"),
        "0",
        "one sync, recorded once"
    );
    let (ok, out, err) = sluice_on(&kubeconfig, &["app", "get", "many"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Sync Status:        Synced to HEAD ("),
        "{out}"
    );
    assert!(out.contains("Health Status:      Healthy"), "{out}");
    assert!(out.contains("ConfigMap  default    cm299"), "{out}");
    let (ok, out, _) = sluice_on(&kubeconfig, &["app", "list"]);
    assert!(
        ok && out.contains("argocd/many") && out.contains("Synced"),
        "{out}"
    );
    // A second sync, waited for: the operation's lines and no change.
    let (ok, out, err) = sluice_on(&kubeconfig, &["app", "sync", "many", "--timeout", "60s"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Phase:              Succeeded"), "{out}");
    assert!(out.contains("configmap/cm0 unchanged"), "{out}");

    // `app history`: one block for the source, the revision as `target (sha7)`.
    let url = format!("file://{}", repo.path().display());
    let (ok, out, err) = sluice_on(&kubeconfig, &["app", "history", "many"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("SOURCE  {url}\nID  DATE")),
        "{out}"
    );
    assert!(out.contains("HEAD ("), "{out}");
    // `app create` with argocd's flags (the controller created the default project), then
    // `app set`; creating it again needs --upsert.
    let create = [
        "app",
        "create",
        "second",
        "--repo",
        &url,
        "--path",
        ".",
        "--dest-server",
        "https://kubernetes.default.svc",
        "--dest-namespace",
        "second",
        "--sync-policy",
        "automated",
        "--auto-prune",
        "--sync-option",
        "CreateNamespace=true",
    ];
    let (ok, out, err) = sluice_on(&kubeconfig, &create);
    assert!(
        ok && out.contains("application 'second' created"),
        "{out}{err}"
    );
    let (ok, _, err) = sluice_on(&kubeconfig, &create);
    assert!(!ok && err.contains("use --upsert"), "{err}");
    let (ok, out, err) = sluice_on(&kubeconfig, &["app", "wait", "second", "--timeout", "90s"]);
    assert!(ok, "{out}{err}");
    let (_, cm) = k(&["get", "configmap", "-n", "second", "cm7", "-o", "name"]);
    assert_eq!(cm.trim(), "configmap/cm7");
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    let (ok, _, err) = sluice_on(&kubeconfig, &["app", "set", "second", "--revision", &head]);
    assert!(ok, "{err}");
    let (_, revision) = k(&[
        "get",
        "application",
        "-n",
        "argocd",
        "second",
        "-o",
        "jsonpath={.spec.source.targetRevision} {.spec.syncPolicy.automated.prune}",
    ]);
    assert_eq!(revision.trim(), format!("{head} true"));
}
