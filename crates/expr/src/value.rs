//! [`Value`]: a measurement's result as a condition sees it.

use std::collections::BTreeMap;

/// A measurement's result, bound to `result` in a condition.
///
/// This is the value Argo's providers hand to `EvalCondition`, with Go's types: every number is
/// an `f64` ([`Value::Number`]), so NaN and ±Inf are ordinary numbers here — a Prometheus scalar
/// is `Value::from(f64::NAN)`, a vector is `Value::from(vec![0.5, f64::INFINITY])`. JSON
/// (a web provider's body after `jsonPath`) converts with `Value::from(&json)`; it cannot carry
/// NaN or Inf itself. [`Value::Nil`] is Go's nil (Datadog's empty answer) and differs from an
/// empty array (Prometheus' empty vector): `isNil(result)` and `default(result, v)` see only the
/// former.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    /// No result.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A number; may be NaN or infinite.
    Number(f64),
    /// A string (a plain-text body, or a JSON string).
    String(String),
    /// An array (a Prometheus vector or range, a JSON array).
    Array(Vec<Value>),
    /// An object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Go's nil or an empty array: what Argo reports as "nil or empty".
    pub fn is_nil_or_empty(&self) -> bool {
        match self {
            Value::Nil => true,
            Value::Array(items) => items.is_empty(),
            _ => false,
        }
    }

    pub(crate) fn to_expr(&self) -> expr::Value {
        match self {
            Value::Nil => expr::Value::Nil,
            Value::Bool(b) => expr::Value::Bool(*b),
            Value::Number(n) => expr::Value::Float(*n),
            Value::String(s) => expr::Value::String(s.clone()),
            Value::Array(items) => expr::Value::Array(items.iter().map(Value::to_expr).collect()),
            Value::Map(fields) => fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_expr()))
                .collect(),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            // Go decodes every JSON number to float64; so does this.
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from).collect())
            }
            serde_json::Value::Object(fields) => Value::Map(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::from(&json)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<Vec<f64>> for Value {
    fn from(samples: Vec<f64>) -> Self {
        Value::Array(samples.into_iter().map(Value::Number).collect())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
