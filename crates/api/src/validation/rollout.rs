//! Validation of a Rollout (Argo's `ValidateRollout`, minus Kubernetes' own pod validation,
//! which the API server applies to the ReplicaSets the controller creates).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::PodTemplateSpec,
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use kube::core::{Selector, SelectorExt};

use super::{FieldError, FieldPath, Problems};
use crate::{
    AntiAffinity, BlueGreenStrategy, Preserved, RolloutAnalysis, RolloutAnalysisArgument,
    RolloutSpec,
};

const MISSING_STRATEGY: &str =
    "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'";
const MISSING_SELECTOR: &str = "Rollout has missing field '.spec.selector'";
const MULTIPLE_STRATEGIES: &str = "Multiple Strategies can not be listed";
const DUPLICATED_SERVICES_BLUE_GREEN: &str = "This rollout uses the same service for the active and preview services, but two different services are required.";
const SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT: &str =
    "This rollout's revision history limit can not be smaller than the rollout's scale down limit";
const ANTI_AFFINITY_ONE_STRATEGY: &str = "AntiAffinity must have exactly one strategy listed";
const ANTI_AFFINITY_WEIGHT: &str = "AntiAffinity weight must be between 1-100";
const TEMPLATE_WITH_WORKLOAD_REF: &str = "template must be empty for workload reference rollout";

/// Every problem with a Rollout's spec. Empty means valid.
pub fn validate_rollout(spec: &RolloutSpec) -> Vec<FieldError> {
    let mut problems = Problems::default();
    let path = FieldPath::new("spec");
    problems.non_negative(&path.child("replicas"), spec.replicas);
    validate_selector_and_template(spec, &path, &mut problems);
    problems.non_negative(&path.child("minReadySeconds"), spec.min_ready_seconds);
    problems.non_negative(
        &path.child("revisionHistoryLimit"),
        spec.revision_history_limit,
    );
    problems.non_negative(
        &path.child("progressDeadlineSeconds"),
        spec.progress_deadline_seconds,
    );
    if spec.progress_deadline_seconds() <= spec.min_ready_seconds() {
        problems.invalid(
            &path.child("progressDeadlineSeconds"),
            spec.progress_deadline_seconds(),
            "must be greater than minReadySeconds",
        );
    }
    if let Some(window) = &spec.rollback_window {
        problems.non_negative(
            &path.child("rollbackWindow").child("revisions"),
            window.revisions,
        );
    }
    if let Some(analysis) = &spec.analysis {
        let at = path.child("analysis");
        problems.non_negative(
            &at.child("successfulRunHistoryLimit"),
            analysis.successful_run_history_limit,
        );
        problems.non_negative(
            &at.child("unsuccessfulRunHistoryLimit"),
            analysis.unsuccessful_run_history_limit,
        );
    }
    if let Some(workload) = &spec.workload_ref {
        let at = path.child("workloadRef");
        problems.one_of(
            &at.child("kind"),
            workload.kind.as_deref(),
            &["Deployment", "ReplicaSet", "PodTemplate"],
        );
        if workload.name.as_deref().is_none_or(str::is_empty) {
            problems.required(&at.child("name"), "workloadRef must name a workload");
        }
        problems.one_of(
            &at.child("scaleDown"),
            workload.scale_down.as_deref(),
            &["never", "onsuccess", "progressively"],
        );
    }
    let strategy_path = path.child("strategy");
    match spec.strategy.as_ref().map(|s| (&s.blue_green, &s.canary)) {
        None | Some((None, None)) => problems.required(&strategy_path, MISSING_STRATEGY),
        Some((Some(_), Some(_))) => problems.invalid(
            &strategy_path,
            "blueGreen: true canary: true",
            MULTIPLE_STRATEGIES,
        ),
        Some((Some(blue_green), None)) => validate_blue_green(
            spec,
            blue_green,
            &strategy_path.child("blueGreen"),
            &mut problems,
        ),
        Some((None, Some(canary))) => {
            super::canary::validate_canary(canary, &strategy_path.child("canary"), &mut problems)
        }
    }
    problems.into_vec()
}

