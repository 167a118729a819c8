//! Where an Application's manifests come from: Argo CD's `ApplicationSource` with its
//! directory (plain YAML and Jsonnet), Helm, Kustomize and Config Management Plugin options.
//!
//! The same shape appears in `spec.source`, `spec.sources[]`, `operation.sync.source(s)`,
//! `status.sync.comparedTo`, `status.history[]` and `status.operationState`, and (without the
//! repository fields) in `spec.sourceHydrator.drySource`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

/// A repository (Git, Helm or OCI) and what to render from it.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    /// URL of the repository (Git, Helm or OCI) holding the manifests.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Directory in a Git repository (not used for Helm repositories).
    pub path: Option<String>,
    /// Branch, tag or commit for Git; a chart version or semver constraint for Helm. Empty
    /// means `HEAD` ([`ApplicationSource::target_revision`]).
    pub target_revision: Option<String>,
    /// Helm options.
    pub helm: Option<ApplicationSourceHelm>,
    /// Kustomize options.
    pub kustomize: Option<ApplicationSourceKustomize>,
    /// Plain-directory and Jsonnet options.
    pub directory: Option<ApplicationSourceDirectory>,
    /// Config Management Plugin options.
    pub plugin: Option<ApplicationSourcePlugin>,
    /// Helm chart name (Helm repositories only).
    pub chart: Option<String>,
    /// Names this source so others refer to it as `$ref/…` in Helm `valueFiles`.
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    /// Display and selection name of the source (multi-source Applications).
    pub name: Option<String>,
    /// Only git tags with this prefix take part when `targetRevision` is a semver constraint.
    pub tag_prefix: Option<String>,
}

impl ApplicationSource {
    /// `targetRevision`, with Argo CD's default `HEAD` for an absent or empty one.
    pub fn target_revision(&self) -> &str {
        match self.target_revision.as_deref() {
            None | Some("") => defaults::TARGET_REVISION,
            Some(revision) => revision,
        }
    }

    /// A Helm repository source (it names a chart), as opposed to Git.
    pub fn is_helm_repo(&self) -> bool {
        self.chart.as_deref().is_some_and(|chart| !chart.is_empty())
    }

    /// The source only provides values files to the others (`ref` set and nothing to render
    /// of its own: no path, no chart).
    pub fn is_ref_only(&self) -> bool {
        self.ref_.as_deref().is_some_and(|r| !r.is_empty())
            && self.path.as_deref().unwrap_or_default().is_empty()
            && self.chart.as_deref().unwrap_or_default().is_empty()
    }
}

/// Helm options of a source.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceHelm {
    /// Values files, relative to the source path (or `$ref/…`).
    pub value_files: Option<Vec<String>>,
    /// `--set` parameters.
    pub parameters: Option<Vec<HelmParameter>>,
    /// Release name (default: the Application's name).
    pub release_name: Option<String>,
    /// Values as a YAML block. `valuesObject` wins when both are set.
    pub values: Option<String>,
    /// `--set-file` parameters.
    pub file_parameters: Option<Vec<HelmFileParameter>>,
    /// Helm version (`3`).
    pub version: Option<String>,
    /// `--pass-credentials`.
    pub pass_credentials: Option<bool>,
    /// Do not fail on values files missing locally.
    pub ignore_missing_value_files: Option<bool>,
    /// `--skip-crds`.
    pub skip_crds: Option<bool>,
    /// Values as an object, kept exactly as written. (`serde(default)` keeps it optional in
    /// the schema: schemars cannot see the `Option` through `schema_with`.)
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub values_object: Option<serde_json::Value>,
    /// Namespace to template with (default: the destination namespace).
    pub namespace: Option<String>,
    /// Kubernetes version for `.Capabilities.KubeVersion` (default: the cluster's).
    pub kube_version: Option<String>,
    /// API versions for `.Capabilities.APIVersions` (default: the cluster's).
    pub api_versions: Option<Vec<String>>,
    /// `--skip-tests`.
    pub skip_tests: Option<bool>,
    /// `--skip-schema-validation`.
    pub skip_schema_validation: Option<bool>,
}

/// A Helm `--set` parameter.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    /// Parameter name (`image.tag`).
    pub name: Option<String>,
    /// Its value.
    pub value: Option<String>,
    /// `--set-string` instead of `--set`.
    pub force_string: Option<bool>,
}

/// A Helm `--set-file` parameter.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmFileParameter {
    /// Parameter name.
    pub name: Option<String>,
    /// File holding the value.
    pub path: Option<String>,
}

