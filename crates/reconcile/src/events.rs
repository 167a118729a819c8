//! Kubernetes events as every sluice controller records them: through kube-rs's [`Recorder`]
//! (events.k8s.io, folded into series by the API server's rules), with an `action` that
//! carries a digest of the message so only true repeats fold.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// A recorder reporting as `controller`.
pub fn recorder(client: &Client, controller: &str) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: controller.into(),
            instance: None,
        },
    )
}

/// Records an event on `reference`. A failure to record is logged at debug and otherwise
/// ignored: events are best effort, as in Kubernetes' own controllers.
pub async fn record(
    recorder: &Recorder,
    reference: &ObjectReference,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        action: action(reason, &note),
        note: Some(note),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, reference).await {
        tracing::debug!("recording event {reason}: {err}");
    }
}

/// The event's `action`: its reason and a digest of its message. kube-rs's Recorder folds
/// events into a series by reason and action, not message; with the digest, events with other
/// messages ("Scaled up … to 2" after "… to 1") stay separate, and only repeats fold.
pub fn action(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_message_gives_the_same_action() {
        let a = action("ScalingReplicaSet", "Scaled up ReplicaSet x from 0 to 1");
        assert_eq!(
            a,
            action("ScalingReplicaSet", "Scaled up ReplicaSet x from 0 to 1")
        );
        assert_ne!(
            a,
            action("ScalingReplicaSet", "Scaled up ReplicaSet x from 1 to 2")
        );
        assert!(a.starts_with("ScalingReplicaSet-"));
    }
}
