//! The kinds a Kubernetes cluster serves out of the box that sluice's users and controllers touch.

use std::collections::BTreeMap;

use super::{Persistence, ResourceType, ScalePaths};
use crate::store::ResourceKey;

struct Builtin {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    persistence: Persistence,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        resource,
        kind,
        namespaced,
        short_names: &[],
        status: false,
        scale: false,
        generation: false,
        persistence: Persistence::Stored,
    }
}

impl Builtin {
    const fn short(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }

    /// Has a status subresource.
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }

    /// Has a scale subresource (and a status one).
    const fn scale(mut self) -> Self {
        self.scale = true;
        self.status = true;
        self
    }

    /// Tracks spec changes in `metadata.generation`.
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }

    /// Create-only, computed per request, never stored.
    const fn review(mut self) -> Self {
        self.persistence = Persistence::Review;
        self
    }

    /// Read-only, computed per request from what the kubelet measures.
    const fn metrics(mut self) -> Self {
        self.persistence = Persistence::Metrics;
        self
    }
}

const BUILTINS: &[Builtin] = &[
    kind("", "v1", "namespaces", "Namespace", false)
        .short(&["ns"])
        .status(),
    kind("", "v1", "nodes", "Node", false)
        .short(&["no"])
        .status(),
    kind("", "v1", "pods", "Pod", true).short(&["po"]).status(),
    kind("", "v1", "services", "Service", true)
        .short(&["svc"])
        .status(),
    kind("", "v1", "endpoints", "Endpoints", true).short(&["ep"]),
    kind("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
    kind("", "v1", "secrets", "Secret", true),
    kind("", "v1", "serviceaccounts", "ServiceAccount", true).short(&["sa"]),
    kind("", "v1", "events", "Event", true).short(&["ev"]),
    kind("apps", "v1", "replicasets", "ReplicaSet", true)
        .short(&["rs"])
        .scale()
        .generation(),
    kind("apps", "v1", "deployments", "Deployment", true)
        .short(&["deploy"])
        .scale()
        .generation(),
    kind("batch", "v1", "jobs", "Job", true)
        .status()
        .generation(),
    kind("networking.k8s.io", "v1", "ingresses", "Ingress", true)
        .short(&["ing"])
        .status()
        .generation(),
    kind(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
    ),
    kind(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
    ),
    kind("coordination.k8s.io", "v1", "leases", "Lease", true),
    kind("", "v1", "podtemplates", "PodTemplate", true),
    kind(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    )
    .short(&["pdb"])
    .status()
    .generation(),
    // Stored and served so a CD repository applies; nothing acts on them.
    kind(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    )
    .short(&["pvc"])
    .status(),
    kind("apps", "v1", "statefulsets", "StatefulSet", true)
        .short(&["sts"])
        .scale()
        .generation(),
    kind("apps", "v1", "daemonsets", "DaemonSet", true)
        .short(&["ds"])
        .status()
        .generation(),
    kind("batch", "v1", "cronjobs", "CronJob", true)
        .short(&["cj"])
        .status()
        .generation(),
    kind("", "v1", "resourcequotas", "ResourceQuota", true)
        .short(&["quota"])
        .status(),
    kind("", "v1", "limitranges", "LimitRange", true).short(&["limits"]),
    kind("", "v1", "persistentvolumes", "PersistentVolume", false)
        .short(&["pv"])
        .status(),
    kind(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
    )
    .short(&["netpol"])
    .generation(),
    kind(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
    )
    .short(&["pc"]),
    kind(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
    )
    .short(&["sc"]),
    kind(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
    )
    .short(&["hpa"])
    .status(),
    kind("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    kind(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
    ),
    kind(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
    )
    .short(&["rc"])
    .scale()
    .generation(),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
    )
    .generation(),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
    )
    .generation(),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        false,
    )
    .status()
    .generation(),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        false,
    )
    .generation(),
    kind(
        "apiregistration.k8s.io",
        "v1",
        "apiservices",
        "APIService",
        false,
    )
    .status(),
    kind(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
    )
    .short(&["csr"])
    .status(),
    kind("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", false),
    kind("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false),
    kind("storage.k8s.io", "v1", "csinodes", "CSINode", false),
    kind(
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        "VolumeAttachment",
        false,
    )
    .status(),
    // Reviews: `kubectl auth can-i` and `auth whoami`, and TokenReview.
    kind(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    )
    .review(),
    kind(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    )
    .review(),
    kind(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    )
    .review(),
    kind(
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    )
    .review(),
    kind(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    )
    .review(),
    kind(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        false,
    )
    .review(),
    // The resource metrics API metrics-server would serve (`kubectl top`).
    kind("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", false).metrics(),
    kind("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", true).metrics(),
    kind("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
    kind(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    )
    .short(&["crd", "crds"])
    .status()
    .generation(),
];

/// The built-in kinds.
pub(super) fn types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| {
            // Both views of events live in core's storage.
            let storage = if b.resource == "events" {
                ResourceKey::new("", "events")
            } else {
                ResourceKey::new(b.group, b.resource)
            };
            ResourceType {
                group: b.group.into(),
                versions: vec![b.version.into()],
                resource: b.resource.into(),
                singular: b.kind.to_lowercase(),
                kind: b.kind.into(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: if matches!(
                    (b.group, b.resource),
                    ("", "pods" | "services" | "replicationcontrollers")
                        | (
                            "apps",
                            "replicasets" | "deployments" | "statefulsets" | "daemonsets"
                        )
                        | ("batch", "jobs" | "cronjobs")
                        | ("autoscaling", "horizontalpodautoscalers")
                ) {
                    vec!["all".into()]
                } else {
                    Vec::new()
                },
                status: b.status,
                scale: b.scale.then(|| ScalePaths {
                    spec_replicas: ".spec.replicas".into(),
                    status_replicas: ".status.replicas".into(),
                    label_selector: None,
                }),
                generation: b.generation,
                custom: false,
                persistence: b.persistence,
                storage,
                schemas: BTreeMap::new(),
                columns: Vec::new(),
            }
        })
        .collect()
}
