//! Health tables per kind.

use serde_json::{Value, json};

use super::*;

fn code(object: Value) -> Option<HealthCode> {
    assess(&object).map(|h| h.code)
}

#[test]
fn codes_order_from_best_to_worst() {
    use HealthCode::*;
    let mut codes = [Unknown, Degraded, Missing, Progressing, Suspended, Healthy];
    codes.sort();
    assert_eq!(
        codes,
        [Healthy, Suspended, Progressing, Missing, Degraded, Unknown]
    );
}

#[test]
fn rollouts_surface_their_phase_with_paused_as_suspended() {
    let rollout = |status: Value| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "generation": 3}, "spec": {}, "status": status})
    };
    let at =
        |phase: &str| rollout(json!({"observedGeneration": "3", "phase": phase, "message": "m"}));
    assert_eq!(code(at("Healthy")), Some(HealthCode::Healthy));
    assert_eq!(code(at("Paused")), Some(HealthCode::Suspended));
    assert_eq!(code(at("Degraded")), Some(HealthCode::Degraded));
    assert_eq!(code(at("Progressing")), Some(HealthCode::Progressing));
    let stale = rollout(json!({"observedGeneration": "2", "phase": "Healthy"}));
    assert_eq!(code(stale), Some(HealthCode::Progressing));
    let none =
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}});
    assert_eq!(code(none), Some(HealthCode::Progressing));
}

#[test]
fn deployments() {
    let d = |spec: Value, status: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 1}, "spec": spec, "status": status})
    };
    let ok = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    assert_eq!(
        code(d(json!({"replicas": 2}), ok.clone())),
        Some(HealthCode::Healthy)
    );
    assert_eq!(
        code(d(json!({"replicas": 2, "paused": true}), ok)),
        Some(HealthCode::Suspended)
    );
    let rolling = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2});
    assert_eq!(
        code(d(json!({"replicas": 2}), rolling)),
        Some(HealthCode::Progressing)
    );
    let stuck = json!({"observedGeneration": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
    assert_eq!(
        code(d(json!({"replicas": 2}), stuck)),
        Some(HealthCode::Degraded)
    );
    let unobserved = json!({"observedGeneration": 0});
    assert_eq!(
        code(d(json!({}), unobserved)),
        Some(HealthCode::Progressing)
    );
}

#[test]
fn pods_jobs_services_ingresses_and_claims() {
    let pod = |policy: &str, status: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": policy}, "status": status})
    };
    let ready = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    assert_eq!(code(pod("Always", ready)), Some(HealthCode::Healthy));
    let backoff = json!({"phase": "Running", "containerStatuses": [
        {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]});
    assert_eq!(code(pod("Always", backoff)), Some(HealthCode::Degraded));
    assert_eq!(
        code(pod("Never", json!({"phase": "Running"}))),
        Some(HealthCode::Progressing)
    );
    assert_eq!(
        code(pod("Never", json!({"phase": "Succeeded"}))),
        Some(HealthCode::Healthy)
    );
    assert_eq!(
        code(pod("Never", json!({"phase": "Failed"}))),
        Some(HealthCode::Degraded)
    );

    let job = |conditions: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": conditions}})
    };
    assert_eq!(code(job(json!([]))), Some(HealthCode::Progressing));
    assert_eq!(
        code(job(json!([{"type": "Complete", "status": "True"}]))),
        Some(HealthCode::Healthy)
    );
    assert_eq!(
        code(job(json!([{"type": "Failed", "status": "True"}]))),
        Some(HealthCode::Degraded)
    );

    let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer"}});
    assert_eq!(code(lb), Some(HealthCode::Progressing));
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}});
    assert_eq!(code(svc), Some(HealthCode::Healthy));
    let ing = |status: Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "i"}, "status": status})
    };
    assert_eq!(code(ing(json!({}))), Some(HealthCode::Progressing));
    assert_eq!(
        code(ing(
            json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})
        )),
        Some(HealthCode::Healthy)
    );
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
        "status": {"phase": "Bound"}});
    assert_eq!(code(pvc), Some(HealthCode::Healthy));
}

#[test]
fn analysis_runs_and_kinds_without_a_check() {
    let run = |phase: &str| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "a"}, "status": {"phase": phase}})
    };
    assert_eq!(code(run("Successful")), Some(HealthCode::Healthy));
    assert_eq!(code(run("Running")), Some(HealthCode::Progressing));
    assert_eq!(code(run("Failed")), Some(HealthCode::Degraded));
    assert_eq!(code(run("Inconclusive")), Some(HealthCode::Unknown));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(code(cm), None);
    let deleting = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
    assert_eq!(code(deleting), Some(HealthCode::Progressing));
}
