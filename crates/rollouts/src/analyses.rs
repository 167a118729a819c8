//! A Rollout's analyses made ready to run, for the observe step: each `RolloutAnalysis` of the
//! strategy (pre- and post-promotion, background, each `analysis` step) becomes the spec of the
//! run a gate would create — its templates found and merged by `sluice-analysis`
//! ([`Catalog::run_spec`]), its arguments resolved as Argo's
//! `BuildArgumentsForRolloutAnalysisRun` does (`value`, `podTemplateHashValue: Stable|Latest`,
//! `fieldRef` into the Rollout), `dryRun` and `measurementRetention` carried over, and the
//! labels and annotations of `analysisRunMetadata` and the Rollout's selector.
//!
//! Deliberate departure (Argo's #872): a template that does not exist or an argument left
//! without a value makes the Rollout InvalidSpec at once, with a message naming it — Argo
//! leaves such a Rollout Progressing until it reaches the analysis and then fails to create
//! the run, over and over. Pure.

use std::collections::BTreeMap;

use serde_json::Value;
use sluice_analysis::{Catalog, RunOptions, args};
use sluice_api::{Argument, Rollout, RolloutAnalysis};

use crate::{gate::Prepared, model::AnalysisObserved};

/// Why an analysis of the Rollout cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    /// A template is missing, or the templates do not merge (Argo's message).
    #[error("{field}: {source}")]
    Templates {
        /// The spec field of the analysis.
        field: String,
        /// What is wrong.
        #[source]
        source: sluice_analysis::TemplateError,
    },
    /// A `fieldRef` argument that resolves to nothing.
    #[error("{field}.args: fieldRef {path:?} of argument \"{argument}\" resolves to nothing")]
    Field {
        /// The spec field of the analysis.
        field: String,
        /// The argument.
        argument: String,
        /// Its field path.
        path: String,
    },
}

/// The hashes a `podTemplateHashValue` argument reads.
#[derive(Debug, Clone, Copy)]
pub struct Hashes<'a> {
    /// The current ReplicaSet's (`Latest`).
    pub latest: &'a str,
    /// The stable ReplicaSet's (`Stable`), if there is one.
    pub stable: Option<&'a str>,
}

/// The Rollout's arguments for an analysis, resolved.
fn arguments(
    analysis: &RolloutAnalysis,
    field: &str,
    rollout: &Value,
    hashes: Hashes<'_>,
) -> Result<Vec<Argument>, AnalysisError> {
    let mut out = Vec::new();
    for arg in analysis.args.iter().flatten() {
        let from = arg.value_from.as_ref();
        let value = if let Some(which) = from.and_then(|f| f.pod_template_hash_value.as_deref()) {
            Some(match which {
                "Stable" => hashes.stable.unwrap_or_default().to_owned(),
                _ => hashes.latest.to_owned(),
            })
        } else if let Some(field_ref) = from.and_then(|f| f.field_ref.as_ref()) {
            Some(args::field(rollout, &field_ref.field_path).ok_or_else(|| {
                AnalysisError::Field {
                    field: field.to_owned(),
                    argument: arg.name.clone(),
                    path: field_ref.field_path.clone(),
                }
            })?)
        } else {
            arg.value.clone()
        };
        out.push(Argument {
            name: arg.name.clone(),
            value,
            value_from: None,
        });
    }
    Ok(out)
}

/// One analysis, ready to run (`field`: where the spec holds it, for messages).
///
/// # Errors
/// A missing template, templates that do not merge, an argument without a value.
pub fn prepare(
    analysis: &RolloutAnalysis,
    field: &str,
    rollout: &Rollout,
    value: &Value,
    catalog: &Catalog,
    hashes: Hashes<'_>,
) -> Result<Prepared, AnalysisError> {
    let options = RunOptions {
        args: arguments(analysis, field, value, hashes)?,
        dry_run: analysis.dry_run.clone().unwrap_or_default(),
        measurement_retention: analysis.measurement_retention.clone().unwrap_or_default(),
    };
    let spec = catalog
        .run_spec(analysis.templates(), &options)
        .map_err(|source| AnalysisError::Templates {
            field: field.to_owned(),
            source,
        })?;
    let metadata = analysis.analysis_run_metadata.as_ref();
    let mut labels: BTreeMap<String, String> = metadata
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone());
    labels.extend(selector.unwrap_or_default());
    let annotations = metadata
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Prepared {
        spec,
        labels,
        annotations,
    })
}

/// An analysis counts only with templates (Argo ignores one without).
fn with_templates(analysis: Option<&RolloutAnalysis>) -> Option<&RolloutAnalysis> {
    analysis.filter(|a| !a.templates().is_empty())
}

