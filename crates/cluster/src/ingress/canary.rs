//! NGINX canary rules: which requests a canary Ingress takes, from its annotations, with
//! ingress-nginx's precedence — the header (`canary-by-header` with `always`/`never`, or an exact
//! `canary-by-header-value`, or a `canary-by-header-pattern` regex), then the cookie
//! (`canary-by-cookie`: `always`/`never`), then the weight (`canary-weight` out of
//! `canary-weight-total`, default 100). Unlike ingress-nginx's random draw, the weight is smooth:
//! of any `total` consecutive weighted requests exactly `weight` go to the canary.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use regex::Regex;

use super::routes::PREFIX;

/// The rules of one canary Ingress.
#[derive(Debug, Clone)]
pub struct CanaryRules {
    /// `canary-by-header`.
    pub header: Option<String>,
    /// `canary-by-header-value`.
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`.
    pub header_pattern: Option<Regex>,
    /// `canary-by-cookie`.
    pub cookie: Option<String>,
    /// `canary-weight`.
    pub weight: u64,
    /// `canary-weight-total`.
    pub total: u64,
}

/// The canary rules of an Ingress's annotations; `None` when it is not a canary.
pub fn rules(annotations: &BTreeMap<String, String>) -> Option<CanaryRules> {
    let get = |name: &str| {
        annotations
            .get(&format!("{PREFIX}/{name}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if get("canary").as_deref() != Some("true") {
        return None;
    }
    let total = get("canary-weight-total")
        .and_then(|v| v.parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100);
    Some(CanaryRules {
        header: get("canary-by-header"),
        header_value: get("canary-by-header-value"),
        header_pattern: get("canary-by-header-pattern").and_then(|p| Regex::new(&p).ok()),
        cookie: get("canary-by-cookie"),
        weight: get("canary-weight")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(total),
        total,
    })
}

/// Whether this request goes to the canary. `counter` counts weighted decisions of the route.
pub fn decide(
    rules: &CanaryRules,
    header: &dyn Fn(&str) -> Option<String>,
    cookie: &dyn Fn(&str) -> Option<String>,
    counter: &AtomicU64,
) -> bool {
    if let Some(value) = rules.header.as_deref().and_then(header) {
        if let Some(expected) = &rules.header_value {
            if value == *expected {
                return true;
            }
        } else if let Some(pattern) = &rules.header_pattern {
            if pattern.is_match(&value) {
                return true;
            }
        } else if value == "always" {
            return true;
        } else if value == "never" {
            return false;
        }
    }
    match rules.cookie.as_deref().and_then(cookie).as_deref() {
        Some("always") => return true,
        Some("never") => return false,
        _ => {}
    }
    if rules.weight == 0 {
        return false;
    }
    if rules.weight >= rules.total {
        return true;
    }
    let n = counter.fetch_add(1, Ordering::Relaxed);
    // Request n goes to the canary when the canary's share crosses a whole request.
    (n + 1) * rules.weight / rules.total > n * rules.weight / rules.total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(extra: &[(&str, &str)]) -> CanaryRules {
        let mut annotations: BTreeMap<String, String> =
            [(format!("{PREFIX}/canary"), "true".to_owned())].into();
        for (k, v) in extra {
            annotations.insert(format!("{PREFIX}/{k}"), (*v).to_owned());
        }
        rules(&annotations).unwrap()
    }

    fn share(rules: &CanaryRules, requests: u64) -> u64 {
        let counter = AtomicU64::new(0);
        (0..requests)
            .filter(|_| decide(rules, &|_| None, &|_| None, &counter))
            .count() as u64
    }

    #[test]
    fn weights_are_smooth_and_exact() {
        assert_eq!(share(&canary(&[("canary-weight", "20")]), 2000), 400);
        assert_eq!(share(&canary(&[("canary-weight", "20")]), 5), 1);
        assert_eq!(
            share(
                &canary(&[("canary-weight", "1"), ("canary-weight-total", "3")]),
                9
            ),
            3
        );
        assert_eq!(share(&canary(&[("canary-weight", "100")]), 10), 10);
        assert_eq!(share(&canary(&[]), 10), 0);
        assert!(rules(&BTreeMap::new()).is_none());
    }

    #[test]
    fn header_then_cookie_then_weight() {
        let counter = AtomicU64::new(0);
        let all = canary(&[
            ("canary-weight", "100"),
            ("canary-by-header", "X-Canary"),
            ("canary-by-cookie", "canary"),
        ]);
        let header =
            |value: &'static str| move |name: &str| (name == "X-Canary").then(|| value.to_owned());
        let cookie =
            |value: &'static str| move |name: &str| (name == "canary").then(|| value.to_owned());
        let none = |_: &str| None;
        assert!(
            !decide(&all, &header("never"), &cookie("always"), &counter),
            "header first"
        );
        assert!(
            !decide(&all, &none, &cookie("never"), &counter),
            "then the cookie"
        );
        assert!(
            decide(&all, &header("maybe"), &none, &counter),
            "then the weight"
        );
        let none_weight = canary(&[("canary-by-header", "X-Canary")]);
        assert!(decide(&none_weight, &header("always"), &none, &counter));
        let by_value = canary(&[
            ("canary-by-header", "X-Canary"),
            ("canary-by-header-value", "yes"),
        ]);
        assert!(decide(&by_value, &header("yes"), &none, &counter));
        assert!(
            !decide(&by_value, &header("always"), &none, &counter),
            "only the value counts"
        );
        let by_pattern = canary(&[
            ("canary-by-header", "X-Canary"),
            ("canary-by-header-pattern", "^v2-.*"),
        ]);
        assert!(decide(&by_pattern, &header("v2-beta"), &none, &counter));
        assert!(!decide(&by_pattern, &header("v1"), &none, &counter));
    }
}
