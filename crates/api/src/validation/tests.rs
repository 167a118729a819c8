//! Table tests: each case is a spec in YAML and the problems it must produce.

use serde_json::Value;

use super::*;
use crate::{AnalysisRunSpec, AnalysisTemplateSpec, ExperimentSpec, RolloutSpec};

/// A valid blue-green Rollout spec, as YAML, that cases modify.
const BLUE_GREEN: &str = r#"
replicas: 2
selector: {matchLabels: {app: demo}}
template:
  metadata: {labels: {app: demo}}
  spec: {containers: [{name: demo, image: "argoproj/rollouts-demo:blue"}]}
strategy:
  blueGreen: {activeService: demo-active, previewService: demo-preview}
"#;

const CANARY: &str = r#"
selector: {matchLabels: {app: demo}}
template:
  metadata: {labels: {app: demo}}
  spec: {containers: [{name: demo, image: "argoproj/rollouts-demo:blue"}]}
strategy:
  canary:
    steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {duration: 10s}}]
"#;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// Replaces the value at a slash-separated path (creating objects on the way); `null` removes.
fn set(mut doc: Value, path: &str, value: &str) -> Value {
    let (parents, last) = path.rsplit_once('/').unwrap_or(("", path));
    let mut node = &mut doc;
    for key in parents.split('/').filter(|k| !k.is_empty()) {
        node = match node {
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            node => node
                .as_object_mut()
                .unwrap()
                .entry(key)
                .or_insert_with(|| Value::Object(Default::default())),
        };
    }
    let value = yaml(value);
    let object = node.as_object_mut().unwrap();
    if value.is_null() {
        object.remove(last);
    } else {
        object.insert(last.to_owned(), value);
    }
    doc
}

fn rollout_problems(doc: Value) -> Vec<FieldError> {
    let spec: RolloutSpec = serde_json::from_value(doc).unwrap();
    validate_rollout(&spec)
}

#[test]
fn valid_rollouts_have_no_problems() {
    assert_eq!(rollout_problems(yaml(BLUE_GREEN)), vec![]);
    assert_eq!(rollout_problems(yaml(CANARY)), vec![]);
}