/// Kustomize options of a source.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceKustomize {
    /// Overrides `namePrefix`.
    pub name_prefix: Option<String>,
    /// Overrides `nameSuffix`.
    pub name_suffix: Option<String>,
    /// Image overrides, `kustomize edit set image` syntax (`[old=]new[:tag][@digest]`).
    pub images: Option<Vec<String>>,
    /// Labels added to every resource.
    pub common_labels: Option<BTreeMap<String, String>>,
    /// Kustomize version (configured in `argocd-cm`).
    pub version: Option<String>,
    /// Annotations added to every resource.
    pub common_annotations: Option<BTreeMap<String, String>>,
    /// Overwrite existing labels with `commonLabels`.
    pub force_common_labels: Option<bool>,
    /// Overwrite existing annotations with `commonAnnotations`.
    pub force_common_annotations: Option<bool>,
    /// Namespace set on every resource.
    pub namespace: Option<String>,
    /// Substitute `${ARGOCD_APP_*}` variables in `commonAnnotations`.
    pub common_annotations_envsubst: Option<bool>,
    /// Replica count overrides.
    pub replicas: Option<Vec<KustomizeReplica>>,
    /// Patches.
    pub patches: Option<Vec<KustomizePatch>>,
    /// Components added to the kustomization.
    pub components: Option<Vec<String>>,
    /// Do not add `commonLabels` to selectors (nor templates, unless `labelIncludeTemplates`).
    pub label_without_selector: Option<bool>,
    /// Kubernetes version passed to Helm charts Kustomize inflates.
    pub kube_version: Option<String>,
    /// API versions passed to Helm charts Kustomize inflates.
    pub api_versions: Option<Vec<String>>,
    /// Do not fail on components missing locally.
    pub ignore_missing_components: Option<bool>,
    /// Add `commonLabels` to templates even with `labelWithoutSelector`.
    pub label_include_templates: Option<bool>,
}

/// A replica count override.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct KustomizeReplica {
    /// Deployment or StatefulSet name.
    pub name: String,
    /// Replicas (a number, or a string of digits).
    pub count: IntOrString,
}

/// A Kustomize patch.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizePatch {
    /// File holding the patch.
    pub path: Option<String>,
    /// The patch, inline (strategic merge or JSON 6902).
    pub patch: Option<String>,
    /// What the patch applies to.
    pub target: Option<KustomizeSelector>,
    /// Options (`allowNameChange`, `allowKindChange`).
    pub options: Option<BTreeMap<String, bool>>,
}

/// The resources a Kustomize patch applies to.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSelector {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Name (a regular expression).
    pub name: Option<String>,
    /// Namespace (a regular expression).
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Annotation selector.
    pub annotation_selector: Option<String>,
}

/// Plain-directory options of a source.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceDirectory {
    /// Scan subdirectories too (default false).
    pub recurse: Option<bool>,
    /// Jsonnet options.
    pub jsonnet: Option<ApplicationSourceJsonnet>,
    /// Glob of paths to leave out; wins over `include`. `{a,b}` lists several.
    pub exclude: Option<String>,
    /// Glob of paths to use; when set, only these.
    pub include: Option<String>,
    /// Consider every file, not only `.yaml`, `.yml`, `.json` and `.jsonnet`.
    pub disable_extension_filter: Option<bool>,
}

/// Jsonnet options.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSourceJsonnet {
    /// External variables.
    pub ext_vars: Option<Vec<JsonnetVar>>,
    /// Top-level arguments.
    pub tlas: Option<Vec<JsonnetVar>>,
    /// Library search directories.
    pub libs: Option<Vec<String>>,
}

/// A Jsonnet variable.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct JsonnetVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// The value is Jsonnet code, not a string.
    pub code: Option<bool>,
}

/// Config Management Plugin options of a source.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApplicationSourcePlugin {
    /// Plugin name; absent means the plugin is chosen by its discovery rules.
    pub name: Option<String>,
    /// Environment for the plugin.
    pub env: Option<Vec<EnvEntry>>,
    /// Parameters.
    pub parameters: Option<Vec<ApplicationSourcePluginParameter>>,
}

/// An environment variable for a plugin.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EnvEntry {
    /// Name, usually upper case.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A plugin parameter: a string, an array or a map.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApplicationSourcePluginParameter {
    /// Name.
    pub name: Option<String>,
    /// String value.
    #[serde(rename = "string")]
    pub string_: Option<String>,
    /// Array value.
    pub array: Option<Vec<String>>,
    /// Map value.
    pub map: Option<BTreeMap<String, String>>,
}
