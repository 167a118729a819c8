//! Lossless holders for embedded Kubernetes objects.
//!
//! Rollouts, Experiments and Job metrics embed a `PodTemplateSpec` or a `JobSpec`. The Kubernetes
//! version sluice compiles against (k8s-openapi `v1_33`) is older than what users write: Argo's own
//! CRDs already carry 1.34 pod fields such as `env[].valueFrom.fileKeyRef` and
//! `containers[].restartPolicyRules`. Deserializing into k8s-openapi's structs would silently drop
//! them, and a ReplicaSet copied from the template would lose what the user wrote.
//!
//! [`Preserved<T>`] keeps the exact JSON object the user wrote and offers a typed, lossy *view*
//! ([`Preserved::typed`]) for reading. Writes go through the JSON ([`Preserved::as_object_mut`]),
//! so nothing unknown is ever lost. Its schema is `T`'s schema with
//! `x-kubernetes-preserve-unknown-fields: true` on every object, so a real API server keeps
//! newer fields too instead of pruning them.

use std::{fmt, marker::PhantomData};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};
use serde_json::{Map, Value};

/// The extension that stops a Kubernetes API server from pruning unknown fields under a node.
pub const PRESERVE_UNKNOWN_FIELDS: &str = "x-kubernetes-preserve-unknown-fields";

/// An embedded object of type `T`, held as the exact JSON object that was written.
pub struct Preserved<T> {
    raw: Map<String, Value>,
    ty: PhantomData<fn() -> T>,
}

impl<T> Preserved<T> {
    /// Wraps a JSON object as written.
    pub fn from_object(raw: Map<String, Value>) -> Self {
        Self {
            raw,
            ty: PhantomData,
        }
    }

    /// The JSON object as written.
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// The JSON object, for edits that must keep every unknown field.
    pub fn as_object_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.raw
    }

    /// The JSON object, by value.
    pub fn into_object(self) -> Map<String, Value> {
        self.raw
    }

    /// The value at a JSON pointer (`/spec/containers/0/image`), if present.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        let rest = pointer.strip_prefix('/')?;
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let head = self.raw.get(first)?;
        if tail.is_empty() {
            Some(head)
        } else {
            head.pointer(&format!("/{tail}"))
        }
    }
}

impl<T: Serialize> Preserved<T> {
    /// Wraps a typed value. Fails only if `T` does not serialize to a JSON object.
    pub fn from_typed(value: &T) -> Result<Self, serde_json::Error> {
        match serde_json::to_value(value)? {
            Value::Object(raw) => Ok(Self::from_object(raw)),
            other => Err(serde::ser::Error::custom(format!(
                "expected an object, got {other}"
            ))),
        }
    }
}

impl<T: DeserializeOwned> Preserved<T> {
    /// A typed view of the object. Lossy: fields unknown to `T` are not in the view, so never
    /// write a view back in place of the object.
    ///
    /// # Errors
    /// When the object does not fit `T` (for example a string where `T` has a number).
    pub fn typed(&self) -> Result<T, serde_json::Error> {
        T::deserialize(Value::Object(self.raw.clone()))
    }
}

impl<T> Clone for Preserved<T> {
    fn clone(&self) -> Self {
        Self::from_object(self.raw.clone())
    }
}

impl<T> Default for Preserved<T> {
    fn default() -> Self {
        Self::from_object(Map::new())
    }
}

impl<T> PartialEq for Preserved<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> fmt::Debug for Preserved<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Preserved").field(&self.raw).finish()
    }
}

impl<T> Serialize for Preserved<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Preserved<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from_object)
    }
}

impl<T: JsonSchema> JsonSchema for Preserved<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Preserved_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = generator.subschema_for::<T>();
        if let Some(object) = schema.as_object_mut() {
            preserve_unknown_fields(object);
        }
        schema
    }
}

/// Marks every object node that lists `properties` as keeping unknown fields.
fn preserve_unknown_fields(node: &mut Map<String, Value>) {
    if node.contains_key("properties") {
        node.insert(PRESERVE_UNKNOWN_FIELDS.into(), Value::Bool(true));
    }
    for (key, child) in node.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(props)) => {
                for prop in props.values_mut() {
                    if let Value::Object(prop) = prop {
                        preserve_unknown_fields(prop);
                    }
                }
            }
            ("items" | "additionalProperties", Value::Object(sub)) => preserve_unknown_fields(sub),
            ("allOf" | "anyOf" | "oneOf", Value::Array(subs)) => {
                for sub in subs {
                    if let Value::Object(sub) = sub {
                        preserve_unknown_fields(sub);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{
                "name": "demo",
                "image": "argoproj/rollouts-demo:blue",
                "env": [{"name": "CONFIG", "valueFrom": {"fileKeyRef": {"path": "a.env", "key": "K", "volumeName": "v"}}}],
                "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]
            }]}
        })
    }

    #[test]
    fn keeps_fields_newer_than_the_compiled_kubernetes_version() {
        let held: Preserved<PodTemplateSpec> = serde_json::from_value(template()).unwrap();
        assert_eq!(serde_json::to_value(&held).unwrap(), template());
    }

    #[test]
    fn typed_view_reads_known_fields() {
        let held: Preserved<PodTemplateSpec> = serde_json::from_value(template()).unwrap();
        let view = held.typed().unwrap();
        let containers = view.spec.unwrap().containers;
        assert_eq!(
            containers[0].image.as_deref(),
            Some("argoproj/rollouts-demo:blue")
        );
        assert_eq!(
            held.pointer("/spec/containers/0/name"),
            Some(&json!("demo"))
        );
    }

    #[test]
    fn rejects_non_objects() {
        assert!(serde_json::from_value::<Preserved<PodTemplateSpec>>(json!([1])).is_err());
    }

    #[test]
    fn schema_preserves_unknown_fields_at_every_object() {
        let mut generator = schemars::generate::SchemaSettings::openapi3()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let schema = generator.subschema_for::<Preserved<PodTemplateSpec>>();
        let schema = schema.as_value();
        assert_eq!(schema[PRESERVE_UNKNOWN_FIELDS], json!(true));
        let container = &schema["properties"]["spec"]["properties"]["containers"]["items"];
        assert_eq!(container[PRESERVE_UNKNOWN_FIELDS], json!(true));
    }
}