#[test]
fn rollout_problems_name_field_and_message() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "no strategy",
            set(yaml(BLUE_GREEN), "strategy", "null"),
            "spec.strategy",
            "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
        ),
        (
            "empty strategy",
            set(yaml(BLUE_GREEN), "strategy", "{}"),
            "spec.strategy",
            "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
        ),
        (
            "both strategies",
            set(yaml(BLUE_GREEN), "strategy/canary", "{}"),
            "spec.strategy",
            "Multiple Strategies can not be listed",
        ),
        (
            "selector not matching template labels",
            set(yaml(BLUE_GREEN), "selector", "{matchLabels: {app: other}}"),
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        ),
        (
            "selector expression not matching",
            set(
                yaml(BLUE_GREEN),
                "selector",
                "{matchExpressions: [{key: app, operator: NotIn, values: [demo]}]}",
            ),
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        ),
        (
            "empty selector",
            set(yaml(BLUE_GREEN), "selector", "{}"),
            "spec.selector",
            "empty selector is invalid for deployment",
        ),
        (
            "missing selector",
            set(yaml(BLUE_GREEN), "selector", "null"),
            "spec.selector",
            "Rollout has missing field '.spec.selector'",
        ),
        (
            "two fields in one step",
            set(
                yaml(CANARY),
                "strategy/canary/steps",
                "[{setWeight: 20, pause: {}}]",
            ),
            "spec.strategy.canary.steps[0]",
            "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        ),
        (
            "empty step",
            set(yaml(CANARY), "strategy/canary/steps", "[{}]"),
            "spec.strategy.canary.steps[0]",
            "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        ),
        (
            "setCanaryScale without trafficRouting",
            set(
                yaml(CANARY),
                "strategy/canary/steps",
                "[{setCanaryScale: {replicas: 1}}]",
            ),
            "spec.strategy.canary.trafficRouting",
            "SetCanaryScale requires TrafficRouting to be set",
        ),
        (
            "setWeight above 100",
            set(yaml(CANARY), "strategy/canary/steps", "[{setWeight: 120}]"),
            "spec.strategy.canary.steps[0].setWeight",
            "SetWeight needs to be between 0 and 100",
        ),
        (
            "negative pause",
            set(
                yaml(CANARY),
                "strategy/canary/steps",
                "[{pause: {duration: -5}}]",
            ),
            "spec.strategy.canary.steps[0].pause.duration",
            "Duration needs to be greater than 0",
        ),
        (
            "malformed pause",
            set(
                yaml(CANARY),
                "strategy/canary/steps",
                "[{pause: {duration: 5 minutes}}]",
            ),
            "spec.strategy.canary.steps[0].pause.duration",
            "invalid duration \"5 minutes\": expected a number with a unit such as 30s, 5m or 1h",
        ),
        (
            "negative replicas",
            set(yaml(BLUE_GREEN), "replicas", "-1"),
            "spec.replicas",
            "must be greater than or equal to 0",
        ),
        (
            "negative scaleDownDelaySeconds",
            set(
                yaml(BLUE_GREEN),
                "strategy/blueGreen/scaleDownDelaySeconds",
                "-30",
            ),
            "spec.strategy.blueGreen.scaleDownDelaySeconds",
            "must be greater than or equal to 0",
        ),
        (
            "negative revisionHistoryLimit",
            set(yaml(BLUE_GREEN), "revisionHistoryLimit", "-2"),
            "spec.revisionHistoryLimit",
            "must be greater than or equal to 0",
        ),
        (
            "progress deadline not above minReadySeconds",
            set(yaml(BLUE_GREEN), "minReadySeconds", "600"),
            "spec.progressDeadlineSeconds",
            "must be greater than minReadySeconds",
        ),
        (
            "workloadRef with a template",
            set(
                yaml(BLUE_GREEN),
                "workloadRef",
                "{apiVersion: apps/v1, kind: Deployment, name: demo}",
            ),
            "spec.template",
            "template must be empty for workload reference rollout",
        ),
        (
            "workloadRef of an unsupported kind",
            set(
                set(yaml(BLUE_GREEN), "template", "null"),
                "workloadRef",
                "{kind: StatefulSet, name: demo}",
            ),
            "spec.workloadRef.kind",
            "supported values: Deployment, ReplicaSet, PodTemplate",
        ),
        (
            "same active and preview service",
            set(
                yaml(BLUE_GREEN),
                "strategy/blueGreen/previewService",
                "demo-active",
            ),
            "spec.strategy.blueGreen.activeService",
            "This rollout uses the same service for the active and preview services, but two different services are required.",
        ),
        (
            "traffic routing without services",
            set(
                yaml(CANARY),
                "strategy/canary/trafficRouting",
                "{nginx: {stableIngress: demo}}",
            ),
            "spec.strategy.canary.stableService",
            "Canary service and Stable service must to be set to use Traffic Routing",
        ),
        (
            "scaleDownDelaySeconds without traffic routing",
            set(yaml(CANARY), "strategy/canary/scaleDownDelaySeconds", "30"),
            "spec.strategy.canary.scaleDownDelaySeconds",
            "Canary scaleDownDelaySeconds can only be used with traffic routing",
        ),
        (
            "maxSurge and maxUnavailable zero",
            set(
                set(yaml(CANARY), "strategy/canary/maxSurge", "0"),
                "strategy/canary/maxUnavailable",
                "0",
            ),
            "spec.strategy.canary.maxSurge",
            "MaxSurge and MaxUnavailable both can not be zero",
        ),
        (
            "anti-affinity with both rules",
            set(
                yaml(BLUE_GREEN),
                "strategy/blueGreen/antiAffinity",
                "{requiredDuringSchedulingIgnoredDuringExecution: {}, preferredDuringSchedulingIgnoredDuringExecution: {weight: 10}}",
            ),
            "spec.strategy.blueGreen.antiAffinity",
            "AntiAffinity must have exactly one strategy listed",
        ),
        (
            "no containers",
            set(yaml(BLUE_GREEN), "template/spec/containers", "[]"),
            "spec.template.spec.containers",
            "a pod template needs at least one container",
        ),
    ];
    for (name, doc, path, message) in cases {
        let problems = rollout_problems(doc);
        assert!(
            problems
                .iter()
                .any(|p| p.path == path && p.message == message),
            "{name}: expected {path}: {message}\ngot: {problems:#?}"
        );
    }
}

/// Argo's APISIX example: a header route beside `setCanaryScale` in one step is one step.
#[test]
fn a_route_step_may_share_a_step_with_set_canary_scale() {
    let doc = set(
        set(
            yaml(CANARY),
            "strategy/canary/steps",
            "[{setCanaryScale: {replicas: 1}, setHeaderRoute: {name: h, match: [{headerName: trace, headerValue: {exact: debug}}]}}, {pause: {}}]",
        ),
        "strategy/canary/trafficRouting",
        "{apisix: {route: {name: r}}, managedRoutes: [{name: h}]}",
    );
    let doc = set(
        set(doc, "strategy/canary/canaryService", "c"),
        "strategy/canary/stableService",
        "s",
    );
    assert_eq!(rollout_problems(doc), vec![]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = set(
        set(set(yaml(CANARY), "replicas", "-3"), "selector", "{}"),
        "strategy/canary/steps",
        "[{setWeight: 20, pause: {}}, {setWeight: 200}]",
    );
    let paths: Vec<_> = rollout_problems(doc).into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "spec.replicas",
            "spec.selector",
            "spec.strategy.canary.steps[0]",
            "spec.strategy.canary.steps[1].setWeight",
        ]
    );
}

