//! Argo's duration strings: Go's `time.ParseDuration` syntax (`30s`, `5m`, `1h30m`, `250ms`),
//! and the pause duration that may also be a bare number of seconds.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty string.
    #[error("duration is empty")]
    Empty,
    /// Negative duration.
    #[error("duration {0:?} is negative")]
    Negative(String),
    /// Not Go duration syntax.
    #[error("invalid duration {0:?}: expected a number with a unit such as 30s, 5m or 1h")]
    Syntax(String),
    /// Too large to represent.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a Go duration string (`1h30m`, `1.5s`, `250ms`, `0`).
///
/// # Errors
/// [`DurationError`] for empty, negative, malformed or overflowing input.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(text.to_owned());
    let mut rest = match text.strip_prefix('-') {
        Some(_) if text == "-0" => return Ok(Duration::ZERO),
        Some(_) => return Err(DurationError::Negative(text.to_owned())),
        None => text.strip_prefix('+').unwrap_or(text),
    };
    if rest.is_empty() {
        return Err(if text.is_empty() {
            DurationError::Empty
        } else {
            syntax()
        });
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(syntax()),
        };
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(syntax());
        }
        let value: f64 = number.parse().map_err(|_| syntax())?;
        let nanos = value * nanos_per_unit;
        if !nanos.is_finite() || nanos > u64::MAX as f64 {
            return Err(DurationError::Overflow(text.to_owned()));
        }
        total = total
            .checked_add(Duration::from_nanos(nanos.round() as u64))
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// The length of a canary `pause` step: an integer number of seconds, a string of digits
/// (seconds), or a duration string.
///
/// # Errors
/// [`DurationError`] for a negative number or a malformed string.
pub fn pause_duration(value: &IntOrString) -> Result<Duration, DurationError> {
    match value {
        IntOrString::Int(seconds) => u64::try_from(*seconds)
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Negative(seconds.to_string())),
        IntOrString::String(text) => match text.parse::<i64>() {
            Ok(seconds) => u64::try_from(seconds)
                .map(Duration::from_secs)
                .map_err(|_| DurationError::Negative(text.clone())),
            Err(_) => parse_duration(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("0", 0),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1_500),
            ("250ms", 250),
            ("+10s", 10_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        for bad in ["10", "s", "1x", "1..2s", "1h-5m", "h1"] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pause_accepts_seconds_or_durations() {
        assert_eq!(
            pause_duration(&IntOrString::Int(10)),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            pause_duration(&IntOrString::String("10".into())),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            pause_duration(&IntOrString::String("1m".into())),
            Ok(Duration::from_secs(60))
        );
        assert!(pause_duration(&IntOrString::Int(-1)).is_err());
    }
}
