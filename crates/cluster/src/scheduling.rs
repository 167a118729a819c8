//! Whether a pod fits the one node, as kube-scheduler's filters decide it: the node takes new
//! pods (`kubectl cordon` makes it unschedulable), the pod tolerates the node's `NoSchedule` and
//! `NoExecute` taints (`kubectl taint`), and its `nodeSelector` matches the node's labels. A
//! pod that does not fit stays Pending with kube-scheduler's message until it does. Pure.

use serde_json::Value;

/// Why a pod does not fit the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// The node is cordoned.
    Unschedulable,
    /// A taint the pod does not tolerate (`key=value:Effect`, as the scheduler prints it).
    Taint(String),
    /// The node's labels do not match the pod's `nodeSelector`.
    Selector,
}

impl Unfit {
    /// kube-scheduler's `FailedScheduling` message for a one-node cluster.
    pub fn message(&self) -> String {
        let why = match self {
            Self::Unschedulable => "1 node(s) were unschedulable".to_owned(),
            Self::Taint(taint) => format!("1 node(s) had untolerated taint {{{taint}}}"),
            Self::Selector => "1 node(s) didn't match Pod's node affinity/selector".to_owned(),
        };
        format!(
            "0/1 nodes are available: {why}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
    }
}

/// The taint a cordoned node carries.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

fn tolerates(toleration: &Value, key: &str, value: &str, effect: &str) -> bool {
    let text = |field: &str| toleration[field].as_str().unwrap_or_default();
    let effect_ok = text("effect").is_empty() || text("effect") == effect;
    let matches = match text("operator") {
        "Exists" => text("key").is_empty() || text("key") == key,
        _ => text("key") == key && text("value") == value,
    };
    effect_ok && matches
}

fn tolerated(pod_spec: &Value, key: &str, value: &str, effect: &str) -> bool {
    pod_spec["tolerations"]
        .as_array()
        .is_some_and(|list| list.iter().any(|t| tolerates(t, key, value, effect)))
}

/// Whether `pod_spec` may run on `node`.
///
/// # Errors
/// The first filter that fails.
pub fn fits(node: &Value, pod_spec: &Value) -> Result<(), Unfit> {
    if node["spec"]["unschedulable"] == true
        && !tolerated(pod_spec, UNSCHEDULABLE_TAINT, "", "NoSchedule")
    {
        return Err(Unfit::Unschedulable);
    }
    for taint in node["spec"]["taints"].as_array().into_iter().flatten() {
        let text = |field: &str| taint[field].as_str().unwrap_or_default();
        let (key, value, effect) = (text("key"), text("value"), text("effect"));
        if key == UNSCHEDULABLE_TAINT || !matches!(effect, "NoSchedule" | "NoExecute") {
            continue;
        }
        if !tolerated(pod_spec, key, value, effect) {
            let shown = if value.is_empty() {
                format!("{key}: ")
            } else {
                format!("{key}: {value}")
            };
            return Err(Unfit::Taint(shown));
        }
    }
    if let Some(selector) = pod_spec["nodeSelector"].as_object() {
        let labels = &node["metadata"]["labels"];
        if selector.iter().any(|(k, v)| &labels[k] != v) {
            return Err(Unfit::Selector);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cordons_taints_and_selectors_keep_pods_off() {
        let node = json!({"metadata": {"labels": {"kubernetes.io/os": "linux"}}, "spec": {}});
        let plain = json!({"containers": [{"name": "c"}]});
        assert_eq!(fits(&node, &plain), Ok(()));

        let cordoned = json!({"metadata": {}, "spec": {"unschedulable": true,
            "taints": [{"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}]}});
        assert_eq!(fits(&cordoned, &plain), Err(Unfit::Unschedulable));
        let daemon = json!({"tolerations": [{"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]});
        assert_eq!(fits(&cordoned, &daemon), Ok(()));

        let tainted = json!({"metadata": {}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}});
        assert_eq!(
            fits(&tainted, &plain),
            Err(Unfit::Taint("dedicated: gpu".into()))
        );
        let equal =
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]});
        assert_eq!(fits(&tainted, &equal), Ok(()));
        let wrong = json!({"tolerations": [{"key": "dedicated", "value": "cpu"}]});
        assert!(fits(&tainted, &wrong).is_err());
        let everything = json!({"tolerations": [{"operator": "Exists"}]});
        assert_eq!(fits(&tainted, &everything), Ok(()));

        let windows = json!({"nodeSelector": {"kubernetes.io/os": "windows"}});
        assert_eq!(fits(&node, &windows), Err(Unfit::Selector));
        assert!(
            Unfit::Unschedulable
                .message()
                .contains("were unschedulable")
        );
    }
}