#[test]
fn field_errors_print_like_kubernetes() {
    let problems = rollout_problems(set(yaml(BLUE_GREEN), "replicas", "-1"));
    assert_eq!(
        problems[0].to_string(),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
}

const TEMPLATE: &str = r#"
args: [{name: service}]
metrics:
- name: success-rate
  interval: 10s
  count: 3
  successCondition: "result[0] >= 0.95"
  provider:
    prometheus: {address: "http://127.0.0.1:9090", query: "up"}
"#;

fn template_problems(doc: Value) -> Vec<(String, String)> {
    let spec: AnalysisTemplateSpec = serde_json::from_value(doc).unwrap();
    validate_analysis_template(&spec)
        .into_iter()
        .map(|p| (p.path, p.message))
        .collect()
}

#[test]
fn analysis_template_problems() {
    assert_eq!(template_problems(yaml(TEMPLATE)), vec![]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no metrics",
            set(yaml(TEMPLATE), "metrics", "[]"),
            "spec.metrics",
        ),
        (
            "count without interval",
            set(yaml(TEMPLATE), "metrics/0/interval", "null"),
            "spec.metrics[0].interval",
        ),
        (
            "bad interval",
            set(yaml(TEMPLATE), "metrics/0/interval", "often"),
            "spec.metrics[0].interval",
        ),
        (
            "no provider",
            set(yaml(TEMPLATE), "metrics/0/provider", "{}"),
            "spec.metrics[0].provider",
        ),
        (
            "two providers",
            set(
                yaml(TEMPLATE),
                "metrics/0/provider/web",
                "{url: 'http://127.0.0.1/'}",
            ),
            "spec.metrics[0].provider",
        ),
        (
            "duplicate argument",
            set(yaml(TEMPLATE), "args", "[{name: a}, {name: a}]"),
            "spec.args[1].name",
        ),
        (
            "negative failureLimit below -1",
            set(yaml(TEMPLATE), "metrics/0/failureLimit", "-2"),
            "spec.metrics[0].failureLimit",
        ),
    ];
    for (name, doc, path) in cases {
        let problems = template_problems(doc);
        assert!(
            problems.iter().any(|(p, _)| p == path),
            "{name}: expected {path}, got {problems:?}"
        );
    }
}

#[test]
fn templated_limits_are_left_for_run_time() {
    let doc = set(yaml(TEMPLATE), "metrics/0/failureLimit", "'{{args.limit}}'");
    assert_eq!(template_problems(doc), vec![]);
}

#[test]
fn analysis_run_problems() {
    let mut doc = yaml(TEMPLATE);
    doc.as_object_mut()
        .unwrap()
        .insert("ttlStrategy".into(), yaml("{secondsAfterSuccess: -1}"));
    let spec: AnalysisRunSpec = serde_json::from_value(doc).unwrap();
    let paths: Vec<_> = validate_analysis_run(&spec)
        .into_iter()
        .map(|p| p.path)
        .collect();
    assert_eq!(paths, ["spec.ttlStrategy.secondsAfterSuccess"]);
}

#[test]
fn experiment_problems() {
    let valid = r#"
duration: 1m
templates:
- name: baseline
  selector: {matchLabels: {app: baseline}}
  template:
    metadata: {labels: {app: baseline}}
    spec: {containers: [{name: app, image: "argoproj/rollouts-demo:blue"}]}
"#;
    let problems = |doc: Value| -> Vec<String> {
        let spec: ExperimentSpec = serde_json::from_value(doc).unwrap();
        validate_experiment(&spec)
            .into_iter()
            .map(|p| p.path)
            .collect()
    };
    assert_eq!(problems(yaml(valid)), Vec::<String>::new());
    assert_eq!(
        problems(set(yaml(valid), "duration", "soon")),
        ["spec.duration"]
    );
    assert_eq!(
        problems(set(
            yaml(valid),
            "templates/0/selector",
            "{matchLabels: {app: x}}"
        )),
        ["spec.templates[0].template.metadata.labels"]
    );
}
