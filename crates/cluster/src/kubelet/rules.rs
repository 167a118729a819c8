//! Image rules: how the local kubelet runs each image. Read from the `--images` YAML file (see
//! `deploy/images.sample.yaml`); the first rule whose glob matches the image wins, and images no
//! rule matches use `default`.

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

/// One rule: an image glob and its behaviour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Image glob: `*` matches any run of characters, `?` one character.
    pub image: String,
    /// The behaviour.
    #[serde(flatten)]
    pub behaviour: Behaviour,
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
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The behaviour for an image, and whether a rule matched it.
    pub fn lookup(&self, image: &str) -> (&Behaviour, bool) {
        match self.rules.iter().find(|r| glob(&r.image, image)) {
            Some(rule) => (&rule.behaviour, true),
            None => (&self.default, false),
        }
    }
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
        let (behaviour, matched) = rules.lookup("example.com/broken:1");
        assert!(matched && behaviour.pull_error);
        let (behaviour, matched) = rules.lookup("busybox:latest");
        assert!(!matched);
        assert_eq!(behaviour.ready_after(), Duration::from_secs(1));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err = Rules::parse("rules:\n- image: x\n  readyAfter: soon\n").unwrap_err();
        assert!(err.contains("soon"), "{err}");
        assert!(Rules::parse("rulez: []").is_err());
    }
}