/// Whether the Rollout has any analysis (the observe step reads templates only then).
pub fn any(rollout: &Rollout) -> bool {
    let Some(strategy) = rollout.spec.strategy.as_ref() else {
        return false;
    };
    if let Some(bg) = &strategy.blue_green {
        return with_templates(bg.pre_promotion_analysis.as_ref()).is_some()
            || with_templates(bg.post_promotion_analysis.as_ref()).is_some();
    }
    strategy.canary.as_ref().is_some_and(|c| {
        with_templates(c.analysis.as_ref().map(|a| &a.analysis)).is_some()
            || c.steps()
                .iter()
                .any(|s| with_templates(s.analysis.as_ref()).is_some())
    })
}

/// Every analysis of the Rollout, ready to run (runs and limits are filled in by the caller).
///
/// # Errors
/// The first analysis that cannot run.
pub fn prepare_all(
    rollout: &Rollout,
    value: &Value,
    catalog: &Catalog,
    hashes: Hashes<'_>,
) -> Result<AnalysisObserved, AnalysisError> {
    let mut out = AnalysisObserved::default();
    let Some(strategy) = rollout.spec.strategy.as_ref() else {
        return Ok(out);
    };
    let one = |analysis: Option<&RolloutAnalysis>, field: &str| {
        with_templates(analysis)
            .map(|a| prepare(a, field, rollout, value, catalog, hashes))
            .transpose()
    };
    if let Some(bg) = &strategy.blue_green {
        let field = "spec.strategy.blueGreen";
        out.pre = one(
            bg.pre_promotion_analysis.as_ref(),
            &format!("{field}.prePromotionAnalysis"),
        )?;
        out.post = one(
            bg.post_promotion_analysis.as_ref(),
            &format!("{field}.postPromotionAnalysis"),
        )?;
    } else if let Some(canary) = &strategy.canary {
        let background = canary.analysis.as_ref();
        out.background = one(
            background.map(|b| &b.analysis),
            "spec.strategy.canary.analysis",
        )?;
        out.background_start = background.and_then(|b| b.starting_step).unwrap_or(0);
        for (index, step) in canary.steps().iter().enumerate() {
            let field = format!("spec.strategy.canary.steps[{index}].analysis");
            if let Some(prepared) = one(step.analysis.as_ref(), &field)? {
                out.steps.insert(index as i32, prepared);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn make(strategy: Value) -> (Rollout, Value) {
        let value = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop", "labels": {"team": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "demo"}}, "template": {},
                "strategy": strategy}});
        (serde_json::from_value(value.clone()).unwrap(), value)
    }

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        catalog.templates.insert(
            "rate".into(),
            serde_json::from_value(json!({
                "args": [{"name": "hash"}, {"name": "stable"}, {"name": "team"}, {"name": "port", "value": "80"}],
                "metrics": [{"name": "rate", "provider": {"web": {"url": "http://x/{{args.hash}}"}}}]}))
            .unwrap(),
        );
        catalog
    }

    const HASHES: Hashes<'static> = Hashes {
        latest: "new",
        stable: Some("old"),
    };

    #[test]
    fn arguments_come_from_hashes_and_fields_and_metadata_is_carried() {
        let (rollout, value) = make(json!({"canary": {"steps": [{"setWeight": 20},
            {"analysis": {"templates": [{"templateName": "rate"}],
                "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                    {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
                    {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}}],
                "dryRun": [{"metricName": "rate"}],
                "analysisRunMetadata": {"labels": {"kind": "step"}, "annotations": {"a": "1"}}}}]}}));
        let all = prepare_all(&rollout, &value, &catalog(), HASHES).unwrap();
        assert!(all.pre.is_none() && all.background.is_none());
        let step = &all.steps[&1];
        let args = step.spec.args.clone().unwrap();
        let value_of = |name: &str| {
            args.iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.clone())
        };
        assert_eq!(value_of("hash").as_deref(), Some("new"));
        assert_eq!(value_of("stable").as_deref(), Some("old"));
        assert_eq!(value_of("team").as_deref(), Some("web"));
        assert_eq!(value_of("port").as_deref(), Some("80"));
        assert_eq!(step.spec.dry_run.as_ref().unwrap()[0].metric_name, "rate");
        assert_eq!(step.labels["kind"], "step");
        assert_eq!(step.labels["app"], "demo");
        assert_eq!(step.annotations["a"], "1");
    }

    #[test]
    fn a_missing_template_or_argument_names_itself() {
        let (rollout, value) = make(json!({"blueGreen": {"activeService": "a",
            "prePromotionAnalysis": {"templates": [{"templateName": "nope"}]}}}));
        let err = prepare_all(&rollout, &value, &catalog(), HASHES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.strategy.blueGreen.prePromotionAnalysis: analysistemplates.argoproj.io \"nope\" not found"
        );
        let (rollout, value) = make(json!({"blueGreen": {"activeService": "a",
            "postPromotionAnalysis": {"templates": [{"templateName": "rate"}]}}}));
        let err = prepare_all(&rollout, &value, &catalog(), HASHES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.strategy.blueGreen.postPromotionAnalysis: args.hash was not resolved"
        );
        assert!(any(&rollout));
    }
}
