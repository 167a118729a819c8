//! `Table` responses for `kubectl get`: kubectl's own columns for every built-in kind (the
//! server-side printers of `pkg/printers/internalversion`, by kind in [`workloads`],
//! [`network`] and [`cluster`]), a CRD's printer columns, and Name/Created At where Kubernetes
//! has no printer. As on a real server every column is sent; kubectl shows those of priority 1
//! only with `-o wide`. Rows carry what `includeObject` asks for: the object's metadata
//! (`PartialObjectMetadata`, the default), the whole object (`kubectl get --sort-by`), or
//! nothing.

mod cluster;
mod network;
mod workloads;

use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// The `Content-Type` of a Table answer.
pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether the client asked for a Table.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table") && accept.contains("g=meta.k8s.io"))
}

/// What each row carries of its object (`includeObject`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Include {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// The `includeObject` parameter of a request.
    ///
    /// # Errors
    /// 400 for a value Kubernetes does not know.
    pub fn from_query(query: &crate::apiserver::Query) -> crate::apiserver::ApiResult<Self> {
        match query.get("includeObject") {
            None | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(crate::apiserver::ApiError::bad_request(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }

    fn row_object(self, object: &Value) -> Option<Value> {
        match self {
            Self::None => None,
            Self::Metadata => Some(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            })),
            Self::Object => Some(object.clone()),
        }
    }
}

/// Kubernetes' short human duration (`45s`, `3m12s`, `5h`, `3d4h`, `2y10d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        format!("{}y{}d", days / 365, days % 365)
    } else {
        format!("{}y", days / 365)
    }
}

/// How long ago `time` (an RFC 3339 string) was, or `<unknown>`.
fn since(time: &Value, now: Timestamp) -> String {
    match time.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

/// A scalar as text (`""` for null).
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// The length of a list or map (0 for anything else).
fn count(v: &Value) -> i64 {
    match v {
        Value::Array(items) => items.len() as i64,
        Value::Object(map) => map.len() as i64,
        _ => 0,
    }
}

/// `labels.FormatLabels`: `k=v,k2=v2`, keys sorted, or `<none>`.
fn labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    pairs.sort();
    or_none(pairs.join(","))
}

/// `metav1.FormatLabelSelector`: the selector's requirements sorted by key, or `<none>`.
fn label_selector(selector: &Value) -> String {
    let mut requirements: Vec<(String, String)> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), format!("{k}={}", text(v))))
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = text(&expression["key"]);
        let mut values: Vec<String> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        values.sort();
        let shown = match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        requirements.push((key, shown));
    }
    requirements.sort();
    or_none(
        requirements
            .into_iter()
            .map(|(_, shown)| shown)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The container names and images of a pod spec, each joined with `,`.
fn containers_and_images(pod_spec: &Value) -> (String, String) {
    let containers = pod_spec["containers"].as_array();
    let field = |name: &str| {
        containers
            .into_iter()
            .flatten()
            .map(|c| text(&c[name]))
            .collect::<Vec<_>>()
            .join(",")
    };
    (field("name"), field("image"))
}

/// One column definition: header, type, priority.
struct Column {
    name: String,
    type_: &'static str,
    priority: i64,
}

/// The columns of a kind with one object's cells, built left to right.
struct Row {
    columns: Vec<Column>,
    cells: Vec<Value>,
}

impl Row {
    /// A row starting with the object's name.
    fn named(object: &Value) -> Self {
        Self::empty().cell("Name", "string", text(&object["metadata"]["name"]))
    }

    fn empty() -> Self {
        Self {
            columns: Vec::new(),
            cells: Vec::new(),
        }
    }

    fn push(mut self, name: &str, type_: &'static str, priority: i64, value: Value) -> Self {
        self.columns.push(Column {
            name: name.to_owned(),
            type_,
            priority,
        });
        self.cells.push(value);
        self
    }

    /// A column shown by default.
    fn cell(self, name: &str, type_: &'static str, value: impl Into<Value>) -> Self {
        self.push(name, type_, 0, value.into())
    }

    /// A column shown with `-o wide`.
    fn wide(self, name: &str, type_: &'static str, value: impl Into<Value>) -> Self {
        self.push(name, type_, 1, value.into())
    }

    /// The Age column.
    fn age(self, object: &Value, now: Timestamp) -> Self {
        let age = since(&object["metadata"]["creationTimestamp"], now);
        self.cell("Age", "string", age)
    }

    /// The Containers, Images (and the caller's Selector) wide columns of a pod template.
    fn template(self, pod_spec: &Value) -> Self {
        let (containers, images) = containers_and_images(pod_spec);
        self.wide("Containers", "string", containers)
            .wide("Images", "string", images)
    }
}

/// The row Kubernetes' default table convertor makes: Name and Created At.
fn created_at(object: &Value) -> Row {
    Row::named(object).cell(
        "Created At",
        "date",
        text(&object["metadata"]["creationTimestamp"]),
    )
}

/// A custom resource's printer columns (Age when the CRD names none).
fn custom(rt: &ResourceType, object: &Value, now: Timestamp) -> Row {
    let mut row = Row::named(object);
    let mut has_age = false;
    for column in &rt.columns {
        let value = column
            .json_path
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
            .fold(object, |node, part| &node[part]);
        has_age |= column.json_path == ".metadata.creationTimestamp";
        let (type_, cell) = match column.type_.as_str() {
            "date" => ("string", json!(since(value, now))),
            "integer" => ("integer", value.clone()),
            "number" => ("number", value.clone()),
            "boolean" => ("boolean", value.clone()),
            _ => ("string", value.clone()),
        };
        row = row.push(&column.name, type_, column.priority, cell);
    }
    if !has_age {
        row = row.age(object, now);
    }
    row
}

/// The row of one object of kind `rt`.
fn row(rt: &ResourceType, object: &Value, now: Timestamp) -> Row {
    if rt.custom {
        return custom(rt, object, now);
    }
    workloads::row(rt, object, now)
        .or_else(|| network::row(rt, object, now))
        .or_else(|| cluster::row(rt, object, now))
        .unwrap_or_else(|| created_at(object))
}

/// A Table of `objects` (all of kind `rt`), with or without column definitions.
pub fn render(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: Option<String>,
    with_definitions: bool,
    include: Include,
    now: Timestamp,
) -> Value {
    let mut columns = None;
    let mut rows = Vec::new();
    for object in objects {
        let row = row(rt, object, now);
        let mut rendered = json!({"cells": row.cells});
        if let Some(object) = include.row_object(object) {
            rendered["object"] = object;
        }
        rows.push(rendered);
        columns.get_or_insert(row.columns);
    }
    let columns = columns.unwrap_or_else(|| row(rt, &json!({"metadata": {}}), now).columns);
    let mut table =
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "rows": rows});
    if with_definitions {
        let definitions: Vec<Value> = columns
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "", "priority": c.priority})
            })
            .collect();
        table["columnDefinitions"] = json!(definitions);
    }
    if let Some(rv) = resource_version {
        table["metadata"]["resourceVersion"] = json!(rv);
    }
    table
}

#[cfg(test)]
mod tests;
