//! What the process-level tests share: the `sluice` binary, `sluice up` as a child process
//! (killed when dropped, also when a test panics), the kubectl on PATH. The binary is the
//! caller's `env!("CARGO_BIN_EXE_sluice")` (only the `sluice` package's tests have it), passed
//! in as `bin`.
//!
//! Without a kubectl on PATH the tests that need one skip, loudly — except under CI (`CI` set),
//! where they fail (DESIGN §6).

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// Runs `sluice ARGS` (`bin` is the `sluice` binary).
pub fn sluice(bin: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin).args(args).output().expect("run sluice")
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
pub fn start_up_with(bin: &str, dir: &Path, args: &[&str]) -> (Running, String) {
    let mut child = Command::new(bin)
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
pub fn start_up(bin: &str, dir: &Path) -> (Running, String) {
    start_up_with(bin, dir, &["--no-controllers", "--ingress-listen", "off"])
}

/// The kubectl on PATH, or `None` (tests that need it then say so loudly and skip).
///
/// # Panics
/// When there is none and `CI` is set: under CI the kubectl tests must run.
pub fn kubectl() -> Option<PathBuf> {
    tool("kubectl", "put a kubectl 1.27-1.33 on PATH")
}

/// The executable `name` on PATH, for tests that run it; `None` (the test skips, loudly) when
/// there is none.
///
/// # Panics
/// When there is none and `CI` is set: under CI those tests must run (`install` says how to
/// get it).
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!("no {name} on PATH: its tests skip ({install})");
    }
    required_under_ci(name, install, found, std::env::var_os("CI").as_deref())
}

/// Whether the tests run under CI: `CI` set to anything but empty, `0` or `false`. There a
/// tool the tests need must be present (DESIGN §6); elsewhere its tests skip, loudly.
pub fn under_ci() -> bool {
    is_ci(std::env::var_os("CI").as_deref())
}

fn is_ci(ci: Option<&OsStr>) -> bool {
    ci.is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false")))
}

/// `found`, or a panic when it is `None` and `ci` (the `CI` variable) is set to anything but
/// empty, `0` or `false`.
fn required_under_ci(
    name: &str,
    install: &str,
    found: Option<PathBuf>,
    ci: Option<&OsStr>,
) -> Option<PathBuf> {
    let under_ci = is_ci(ci);
    assert!(
        found.is_some() || !under_ci,
        "no {name} on PATH, and CI is set: the {name} tests must run under CI (DESIGN §6); \
         {install}"
    );
    found
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
    /// Starts `sluice up` (`bin`) with `args` ([`start_up`]'s when empty); `None`, said
    /// loudly, when no kubectl is on PATH (a panic under CI, see [`kubectl`]).
    pub fn start(bin: &str, args: &[&str]) -> Option<Self> {
        let Some(kubectl) = kubectl() else {
            eprintln!("!!! SKIPPED: no kubectl on PATH; the kubectl tests did not run");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (up, ready) = if args.is_empty() {
            start_up(bin, dir.path())
        } else {
            start_up_with(bin, dir.path(), args)
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

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, path::PathBuf};

    use super::required_under_ci;

    #[test]
    fn a_missing_kubectl_skips_outside_ci() {
        assert_eq!(required_under_ci("kubectl", "", None, None), None);
        assert_eq!(
            required_under_ci("kubectl", "", None, Some(OsStr::new(""))),
            None
        );
        assert_eq!(
            required_under_ci("kubectl", "", None, Some(OsStr::new("false"))),
            None
        );
        let found = Some(PathBuf::from("/usr/bin/kubectl"));
        assert_eq!(
            required_under_ci("kubectl", "", found.clone(), Some(OsStr::new("true"))),
            found
        );
    }

    #[test]
    #[should_panic(expected = "no kubectl on PATH, and CI is set")]
    fn a_missing_kubectl_fails_under_ci() {
        required_under_ci("kubectl", "", None, Some(OsStr::new("true")));
    }
}
