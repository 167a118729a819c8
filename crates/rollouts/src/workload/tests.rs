use serde_json::json;
use sluice_api::BlueGreenStrategy;

use super::*;
use crate::model::{
    BlueGreenObserved, Deadline, LastProgress, Progress, ReplicaSetState, ServiceState, Strategy,
};

fn rs(name: &str, revision: i64, replicas: i32) -> ReplicaSetState {
    ReplicaSetState {
        name: name.into(),
        hash: name.into(),
        revision,
        previous_revision: None,
        replicas,
        actual: replicas,
        available: replicas,
        ready: replicas,
        scale_down_deadline: None,
        ephemeral: None,
    }
}

fn observed(
    spec: &BlueGreenStrategy,
    current: ReplicaSetState,
    workload: WorkloadObserved,
) -> Observed<'_> {
    Observed {
        replicas: 4,
        paused: false,
        hash: current.hash.clone(),
        replica_sets: vec![current],
        status: Progress::default(),
        invalid: None,
        deadline: Deadline {
            seconds: 600,
            abort: false,
            last_progress: LastProgress::At("2026-11-01T10:00:00Z".parse().unwrap()),
        },
        history_limit: 10,
        rollback_window: None,
        collision: false,
        strategy: Strategy::BlueGreen(BlueGreenObserved {
            spec,
            active: ServiceState::Selects(None),
            preview: None,
            switch_settled: true,
        }),
        analysis: Default::default(),
        restart: Default::default(),
        workload: Some(workload),
    }
}

fn deployment(scale_down: ScaleDown, healthy: bool, ready: i32) -> WorkloadObserved {
    WorkloadObserved {
        name: "web".into(),
        scale_down,
        replicas: 4,
        generation: 1,
        healthy,
        ready,
    }
}

fn empty_plan(o: &Observed<'_>) -> Plan {
    crate::planner::Planner::new(
        o,
        "2026-11-01T10:00:00Z".parse().unwrap(),
        crate::model::Targets::BlueGreen {
            active: None,
            preview: None,
        },
    )
    .plan
}

fn target(scale_down: ScaleDown, healthy: bool, ready: i32, revision: i64) -> Option<i32> {
    let spec = BlueGreenStrategy::default();
    let o = observed(
        &spec,
        rs("new", revision, 4),
        deployment(scale_down, healthy, ready),
    );
    let plan = empty_plan(&o);
    match scale_down_action(&o, &plan) {
        Some(Action::ScaleWorkload { name, replicas }) => {
            assert_eq!(name, "web");
            Some(replicas)
        }
        None => None,
        Some(other) => panic!("{other:?}"),
    }
}

fn scale_down_action(o: &Observed<'_>, plan: &Plan) -> Option<Action> {
    scale_down(o, plan)
}

#[test]
fn never_leaves_the_deployment_alone() {
    assert_eq!(target(ScaleDown::Never, true, 4, 1), None);
    assert_eq!(target(ScaleDown::Never, false, 2, 1), None);
}

#[test]
fn onsuccess_scales_to_zero_once_healthy_only() {
    assert_eq!(target(ScaleDown::OnSuccess, false, 3, 1), None);
    assert_eq!(target(ScaleDown::OnSuccess, true, 4, 1), Some(0));
    // Only during the migration (the first revision).
    assert_eq!(target(ScaleDown::OnSuccess, true, 4, 2), None);
}

#[test]
fn progressively_follows_the_rollouts_ready_pods() {
    // Nothing ready yet and nothing scaled down: the Deployment keeps its pods.
    assert_eq!(target(ScaleDown::Progressively, false, 0, 1), None);
    assert_eq!(target(ScaleDown::Progressively, false, 1, 1), Some(3));
    assert_eq!(target(ScaleDown::Progressively, false, 3, 1), Some(1));
    // 4 ready of 4: the Deployment already at 4 → 0.
    assert_eq!(target(ScaleDown::Progressively, false, 4, 1), Some(0));
    assert_eq!(target(ScaleDown::Progressively, true, 4, 1), Some(0));
    assert_eq!(target(ScaleDown::Progressively, false, 2, 2), None);
}

#[test]
fn an_unresolvable_reference_has_argos_message() {
    let store = kube::runtime::reflector::store::Writer::<Deployment>::default().as_reader();
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns"},
        "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
            "scaleDown": "onsuccess"},
            "strategy": {"canary": {}}}}))
    .unwrap();
    let Resolved::Invalid(message) = resolve(&rollout, &store) else {
        panic!("resolved a missing Deployment");
    };
    assert_eq!(
        message,
        r#"spec.workloadRef: Invalid value: v1alpha1.ObjectRef{APIVersion:"apps/v1", Kind:"Deployment", Name:"web", ScaleDown:"onsuccess"}: deployments.apps "ns/web" not found"#
    );
    let mut with_template = rollout.clone();
    with_template.spec.template = Some(sluice_api::Preserved::from_object(
        json!({"metadata": {"labels": {"a": "b"}}})
            .as_object()
            .unwrap()
            .clone(),
    ));
    let Resolved::Invalid(message) = resolve(&with_template, &store) else {
        panic!("a template beside workloadRef");
    };
    assert!(message.ends_with(": template must be empty for workload reference rollout"));
}

#[test]
fn a_deployment_lends_its_template_and_selector() {
    let mut writer = kube::runtime::reflector::store::Writer::<Deployment>::default();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "generation": 3},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}}))
    .unwrap();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(deployment));
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "ns"},
        "spec": {"replicas": 5, "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "web", "scaleDown": "progressively"},
            "strategy": {"canary": {}}}}))
    .unwrap();
    let Resolved::Resolved(resolved, workload) = resolve(&rollout, &writer.as_reader()) else {
        panic!("not resolved");
    };
    assert_eq!(
        serde_json::to_value(&resolved.spec.template).unwrap()["spec"]["containers"][0]["image"],
        "web:1"
    );
    assert!(resolved.spec.selector.is_some());
    assert_eq!(validate(&resolved.spec), None);
    assert_eq!(validate(&rollout.spec).as_deref(), None);
    assert_eq!(
        workload,
        WorkloadObserved {
            name: "web".into(),
            scale_down: ScaleDown::Progressively,
            replicas: 5,
            generation: 3,
            healthy: false,
            ready: 0,
        }
    );
}
