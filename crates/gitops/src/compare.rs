//! Comparing an Application's manifests with the cluster (Argo CD's `CompareAppState`), as a
//! pure function: each manifest is prepared as it would be applied (namespace defaulted from
//! the destination, the tracking annotation set), paired with its live object, diffed and
//! assessed; live objects the Application tracks that Git no longer has require pruning.
//! The result says what each resource's sync status and health is, the Application's, and the
//! warnings to raise. `ignoreDifferences` pointers are left out of each diff ([`ignore`]); an
//! object only the cluster has and marked `compare-options: IgnoreExtraneous` is no drift
//! (it still requires pruning). Hooks ([`crate::hooks`]) are set aside for the sync, and
//! objects `Skip` marks are left out.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
};

use serde_json::Value;

use sluice_api::names::argocd::annotation::{
    COMPARE_OPTIONS,
    compare_option::{IGNORE_EXTRANEOUS, SERVER_SIDE_DIFF},
};

use crate::{
    diff::{self, Diff},
    health::{self, Health, HealthCode},
    hooks::{self, Role},
    ignore,
    manifests::Manifest,
    tracking::{self, ResourceKey, TRACKING_ID},
};

/// A kind's scope as discovery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Namespaced.
    Namespaced,
    /// Cluster-scoped.
    Cluster,
    /// The API server does not serve the kind (yet).
    Unknown,
}

/// Why the manifests cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// A manifest's kind is not served and no CRD in the same manifests defines it.
    #[error(
        "{file}: {kind} {name:?}: the server could not find the requested resource (apiVersion {api_version}); is its CRD installed?"
    )]
    UnknownKind {
        /// The manifest's file.
        file: String,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
}

/// One resource of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Identity.
    pub key: ResourceKey,
    /// The apiVersion (of the manifest, else of the live object).
    pub api_version: String,
    /// The object as a sync would apply it; `None` when only the cluster has it.
    pub target: Option<Value>,
    /// The live object.
    pub live: Option<Value>,
    /// Differs from Git (or missing, or requires pruning).
    pub out_of_sync: bool,
    /// Only the cluster has it: a sync with prune deletes it.
    pub requires_pruning: bool,
    /// Health of the live object (`Missing` when Git has it and the cluster does not).
    pub health: Option<Health>,
    /// The kind is not served (a CRD in the same manifests will define it).
    pub kind_unknown: bool,
}

/// What a comparison found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    /// Every resource, ordered by key.
    pub resources: Vec<Resource>,
    /// Warning conditions: (type, message).
    pub warnings: Vec<(&'static str, String)>,
    /// The hooks among the manifests, prepared as resources are (not compared).
    pub hooks: Vec<Hook>,
}

/// A hook manifest: applied by a sync's phases, never compared nor pruned.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Identity (an empty name when the hook only has a `generateName`).
    pub key: ResourceKey,
    /// apiVersion.
    pub api_version: String,
    /// The object, prepared.
    pub target: Value,
    /// The phases it runs in.
    pub phases: Vec<crate::hooks::Phase>,
}

/// The inputs of [`compare`].
pub struct Inputs<'a> {
    /// The Application's instance name (its tracking id prefix).
    pub app: &'a str,
    /// `spec.destination.namespace`.
    pub namespace: &'a str,
    /// The rendered manifests.
    pub manifests: &'a [Manifest],
    /// `SkipDryRunOnMissingResource=true`.
    pub skip_missing_kinds: bool,
    /// The scope of a (group, kind).
    pub scope: &'a dyn Fn(&str, &str) -> Scope,
    /// The live object of a key (when its kind is watched).
    pub live: &'a dyn Fn(&ResourceKey) -> Option<Value>,
    /// Live root objects that name this Application.
    pub managed: Vec<(ResourceKey, Value)>,
    /// `spec.ignoreDifferences`.
    pub ignore: &'a [sluice_api::ResourceIgnoreDifferences],
    /// Child Applications have health (opted in through argocd-cm).
    pub application_health: bool,
    /// Server-side diff: live as a server-side apply dry run of the target predicts it, for
    /// the keys it was asked for (`compare-options: ServerSideDiff=true`); the others are
    /// diffed client-side.
    pub predicted: &'a dyn Fn(&ResourceKey) -> Option<Value>,
}

