//! Validation of AnalysisTemplates, AnalysisRuns and Experiments.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::SelectorExt;

use super::{
    FieldError, FieldPath, Problems,
    rollout::{typed_template, validate_label_selector},
};
use crate::{
    AnalysisRunSpec, AnalysisTemplateSpec, Argument, ExperimentSpec, Metric, MetricProvider,
    duration,
};

/// Every problem with an AnalysisTemplate's (or ClusterAnalysisTemplate's) spec.
pub fn validate_analysis_template(spec: &AnalysisTemplateSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let path = FieldPath::new("spec");
    let nested = spec.templates.as_ref().is_some_and(|t| !t.is_empty());
    if spec.metrics().is_empty() && !nested {
        problems.required(&path.child("metrics"), "at least one metric is required");
    }
    validate_metrics(spec.metrics(), &path.child("metrics"), &mut problems);
    validate_arguments(spec.args.as_deref(), &path.child("args"), &mut problems);
    for (i, template) in spec.templates.iter().flatten().enumerate() {
        if template.template_name.as_deref().is_none_or(str::is_empty) {
            problems.required(
                &path.child("templates").index(i).child("templateName"),
                "templateName is required",
            );
        }
    }
    problems.into_vec()
}

/// Every problem with an AnalysisRun's spec.
pub fn validate_analysis_run(spec: &AnalysisRunSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let path = FieldPath::new("spec");
    if spec.metrics.is_empty() {
        problems.required(&path.child("metrics"), "at least one metric is required");
    }
    validate_metrics(&spec.metrics, &path.child("metrics"), &mut problems);
    validate_arguments(spec.args.as_deref(), &path.child("args"), &mut problems);
    if let Some(ttl) = &spec.ttl_strategy {
        let at = path.child("ttlStrategy");
        problems.non_negative(
            &at.child("secondsAfterCompletion"),
            ttl.seconds_after_completion,
        );
        problems.non_negative(&at.child("secondsAfterSuccess"), ttl.seconds_after_success);
        problems.non_negative(&at.child("secondsAfterFailure"), ttl.seconds_after_failure);
    }
    problems.into_vec()
}

/// Every problem with an Experiment's spec.
pub fn validate_experiment(spec: &ExperimentSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let path = FieldPath::new("spec");
    if spec.templates.is_empty() {
        problems.required(
            &path.child("templates"),
            "at least one template is required",
        );
    }
    let mut names = BTreeSet::new();
    for (i, template) in spec.templates.iter().enumerate() {
        let at = path.child("templates").index(i);
        if template.name.is_empty() {
            problems.required(&at.child("name"), "template name is required");
        } else if !names.insert(template.name.as_str()) {
            problems.duplicate(&at.child("name"), format!("{:?}", template.name));
        }
        problems.non_negative(&at.child("replicas"), template.replicas);
        problems.non_negative(&at.child("minReadySeconds"), template.min_ready_seconds);
        let selector =
            validate_label_selector(&template.selector, &at.child("selector"), &mut problems);
        let template_path = at.child("template");
        if let Some(typed) = typed_template(&template.template, &template_path, &mut problems) {
            let labels = typed.metadata.and_then(|m| m.labels).unwrap_or_default();
            if selector.is_some_and(|s| !s.matches(&labels)) {
                problems.invalid(
                    &template_path.child("metadata").child("labels"),
                    "<labels>",
                    "`selector` does not match template `labels`",
                );
            }
            if typed.spec.is_none_or(|s| s.containers.is_empty()) {
                problems.required(
                    &template_path.child("spec").child("containers"),
                    "a pod template needs at least one container",
                );
            }
        }
    }
    if let Some(text) = &spec.duration {
        validate_duration(text, &path.child("duration"), &mut problems);
    }
    problems.non_negative(
        &path.child("progressDeadlineSeconds"),
        spec.progress_deadline_seconds,
    );
    problems.non_negative(
        &path.child("scaleDownDelaySeconds"),
        spec.scale_down_delay_seconds,
    );
    let mut analyses = BTreeSet::new();
    for (i, analysis) in spec.analyses.iter().flatten().enumerate() {
        let at = path.child("analyses").index(i);
        if !analyses.insert(analysis.name.as_str()) {
            problems.duplicate(&at.child("name"), format!("{:?}", analysis.name));
        }
        if analysis.template_name.is_empty() {
            problems.required(&at.child("templateName"), "templateName is required");
        }
        validate_arguments(analysis.args.as_deref(), &at.child("args"), &mut problems);
    }
    problems.into_vec()
}

fn validate_metrics(metrics: &[Metric], path: &FieldPath, problems: &mut Problems) {
    let mut names = BTreeSet::new();
    for (i, metric) in metrics.iter().enumerate() {
        let at = path.index(i);
        if metric.name.is_empty() {
            problems.required(&at.child("name"), "metric name is required");
        } else if !names.insert(metric.name.as_str()) {
            problems.duplicate(&at.child("name"), format!("{:?}", metric.name));
        }
        validate_metric(metric, &at, problems);
    }
}

