//! The CustomResourceDefinitions of sluice's kinds, generated from the Rust types.
//!
//! kube's derive produces each CRD; this module applies what the derive cannot express so the
//! result matches Argo's CRDs where it matters to a cluster: no status subresource on
//! AnalysisRun and Experiment (their status is written through the main resource), and the
//! immutable Rollout selector.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, CustomResourceSubresources,
    JSONSchemaProps, ValidationRule,
};
use std::sync::OnceLock;

use kube::CustomResourceExt;
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};

/// Schema for a free-form JSON object (plugin configuration, `jsonBody`): kept whole.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// One generated CRD and the file it lives in under `deploy/crds/`.
#[derive(Debug, Clone)]
pub struct GeneratedCrd {
    /// File name, as Argo names it (`rollout-crd.yaml`).
    pub file_name: &'static str,
    /// The definition.
    pub crd: CustomResourceDefinition,
}

/// The names of sluice's CRDs (known without generating them).
pub fn names() -> [&'static str; 5] {
    [
        Rollout::crd_name(),
        AnalysisTemplate::crd_name(),
        ClusterAnalysisTemplate::crd_name(),
        AnalysisRun::crd_name(),
        Experiment::crd_name(),
    ]
}

/// Every CRD sluice serves, in a stable order. Generated once per process (schema generation
/// is not cheap).
pub fn crds() -> &'static [GeneratedCrd] {
    static CRDS: OnceLock<Vec<GeneratedCrd>> = OnceLock::new();
    CRDS.get_or_init(generate)
}

fn generate() -> Vec<GeneratedCrd> {
    vec![
        ("rollout-crd.yaml", rollout_crd()),
        (
            "analysis-template-crd.yaml",
            without_status_subresource(AnalysisTemplate::crd()),
        ),
        (
            "cluster-analysis-template-crd.yaml",
            without_status_subresource(ClusterAnalysisTemplate::crd()),
        ),
        (
            "analysis-run-crd.yaml",
            without_status_subresource(AnalysisRun::crd()),
        ),
        (
            "experiment-crd.yaml",
            without_status_subresource(Experiment::crd()),
        ),
    ]
    .into_iter()
    .map(|(file_name, crd)| GeneratedCrd {
        file_name,
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

/// Argo's AnalysisRun and Experiment CRDs have no subresources (`subresources: {}`).
fn without_status_subresource(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        version.subresources = Some(CustomResourceSubresources::default());
    }
    crd
}
