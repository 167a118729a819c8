//! Real git repositories for tests: the `git` binary with a fixed identity and `main` as the
//! default branch, commits of files written for the purpose.

use std::{path::Path, process::Command};

/// Runs `git ARGS` in `dir`; its trimmed standard output. Panics with git's message when it
/// fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `files` (path, text) under `dir` and commits everything; the new commit's SHA.
pub fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A new repository (in a temporary directory) whose first commit holds `files`.
pub fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    commit(dir.path(), files, "initial");
    dir
}