fn validate_metric(metric: &Metric, path: &FieldPath, problems: &mut Problems) {
    if let Some(text) = &metric.interval {
        validate_duration(text, &path.child("interval"), problems);
    }
    if let Some(text) = &metric.initial_delay {
        validate_duration(text, &path.child("initialDelay"), problems);
    }
    let count = metric.count.as_ref().and_then(literal_int);
    if let Some(count) = count {
        if count < 0 {
            problems.invalid(
                &path.child("count"),
                count,
                "must be greater than or equal to 0",
            );
        } else if count > 1 && metric.interval.is_none() {
            problems.required(
                &path.child("interval"),
                "interval must be set when count > 1",
            );
        }
    }
    let limits = [
        ("failureLimit", &metric.failure_limit, -1),
        ("inconclusiveLimit", &metric.inconclusive_limit, 0),
        ("consecutiveErrorLimit", &metric.consecutive_error_limit, 0),
        (
            "consecutiveSuccessLimit",
            &metric.consecutive_success_limit,
            0,
        ),
    ];
    for (name, value, min) in limits {
        if let Some(n) = value.as_ref().and_then(literal_int).filter(|n| *n < min) {
            problems.invalid(
                &path.child(name),
                n,
                &format!("must be greater than or equal to {min}"),
            );
        }
    }
    if let (Some(count), Some(limit)) = (
        count,
        metric
            .consecutive_success_limit
            .as_ref()
            .and_then(literal_int),
    ) && count > 0
        && limit > count
    {
        problems.invalid(
            &path.child("consecutiveSuccessLimit"),
            limit,
            "must not be greater than count",
        );
    }
    match provider_count(&metric.provider) {
        0 => problems.required(
            &path.child("provider"),
            "a metric needs exactly one provider, none is set",
        ),
        1 => {}
        n => problems.invalid(
            &path.child("provider"),
            n,
            "a metric needs exactly one provider",
        ),
    }
    let provider = &metric.provider;
    if let Some(prometheus) = &provider.prometheus
        && prometheus.query.as_deref().is_none_or(str::is_empty)
    {
        problems.required(
            &path.child("provider").child("prometheus").child("query"),
            "query is required",
        );
    }
    if let Some(web) = &provider.web {
        let at = path.child("provider").child("web");
        if web.url.is_empty() {
            problems.required(&at.child("url"), "url is required");
        }
        problems.one_of(
            &at.child("method"),
            web.method.as_deref(),
            &["GET", "POST", "PUT"],
        );
        if web.body.is_some() && web.json_body.is_some() {
            problems.invalid(
                &at.child("jsonBody"),
                "<jsonBody>",
                "body and jsonBody can not both be set",
            );
        }
    }
    if let Some(job) = &provider.job
        && job.spec.as_object().get("template").is_none()
    {
        problems.required(
            &path
                .child("provider")
                .child("job")
                .child("spec")
                .child("template"),
            "a Job metric needs spec.template",
        );
    }
}

fn provider_count(provider: &MetricProvider) -> usize {
    let plugins = provider.plugin.as_ref().map_or(0, |p| p.len());
    [
        provider.prometheus.is_some(),
        provider.web.is_some(),
        provider.job.is_some(),
        provider.kayenta.is_some(),
        provider.datadog.is_some(),
        provider.wavefront.is_some(),
        provider.new_relic.is_some(),
        provider.cloud_watch.is_some(),
        provider.graphite.is_some(),
        provider.influxdb.is_some(),
        provider.skywalking.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count()
        + plugins
}

fn validate_arguments(args: Option<&[Argument]>, path: &FieldPath, problems: &mut Problems) {
    let mut names = BTreeSet::new();
    for (i, arg) in args.unwrap_or_default().iter().enumerate() {
        let at = path.index(i);
        if arg.name.is_empty() {
            problems.required(&at.child("name"), "argument name is required");
        } else if !names.insert(arg.name.as_str()) {
            problems.duplicate(&at.child("name"), format!("{:?}", arg.name));
        }
        if let Some(from) = &arg.value_from {
            if arg.value.is_some() {
                problems.invalid(
                    &at.child("valueFrom"),
                    "<valueFrom>",
                    "value and valueFrom can not both be set",
                );
            }
            if from.secret_key_ref.is_some() == from.field_ref.is_some() {
                problems.invalid(
                    &at.child("valueFrom"),
                    "<valueFrom>",
                    "exactly one of secretKeyRef or fieldRef must be set",
                );
            }
        }
    }
}

fn validate_duration(text: &str, path: &FieldPath, problems: &mut Problems) {
    if let Err(err) = duration::parse_duration(text) {
        problems.invalid(path, format!("{text:?}"), &err.to_string());
    }
}

/// The number in an int-or-string written as a literal; `None` for a template such as
/// `{{args.count}}`, which only resolves when a run is created.
fn literal_int(value: &IntOrString) -> Option<i32> {
    match value {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => s.trim().parse().ok(),
    }
}
