//! From templates to a run: nested `templates` followed (each template once, cycles cut),
//! metrics, arguments, `dryRun` and `measurementRetention` flattened and merged as Argo's
//! `NewAnalysisRunFromTemplates` does, with its messages. The Rollout controller's analysis
//! gates and `sluice create analysisrun` both build their runs here.

use std::collections::{BTreeMap, BTreeSet};

use sluice_api::{
    AnalysisRunSpec, AnalysisTemplateRef, AnalysisTemplateSpec, Argument, DryRun,
    MeasurementRetention, Metric,
};

/// Why no run could be made from the templates. Messages are Argo's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A referenced template does not exist.
    #[error("{kind}.argoproj.io \"{name}\" not found")]
    NotFound {
        /// `analysistemplates` or `clusteranalysistemplates`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A template reference without a name.
    #[error("a template reference has no templateName")]
    Unnamed,
    /// Two templates define one metric.
    #[error("two metrics have the same name '{0}'")]
    DuplicateMetric(String),
    /// Two templates give one argument different values.
    #[error(
        "Argument `{name}` specified multiple times with different values: '{first}', '{second}'"
    )]
    ConflictingArgument {
        /// The argument.
        name: String,
        /// One value.
        first: String,
        /// The other.
        second: String,
    },
    /// An argument is left without a value.
    #[error("args.{0} was not resolved")]
    Unresolved(String),
    /// Two dry-run rules for one name.
    #[error("two Dry-Run metric rules have the same name '{0}'")]
    DuplicateDryRun(String),
    /// Two retention rules for one name.
    #[error("two Measurement Retention metric rules have the same name '{0}'")]
    DuplicateRetention(String),
}

/// The templates a run may draw on: AnalysisTemplates of its namespace and
/// ClusterAnalysisTemplates, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// AnalysisTemplates of the run's namespace.
    pub templates: BTreeMap<String, AnalysisTemplateSpec>,
    /// ClusterAnalysisTemplates.
    pub cluster_templates: BTreeMap<String, AnalysisTemplateSpec>,
}

/// The extra parts of a run that its creator adds to the templates'.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Values for the templates' arguments (by name; arguments no template declares are
    /// ignored, as in Argo).
    pub args: Vec<Argument>,
    /// Dry-run rules, before the templates' own.
    pub dry_run: Vec<DryRun>,
    /// Retention rules, before the templates' own.
    pub measurement_retention: Vec<MeasurementRetention>,
}

impl Catalog {
    /// The templates `refs` name, with the templates they nest, each once: namespaced ones
    /// first, then cluster ones, each in the order met.
    ///
    /// # Errors
    /// [`TemplateError::NotFound`] for a missing template, [`TemplateError::Unnamed`].
    pub fn expand(
        &self,
        refs: &[AnalysisTemplateRef],
    ) -> Result<Vec<&AnalysisTemplateSpec>, TemplateError> {
        let mut seen = BTreeSet::new();
        let (mut namespaced, mut cluster) = (Vec::new(), Vec::new());
        self.walk(refs, &mut seen, &mut namespaced, &mut cluster)?;
        namespaced.extend(cluster);
        Ok(namespaced)
    }

    fn walk<'a>(
        &'a self,
        refs: &[AnalysisTemplateRef],
        seen: &mut BTreeSet<(bool, String)>,
        namespaced: &mut Vec<&'a AnalysisTemplateSpec>,
        cluster: &mut Vec<&'a AnalysisTemplateSpec>,
    ) -> Result<(), TemplateError> {
        for reference in refs {
            let name = reference
                .template_name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or(TemplateError::Unnamed)?;
            let scope = reference.cluster_scope.unwrap_or(false);
            if !seen.insert((scope, name.clone())) {
                continue;
            }
            let (map, kind, out) = if scope {
                (
                    &self.cluster_templates,
                    "clusteranalysistemplates",
                    &mut *cluster,
                )
            } else {
                (&self.templates, "analysistemplates", &mut *namespaced)
            };
            let spec = map
                .get(&name)
                .ok_or(TemplateError::NotFound { kind, name })?;
            out.push(spec);
            if let Some(inner) = &spec.templates {
                self.walk(inner, seen, namespaced, cluster)?;
            }
        }
        Ok(())
    }

    /// The spec of a run of the templates `refs` name (nested ones included).
    ///
    /// # Errors
    /// See [`run_from_templates`] and [`Catalog::expand`].
    pub fn run_spec(
        &self,
        refs: &[AnalysisTemplateRef],
        options: &RunOptions,
    ) -> Result<AnalysisRunSpec, TemplateError> {
        run_from_templates(&self.expand(refs)?, options)
    }
}

