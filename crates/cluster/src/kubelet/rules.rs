//! Image rules: how the local kubelet runs each image. Read from the `--images` YAML file (see
//! `deploy/images.sample.yaml`); the first rule whose glob matches the image wins. After the
//! file's rules come the built-in ones: `argoproj/rollouts-demo:<tag>` and `sluice/demo:<tag>`
//! (any registry) run the demo app as a local process (an unknown tag cannot be pulled),
//! `sluice/smoke:<tag>` and `[registry/]sluice-dev/smoke:<tag>` run `sluice smoke` with the
//! container's args (a smoke test a Job metric can run without host exec), and, with
//! `--allow-host-exec`, a container that runs to completion, runs once (ephemeral) or is
//! interactive (`stdin`), and has a command (or args naming a program here, see
//! `launch::host_command`), runs it on this host. Everything else uses `default` (simulated).

use std::{path::Path, time::Duration};

use serde::Deserialize;

/// What a matched image does when "run".
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behaviour {
    /// Seconds from start until the container is ready (default 1).
    #[serde(default, with = "opt_duration")]
    pub ready_after: Option<Duration>,
    /// Never becomes ready.
    #[serde(default)]
    pub never_ready: bool,
    /// The image cannot be pulled (`ErrImagePull`, then `ImagePullBackOff`).
    #[serde(default)]
    pub pull_error: bool,
    /// The container exits with code 1 this long after each start (`CrashLoopBackOff`).
    #[serde(default, with = "opt_duration")]
    pub crash_after: Option<Duration>,
    /// For run-to-completion pods: the exit code (default 0).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// For run-to-completion pods: how long the container runs (default: `readyAfter`).
    #[serde(default, with = "opt_duration")]
    pub run_for: Option<Duration>,
    /// How long a stopping container takes (never above the pod's grace period; default 0).
    #[serde(default, with = "opt_duration")]
    pub termination_delay: Option<Duration>,
}

impl Behaviour {
    /// Time from start to ready.
    pub fn ready_after(&self) -> Duration {
        self.ready_after.unwrap_or(Duration::from_secs(1))
    }

    /// Time a run-to-completion container runs.
    pub fn run_for(&self) -> Duration {
        self.run_for.unwrap_or_else(|| self.ready_after())
    }
}

/// One rule: an image glob and how its containers run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Image glob: `*` matches any run of characters, `?` one character.
    pub image: String,
    /// Run this local program (argv; `{pod_ip}` and `{port}` are replaced) instead of simulating.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Run the container's own `command` and `args` on this host (needs `--allow-host-exec`).
    #[serde(default)]
    pub exec: bool,
    /// The simulated behaviour (when neither `command` nor `exec` is set).
    #[serde(flatten)]
    pub behaviour: Behaviour,
}

/// How a container runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    /// Simulated: its status follows the behaviour over time.
    Simulated(Behaviour),
    /// A local program bound to the pod's address: argv with `{pod_ip}` and `{port}`.
    Process(Vec<String>),
    /// A program built into sluice (the smoke image): argv, then the container's own command
    /// and args.
    Builtin(Vec<String>),
    /// The container's own command and args, run on this host.
    Exec,
    /// The exec runtime was asked for without `--allow-host-exec`.
    ExecNotAllowed,
}

impl Runtime {
    /// Whether a real process runs (the container's status follows it, not the clock).
    pub fn is_real(&self) -> bool {
        !matches!(self, Self::Simulated(_))
    }
}

/// The rules file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Behaviour of images no rule matches.
    #[serde(default)]
    pub default: Behaviour,
    /// The program that serves the demo app (`[sluice, demo-app]`); without it, demo images
    /// run simulated.
    #[serde(skip)]
    pub demo: Option<Vec<String>>,
    /// The program the smoke image runs (`[sluice, smoke]`); without it, smoke images run
    /// simulated.
    #[serde(skip)]
    pub smoke: Option<Vec<String>>,
    /// Whether `exec` runs and `exec` probes may run commands on this host.
    #[serde(skip)]
    pub allow_host_exec: bool,
}

