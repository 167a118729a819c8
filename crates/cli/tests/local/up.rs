//! `sluice up` as its own process: no pod process outlives a SIGKILL of it, the next start
//! runs the persisted pods again, `kubectl logs` reads their output, and a bad images file stops
//! it before it starts.

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
};
use serde_json::json;

use super::{demo_deployment, eventually, http, last_terminated, pod_address, probe, ready};

/// A `sluice up` child, killed when dropped (also when a test fails).
struct Up(std::process::Child);

impl Up {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, and wait for it.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sluice up` as a user runs it, on `dir`: the child and a client from its kubeconfig.
async fn up(dir: &std::path::Path, extra: &[&str]) -> (Up, Client) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "up",
            "--no-controllers",
            "--ingress-listen",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run sluice up");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("sluice: ready at"), "{line}");
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.join("kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (Up(child), Client::try_from(config).unwrap())
}

/// Processes whose parent is `pid`, read from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if fields[1] == pid.to_string() {
            found.push(child);
        }
    }
    found
}

/// Alive: present in /proc and not a zombie waiting for its new parent to reap it.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

async fn demo_pods_ready(client: &Client, restarts: i32) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let wanted = || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        list.into_iter()
            .filter(|p| {
                ready(p)
                    && p.status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|c| c[0].restart_count == restarts)
            })
            .collect::<Vec<_>>()
    };
    eventually(
        &format!("2 ready demo pods with {restarts} restarts"),
        || async { wanted().await.len() == 2 },
    )
    .await;
    wanted().await
}

/// `kubectl logs` of a demo pod shows its request lines (skipped loudly without kubectl, failed
/// under CI).
fn kubectl_logs(dir: &std::path::Path, pod: &str) {
    let Some(kubectl) = sluice_testkit::process::kubectl() else {
        eprintln!("!!! SKIPPED: no kubectl on PATH; `kubectl logs` was not checked");
        return;
    };
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(&kubectl)
            .args(args)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("KUBECACHEDIR", dir.join("kubectl-cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all = kubectl(&["logs", pod]);
    assert!(all.contains("200 GET /color blue"), "{all}");
    assert!(
        all.lines().count() > 1,
        "probe requests are logged too: {all}"
    );
    let last = kubectl(&["logs", pod, "--tail=1", "--timestamps"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    assert!(last.starts_with("20"), "a timestamp first: {last}");
}

/// SIGKILL of `sluice up` leaves no pod process behind (checked from outside, within 5 s);
/// the next `sluice up` on the data dir starts the persisted pods' containers again.
#[tokio::test]
async fn no_pod_process_outlives_a_killed_sluice_up_and_a_restart_runs_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, client) = up(dir.path(), &[]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment(
                "web",
                2,
                "blue",
                json!({"readinessProbe": probe("/readyz", 1)}),
            ),
        )
        .await
        .unwrap();
    let pods = demo_pods_ready(&client, 0).await;
    let processes = children(first.id());
    assert_eq!(processes.len(), 2, "one process per pod: {processes:?}");
    let (status, body) = http(pod_address(&pods[0]), "GET", "/color").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "\"blue\""));
    kubectl_logs(dir.path(), &pods[0].name_any());

    first.kill(); // SIGKILL: no chance to clean up
    let killed_at = std::time::Instant::now();
    while processes.iter().any(|p| alive(*p))
        && killed_at.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left: Vec<u32> = processes.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes left 5 s after SIGKILL: {left:?}"
    );

    let (mut second, client) = up(dir.path(), &[]).await;
    let pods = demo_pods_ready(&client, 1).await;
    assert_eq!(children(second.id()).len(), 2);
    let (status, body) = http(pod_address(&pods[0]), "GET", "/color").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "\"blue\""));
    // The restart shows as Kubernetes shows a node reboot.
    let last = last_terminated(&pods[0]);
    assert_eq!(
        (last.reason.as_deref(), last.exit_code),
        (Some("Unknown"), 255)
    );
    let processes = children(second.id());
    second.kill();
    let killed_at = std::time::Instant::now();
    while processes.iter().any(|p| alive(*p))
        && killed_at.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(processes.iter().all(|p| !alive(*p)));
}

/// An images file that does not parse stops `sluice up` before it starts, naming the line.
#[test]
fn up_refuses_an_images_file_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("images.yaml");
    std::fs::write(&rules, "rules:\n- image: \"x:*\"\n  readyAfter: soon\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--ingress-listen",
            "off",
            "--images",
        ])
        .arg(&rules)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("images.yaml") && message.contains("line 2") && message.contains("soon"),
        "{message}"
    );
}

/// The permission bits of every entry under `dir` (and `dir` itself) that group or others
/// may use.
fn open_to_others(dir: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && !meta.file_type().is_symlink() {
            out.push((path.display().to_string(), mode));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

#[tokio::test]
async fn the_data_dir_is_private_and_an_older_loose_one_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut sluice, client) = up(&data, &[]).await;
    // A pod, so pod directories and logs exist too.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("private", 1, "blue", json!({})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually("the pod running", || async {
        pods.list(&ListParams::default().labels("app=private"))
            .await
            .is_ok_and(|l| l.items.iter().any(ready))
    })
    .await;
    for file in ["kubeconfig", "token", "ca.key", "state.db"] {
        let mode = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(open_to_others(&data), Vec::new());
    sluice.kill();

    // As an older sluice left it: everything readable by all.
    let status = std::process::Command::new("chmod")
        .args(["-R", "go+rX"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!open_to_others(&data).is_empty());
    let (_sluice, _client) = up(&data, &[]).await;
    assert_eq!(open_to_others(&data), Vec::new());
}
