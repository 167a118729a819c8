//! `sluice lint -f FILE` as CI runs it: every Argo example passes (exit 0, nothing printed),
//! and broken files exit 1 with each problem as `FILE:LINE: PATH: PROBLEM`, the first again
//! on stderr as Argo's `Error: …`. Also through the `kubectl-argo-rollouts` link.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use super::{SLUICE, sluice};

fn argo_examples() -> PathBuf {
    let shared = std::env::var_os("SLUICE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("compat/argo-rollouts/examples");
    assert!(
        dir.is_dir(),
        "Argo's examples are missing at {} (set SLUICE_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The one example no Kubernetes client reads: `{{args.linkerd-enabled}}` unquoted is a YAML
/// mapping used as a key (kubectl and Argo's own lint reject the file too).
const UNREADABLE: &str = "traffic-management/rollout-linkerd.yaml";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lint(path: &Path) -> Output {
    sluice(&["lint", "-f", path.to_str().unwrap()])
}

#[test]
fn every_argo_example_passes() {
    let dir = argo_examples();
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    files.sort();
    assert!(files.len() >= 30, "only {} example files", files.len());
    for file in &files {
        let relative = file.strip_prefix(&dir).unwrap().to_string_lossy();
        let out = lint(file);
        if relative == UNREADABLE {
            assert!(!out.status.success(), "{relative} is not readable YAML");
            assert!(
                text(&out.stdout).contains("line 101"),
                "{}",
                text(&out.stdout)
            );
            continue;
        }
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{relative}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// A canary Rollout with a field its kind lacks, a weight past 100 and a stable Service whose
/// selector does not match the template; a blue-green one with one Service for both roles; an
/// NGINX canary whose stable Ingress does not route to the stable Service.
const BROKEN: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: shop
spec:
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
      - name: shop
        image: shop:1
  strategy:
    canary:
      colour: blue
      stableService: shop-stable
      steps:
      - setWeight: 120
      - pause: {}
---
apiVersion: v1
kind: Service
metadata:
  name: shop-stable
spec:
  selector:
    app: shop-old
  ports:
  - port: 80
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: cart
spec:
  selector:
    matchLabels:
      app: cart
  template:
    metadata:
      labels:
        app: cart
    spec:
      containers:
      - name: cart
        image: cart:1
  strategy:
    blueGreen:
      activeService: cart
      previewService: cart
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        nginx:
          stableIngress: web
      steps:
      - setWeight: 20
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web-other
            port:
              number: 80
";

#[test]
fn a_broken_file_names_every_problem_with_its_line_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    fs::write(&file, BROKEN).unwrap();
    let out = lint(&file);
    assert_eq!(out.status.code(), Some(1));
    let name = file.display().to_string();
    let expected = [
        "19: spec.strategy.canary.colour: json: unknown field \"colour\"",
        "22: spec.strategy.canary.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100",
        "20: spec.strategy.canary.stableService: Invalid value: \"shop-stable\": Service \"shop-stable\" has unmatch label \"app\" in rollout",
        "53: spec.strategy.blueGreen.activeService: Invalid value: \"cart\": This rollout uses the same service for the active and preview services, but two different services are required.",
        "78: spec.strategy.canary.trafficRouting.nginx.stableIngress: Invalid value: \"web\": ingress `web` has no rules using service web-stable backend",
    ];
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    let want: Vec<String> = expected.iter().map(|e| format!("{name}:{e}")).collect();
    assert_eq!(lines, want);
    assert_eq!(
        text(&out.stderr),
        "Error: spec.strategy.canary.colour: json: unknown field \"colour\"\n"
    );
}

#[test]
fn unreadable_files_and_missing_files_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    fs::write(&file, "kind: Rollout\nspec:\n  replicas: [1\n").unwrap();
    let out = lint(&file);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("line 3"),
        "{}",
        text(&out.stdout)
    );
    let out = lint(&dir.path().join("absent.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("Error: open "));
    let out = sluice(&["lint"]);
    assert_eq!(out.status.code(), Some(2), "-f is required");
}

/// Through the plugin link, as `kubectl argo rollouts lint -f FILE` runs it.
#[test]
fn lint_runs_through_the_kubectl_argo_rollouts_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-argo-rollouts");
    std::os::unix::fs::symlink(SLUICE, &link).unwrap();
    let file = dir.path().join("broken.yaml");
    fs::write(&file, BROKEN).unwrap();
    let out = std::process::Command::new(&link)
        .args(["lint", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 5);
    let example = argo_examples().join("rollout-canary.yaml");
    let out = std::process::Command::new(&link)
        .args(["lint", "-f"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
}
