//! The type registry: every kind the API server serves, built-in or defined by a
//! CustomResourceDefinition. Handlers are generic; what differs between kinds is data here.
//!
//! Layering: the object room, just above the store; the API server and the object code read it.

mod builtin;

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use serde_json::Value;

use crate::store::ResourceKey;

/// Where a kind's `/scale` subresource reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON path of the desired replicas (`.spec.replicas`).
    pub spec_replicas: String,
    /// JSON path of the observed replicas (`.status.replicas`).
    pub status_replicas: String,
    /// JSON path of the serialized label selector (`.status.selector`); `None` means the
    /// selector is computed from `.spec.selector` (Deployments, ReplicaSets).
    pub label_selector: Option<String>,
}

/// An `additionalPrinterColumns` entry of a CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// A simple JSON path (`.spec.replicas`).
    pub json_path: String,
    /// Description.
    pub description: String,
    /// 0 for the default view, more for `-o wide`.
    pub priority: i64,
}

/// How a kind's objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Stored, with every verb.
    Stored,
    /// Only `create`, answered with a computed object and never stored: the access and token
    /// reviews of `authorization.k8s.io` and `authentication.k8s.io`.
    Review,
    /// Only `get` and `list`, answered with what the kubelet measures: `metrics.k8s.io`.
    Metrics,
}

/// One kind the server serves.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// Served versions; the first is preferred.
    pub versions: Vec<String>,
    /// Plural resource name.
    pub resource: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories for kubectl (`all`).
    pub categories: Vec<String>,
    /// Whether `status` is a subresource (the main endpoint then ignores it).
    pub status: bool,
    /// The `/scale` subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` tracks changes outside metadata and status.
    pub generation: bool,
    /// Defined by a CustomResourceDefinition (no strategic merge patch).
    pub custom: bool,
    /// Stored, or computed per request.
    pub persistence: Persistence,
    /// Where objects are stored (events of both groups share one place).
    pub storage: ResourceKey,
    /// The CRD's schema per version, for pruning and `kubectl explain`.
    pub schemas: BTreeMap<String, Value>,
    /// The CRD's printer columns (preferred version).
    pub columns: Vec<PrinterColumn>,
}

impl ResourceType {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The preferred version.
    pub fn preferred_version(&self) -> &str {
        self.versions.first().map_or("v1", String::as_str)
    }

    /// `resource.group` as Kubernetes names it in messages (`rollouts.argoproj.io`, `pods`).
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }
}

/// All kinds the server serves. Built-ins are fixed; CRD-defined kinds come and go.
#[derive(Debug, Default)]
pub struct Registry {
    types: RwLock<BTreeMap<(String, String), Arc<ResourceType>>>,
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn with_builtins() -> Self {
        let registry = Self::default();
        for t in builtin::types() {
            registry.insert(t);
        }
        registry
    }

    /// Adds or replaces a kind.
    pub fn insert(&self, t: ResourceType) {
        let key = (t.group.clone(), t.resource.clone());
        self.write().insert(key, Arc::new(t));
    }

    /// Removes a CRD-defined kind.
    pub fn remove(&self, group: &str, resource: &str) {
        self.write()
            .remove(&(group.to_owned(), resource.to_owned()));
    }

    /// A kind by group and plural resource.
    pub fn get(&self, group: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.read()
            .get(&(group.to_owned(), resource.to_owned()))
            .cloned()
    }

    /// A kind by group and kind name.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.read()
            .values()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// Every kind, sorted by group and resource.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.read().values().cloned().collect()
    }

    /// Whether a kind is built in (not CRD-defined).
    pub fn is_builtin(group: &str, resource: &str) -> bool {
        builtin::types()
            .iter()
            .any(|t| t.group == group && t.resource == resource)
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<(String, String), Arc<ResourceType>>> {
        self.types.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<(String, String), Arc<ResourceType>>> {
        self.types.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kind a CustomResourceDefinition defines, or why it defines none.
///
/// # Errors
/// A message naming the missing or invalid field.
pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let spec = &crd["spec"];
    let field = |path: &str, v: &Value| -> Result<String, String> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("spec.{path}: Required value"))
    };
    let group = field("group", &spec["group"])?;
    let names = &spec["names"];
    let plural = field("names.plural", &names["plural"])?;
    let kind = field("names.kind", &names["kind"])?;
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map_or_else(|| kind.to_lowercase(), str::to_owned);
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let all_versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if all_versions.is_empty() {
        return Err("spec.versions: Required value".into());
    }
    let served: Vec<&Value> = all_versions
        .iter()
        .filter(|v| v["served"] == true)
        .collect();
    // The storage version first, then the other served versions in their order.
    let mut versions: Vec<String> = served
        .iter()
        .filter(|v| v["storage"] == true)
        .chain(served.iter().filter(|v| v["storage"] != true))
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    versions.dedup();
    let preferred = served
        .iter()
        .find(|v| v["storage"] == true)
        .or(served.first());
    let subresources = preferred.map(|v| &v["subresources"]);
    let scale = subresources
        .map(|s| &s["scale"])
        .filter(|s| s.is_object())
        .map(|s| ScalePaths {
            spec_replicas: s["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .to_owned(),
            status_replicas: s["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .to_owned(),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_owned),
        });
    let schemas = all_versions
        .iter()
        .filter_map(|v| {
            let name = v["name"].as_str()?.to_owned();
            let schema = v["schema"]["openAPIV3Schema"].clone();
            (!schema.is_null()).then_some((name, schema))
        })
        .collect();
    let columns = preferred
        .map(|v| &v["additionalPrinterColumns"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(PrinterColumn {
                name: c["name"].as_str()?.to_owned(),
                type_: c["type"].as_str().unwrap_or("string").to_owned(),
                json_path: c["jsonPath"].as_str()?.to_owned(),
                description: c["description"].as_str().unwrap_or_default().to_owned(),
                priority: c["priority"].as_i64().unwrap_or(0),
            })
        })
        .collect();
    Ok(ResourceType {
        columns,
        storage: ResourceKey::new(&group, &plural),
        group,
        versions,
        resource: plural,
        singular,
        kind,
        namespaced,
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        status: subresources.is_some_and(|s| s["status"].is_object()),
        scale,
        generation: true,
        custom: true,
        persistence: Persistence::Stored,
        schemas,
    })
}
