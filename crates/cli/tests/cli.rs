//! The `sluice` binary as a user runs it.

use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

/// `sluice crds` prints one CustomResourceDefinition per YAML document, for every kind.
#[test]
fn crds_prints_one_definition_per_document() {
    let out = sluice(&["crds"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let crds: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&text).unwrap();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
            "experiments.argoproj.io",
        ]
    );
    for crd in &crds {
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        assert!(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .is_some()
        );
    }
    let rollout = &crds[0].spec.versions[0];
    let subresources = rollout.subresources.as_ref().unwrap();
    assert!(subresources.status.is_some());
    assert_eq!(
        subresources.scale.as_ref().unwrap().status_replicas_path,
        ".status.HPAReplicas"
    );
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = sluice(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

/// Starts `sluice up` on a data dir and an ephemeral port; returns the child and its ready line.
fn start_up(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run sluice up");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, line)
}

/// The data dir is locked: a second `sluice up` on it fails clearly, and after a SIGKILL of the
/// first a new one starts and finds the objects and kubeconfig again.
#[test]
fn up_locks_its_data_dir_and_restarts_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, ready) = start_up(dir.path());
    assert!(
        ready.starts_with("sluice: ready at https://127.0.0.1:"),
        "{ready}"
    );
    assert!(
        ready.contains(&format!(
            "kubeconfig: {}",
            dir.path().join("kubeconfig").display()
        )),
        "{ready}"
    );
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains("certificate-authority-data") && kubeconfig.contains("token:"));

    let second = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("is in use by another `sluice up`"),
        "{message}"
    );

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let (mut again, ready) = start_up(dir.path());
    assert!(ready.starts_with("sluice: ready at"), "{ready}");
    again.kill().unwrap();
    again.wait().unwrap();
}

/// The kubectl on PATH, or `None` (tests that need it then say so loudly and skip).
fn kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
}

fn run_kubectl(
    kubectl: &std::path::Path,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", kubeconfig.with_file_name("kubectl-cache"))
        .output()
        .expect("run kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
";

/// kubectl against `sluice up`: apply (create, then a strategic-merge update), rollout status,
/// get with server-side columns, endpoint slices, explain of a CRD field, delete --wait.
#[test]
fn kubectl_drives_a_deployment_on_sluice_up() {
    let Some(kubectl) = kubectl() else {
        eprintln!("!!! SKIPPED: no kubectl on PATH; the kubectl tests did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut up, ready) = start_up(dir.path());
    assert!(ready.starts_with("sluice: ready"), "{ready}");
    let kubeconfig = dir.path().join("kubeconfig");
    let k = |args: &[&str]| run_kubectl(&kubectl, &kubeconfig, args);
    let (ok, version) = k(&["version"]);
    eprintln!("kubectl version against sluice up:\n{version}");
    assert!(ok && version.contains("v1.33"), "{version}");

    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(
        ok && out.contains("deployment.apps/web created") && out.contains("service/web created"),
        "{out}"
    );
    let (ok, out) = k(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = k(&["get", "pods", "-l", "app=web"]);
    assert!(
        ok && out.contains("READY") && out.matches("Running").count() == 2,
        "{out}"
    );

    // Client-side apply of a change sends a strategic merge patch.
    std::fs::write(&manifest, DEPLOYMENT.replace("nginx:1.25", "nginx:1.26")).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(
        ok && out.contains("deployment.apps/web configured")
            && out.contains("service/web unchanged"),
        "{out}"
    );
    let (ok, out) = k(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(ok, "{out}");
    let (ok, images) = k(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        ok && images.split_whitespace().all(|i| i == "nginx:1.26"),
        "{images}"
    );
    let (ok, out) = k(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[0].endpoints[*].conditions.ready}",
    ]);
    assert!(
        ok && out.split_whitespace().filter(|r| *r == "true").count() == 2,
        "{out}"
    );

    let (ok, out) = k(&["explain", "rollout.spec.strategy.blueGreen"]);
    assert!(ok && out.contains("activeService"), "{out}");

    let (ok, out) = k(&["delete", "deploy", "web", "--wait", "--timeout=60s"]);
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out) = k(&[
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "app=web",
        "--timeout=60s",
    ]);
    assert!(ok || out.contains("no matching resources"), "{out}");
    up.kill().unwrap();
    up.wait().unwrap();
}
