//! `sluice version [--short]` in `kubectl argo rollouts version`'s format: the first line is
//! `NAME: VERSION` (NAME being what the program was called as, `kubectl-argo-rollouts`
//! through the plugin link), then the build's details. The version is Argo's scheme: the git
//! tag of a clean tagged build, else `v<crate version>+<commit, 7 digits>[.dirty]`, else
//! `v<crate version>+unknown`. The git facts and the build date are known only when the
//! build's environment set them (`SLUICE_GIT_COMMIT`, `SLUICE_GIT_TAG`,
//! `SLUICE_GIT_TREE_STATE`, `SLUICE_BUILD_DATE`); otherwise they print empty, or `unknown`
//! for the date, rather than a guess. Argo's `GoVersion` line is the Rust compiler's here.

use std::ffi::OsString;

use clap::Args;

/// Flags of `sluice version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print just the version number.
    #[arg(long)]
    short: bool,
}

/// What a build knows about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The crate's version (`0.1.0`).
    pub crate_version: &'static str,
    /// `git rev-parse HEAD`, or empty.
    pub git_commit: &'static str,
    /// `git describe --exact-match --tags HEAD`, or empty.
    pub git_tag: &'static str,
    /// `clean` or `dirty`, or empty.
    pub git_tree_state: &'static str,
    /// `date -u +%Y-%m-%dT%H:%M:%SZ` at build time, or empty.
    pub build_date: &'static str,
}

impl Build {
    /// This binary's build.
    pub fn current() -> Build {
        Build {
            crate_version: env!("CARGO_PKG_VERSION"),
            git_commit: option_env!("SLUICE_GIT_COMMIT").unwrap_or_default(),
            git_tag: option_env!("SLUICE_GIT_TAG").unwrap_or_default(),
            git_tree_state: option_env!("SLUICE_GIT_TREE_STATE").unwrap_or_default(),
            build_date: option_env!("SLUICE_BUILD_DATE").unwrap_or_default(),
        }
    }

    /// The version as Argo's `GetVersion` forms it.
    pub fn version(&self) -> String {
        let clean = self.git_tree_state == "clean";
        if !self.git_commit.is_empty() && !self.git_tag.is_empty() && clean {
            return self.git_tag.to_owned();
        }
        let mut version = format!("v{}", self.crate_version);
        match self.git_commit.get(..7) {
            Some(short) => {
                version.push('+');
                version.push_str(short);
                if !clean {
                    version.push_str(".dirty");
                }
            }
            None => version.push_str("+unknown"),
        }
        version
    }
}

/// The platform as Go names it (`linux/amd64`), as Argo prints it.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// The text `version` prints for `build`, called as `name`.
pub fn render(build: &Build, name: &str, short: bool) -> String {
    let mut out = format!("{name}: {}\n", build.version());
    if !short {
        let date = match build.build_date {
            "" => "unknown",
            date => date,
        };
        out.push_str(&format!("  BuildDate: {date}\n"));
        out.push_str(&format!("  GitCommit: {}\n", build.git_commit));
        out.push_str(&format!("  GitTreeState: {}\n", build.git_tree_state));
        out.push_str(&format!(
            "  RustVersion: {}\n",
            env!("SLUICE_RUSTC_VERSION")
        ));
        out.push_str("  Compiler: rustc\n");
        out.push_str(&format!("  Platform: {}\n", platform()));
    }
    out
}

/// The program's name as `version` and `completion` print it: `kubectl-argo-rollouts` or
/// `kubectl-sluice` through a plugin link, else `sluice`.
pub fn program_name(argv0: Option<OsString>) -> &'static str {
    match argv0.as_ref().map(crate::plugin::invoked_as) {
        Some("kubectl argo rollouts") => "kubectl-argo-rollouts",
        Some("kubectl sluice") => "kubectl-sluice",
        _ => "sluice",
    }
}

/// Runs `version`.
pub fn run(args: &VersionArgs) {
    let name = program_name(std::env::args_os().next());
    print!("{}", render(&Build::current(), name, args.short));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(commit: &'static str, tag: &'static str, state: &'static str) -> Build {
        Build {
            crate_version: "0.1.0",
            git_commit: commit,
            git_tag: tag,
            git_tree_state: state,
            build_date: "",
        }
    }

    #[test]
    fn the_version_follows_argos_scheme() {
        assert_eq!(build("", "", "").version(), "v0.1.0+unknown");
        let commit = "44ad745e1c0ffee";
        assert_eq!(build(commit, "", "clean").version(), "v0.1.0+44ad745");
        assert_eq!(build(commit, "", "dirty").version(), "v0.1.0+44ad745.dirty");
        assert_eq!(build(commit, "v0.1.0", "clean").version(), "v0.1.0");
        assert_eq!(
            build(commit, "v0.1.0", "dirty").version(),
            "v0.1.0+44ad745.dirty"
        );
    }

    #[test]
    fn the_long_form_has_argos_lines() {
        let out = render(&build("", "", ""), "kubectl-argo-rollouts", false);
        let keys: Vec<&str> = out
            .lines()
            .map(|l| l.split(':').next().unwrap().trim())
            .collect();
        assert_eq!(
            keys,
            [
                "kubectl-argo-rollouts",
                "BuildDate",
                "GitCommit",
                "GitTreeState",
                "RustVersion",
                "Compiler",
                "Platform"
            ]
        );
        assert!(out.starts_with("kubectl-argo-rollouts: v0.1.0+unknown\n  BuildDate: unknown\n"));
        assert_eq!(
            render(&build("", "", ""), "sluice", true),
            "sluice: v0.1.0+unknown\n"
        );
    }
}