/// Why a rules file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML for the format.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

impl Rules {
    /// Reads a rules file.
    ///
    /// # Errors
    /// [`RulesError`] naming the file and, for bad content, the line.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| RulesError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses rules from YAML.
    ///
    /// # Errors
    /// The parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rules: Self = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        for (i, rule) in rules.rules.iter().enumerate() {
            if rule.exec && rule.command.is_some() {
                return Err(format!(
                    "rules[{i}] (image {:?}): `command` and `exec` cannot both be set",
                    rule.image
                ));
            }
            if rule.command.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "rules[{i}] (image {:?}): `command` is empty",
                    rule.image
                ));
            }
        }
        Ok(rules)
    }

    /// How a container runs, and whether a rule (not the default) decided it.
    /// `run_to_completion`: the container may run its own command here (it runs to completion,
    /// once, or interactively).
    pub fn runtime(
        &self,
        image: &str,
        command: Option<&[String]>,
        run_to_completion: bool,
    ) -> (Runtime, bool) {
        let exec = || {
            if self.allow_host_exec {
                Runtime::Exec
            } else {
                Runtime::ExecNotAllowed
            }
        };
        if let Some(rule) = self.rules.iter().find(|r| glob(&r.image, image)) {
            let runtime = match (&rule.command, rule.exec) {
                (Some(argv), _) => Runtime::Process(argv.clone()),
                (None, true) => exec(),
                (None, false) => Runtime::Simulated(rule.behaviour.clone()),
            };
            return (runtime, true);
        }
        if let (Some(program), Some(tag)) = (&self.demo, demo_tag(image)) {
            let runtime = if sluice_demo::DemoConfig::from_tag(tag).is_ok() {
                let mut argv = program.clone();
                argv.extend(["--tag".to_owned(), tag.to_owned()]);
                Runtime::Process(argv)
            } else {
                Runtime::Simulated(Behaviour {
                    pull_error: true,
                    ..Behaviour::default()
                })
            };
            return (runtime, true);
        }
        if let (Some(program), Some(_)) = (
            &self.smoke,
            image_tag(image, &["sluice/smoke", "sluice-dev/smoke"]),
        ) {
            return (Runtime::Builtin(program.clone()), true);
        }
        if self.allow_host_exec && run_to_completion && command.is_some_and(|c| !c.is_empty()) {
            return (Runtime::Exec, true);
        }
        (Runtime::Simulated(self.default.clone()), false)
    }
}

/// The tag of a demo image (`[registry/]argoproj/rollouts-demo:<tag>` or `[registry/]sluice/demo:<tag>`).
pub fn demo_tag(image: &str) -> Option<&str> {
    image_tag(image, &["argoproj/rollouts-demo", "sluice/demo"])
}

/// The tag of `image` when its repository is one of `names` (under any registry).
pub fn image_tag<'a>(image: &'a str, names: &[&str]) -> Option<&'a str> {
    let image = image.split('@').next().unwrap_or(image);
    let slash = image.rfind('/').unwrap_or(0);
    let (repository, tag) = match image[slash..].find(':') {
        Some(colon) => (&image[..slash + colon], &image[slash + colon + 1..]),
        None => (image, "latest"),
    };
    names
        .iter()
        .any(|name| {
            repository == *name
                || repository
                    .strip_suffix(name)
                    .is_some_and(|prefix| prefix.ends_with('/'))
        })
        .then_some(tag)
}

