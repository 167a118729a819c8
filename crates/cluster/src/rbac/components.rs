//! The roles and bindings of the cluster's own components, as Kubernetes 1.33 bootstraps them
//! (`bootstrappolicy/policy.go` and `controller_policy.go`), for the identities of
//! [`crate::authn`]:
//!
//! | component | user (groups) | ClusterRoles |
//! |---|---|---|
//! | cluster controllers | `system:kube-controller-manager` | `system:kube-controller-manager`, the `system:controller:*` role of each loop sluice runs, `sluice:kube-controller-manager` |
//! | scheduler | `system:kube-scheduler` | `system:kube-scheduler` |
//! | kubelet | `system:node:sluice-local` (`system:nodes`) | `system:node`, `sluice:node` |
//! | service proxy | `system:kube-proxy` | `system:node-proxier`, `sluice:node-proxier` |
//! | ingress | `sluice:ingress` | `sluice:ingress` |
//! | Prometheus' target discovery (`sluice up --prometheus`) | `sluice:prometheus` | `sluice:prometheus` |
//!
//! Kubernetes' roles are copied rule for rule; where sluice's component does a little more than
//! Kubernetes' own, the difference is a separate `sluice:*` role bound to the same user, so
//! `kubectl get clusterrole system:node -o yaml` reads as on a real cluster and what sluice adds
//! is in one place:
//!
//! - Controllers: kube-controller-manager runs here without
//!   `--use-service-account-credentials`, so — as Kubernetes documents for that mode — its own
//!   user holds every loop's role: each `system:controller:NAME` binding names both the
//!   ServiceAccount `kube-system/NAME` (Kubernetes' subject) and `system:kube-controller-manager`.
//!   The controllers write with merge patches where Kubernetes' update, so
//!   `sluice:kube-controller-manager` grants `patch` beside each such `update`.
//! - Kubelet: Kubernetes authorizes kubelets with the Node authorizer plus the `system:node` role,
//!   which it ships unbound; sluice has one node and no Node authorizer, so `system:node` is bound
//!   to the group `system:nodes` (as Kubernetes did before 1.8) and the Node authorizer's
//!   restriction to the node's own pods, secrets and config maps is not applied. `sluice:node`
//!   adds `events.k8s.io` Events (sluice records those where Kubernetes' kubelet records core
//!   ones) and reading ServiceAccounts (for `automountServiceAccountToken`, which Kubernetes'
//!   admission settles at pod creation).
//! - Service proxy: it is also the load balancer of `LoadBalancer` Services (the cloud service
//!   controller's job: their `status`) and remaps ports below 1024 in an annotation, so
//!   `sluice:node-proxier` lets it patch Services and their status.
//! - Ingress: `sluice:ingress` holds ingress-nginx's cluster rules, plus patching Ingresses (its
//!   canary marks) and their status. `sluice:prometheus` is the Prometheus chart's server role.
//!
//! The garbage collector and the namespace lifecycle act on the store inside the API server, not
//! through requests, so nothing checks them; their roles (`system:controller:generic-garbage-collector`,
//! `system:controller:namespace-controller`: every resource) are bootstrapped all the same.

use serde_json::{Value, json};

use super::defaults::{binding_to, role, rule};
use crate::authn::{
    INGRESS, KUBE_CONTROLLER_MANAGER, KUBE_PROXY, KUBE_SCHEDULER, NODES, PROMETHEUS,
};

const READ: [&str; 3] = ["get", "list", "watch"];
const LIST_WATCH: [&str; 2] = ["list", "watch"];
const EVENTS: [&str; 3] = ["create", "patch", "update"];

fn events(groups: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": ["events"], "verbs": EVENTS})
}

/// Kubernetes' `eventsRule()`: core and `events.k8s.io` Events.
fn events_rule() -> Value {
    events(&["", "events.k8s.io"])
}

fn named(verbs: &[&str], group: &str, resource: &str, names: &[&str]) -> Value {
    json!({"apiGroups": [group], "resources": [resource], "resourceNames": names, "verbs": verbs})
}

