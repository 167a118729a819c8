//! A run's arguments: their values (`value`, `valueFrom.secretKeyRef`, `valueFrom.fieldRef`),
//! `{{args.name}}` templating into a metric as Argo's `ResolveMetricArgs` does (the metric's
//! JSON, with each value JSON-escaped), and the redaction of secret values.
//!
//! Two resolutions of the same metric exist on purpose: one with secret values, handed only to
//! providers, and one with `*****` in their place, the only one that status, events and logs
//! ever see.

use std::collections::BTreeMap;

use sluice_api::{Argument, Metric, SecretKeyRef};

/// What secret values are replaced with wherever they could be seen (Argo's redaction).
pub const REDACTED: &str = "*****";

/// Why arguments could not be resolved. The messages are Argo's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// An argument has no value and nothing to take one from.
    #[error("argument \"{0}\" was not supplied")]
    NotSupplied(String),
    /// A `{{…}}` names no argument.
    #[error("failed to resolve {{{{{0}}}}}")]
    Unresolved(String),
    /// A `{{` without its `}}`.
    #[error("cannot find end tag \"}}}}\" in {0:?}")]
    Unclosed(String),
    /// A Secret or its key could not be read.
    #[error("{0}")]
    Secret(String),
    /// A `fieldRef` that resolves to nothing.
    #[error("fieldRef {path:?} of argument \"{argument}\" resolves to nothing")]
    Field {
        /// The argument.
        argument: String,
        /// The field path as written.
        path: String,
    },
    /// The metric with its arguments is no longer a metric.
    #[error("resolving arguments in metric \"{metric}\": {reason}")]
    Metric {
        /// The metric.
        metric: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Argument values by name, and which of them are secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    values: BTreeMap<String, String>,
    secrets: Vec<String>,
}

impl Values {
    /// The values of `args`: literal ones, Secret keys through `secret`, fields of `object` (the
    /// run itself for a standalone run) through [`field`].
    ///
    /// # Errors
    /// The first argument without a value, a Secret `secret` cannot read, or a `fieldRef` that
    /// resolves to nothing.
    pub fn resolve(
        args: &[Argument],
        object: &serde_json::Value,
        mut secret: impl FnMut(&SecretKeyRef) -> Result<String, ArgsError>,
    ) -> Result<Self, ArgsError> {
        let mut values = Self::default();
        for arg in args {
            let from = arg.value_from.as_ref();
            let value = if let Some(value) = &arg.value {
                value.clone()
            } else if let Some(reference) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                let value = secret(reference)?;
                values.secrets.push(value.clone());
                value
            } else if let Some(field_ref) = from.and_then(|f| f.field_ref.as_ref()) {
                field(object, &field_ref.field_path).ok_or_else(|| ArgsError::Field {
                    argument: arg.name.clone(),
                    path: field_ref.field_path.clone(),
                })?
            } else {
                return Err(ArgsError::NotSupplied(arg.name.clone()));
            };
            values.values.insert(arg.name.clone(), value);
        }
        values.secrets.retain(|s| !s.is_empty());
        Ok(values)
    }

    /// The same names with every secret value replaced by [`REDACTED`].
    pub fn redacted(&self) -> Self {
        let values = self
            .values
            .iter()
            .map(|(k, v)| {
                let v = if self.secrets.contains(v) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        Self {
            values,
            secrets: Vec::new(),
        }
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret, REDACTED)
        })
    }

    /// Whether any value is secret.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// `metric` with every `{{args.name}}` replaced by the argument's value, escaped for the
    /// JSON it is substituted into (Argo's `ResolveQuotedArgs`).
    ///
    /// # Errors
    /// A tag that names no argument, an unclosed tag, or a result that is no longer a metric.
    pub fn apply(&self, metric: &Metric) -> Result<Metric, ArgsError> {
        let text = serde_json::to_string(metric).map_err(|e| ArgsError::Metric {
            metric: metric.name.clone(),
            reason: e.to_string(),
        })?;
        if !text.contains("{{") {
            return Ok(metric.clone());
        }
        let quoted: BTreeMap<String, String> = self
            .values
            .iter()
            .map(|(name, value)| {
                let json = serde_json::Value::String(value.clone()).to_string();
                (format!("args.{name}"), json[1..json.len() - 1].to_owned())
            })
            .collect();
        let resolved = substitute(&text, &quoted)?;
        serde_json::from_str(&resolved).map_err(|e| ArgsError::Metric {
            metric: metric.name.clone(),
            reason: e.to_string(),
        })
    }
}