/// Glob matching with `*` and `?`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| sluice_api::duration::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match() {
        assert!(glob("nginx:*", "nginx:1.25"));
        assert!(glob(
            "*/rollouts-demo:*",
            "docker.io/argoproj/rollouts-demo:blue"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("nginx:*", "redis:7"));
        assert!(glob("*", ""));
    }

    #[test]
    fn the_sample_file_parses_and_first_match_wins() {
        let rules = Rules::parse(include_str!("../../../../deploy/images.sample.yaml")).unwrap();
        let (runtime, matched) = rules.runtime("example.com/broken:1", None, false);
        assert!(matched && matches!(runtime, Runtime::Simulated(b) if b.pull_error));
        let (runtime, matched) = rules.runtime("busybox:latest", None, false);
        assert!(!matched);
        assert!(
            matches!(runtime, Runtime::Simulated(b) if b.ready_after() == Duration::from_secs(1))
        );
        let (runtime, _) = rules.runtime("example.com/api:v2", None, false);
        assert!(matches!(&runtime, Runtime::Process(argv) if argv[0] == "/usr/local/bin/api"));
    }

    #[test]
    fn demo_images_run_the_demo_program_and_unknown_tags_cannot_be_pulled() {
        let mut rules = Rules::default();
        assert_eq!(demo_tag("argoproj/rollouts-demo:blue"), Some("blue"));
        assert_eq!(
            demo_tag("docker.io/argoproj/rollouts-demo:bad-red"),
            Some("bad-red")
        );
        assert_eq!(demo_tag("sluice/demo"), Some("latest"));
        assert_eq!(
            demo_tag("localhost:5000/sluice/demo:slow-green"),
            Some("slow-green")
        );
        assert_eq!(demo_tag("evil-argoproj/rollouts-demo:blue"), None);
        assert_eq!(demo_tag("nginx:1.25"), None);
        // Without a demo program, demo images are simulated.
        assert!(
            !rules
                .runtime("argoproj/rollouts-demo:blue", None, false)
                .0
                .is_real()
        );
        rules.demo = Some(vec!["sluice".into(), "demo-app".into()]);
        let (runtime, matched) = rules.runtime("argoproj/rollouts-demo:blue", None, false);
        assert!(matched);
        assert_eq!(
            runtime,
            Runtime::Process(vec![
                "sluice".into(),
                "demo-app".into(),
                "--tag".into(),
                "blue".into()
            ])
        );
        let (runtime, _) = rules.runtime("argoproj/rollouts-demo:nope", None, false);
        assert!(matches!(runtime, Runtime::Simulated(b) if b.pull_error));
    }

    #[test]
    fn the_smoke_image_runs_the_built_in_program() {
        let mut rules = Rules::default();
        assert!(!rules.runtime("sluice/smoke:1", None, true).0.is_real());
        rules.smoke = Some(vec!["sluice".into(), "smoke".into()]);
        for image in [
            "sluice/smoke",
            "ghcr.io/sluice-dev/smoke:v1",
            "localhost:5000/sluice/smoke:1",
        ] {
            assert_eq!(
                rules.runtime(image, None, true),
                (
                    Runtime::Builtin(vec!["sluice".into(), "smoke".into()]),
                    true
                )
            );
        }
        assert!(!rules.runtime("evil-sluice/smoke", None, true).0.is_real());
    }

    #[test]
    fn exec_needs_the_flag_and_a_command() {
        let command = vec!["sh".to_owned(), "-c".to_owned(), "exit 0".to_owned()];
        let mut rules = Rules::parse("rules:\n- image: \"tools:*\"\n  exec: true\n").unwrap();
        assert_eq!(
            rules.runtime("tools:1", None, true).0,
            Runtime::ExecNotAllowed
        );
        assert!(!rules.runtime("busybox", Some(&command), true).0.is_real());
        rules.allow_host_exec = true;
        assert_eq!(rules.runtime("tools:1", None, true).0, Runtime::Exec);
        assert_eq!(
            rules.runtime("busybox", Some(&command), true).0,
            Runtime::Exec
        );
        // Long-running pods and containers without a command stay simulated.
        assert!(!rules.runtime("busybox", Some(&command), false).0.is_real());
        assert!(!rules.runtime("busybox", None, true).0.is_real());
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err = Rules::parse("rules:\n- image: x\n  readyAfter: soon\n").unwrap_err();
        assert!(err.contains("soon"), "{err}");
        assert!(Rules::parse("rulez: []").is_err());
        let err = Rules::parse("rules:\n- image: x\n  exec: true\n  command: [a]\n").unwrap_err();
        assert!(err.contains("rules[0]"), "{err}");
    }
}
