//! The CustomResourceDefinitions of sluice's kinds, generated from the Rust types.
//!
//! kube's derive produces each CRD (the Application's is built by hand, as its top-level
//! `operation` is beyond the derive, with the same schema generator); this module applies what
//! the derive cannot express so the result matches Argo's CRDs where it matters to a cluster:
//! no status subresource on AnalysisRun, Experiment, Application and AppProject (their status is
//! written through the main resource), and the immutable Rollout selector.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, CustomResourceSubresources,
    JSONSchemaProps, ValidationRule,
};
use std::sync::OnceLock;

use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::{
    AnalysisRun, AnalysisTemplate, AppProject, Application, ClusterAnalysisTemplate, Experiment,
    Rollout,
};

/// Schema for a free-form JSON object (plugin configuration, `jsonBody`): kept whole.
///
/// schemars cannot see an `Option` through `schema_with` and would list the field as
/// required; give such fields `#[serde(default)]` to keep them optional.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The schema of a kind's root object, generated as kube's derive generates it: OpenAPI 3,
/// every subschema inlined, made structural.
pub fn root_schema_for<T: JsonSchema>() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>())
        .and_then(serde_json::from_value)
        .expect("valid JSONSchemaProps from schemars schema")
}

/// The Argo project whose CRD a generated CRD mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Argo Rollouts (Rollout, AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun,
    /// Experiment).
    ArgoRollouts,
    /// Argo CD (Application, AppProject).
    ArgoCd,
}

/// One generated CRD and the file it lives in under `deploy/crds/`.
#[derive(Debug, Clone)]
pub struct GeneratedCrd {
    /// File name, as Argo names it (`rollout-crd.yaml`, `application-crd.yaml`).
    pub file_name: &'static str,
    /// The Argo project that defines the kind.
    pub upstream: Upstream,
    /// The definition.
    pub crd: CustomResourceDefinition,
}

/// The names of sluice's CRDs (known without generating them).
pub fn names() -> [&'static str; 7] {
    [
        Rollout::crd_name(),
        AnalysisTemplate::crd_name(),
        ClusterAnalysisTemplate::crd_name(),
        AnalysisRun::crd_name(),
        Experiment::crd_name(),
        Application::crd_name(),
        AppProject::crd_name(),
    ]
}

/// Every CRD sluice serves, in a stable order. Generated once per process (schema generation
/// is not cheap).
pub fn crds() -> &'static [GeneratedCrd] {
    static CRDS: OnceLock<Vec<GeneratedCrd>> = OnceLock::new();
    CRDS.get_or_init(generate)
}

fn generate() -> Vec<GeneratedCrd> {
    use Upstream::{ArgoCd, ArgoRollouts};
    vec![
        ("rollout-crd.yaml", ArgoRollouts, rollout_crd()),
        (
            "analysis-template-crd.yaml",
            ArgoRollouts,
            without_status_subresource(AnalysisTemplate::crd()),
        ),
        (
            "cluster-analysis-template-crd.yaml",
            ArgoRollouts,
            without_status_subresource(ClusterAnalysisTemplate::crd()),
        ),
        (
            "analysis-run-crd.yaml",
            ArgoRollouts,
            without_status_subresource(AnalysisRun::crd()),
        ),
        (
            "experiment-crd.yaml",
            ArgoRollouts,
            without_status_subresource(Experiment::crd()),
        ),
        ("application-crd.yaml", ArgoCd, Application::crd()),
        ("appproject-crd.yaml", ArgoCd, app_project_crd()),
    ]
    .into_iter()
    .map(|(file_name, upstream, crd)| GeneratedCrd {
        file_name,
        upstream,
        crd: with_type_meta_properties(crd),
    })
    .collect()
}

/// A CRD as one YAML document (no `---` separator).
///
/// # Errors
/// Only if YAML serialization fails, which the CRD types never cause.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(crd)
}

/// Every CRD as one multi-document YAML stream, one CustomResourceDefinition per document.
///
/// # Errors
/// Only if YAML serialization fails.
pub fn yaml_stream() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for generated in crds() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&generated.crd)?);
    }
    Ok(out)
}

/// The Rollout CRD, with the selector made immutable as in Argo's.
fn rollout_crd() -> CustomResourceDefinition {
    let mut crd = Rollout::crd();
    for version in &mut crd.spec.versions {
        let selector = root_schema(version)
            .and_then(|root| root.properties.as_mut()?.get_mut("spec"))
            .and_then(|spec| spec.properties.as_mut()?.get_mut("selector"));
        if let Some(selector) = selector {
            selector.x_kubernetes_validations = Some(vec![ValidationRule {
                rule: "self == oldSelf".into(),
                message: Some(".spec.selector is immutable".into()),
                ..ValidationRule::default()
            }]);
        }
    }
    crd
}

/// Declares `apiVersion`, `kind` and `metadata` at the root, as every Kubernetes-generated CRD
/// does (kube's derive leaves them implicit).
fn with_type_meta_properties(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(properties) = root_schema(version).and_then(|root| root.properties.as_mut())
        else {
            continue;
        };
        for (name, type_) in [
            ("apiVersion", "string"),
            ("kind", "string"),
            ("metadata", "object"),
        ] {
            properties
                .entry(name.into())
                .or_insert_with(|| JSONSchemaProps {
                    type_: Some(type_.into()),
                    ..JSONSchemaProps::default()
                });
        }
    }
    crd
}

fn root_schema(version: &mut CustomResourceDefinitionVersion) -> Option<&mut JSONSchemaProps> {
    version.schema.as_mut()?.open_api_v3_schema.as_mut()
}

/// Argo CD's AppProject CRD declares no subresources at all (not even `subresources: {}`).
fn app_project_crd() -> CustomResourceDefinition {
    let mut crd = AppProject::crd();
    for version in &mut crd.spec.versions {
        version.subresources = None;
    }
    crd
}

/// Argo's AnalysisRun and Experiment CRDs have no subresources (`subresources: {}`).
fn without_status_subresource(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        version.subresources = Some(CustomResourceSubresources::default());
    }
    crd
}
