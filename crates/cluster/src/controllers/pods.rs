//! What controllers need to know about pods: ready, available, active, and the order a
//! ReplicaSet deletes them in.

use std::cmp::Reverse;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::core::v1::{Pod, PodTemplateSpec},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use serde_json::{Value, json};
use sluice_api::Preserved;

/// A new pod from a template kept as written (so fields newer than sluice's Kubernetes types
/// survive), named `<owner>-xxxxx`, controlled by `owner`, with `labels` added.
pub fn from_template(
    template: Option<&Preserved<PodTemplateSpec>>,
    owner_name: &str,
    namespace: &str,
    owner: Option<OwnerReference>,
    labels: &[(&str, &str)],
) -> Value {
    let template = template.map_or_else(|| json!({}), |t| Value::Object(t.as_object().clone()));
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["generateName"] = json!(format!("{owner_name}-"));
    metadata["namespace"] = json!(namespace);
    let owner = owner.map(|mut r| {
        r.block_owner_deletion = Some(true);
        r
    });
    metadata["ownerReferences"] = json!([owner]);
    for (key, value) in labels {
        metadata["labels"][*key] = json!(value);
    }
    if let Some(m) = metadata.as_object_mut() {
        for field in ["name", "uid", "resourceVersion", "creationTimestamp"] {
            m.remove(field);
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// Whether the pod's Ready condition is true, and since when.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (condition.status == "True").then(|| {
        condition
            .last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
    })
}

/// Ready.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`. Returns `Err(when)` for a ready pod that will
/// become available later.
pub fn availability(
    pod: &Pod,
    min_ready_seconds: i64,
    now: Timestamp,
) -> Result<(), Option<Timestamp>> {
    let Some(since) = ready_since(pod) else {
        return Err(None);
    };
    let available_at = since + SignedDuration::from_secs(min_ready_seconds.max(0));
    if min_ready_seconds <= 0 || now >= available_at {
        Ok(())
    } else {
        Err(Some(available_at))
    }
}

/// Not terminating and not finished.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

/// The pods in `namespace` whose controller is `owner_uid`.
pub fn owned_by<'a>(
    pods: &'a [std::sync::Arc<Pod>],
    namespace: &str,
    owner_uid: &str,
) -> Vec<&'a Pod> {
    pods.iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(namespace) && controlled_by(p, owner_uid)
        })
        .collect()
}

/// Whether `owner_uid` is the pod's controller.
pub fn controlled_by(pod: &Pod, owner_uid: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

/// Sorts pods in the order a ReplicaSet deletes them: unscheduled, then pending, then not
/// ready, then ready for the shortest time, then most restarted, then newest.
pub fn sort_for_deletion(pods: &mut [&Pod]) {
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let restarts = |p: &Pod| -> i32 {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
    };
    pods.sort_by_key(|p| {
        let scheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty());
        let ready = ready_since(p);
        (
            scheduled,
            phase_rank(p),
            ready.is_some(),
            Reverse(ready),
            Reverse(restarts(p)),
            Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        )
    });
}