/// An AnalysisRun spec from already-expanded templates (namespaced first, then cluster ones):
/// metrics concatenated (a name twice is an error), arguments merged (the same name twice must
/// agree; a value wins over none), `options.args` filling in values, every argument then
/// needing a value or a `valueFrom`; dry-run and retention rules concatenated, the options'
/// first (a name twice is an error).
///
/// # Errors
/// [`TemplateError`] with Argo's message.
pub fn run_from_templates(
    templates: &[&AnalysisTemplateSpec],
    options: &RunOptions,
) -> Result<AnalysisRunSpec, TemplateError> {
    let mut metrics: Vec<Metric> = Vec::new();
    for metric in templates.iter().flat_map(|t| t.metrics()) {
        if metrics.iter().any(|m| m.name == metric.name) {
            return Err(TemplateError::DuplicateMetric(metric.name.clone()));
        }
        metrics.push(metric.clone());
    }
    let mut args: Vec<Argument> = Vec::new();
    for arg in templates.iter().flat_map(|t| t.args.iter().flatten()) {
        match args.iter_mut().find(|a| a.name == arg.name) {
            Some(prev) => {
                if let (Some(a), Some(b)) = (&prev.value, &arg.value)
                    && a != b
                {
                    return Err(TemplateError::ConflictingArgument {
                        name: arg.name.clone(),
                        first: a.clone(),
                        second: b.clone(),
                    });
                }
                if prev.value.is_none() {
                    *prev = arg.clone();
                }
            }
            None => args.push(arg.clone()),
        }
    }
    for incoming in &options.args {
        if let Some(arg) = args.iter_mut().find(|a| a.name == incoming.name) {
            if incoming.value.is_some() {
                arg.value = incoming.value.clone();
            } else if incoming.value_from.is_some() {
                arg.value_from = incoming.value_from.clone();
            }
        }
    }
    if let Some(arg) = args
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        return Err(TemplateError::Unresolved(arg.name.clone()));
    }
    let mut dry_run = options.dry_run.clone();
    dry_run.extend(
        templates
            .iter()
            .flat_map(|t| t.dry_run.iter().flatten())
            .cloned(),
    );
    let mut names = BTreeSet::new();
    if let Some(d) = dry_run.iter().find(|d| !names.insert(&d.metric_name)) {
        return Err(TemplateError::DuplicateDryRun(d.metric_name.clone()));
    }
    let mut retention = options.measurement_retention.clone();
    retention.extend(
        templates
            .iter()
            .flat_map(|t| t.measurement_retention.iter().flatten())
            .cloned(),
    );
    let mut names = BTreeSet::new();
    if let Some(r) = retention.iter().find(|r| !names.insert(&r.metric_name)) {
        return Err(TemplateError::DuplicateRetention(r.metric_name.clone()));
    }
    Ok(AnalysisRunSpec {
        metrics,
        args: (!args.is_empty()).then_some(args),
        dry_run: (!dry_run.is_empty()).then_some(dry_run),
        measurement_retention: (!retention.is_empty()).then_some(retention),
        ..AnalysisRunSpec::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> AnalysisTemplateSpec {
        serde_json::from_value(value).unwrap()
    }

    fn web(name: &str) -> serde_json::Value {
        json!({"name": name, "provider": {"web": {"url": "http://x/{{args.host}}"}}})
    }

    fn reference(name: &str, cluster: bool) -> AnalysisTemplateRef {
        AnalysisTemplateRef {
            template_name: Some(name.into()),
            cluster_scope: Some(cluster),
        }
    }

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        catalog.templates.insert(
            "outer".into(),
            spec(json!({"metrics": [web("a")], "args": [{"name": "host"}],
                "templates": [{"templateName": "shared", "clusterScope": true}, {"templateName": "outer"}]})),
        );
        catalog.cluster_templates.insert(
            "shared".into(),
            spec(
                json!({"metrics": [web("b")], "args": [{"name": "host", "value": "default"}],
                "dryRun": [{"metricName": "b"}]}),
            ),
        );
        catalog
    }

    #[test]
    fn nested_templates_merge_once_and_args_fill_in() {
        let options = RunOptions {
            args: vec![Argument {
                name: "host".into(),
                value: Some("given".into()),
                value_from: None,
            }],
            ..RunOptions::default()
        };
        let run = catalog()
            .run_spec(&[reference("outer", false)], &options)
            .unwrap();
        let names: Vec<_> = run.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(run.args.unwrap()[0].value.as_deref(), Some("given"));
        assert_eq!(run.dry_run.unwrap()[0].metric_name, "b");
        // Without a value given, the cluster template's default fills the declaration.
        let run = catalog()
            .run_spec(&[reference("outer", false)], &RunOptions::default())
            .unwrap();
        assert_eq!(run.args.unwrap()[0].value.as_deref(), Some("default"));
    }

    #[test]
    fn errors_name_what_is_missing_or_repeated() {
        let err = catalog()
            .run_spec(&[reference("nope", false)], &RunOptions::default())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "analysistemplates.argoproj.io \"nope\" not found"
        );
        let mut c = catalog();
        c.templates.insert(
            "x".into(),
            spec(json!({"metrics": [web("a")], "args": [{"name": "port"}]})),
        );
        let err = c
            .run_spec(&[reference("x", false)], &RunOptions::default())
            .unwrap_err();
        assert_eq!(err.to_string(), "args.port was not resolved");
        let err = c
            .run_spec(
                &[reference("x", false), reference("outer", false)],
                &RunOptions::default(),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "two metrics have the same name 'a'");
    }
}
