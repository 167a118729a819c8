//! What the process-level tests share: the `sluice` binary, `sluice up` as a child process
//! (killed when dropped, also when a test panics), the kubectl on PATH.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// Runs `sluice ARGS`.
pub fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

/// A child process, killed and reaped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sluice up ARGS --listen 127.0.0.1:0 --data-dir DIR`; returns it and its ready line.
pub fn start_up_with(dir: &Path, args: &[&str]) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("up")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sluice up");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (Running(child), line)
}

/// `sluice up` with only the cluster (no controllers, no ingress).
pub fn start_up(dir: &Path) -> (Running, String) {
    start_up_with(dir, &["--no-controllers", "--ingress-listen", "off"])
}

/// The kubectl on PATH, or `None` (tests that need it then say so loudly and skip).
pub fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
}

/// Runs kubectl against `kubeconfig`: success and stdout+stderr.
pub fn run_kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String) {
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

/// kubectl against a `sluice up` of its own (in a new data dir), for one test.
pub struct KubectlSession {
    /// The kubectl on PATH.
    pub kubectl: PathBuf,
    /// The data dir.
    pub dir: tempfile::TempDir,
    /// `sluice up`'s kubeconfig.
    pub kubeconfig: PathBuf,
    /// `sluice up`, stopped when the session drops.
    pub up: Running,
}

impl KubectlSession {
    /// Starts `sluice up` with `args` ([`start_up`]'s when empty); `None`, said loudly, when
    /// no kubectl is on PATH.
    pub fn start(args: &[&str]) -> Option<Self> {
        let Some(kubectl) = kubectl() else {
            eprintln!("!!! SKIPPED: no kubectl on PATH; the kubectl tests did not run");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (up, ready) = if args.is_empty() {
            start_up(dir.path())
        } else {
            start_up_with(dir.path(), args)
        };
        assert!(ready.starts_with("sluice: ready"), "{ready}");
        let kubeconfig = dir.path().join("kubeconfig");
        Some(Self {
            kubectl,
            dir,
            kubeconfig,
            up,
        })
    }

    /// Runs kubectl: success and stdout+stderr.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        run_kubectl(&self.kubectl, &self.kubeconfig, args)
    }

    /// Runs kubectl, which must succeed: its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "kubectl {args:?}: {out}");
        out
    }

    /// Writes `text` to `name` in the data dir: its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}
