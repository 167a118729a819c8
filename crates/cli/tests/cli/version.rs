//! `sluice version [--short]` and `sluice completion SHELL`, as `sluice` and through the
//! `kubectl-argo-rollouts` link (where the name printed is the plugin's, as Argo's is).

use super::{SLUICE, sluice};

fn linked() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-argo-rollouts");
    std::os::unix::fs::symlink(SLUICE, &link).unwrap();
    (dir, link)
}

fn stdout(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_short_is_one_line_in_argos_format() {
    let version = env!("CARGO_PKG_VERSION");
    let short = stdout(sluice(&["version", "--short"]));
    assert!(
        short.starts_with(&format!("sluice: v{version}+")) && short.lines().count() == 1,
        "{short}"
    );
    let (_dir, link) = linked();
    let short = stdout(
        std::process::Command::new(&link)
            .args(["version", "--short"])
            .output()
            .unwrap(),
    );
    assert!(
        short.starts_with(&format!("kubectl-argo-rollouts: v{version}+")),
        "{short}"
    );
    let long = stdout(sluice(&["version"]));
    for key in [
        "  BuildDate: ",
        "  GitCommit: ",
        "  GitTreeState: ",
        "  RustVersion: rustc ",
        "  Compiler: rustc",
        "  Platform: ",
    ] {
        assert!(long.contains(key), "{key:?} missing from\n{long}");
    }
}

#[test]
fn completion_scripts_name_the_subcommands() {
    let bash = stdout(sluice(&["completion", "bash"]));
    assert!(bash.contains("complete -F _sluice"), "{bash}");
    for verb in ["list", "lint", "version", "promote", "rollouts"] {
        assert!(bash.contains(verb), "bash completion lacks {verb}");
    }
    for shell in ["zsh", "fish"] {
        let script = stdout(sluice(&["completion", shell]));
        assert!(
            script.contains("lint") && script.contains("promote"),
            "{shell}"
        );
    }
    let (_dir, link) = linked();
    let bash = stdout(
        std::process::Command::new(&link)
            .args(["completion", "bash"])
            .output()
            .unwrap(),
    );
    assert!(bash.contains("kubectl-argo-rollouts"), "{bash}");
    assert!(!sluice(&["completion", "tcsh"]).status.success());
}
