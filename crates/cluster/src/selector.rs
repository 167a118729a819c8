//! Label and field selectors as clients write them in query strings
//! (`app=demo,tier in (web,api),!canary`, `metadata.name=demo`).
//!
//! Layering: beside the store, below the API server.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector, SelectorExt};
use serde_json::Value;

use crate::store::StoredObject;

/// Why a selector string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

/// Parses a label selector in Kubernetes' string syntax: comma-separated requirements, each
/// `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)` or `key notin (a,b)`.
///
/// # Errors
/// [`SelectorError`] naming the requirement that does not parse.
pub fn parse_label_selector(text: &str) -> Result<Selector, SelectorError> {
    let mut expressions = Vec::new();
    for requirement in split_requirements(text)? {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            if text.trim().is_empty() {
                continue;
            }
            return Err(SelectorError(format!("empty requirement in {text:?}")));
        }
        expressions.push(parse_requirement(requirement)?);
    }
    Ok(expressions.into_iter().collect())
}

/// Splits on commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SelectorError(format!("unbalanced ')' in {text:?}")))?;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!("unbalanced '(' in {text:?}")));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(text: &str) -> Result<Expression, SelectorError> {
    let bad = || SelectorError(text.to_owned());
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(valid_key(key.trim(), text)?));
    }
    if let Some(at) = text.find("!=") {
        let (key, value) = (&text[..at], &text[at + 2..]);
        return Ok(Expression::NotEqual(
            valid_key(key.trim(), text)?,
            valid_value(value.trim(), text)?,
        ));
    }
    if let Some(at) = text.find('=') {
        let key = &text[..at];
        let value = text[at + 1..].strip_prefix('=').unwrap_or(&text[at + 1..]);
        return Ok(Expression::Equal(
            valid_key(key.trim(), text)?,
            valid_value(value.trim(), text)?,
        ));
    }
    let mut words = text.splitn(2, char::is_whitespace);
    let key = words.next().ok_or_else(bad)?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Expression::Exists(valid_key(key, text)?));
    };
    let (negated, set) = if let Some(set) = rest.strip_prefix("notin") {
        (true, set)
    } else if let Some(set) = rest.strip_prefix("in") {
        (false, set)
    } else {
        return Err(bad());
    };
    let values = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let values: BTreeSet<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| valid_value(v, text))
        .collect::<Result<_, _>>()?;
    if values.is_empty() && !negated {
        return Err(SelectorError(format!(
            "{text}: for 'in', 'notin' operators, values set can't be empty"
        )));
    }
    let key = valid_key(key, text)?;
    Ok(if negated {
        Expression::NotIn(key, values)
    } else {
        Expression::In(key, values)
    })
}

fn valid_key(key: &str, requirement: &str) -> Result<String, SelectorError> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(SelectorError(format!(
            "{requirement}: invalid label key {key:?}"
        )))
    }
}

fn valid_value(value: &str, requirement: &str) -> Result<String, SelectorError> {
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(SelectorError(format!(
            "{requirement}: invalid label value {value:?}"
        )))
    }
}

/// Whether a stored object's labels match.
pub fn labels_match(selector: &Selector, object: &StoredObject) -> bool {
    selector.matches(&object.labels)
}

/// A field selector: `field=value`, `field==value` or `field!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses a field selector, accepting only fields in `supported` (plus `metadata.name` and
    /// `metadata.namespace`, which every kind supports).
    ///
    /// # Errors
    /// [`SelectorError`] for bad syntax or an unsupported field.
    pub fn parse(text: &str, supported: &[&str]) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!("{part}: expected field=value")));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace")
                && !supported.contains(&field)
            {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            requirements.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self { requirements })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value `metadata.name` must equal, if the selector pins one.
    pub fn pinned_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|(field, equal, _)| field == "metadata.name" && *equal)
            .map(|(_, _, value)| value.as_str())
    }

    /// Whether a stored object matches. `view` parses the object only when a field beyond its
    /// name and namespace is needed.
    pub fn matches(&self, object: &StoredObject) -> bool {
        let mut parsed: Option<Value> = None;
        self.requirements.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                "metadata.name" => object.key.name.clone(),
                "metadata.namespace" => object.key.namespace.clone(),
                path => {
                    let v = parsed.get_or_insert_with(|| object.value());
                    field_value(v, path)
                }
            };
            (actual == *value) == *equal
        })
    }
}

/// A field's value as a field selector compares it: strings as written, other scalars in their
/// JSON form, missing as empty.
fn field_value(object: &Value, path: &str) -> String {
    let mut node = object;
    for part in path.split('.') {
        node = &node[part];
    }
    match node {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fields each kind supports in field selectors beyond `metadata.name` and `metadata.namespace`.
pub fn supported_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("app=demo", &[("app", "demo")], true),
            ("app==demo", &[("app", "demo")], true),
            ("app!=demo", &[("app", "demo")], false),
            ("app!=demo", &[], true),
            ("app", &[("app", "x")], true),
            ("!app", &[("app", "x")], false),
            ("!app", &[], true),
            ("tier in (web, api)", &[("tier", "api")], true),
            ("tier in (web,api)", &[("tier", "db")], false),
            ("tier notin (web,api)", &[("tier", "db")], true),
            ("tier notin (web,api)", &[], true),
            (
                "app=demo,tier in (web),!canary",
                &[("app", "demo"), ("tier", "web")],
                true,
            ),
            (
                "app=demo,tier in (web),!canary",
                &[("app", "demo"), ("tier", "web"), ("canary", "")],
                false,
            ),
            (
                "example.com/role=a_b.c-d",
                &[("example.com/role", "a_b.c-d")],
                true,
            ),
            ("app=", &[("app", "")], true),
            ("", &[("x", "y")], true),
        ];
        for (text, set, expected) in cases {
            let selector = parse_label_selector(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                selector.matches(&labels(set)),
                *expected,
                "{text} on {set:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "app in web",
            "tier in (web",
            "a=b)",
            "=x",
            "app=b c",
            "app,,b",
            "tier in ()",
            "bad key=1",
            "app==x=y",
        ] {
            assert!(parse_label_selector(bad).is_err(), "{bad} parsed");
        }
    }

    /// Random strings over the characters selectors use: the parser never panics, and what it
    /// accepts prints back to a selector that parses to the same thing. (The `label_selector`
    /// fuzz target explores further.)
    #[test]
    fn random_input_never_panics_and_accepted_selectors_reprint() {
        const ALPHABET: &[u8] = b"ab=!,() inotx.-_/9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (state % 24) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
                })
                .collect();
            if let Ok(selector) = parse_label_selector(&text) {
                let printed = selector.to_string();
                let again = parse_label_selector(&printed)
                    .unwrap_or_else(|e| panic!("{text:?} -> {printed:?}: {e}"));
                assert_eq!(again.to_string(), printed, "{text:?}");
            }
            let _ = FieldSelector::parse(&text, &[]);
        }
    }

    #[test]
    fn field_selectors_check_supported_fields() {
        assert!(FieldSelector::parse("metadata.name=x", &[]).is_ok());
        assert!(FieldSelector::parse("spec.foo=x", &[]).is_err());
        let fs = FieldSelector::parse(
            "involvedObject.name=demo,type!=Normal",
            supported_fields("", "events"),
        )
        .unwrap();
        assert_eq!(fs.pinned_name(), None);
        assert_eq!(
            FieldSelector::parse("metadata.name==a", &[])
                .unwrap()
                .pinned_name(),
            Some("a")
        );
    }
}