/// The (group, kind)s the CRDs among `manifests` define.
fn defined_kinds(manifests: &[Manifest]) -> BTreeSet<(String, String)> {
    manifests
        .iter()
        .filter(|m| m.object["kind"] == "CustomResourceDefinition")
        .filter_map(|m| {
            let spec = &m.object["spec"];
            Some((
                spec["group"].as_str()?.to_owned(),
                spec["names"]["kind"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Prepares a manifest for applying: its namespace and the tracking annotation.
pub fn prepare(object: &Value, app: &str, namespace: &str, scope: Scope) -> (ResourceKey, Value) {
    let mut object = object.clone();
    let mut key = ResourceKey::of(&object, namespace);
    if scope == Scope::Cluster {
        key.namespace.clear();
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
    } else {
        object["metadata"]["namespace"] = Value::String(key.namespace.clone());
    }
    let annotations = &mut object["metadata"]["annotations"];
    if !annotations.is_object() {
        *annotations = Value::Object(Default::default());
    }
    annotations[TRACKING_ID] = Value::String(key.tracking_id(app));
    (key, object)
}

/// Whether the Application asks for server-side diff (`argocd.argoproj.io/compare-options:
/// ServerSideDiff=true` on it).
pub fn server_side_diff(app: &sluice_api::Application) -> bool {
    app.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPARE_OPTIONS))
        .is_some_and(|o| o.split(',').any(|o| o.trim() == SERVER_SIDE_DIFF))
}

/// App of apps: a child Application that names no namespace lands in the controller's
/// `namespace` (the manifests borrowed as they are when none is such).
pub fn home_child_applications<'a>(
    manifests: &'a [Manifest],
    namespace: &str,
) -> Cow<'a, [Manifest]> {
    let homeless = |m: &Manifest| {
        m.object["kind"] == "Application"
            && m.object["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("argoproj.io/"))
            && m.object["metadata"]["namespace"].as_str().is_none()
    };
    if !manifests.iter().any(homeless) {
        return Cow::Borrowed(manifests);
    }
    Cow::Owned(
        manifests
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if homeless(&m) {
                    m.object["metadata"]["namespace"] = Value::from(namespace);
                }
                m
            })
            .collect(),
    )
}

/// Compares the manifests with the cluster.
pub fn compare(inputs: Inputs<'_>) -> Result<Comparison, CompareError> {
    let defined = defined_kinds(inputs.manifests);
    let mut resources: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut hook_list = Vec::new();
    for manifest in inputs.manifests {
        let object = &manifest.object;
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default();
        let group = tracking::group_of(&api_version);
        let scope = (inputs.scope)(group, kind);
        let kind_unknown = scope == Scope::Unknown;
        if kind_unknown
            && !inputs.skip_missing_kinds
            && !defined.contains(&(group.to_owned(), kind.to_owned()))
        {
            return Err(CompareError::UnknownKind {
                file: manifest.file.clone(),
                api_version,
                kind: kind.to_owned(),
                name: object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        let (key, target) = prepare(object, inputs.app, inputs.namespace, scope);
        match hooks::role(object) {
            Role::Resource => {}
            Role::Ignored => continue,
            Role::Hook(phases) => {
                hook_list.push(Hook {
                    key,
                    api_version,
                    target,
                    phases,
                });
                continue;
            }
        }
        if resources.contains_key(&key) {
            warnings.push((
                "RepeatedResourceWarning",
                format!("Resource {key} appeared 2 times among application resources."),
            ));
            continue;
        }
        let live = if kind_unknown {
            None
        } else {
            (inputs.live)(&key)
        };
        if let Some(live) = &live
            && let Some(other) = live["metadata"]["annotations"][TRACKING_ID]
                .as_str()
                .and_then(tracking::parse)
            && other.app != inputs.app
        {
            warnings.push((
                "SharedResourceWarning",
                format!(
                    "{} is part of applications {} and {}",
                    key, inputs.app, other.app
                ),
            ));
        }
        let (out_of_sync, health) = match &live {
            None => (
                true,
                Some(Health {
                    code: HealthCode::Missing,
                    message: String::new(),
                }),
            ),
            Some(live) => {
                let ignored = ignore::rules_for(inputs.ignore, &key);
                let modified = match (inputs.predicted)(&key) {
                    Some(predicted) => {
                        let (predicted, live_seen) = ignore::normalize(&predicted, live, &ignored);
                        diff::server_side_modified(&predicted, &live_seen)
                    }
                    None => {
                        let (desired, live_seen) = ignore::normalize(&target, live, &ignored);
                        let Diff { modified, .. } = diff::diff(&desired, &live_seen);
                        modified
                    }
                };
                (
                    modified,
                    health::assess_with(live, inputs.application_health),
                )
            }
        };
        resources.insert(
            key.clone(),
            Resource {
                key,
                api_version,
                target: Some(target),
                live,
                out_of_sync,
                requires_pruning: false,
                health,
                kind_unknown,
            },
        );
    }
    for (mut key, live) in inputs.managed {
        let api_version = live["apiVersion"].as_str().unwrap_or_default().to_owned();
        if (inputs.scope)(&key.group, &key.kind) == Scope::Cluster {
            key.namespace.clear();
        }
        let same_elsewhere = resources
            .keys()
            .any(|k| k.kind == key.kind && k.name == key.name && k.namespace == key.namespace);
        if resources.contains_key(&key) || same_elsewhere {
            continue;
        }
        // Hooks are the sync's, not the Application's resources.
        if hooks::is_hook(&live) {
            continue;
        }
        let deleting = live["metadata"]["deletionTimestamp"].is_string();
        // `compare-options: IgnoreExtraneous`: only the cluster has it, and that is no drift.
        let extraneous_ignored = live["metadata"]["annotations"][COMPARE_OPTIONS]
            .as_str()
            .is_some_and(|o| o.split(',').any(|o| o.trim() == IGNORE_EXTRANEOUS));
        resources.insert(
            key.clone(),
            Resource {
                key,
                api_version,
                target: None,
                health: health::assess_with(&live, inputs.application_health),
                live: Some(live),
                out_of_sync: !deleting && !extraneous_ignored,
                requires_pruning: !deleting,
                kind_unknown: false,
            },
        );
    }
    Ok(Comparison {
        resources: resources.into_values().collect(),
        warnings,
        hooks: hook_list,
    })
}

impl Comparison {
    /// Every resource matches Git.
    pub fn synced(&self) -> bool {
        self.resources.iter().all(|r| !r.out_of_sync)
    }

    /// The Application's health: the worst of its resources' (Missing ones aside), `Missing`
    /// when it expects resources and none exists, `Healthy` when it has none.
    pub fn health(&self) -> (HealthCode, String) {
        let expected = self.resources.iter().filter(|r| r.target.is_some()).count();
        let present = self.resources.iter().filter(|r| r.live.is_some()).count();
        if expected > 0 && present == 0 {
            return (HealthCode::Missing, String::new());
        }
        let mut worst = (HealthCode::Healthy, String::new());
        for resource in &self.resources {
            let Some(health) = &resource.health else {
                continue;
            };
            if health.code == HealthCode::Missing || resource.target.is_none() {
                continue;
            }
            if health.code > worst.0 {
                worst = (health.code, health.message.clone());
            }
        }
        worst
    }

    /// The container images of the live objects, sorted and distinct (`summary.images`).
    pub fn images(&self) -> Vec<String> {
        let mut images = BTreeSet::new();
        for resource in &self.resources {
            let Some(live) = &resource.live else { continue };
            for spec in [&live["spec"]["template"]["spec"], &live["spec"]] {
                for list in ["initContainers", "containers"] {
                    for container in spec[list].as_array().into_iter().flatten() {
                        if let Some(image) = container["image"].as_str() {
                            images.insert(image.to_owned());
                        }
                    }
                }
            }
        }
        images.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