fn in_groups(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// The loops of kube-controller-manager sluice runs (or whose role it bootstraps).
const CONTROLLERS: [&str; 10] = [
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "generic-garbage-collector",
    "job-controller",
    "namespace-controller",
    "replicaset-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
];

fn controller_rules(name: &str) -> Vec<Value> {
    let apps = ["apps", "extensions"];
    match name {
        "clusterrole-aggregation-controller" => vec![rule(
            &["escalate", "get", "list", "patch", "update", "watch"],
            "rbac.authorization.k8s.io",
            &["clusterroles"],
        )],
        "deployment-controller" => vec![
            in_groups(&["get", "list", "update", "watch"], &apps, &["deployments"]),
            in_groups(&["update"], &apps, &["deployments/status"]),
            in_groups(&["update"], &apps, &["deployments/finalizers"]),
            in_groups(
                &[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ],
                &apps,
                &["replicasets"],
            ),
            rule(&["get", "list", "update", "watch"], "", &["pods"]),
            events_rule(),
        ],
        "endpoint-controller" => vec![
            rule(&READ, "", &["pods", "services"]),
            rule(
                &["create", "delete", "get", "list", "update", "watch"],
                "",
                &["endpoints"],
            ),
            rule(&["create"], "", &["endpoints/restricted"]),
            events_rule(),
        ],
        "endpointslice-controller" => vec![
            rule(&READ, "", &["nodes", "pods", "services"]),
            rule(&["update"], "", &["services/finalizers"]),
            rule(
                &["create", "delete", "get", "list", "update", "watch"],
                "discovery.k8s.io",
                &["endpointslices"],
            ),
            events_rule(),
        ],
        "generic-garbage-collector" => vec![
            rule(
                &["delete", "get", "list", "patch", "update", "watch"],
                "*",
                &["*"],
            ),
            events_rule(),
        ],
        "job-controller" => vec![
            rule(
                &["get", "list", "patch", "update", "watch"],
                "batch",
                &["jobs"],
            ),
            rule(&["update"], "batch", &["jobs/status"]),
            rule(&["update"], "batch", &["jobs/finalizers"]),
            rule(
                &["create", "delete", "list", "patch", "watch"],
                "",
                &["pods"],
            ),
            events_rule(),
        ],
        "namespace-controller" => vec![
            rule(&["delete", "get", "list", "watch"], "", &["namespaces"]),
            rule(
                &["update"],
                "",
                &["namespaces/finalize", "namespaces/status"],
            ),
            rule(
                &["delete", "deletecollection", "get", "list", "watch"],
                "*",
                &["*"],
            ),
        ],
        "replicaset-controller" => vec![
            in_groups(&["get", "list", "update", "watch"], &apps, &["replicasets"]),
            in_groups(&["update"], &apps, &["replicasets/status"]),
            in_groups(&["update"], &apps, &["replicasets/finalizers"]),
            rule(
                &["create", "delete", "list", "patch", "watch"],
                "",
                &["pods"],
            ),
            events_rule(),
        ],
        "root-ca-cert-publisher" => vec![
            rule(&["create", "update"], "", &["configmaps"]),
            events_rule(),
        ],
        "service-account-controller" => {
            vec![rule(&["create"], "", &["serviceaccounts"]), events_rule()]
        }
        other => unreachable!("no role for controller {other}"),
    }
}

/// Kubernetes' roles of its components, and sluice's additions to them.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        role(
            KUBE_CONTROLLER_MANAGER,
            &[],
            vec![
                events_rule(),
                rule(&["create"], "coordination.k8s.io", &["leases"]),
                named(
                    &["get", "update"],
                    "coordination.k8s.io",
                    "leases",
                    &["kube-controller-manager"],
                ),
                rule(&["create"], "", &["secrets", "serviceaccounts"]),
                rule(&["delete"], "", &["secrets"]),
                rule(
                    &["get"],
                    "",
                    &["configmaps", "namespaces", "secrets", "serviceaccounts"],
                ),
                rule(&["update"], "", &["secrets", "serviceaccounts"]),
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["subjectaccessreviews"],
                ),
                rule(&LIST_WATCH, "*", &["*"]),
                rule(&["create"], "", &["serviceaccounts/token"]),
            ],
        ),
        role(
            KUBE_SCHEDULER,
            &[],
            vec![
                events_rule(),
                rule(&["create"], "coordination.k8s.io", &["leases"]),
                named(
                    &["get", "update"],
                    "coordination.k8s.io",
                    "leases",
                    &["kube-scheduler"],
                ),
                rule(&READ, "", &["nodes"]),
                rule(&["delete", "get", "list", "watch"], "", &["pods"]),
                rule(&["create"], "", &["bindings", "pods/binding"]),
                rule(&["patch", "update"], "", &["pods/status"]),
                rule(&READ, "", &["replicationcontrollers", "services"]),
                in_groups(&READ, &["apps", "extensions"], &["replicasets"]),
                rule(&READ, "apps", &["statefulsets"]),
                rule(&READ, "policy", &["poddisruptionbudgets"]),
                rule(&READ, "", &["persistentvolumeclaims", "persistentvolumes"]),
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["subjectaccessreviews"],
                ),
                rule(&READ, "storage.k8s.io", &["csinodes"]),
                rule(&READ, "", &["namespaces"]),
                rule(&READ, "storage.k8s.io", &["csidrivers"]),
                rule(&READ, "storage.k8s.io", &["csistoragecapacities"]),
            ],
        ),
        role(
            "system:node",
            &[],
            vec![
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["localsubjectaccessreviews", "subjectaccessreviews"],
                ),
                rule(&READ, "", &["services"]),
                rule(&["create", "get", "list", "watch"], "", &["nodes"]),
                rule(&["patch", "update"], "", &["nodes/status"]),
                rule(&["patch", "update"], "", &["nodes"]),
                events(&[""]),
                rule(&READ, "", &["pods"]),
                rule(&["create", "delete"], "", &["pods"]),
                rule(&["patch", "update"], "", &["pods/status"]),
                rule(&["create"], "", &["pods/eviction"]),
                rule(&READ, "", &["configmaps", "secrets"]),
                rule(
                    &["get"],
                    "",
                    &["persistentvolumeclaims", "persistentvolumes"],
                ),
                rule(&["get"], "", &["endpoints"]),
                rule(
                    &["create", "get", "list", "watch"],
                    "certificates.k8s.io",
                    &["certificatesigningrequests"],
                ),
                rule(
                    &["create", "delete", "get", "patch", "update"],
                    "coordination.k8s.io",
                    &["leases"],
                ),
                rule(&["get"], "storage.k8s.io", &["volumeattachments"]),
                rule(&["create"], "", &["serviceaccounts/token"]),
                rule(
                    &["get", "patch", "update"],
                    "",
                    &["persistentvolumeclaims/status"],
                ),
                rule(&READ, "storage.k8s.io", &["csidrivers"]),
                rule(
                    &["create", "delete", "get", "patch", "update"],
                    "storage.k8s.io",
                    &["csinodes"],
                ),
                rule(&READ, "node.k8s.io", &["runtimeclasses"]),
            ],
        ),
        role(
            "system:node-proxier",
            &[],
            vec![
                rule(&LIST_WATCH, "", &["endpoints", "services"]),
                rule(&READ, "", &["nodes"]),
                events_rule(),
                rule(&LIST_WATCH, "discovery.k8s.io", &["endpointslices"]),
            ],
        ),
        role(
            "sluice:kube-controller-manager",
            &[],
            vec![
                in_groups(
                    &["patch"],
                    &["apps", "extensions"],
                    &["deployments", "deployments/status", "replicasets/status"],
                ),
                rule(&["patch"], "batch", &["jobs/status"]),
                rule(&["patch"], "", &["endpoints", "configmaps"]),
                rule(&["patch"], "discovery.k8s.io", &["endpointslices"]),
            ],
        ),
        role(
            "sluice:node",
            &[],
            vec![
                events(&["events.k8s.io"]),
                rule(&["get"], "", &["serviceaccounts"]),
            ],
        ),
        role(
            "sluice:node-proxier",
            &[],
            vec![rule(&["patch"], "", &["services", "services/status"])],
        ),
        role(
            INGRESS,
            &[],
            vec![
                rule(
                    &LIST_WATCH,
                    "",
                    &[
                        "configmaps",
                        "endpoints",
                        "nodes",
                        "pods",
                        "secrets",
                        "namespaces",
                    ],
                ),
                rule(&["get"], "", &["nodes"]),
                rule(&READ, "", &["services"]),
                rule(&READ, "networking.k8s.io", &["ingresses"]),
                events(&["", "events.k8s.io"]),
                rule(
                    &["patch", "update"],
                    "networking.k8s.io",
                    &["ingresses", "ingresses/status"],
                ),
                rule(&READ, "networking.k8s.io", &["ingressclasses"]),
                rule(&READ, "discovery.k8s.io", &["endpointslices"]),
            ],
        ),
        role(
            PROMETHEUS,
            &[],
            vec![
                rule(
                    &READ,
                    "",
                    &[
                        "nodes",
                        "nodes/proxy",
                        "nodes/metrics",
                        "services",
                        "endpoints",
                        "pods",
                        "ingresses",
                        "configmaps",
                    ],
                ),
                rule(
                    &READ,
                    "networking.k8s.io",
                    &["ingresses", "ingresses/status"],
                ),
                rule(&READ, "discovery.k8s.io", &["endpointslices"]),
                json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}),
            ],
        ),
    ];
    for name in CONTROLLERS {
        roles.push(role(
            &format!("system:controller:{name}"),
            &[],
            controller_rules(name),
        ));
    }
    roles
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

/// The bindings of the components' roles to their users.
pub fn cluster_role_bindings() -> Vec<Value> {
    let manager = user(KUBE_CONTROLLER_MANAGER);
    let mut bindings = vec![
        binding_to(KUBE_CONTROLLER_MANAGER, vec![manager.clone()]),
        binding_to(KUBE_SCHEDULER, vec![user(KUBE_SCHEDULER)]),
        binding_to("system:node", vec![group(NODES)]),
        binding_to("system:node-proxier", vec![user(KUBE_PROXY)]),
        binding_to("sluice:kube-controller-manager", vec![manager.clone()]),
        binding_to("sluice:node", vec![group(NODES)]),
        binding_to("sluice:node-proxier", vec![user(KUBE_PROXY)]),
        binding_to(INGRESS, vec![user(INGRESS)]),
        binding_to(PROMETHEUS, vec![user(PROMETHEUS)]),
    ];
    for name in CONTROLLERS {
        let account = json!({"kind": "ServiceAccount", "name": name, "namespace": "kube-system"});
        bindings.push(binding_to(
            &format!("system:controller:{name}"),
            vec![account, manager.clone()],
        ));
    }
    bindings
}
