//! The version guard: a bump to a lower semantic version is refused unless the user allows
//! downgrades. Tags that are not semver on either side (commit SHAs, build numbers with letters,
//! `latest`) are never compared; a leading `v` is accepted (`v1.2.3`).

use std::cmp::Ordering;

use semver::Version;

/// How the new tag compares with the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Higher, equal, or not both semver: go ahead.
    Allowed,
    /// Lower semver: `current` is newer than `new`.
    Downgrade {
        /// The tag there now.
        current: String,
        /// The tag asked for.
        new: String,
    },
}

/// Compares two tags; `None` on either side (a digest only) is not compared.
pub fn check(current: Option<&str>, new: Option<&str>) -> Verdict {
    let (Some(current), Some(new)) = (current, new) else {
        return Verdict::Allowed;
    };
    match (parse(current), parse(new)) {
        (Some(a), Some(b)) if b.cmp_precedence(&a) == Ordering::Less => Verdict::Downgrade {
            current: current.to_owned(),
            new: new.to_owned(),
        },
        _ => Verdict::Allowed,
    }
}

fn parse(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_semver_is_a_downgrade() {
        let downgrade = |a, b| matches!(check(Some(a), Some(b)), Verdict::Downgrade { .. });
        assert!(downgrade("1.2.3", "1.2.2"));
        assert!(downgrade("v2.0.0", "v1.9.9"));
        assert!(downgrade("1.0.0", "1.0.0-rc.1"));
        assert!(downgrade("1.10.0", "1.9.0"));
        assert!(!downgrade("1.2.3", "1.2.4"));
        assert!(!downgrade("1.2.3", "1.2.3"));
        assert!(!downgrade("1.0.0-rc.1", "1.0.0"));
        // Build metadata does not order versions.
        assert!(!downgrade("1.0.0+b2", "1.0.0+b1"));
        // Commit SHAs and other schemes are not compared.
        assert!(!downgrade("f00dfeed", "0badcafe"));
        assert!(!downgrade("1.2.3", "abc1234"));
        assert!(!downgrade("latest", "1.0.0"));
        assert_eq!(check(None, Some("1.0.0")), Verdict::Allowed);
    }
}