fn validate_selector_and_template(spec: &RolloutSpec, path: &FieldPath, problems: &mut Problems) {
    let template = spec.template.as_ref().filter(|t| !t.as_object().is_empty());
    if spec.workload_ref.is_some() {
        if template.is_some() {
            problems.forbidden(&path.child("template"), TEMPLATE_WITH_WORKLOAD_REF);
        }
        return;
    }
    let selector_path = path.child("selector");
    let selector = match &spec.selector {
        None => {
            problems.required(&selector_path, MISSING_SELECTOR);
            None
        }
        Some(selector) => validate_label_selector(selector, &selector_path, problems),
    };
    let template_path = path.child("template");
    let Some(template) = template else {
        problems.required(&template_path, "Rollout has missing field '.spec.template'");
        return;
    };
    let Some(typed) = typed_template(template, &template_path, problems) else {
        return;
    };
    let labels = typed
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(selector) = selector
        && !selector.matches(&labels)
    {
        problems.invalid(
            &template_path.child("metadata").child("labels"),
            format_labels(&labels),
            "`selector` does not match template `labels`",
        );
    }
    let containers = typed.spec.map(|s| s.containers).unwrap_or_default();
    if containers.is_empty() {
        problems.required(
            &template_path.child("spec").child("containers"),
            "a pod template needs at least one container",
        );
    }
    for (i, container) in containers.iter().enumerate() {
        if container.image.as_deref().is_none_or(str::is_empty) {
            problems.required(
                &template_path
                    .child("spec")
                    .child("containers")
                    .index(i)
                    .child("image"),
                "a container needs an image",
            );
        }
    }
}

/// The typed view of a pod template, or a problem saying why it does not fit.
pub(super) fn typed_template(
    template: &Preserved<PodTemplateSpec>,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<PodTemplateSpec> {
    match template.typed() {
        Ok(typed) => Some(typed),
        Err(err) => {
            problems.invalid(
                path,
                "<pod template>",
                &format!("not a valid pod template: {err}"),
            );
            None
        }
    }
}

/// Checks a selector; returns it as a matcher when it is usable.
pub(super) fn validate_label_selector(
    selector: &LabelSelector,
    path: &FieldPath,
    problems: &mut Problems,
) -> Option<Selector> {
    let empty = selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty);
    if empty {
        problems.invalid(path, "{}", "empty selector is invalid for deployment");
        return None;
    }
    match Selector::try_from(selector.clone()) {
        Ok(selector) => Some(selector),
        Err(err) => {
            problems.invalid(
                path,
                "<selector>",
                &format!("invalid label selector: {}", err.0),
            );
            None
        }
    }
}

fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<_> = labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", pairs.join(" "))
}

fn validate_blue_green(
    spec: &RolloutSpec,
    blue_green: &BlueGreenStrategy,
    path: &FieldPath,
    problems: &mut Problems,
) {
    if blue_green.active_service.is_empty() {
        problems.required(
            &path.child("activeService"),
            "Rollout has missing field '.spec.strategy.blueGreen.activeService'",
        );
    } else if blue_green.preview_service() == Some(blue_green.active_service.as_str()) {
        problems.invalid(
            &path.child("activeService"),
            format!("{:?}", blue_green.active_service),
            DUPLICATED_SERVICES_BLUE_GREEN,
        );
    }
    if let Some(limit) = blue_green.scale_down_delay_revision_limit
        && spec.revision_history_limit() < limit
    {
        problems.invalid(
            &path.child("scaleDownDelayRevisionLimit"),
            limit,
            SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT,
        );
    }
    for (name, value) in [
        ("previewReplicaCount", blue_green.preview_replica_count),
        ("autoPromotionSeconds", blue_green.auto_promotion_seconds),
        ("scaleDownDelaySeconds", blue_green.scale_down_delay_seconds),
        (
            "scaleDownDelayRevisionLimit",
            blue_green.scale_down_delay_revision_limit,
        ),
        (
            "abortScaleDownDelaySeconds",
            blue_green.abort_scale_down_delay_seconds,
        ),
    ] {
        problems.non_negative(&path.child(name), value);
    }
    validate_int_or_percent(
        &path.child("maxUnavailable"),
        blue_green.max_unavailable.as_ref(),
        problems,
    );
    for (name, analysis) in [
        ("prePromotionAnalysis", &blue_green.pre_promotion_analysis),
        ("postPromotionAnalysis", &blue_green.post_promotion_analysis),
    ] {
        if let Some(analysis) = analysis {
            validate_rollout_analysis(analysis, &path.child(name), problems);
        }
    }
    validate_anti_affinity(
        blue_green.anti_affinity.as_ref(),
        &path.child("antiAffinity"),
        problems,
    );
}