/// `template` with each `{{tag}}` (spaces around the tag ignored) replaced from `values`, as
/// fasttemplate does for Argo.
///
/// # Errors
/// A tag that is not in `values` ([`ArgsError::Unresolved`], naming the tag as written), or a
/// `{{` without `}}`.
pub fn substitute(template: &str, values: &BTreeMap<String, String>) -> Result<String, ArgsError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ArgsError::Unclosed(template.to_owned()));
        };
        let tag = &after[..end];
        match values.get(tag.trim()) {
            Some(value) => out.push_str(value),
            None => return Err(ArgsError::Unresolved(tag.to_owned())),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value at a Kubernetes field path in `object` — `metadata.name`,
/// `metadata.labels['app']`, `spec.template.spec.containers[0].image` — as text: strings as
/// they are, numbers and booleans printed, objects and arrays as JSON. `None` when the path
/// leads nowhere or is not a field path.
pub fn field(object: &serde_json::Value, path: &str) -> Option<String> {
    let mut current = object;
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let key = inner[..close].trim();
            current = match key.strip_prefix(['\'', '"']) {
                Some(quoted) => current.get(quoted.strip_suffix(['\'', '"'])?)?,
                None => current.get(key.parse::<usize>().ok()?)?,
            };
            rest = &inner[close + 1..];
        } else {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            current = current.get(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    match current {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arg(name: &str, value: Option<&str>) -> Argument {
        Argument {
            name: name.into(),
            value: value.map(Into::into),
            value_from: None,
        }
    }

    fn metric(value: serde_json::Value) -> Metric {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn values_are_substituted_json_escaped_and_unknown_tags_are_errors() {
        let values = Values::resolve(
            &[arg("host", Some("a\"b")), arg("n", Some("3"))],
            &json!({}),
            |_| unreachable!(),
        )
        .unwrap();
        let m = metric(
            json!({"name": "m", "count": "{{ args.n }}", "interval": "1s",
            "provider": {"web": {"url": "http://{{args.host}}/x"}}}),
        );
        let resolved = values.apply(&m).unwrap();
        assert_eq!(resolved.provider.web.unwrap().url, "http://a\"b/x");
        assert_eq!(
            resolved.count,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("3".into()))
        );
        let m = metric(json!({"name": "m", "provider": {"web": {"url": "{{args.missing}}"}}}));
        assert_eq!(
            values.apply(&m).unwrap_err().to_string(),
            "failed to resolve {{args.missing}}"
        );
    }

    #[test]
    fn an_argument_without_a_value_is_named() {
        let err = Values::resolve(&[arg("canary", None)], &json!({}), |_| unreachable!());
        assert_eq!(
            err.unwrap_err().to_string(),
            "argument \"canary\" was not supplied"
        );
    }

    #[test]
    fn secrets_are_resolved_for_providers_and_redacted_everywhere_else() {
        let secret: Argument = serde_json::from_value(
            json!({"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
        )
        .unwrap();
        let values = Values::resolve(&[secret], &json!({}), |r| {
            assert_eq!((r.name.as_str(), r.key.as_str()), ("s", "k"));
            Ok("hunter2".into())
        })
        .unwrap();
        let m = metric(json!({"name": "m", "provider": {"web": {"url": "http://x",
            "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]}}}));
        let real = values.apply(&m).unwrap();
        assert_eq!(
            real.provider.web.unwrap().headers.unwrap()[0].value,
            "Bearer hunter2"
        );
        let shown = values.redacted().apply(&m).unwrap();
        assert_eq!(
            shown.provider.web.unwrap().headers.unwrap()[0].value,
            "Bearer *****"
        );
        assert_eq!(values.redact("got hunter2 back"), "got ***** back");
    }

    #[test]
    fn field_refs_read_the_object_and_name_the_path_when_empty() {
        let object = json!({"metadata": {"name": "run", "labels": {"app.kubernetes.io/name": "shop"}},
            "spec": {"list": [{"image": "x:1"}], "n": 3}});
        assert_eq!(field(&object, "metadata.name").as_deref(), Some("run"));
        assert_eq!(
            field(&object, "metadata.labels['app.kubernetes.io/name']").as_deref(),
            Some("shop")
        );
        assert_eq!(field(&object, "spec.list[0].image").as_deref(), Some("x:1"));
        assert_eq!(field(&object, "spec.n").as_deref(), Some("3"));
        assert_eq!(field(&object, "metadata.labels['nope']"), None);
        let arg: Argument = serde_json::from_value(
            json!({"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['nope']"}}}),
        )
        .unwrap();
        let err = Values::resolve(&[arg], &object, |_| unreachable!()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fieldRef \"metadata.labels['nope']\" of argument \"a\" resolves to nothing"
        );
    }
}
