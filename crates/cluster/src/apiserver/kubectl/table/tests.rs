use serde_json::{Value, json};

use super::*;
use crate::registry::Registry;

fn now() -> Timestamp {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

/// The (column name → cell) pairs of one object's row.
fn cells(group: &str, resource: &str, object: Value) -> Vec<(String, Value)> {
    let registry = Registry::with_builtins();
    let rt = registry.get(group, resource).expect("a built-in kind");
    let table = render(&rt, &[object], None, true, Include::Metadata, now());
    let names = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(&c["name"]));
    names
        .zip(
            table["rows"][0]["cells"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        )
        .collect()
}

fn cell(cells: &[(String, Value)], name: &str) -> Value {
    cells
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no column {name}: {cells:?}"))
}

#[test]
fn durations_read_like_kubectl() {
    let cases = [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
    ];
    for (seconds, expected) in cases {
        assert_eq!(human_duration(seconds), expected);
    }
}

#[test]
fn pod_status_reads_like_kubectl() {
    let pod = |status: Value| {
        json!({"metadata": {"name": "p", "creationTimestamp": "2026-12-01T09:59:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}, "status": status})
    };
    let running = json!({"phase": "Running", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "containerStatuses": [{"ready": true, "restartCount": 2, "state": {"running": {}},
            "lastState": {"terminated": {"finishedAt": "2026-12-01T09:58:00Z"}}},
            {"ready": true, "restartCount": 0, "state": {"running": {}}}]});
    let row = cells("", "pods", pod(running));
    assert_eq!(cell(&row, "Ready"), "2/2");
    assert_eq!(cell(&row, "Status"), "Running");
    assert_eq!(cell(&row, "Restarts"), "2 (2m ago)");
    assert_eq!(cell(&row, "Age"), "60s");
    let crashing = json!({"phase": "Running", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}],
        "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}, {"ready": true, "state": {"running": {}}}]});
    assert_eq!(
        cell(&cells("", "pods", pod(crashing)), "Status"),
        "CrashLoopBackOff"
    );
    let init = json!({"phase": "Pending", "initContainerStatuses": [{"state": {"running": {}}}]});
    assert_eq!(cell(&cells("", "pods", pod(init)), "Status"), "Init:0/1");
    let failed_init = json!({"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]});
    assert_eq!(
        cell(&cells("", "pods", pod(failed_init)), "Status"),
        "Init:ExitCode:3"
    );
    let mut deleting = pod(json!({"phase": "Running"}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-01T10:00:00Z");
    assert_eq!(cell(&cells("", "pods", deleting), "Status"), "Terminating");
}

#[test]
fn services_nodes_and_selectors() {
    let service = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "127.2.0.1",
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "selector": {"b": "2", "a": "1"}}});
    let row = cells("", "services", service);
    assert_eq!(cell(&row, "Port(s)"), "80:30080/TCP");
    assert_eq!(cell(&row, "Selector"), "a=1,b=2");
    assert_eq!(cell(&row, "External-IP"), "<none>");
    let pending = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
    assert_eq!(
        cell(&cells("", "services", pending), "External-IP"),
        "<pending>"
    );

    let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let row = cells("", "nodes", node);
    assert_eq!(cell(&row, "Status"), "Ready,SchedulingDisabled");
    assert_eq!(cell(&row, "Roles"), "control-plane");

    let selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]}, {"key": "canary", "operator": "DoesNotExist"}]});
    assert_eq!(label_selector(&selector), "app=web,!canary,tier in (a,b)");
    assert_eq!(label_selector(&json!({})), "<none>");
}

#[test]
fn the_kinds_users_apply_have_their_columns() {
    let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 10}}}]}});
    let row = cells("autoscaling", "horizontalpodautoscalers", hpa);
    assert_eq!(
        cell(&row, "Targets"),
        "cpu: 10%/80%, memory: <unknown>/200Mi"
    );
    assert_eq!(cell(&row, "Reference"), "Deployment/web");
    assert_eq!(cell(&row, "Replicas"), 2);

    let cron =
        json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "suspend": false}});
    let row = cells("batch", "cronjobs", cron);
    assert_eq!(cell(&row, "Suspend"), "False");
    assert_eq!(cell(&row, "Last Schedule"), "<none>");
    assert_eq!(cell(&row, "Timezone"), "<none>");

    let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    let row = cells("policy", "poddisruptionbudgets", pdb);
    assert_eq!(
        (cell(&row, "Min Available"), cell(&row, "Max Unavailable")),
        (json!("50%"), json!("N/A"))
    );

    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
    assert_eq!(cell(&cells("", "secrets", secret), "Data"), 2);
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": ""}, "binaryData": {"b": ""}});
    assert_eq!(cell(&cells("", "configmaps", cm), "Data"), 2);
    let binding = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "shop"}, {"kind": "User", "name": "ada"}]});
    let row = cells("rbac.authorization.k8s.io", "rolebindings", binding);
    assert_eq!(cell(&row, "Role"), "ClusterRole/view");
    assert_eq!(cell(&row, "ServiceAccounts"), "shop/robot");
    assert_eq!(cell(&row, "Users"), "ada");
    let quota = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "limits.cpu": "2"}, "used": {"pods": "3"}}});
    let row = cells("", "resourcequotas", quota);
    assert_eq!(
        (cell(&row, "Request"), cell(&row, "Limit")),
        (json!("pods: 3/10"), json!("limits.cpu: 0/2"))
    );
    let role = json!({"metadata": {"name": "r", "creationTimestamp": "2026-12-01T09:00:00Z"}});
    let row = cells("rbac.authorization.k8s.io", "roles", role);
    assert_eq!(cell(&row, "Created At"), "2026-12-01T09:00:00Z");
    let class = json!({"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"});
    let row = cells("storage.k8s.io", "storageclasses", class);
    assert_eq!(cell(&row, "Name"), "fast (default)");
    assert_eq!(cell(&row, "ReclaimPolicy"), "Delete");
}

#[test]
fn events_fold_their_series_and_rows_carry_what_was_asked() {
    let event = json!({"metadata": {"name": "e"}, "type": "Warning", "reason": "BackOff", "count": 5,
        "firstTimestamp": "2026-12-01T09:50:00Z", "lastTimestamp": "2026-12-01T09:59:00Z",
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
        "source": {"component": "kubelet", "host": "sluice-local"}, "message": "Back-off"});
    let row = cells("", "events", event.clone());
    assert_eq!(cell(&row, "Last Seen"), "60s (x5 over 10m)");
    assert_eq!(cell(&row, "Object"), "pod/p");
    assert_eq!(cell(&row, "Source"), "kubelet, sluice-local");
    let registry = Registry::with_builtins();
    let rt = registry.get("", "events").unwrap();
    for (include, expected) in [
        (Include::None, Value::Null),
        (Include::Object, event.clone()),
        (
            Include::Metadata,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "e"}}),
        ),
    ] {
        let table = render(
            &rt,
            std::slice::from_ref(&event),
            None,
            false,
            include,
            now(),
        );
        assert_eq!(table["rows"][0]["object"], expected, "{include:?}");
        assert!(table.get("columnDefinitions").is_none());
    }
}
