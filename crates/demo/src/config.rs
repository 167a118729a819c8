//! The demo app's settings: from the environment (`COLOR`, `ERROR_RATE`, `LATENCY`, `VERSION`)
//! or from a rollouts-demo image tag (`blue`, `bad-red` = 15 % errors, `slow-green` = 2 s).

use std::time::Duration;

/// The colours rollouts-demo knows.
pub const COLORS: [&str; 6] = ["red", "orange", "yellow", "green", "blue", "purple"];

/// Why settings were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Not a rollouts-demo tag.
    #[error("unknown demo image tag {0:?}: expected a colour ({colors}), bad-<colour> or slow-<colour>", colors = COLORS.join(", "))]
    Tag(String),
    /// A variable does not parse.
    #[error("{name}={value:?}: {why}")]
    Variable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why.
        why: String,
    },
}

/// How the demo app behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// The colour it answers (`None`: a random one per request, as rollouts-demo without COLOR).
    pub color: Option<String>,
    /// Percent of `/color` requests that fail with 500.
    pub error_rate: f64,
    /// Added latency per `/color` request.
    pub latency: Duration,
    /// Reported in `X-Version` and `/version`.
    pub version: String,
    /// How long shutdown waits before closing.
    pub termination_delay: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            color: None,
            error_rate: 0.0,
            latency: Duration::ZERO,
            version: "unknown".into(),
            termination_delay: Duration::ZERO,
        }
    }
}

impl DemoConfig {
    /// The settings a rollouts-demo image tag stands for.
    ///
    /// # Errors
    /// [`ConfigError::Tag`] for any other tag.
    pub fn from_tag(tag: &str) -> Result<Self, ConfigError> {
        let (color, error_rate, latency) = match tag.split_once('-') {
            Some(("bad", color)) => (color, 15.0, Duration::ZERO),
            Some(("slow", color)) => (color, 0.0, Duration::from_secs(2)),
            None => (tag, 0.0, Duration::ZERO),
            Some(_) => return Err(ConfigError::Tag(tag.to_owned())),
        };
        if !COLORS.contains(&color) {
            return Err(ConfigError::Tag(tag.to_owned()));
        }
        Ok(Self {
            color: Some(color.to_owned()),
            error_rate,
            latency,
            version: tag.to_owned(),
            termination_delay: Duration::ZERO,
        })
    }

    /// Overrides from environment variables (`lookup` is `std::env::var` in the binary).
    ///
    /// # Errors
    /// [`ConfigError::Variable`] naming a variable that does not parse.
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let number = |name: &'static str, value: String| -> Result<f64, ConfigError> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or(ConfigError::Variable {
                    name,
                    value,
                    why: "expected a non-negative number".into(),
                })
        };
        if let Some(color) = lookup("COLOR").filter(|c| !c.is_empty()) {
            self.color = Some(color);
        }
        if let Some(rate) = lookup("ERROR_RATE") {
            let rate = number("ERROR_RATE", rate)?;
            if rate > 100.0 {
                return Err(ConfigError::Variable {
                    name: "ERROR_RATE",
                    value: rate.to_string(),
                    why: "a percentage is at most 100".into(),
                });
            }
            self.error_rate = rate;
        }
        if let Some(latency) = lookup("LATENCY") {
            self.latency = Duration::from_secs_f64(number("LATENCY", latency)?);
        }
        if let Some(version) = lookup("VERSION").filter(|v| !v.is_empty()) {
            self.version = version;
        }
        Ok(self)
    }

    /// The colour of one answer.
    pub fn color(&self) -> String {
        self.color
            .clone()
            .unwrap_or_else(|| COLORS[fastrand::usize(..COLORS.len())].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_environment() {
        assert_eq!(
            DemoConfig::from_tag("blue").unwrap().color.as_deref(),
            Some("blue")
        );
        let bad = DemoConfig::from_tag("bad-red").unwrap();
        assert_eq!((bad.error_rate, bad.color.as_deref()), (15.0, Some("red")));
        assert_eq!(
            DemoConfig::from_tag("slow-green").unwrap().latency,
            Duration::from_secs(2)
        );
        assert!(DemoConfig::from_tag("latest").is_err());
        assert!(DemoConfig::from_tag("bad-pink").is_err());
        let env = |name: &str| match name {
            "ERROR_RATE" => Some("2.5".to_owned()),
            "LATENCY" => Some("0.25".to_owned()),
            _ => None,
        };
        let config = DemoConfig::from_tag("blue").unwrap().with_env(env).unwrap();
        assert_eq!(
            (config.error_rate, config.latency),
            (2.5, Duration::from_millis(250))
        );
        let bad_env = |name: &str| (name == "ERROR_RATE").then(|| "lots".to_owned());
        assert!(DemoConfig::default().with_env(bad_env).is_err());
    }
}