pub(super) fn validate_rollout_analysis(
    analysis: &RolloutAnalysis,
    path: &FieldPath,
    problems: &mut Problems,
) {
    for (i, template) in analysis.templates().iter().enumerate() {
        if template.template_name.as_deref().is_none_or(str::is_empty) {
            problems.required(
                &path.child("templates").index(i).child("templateName"),
                "templateName is required",
            );
        }
    }
    validate_arguments(analysis.args.as_deref(), &path.child("args"), problems);
    for (i, retention) in analysis.measurement_retention.iter().flatten().enumerate() {
        problems.non_negative(
            &path.child("measurementRetention").index(i).child("limit"),
            Some(retention.limit),
        );
    }
}

pub(super) fn validate_arguments(
    args: Option<&[RolloutAnalysisArgument]>,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, arg) in args.unwrap_or_default().iter().enumerate() {
        let at = path.index(i);
        if !seen.insert(arg.name.as_str()) {
            problems.duplicate(&at.child("name"), format!("{:?}", arg.name));
        }
        if let Some(from) = &arg.value_from {
            let from_path = at.child("valueFrom");
            problems.one_of(
                &from_path.child("podTemplateHashValue"),
                from.pod_template_hash_value.as_deref(),
                &["Stable", "Latest"],
            );
            if from.pod_template_hash_value.is_some() == from.field_ref.is_some() {
                problems.invalid(
                    &from_path,
                    "<valueFrom>",
                    "exactly one of podTemplateHashValue or fieldRef must be set",
                );
            }
        }
    }
}

pub(super) fn validate_anti_affinity(
    anti_affinity: Option<&AntiAffinity>,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let Some(anti_affinity) = anti_affinity else {
        return;
    };
    let preferred = &anti_affinity.preferred_during_scheduling_ignored_during_execution;
    let required = &anti_affinity.required_during_scheduling_ignored_during_execution;
    if preferred.is_some() == required.is_some() {
        let described = format!(
            "antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: {} antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: {}",
            preferred.is_some(),
            required.is_some()
        );
        problems.invalid(path, described, ANTI_AFFINITY_ONE_STRATEGY);
    }
    if let Some(p) = preferred
        && !(1..=100).contains(&p.weight)
    {
        problems.invalid(&path.child("weight"), p.weight, ANTI_AFFINITY_WEIGHT);
    }
}

/// An int-or-string that must be a non-negative integer or a percentage.
pub(super) fn validate_int_or_percent(
    path: &FieldPath,
    value: Option<&IntOrString>,
    problems: &mut Problems,
) {
    match value {
        Some(v) if int_or_percent_value(v).is_none_or(|n| n < 0) => problems.invalid(
            path,
            int_or_string(v),
            "must be a non-negative integer or a percentage such as 25%",
        ),
        _ => {}
    }
}

/// The number in `5` or `25%`; `None` when neither.
pub(super) fn int_or_percent_value(value: &IntOrString) -> Option<i32> {
    match value {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => s.strip_suffix('%').unwrap_or(s).parse().ok(),
    }
}

pub(super) fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => format!("{s:?}"),
    }
}
