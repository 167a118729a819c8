//! Kubernetes events as every sluice controller records them: `events.k8s.io/v1` Events, a
//! repeat of the same event within six minutes folded into the first one's `series` (count and
//! last time), as client-go's and kube-rs's recorders fold them, with an `action` that carries
//! a digest of the message so only true repeats fold.
//!
//! sluice keeps its own [`Recorder`] rather than kube-rs's: that one caches every Event it sent
//! (the whole object) for six minutes and sweeps the whole cache on every publish — at 10,000
//! Rollouts an update of all of them keeps ~100,000 Events in memory and each publish scans
//! them all. This one keeps, per series, a 64-bit digest of the event's identity, the Event's
//! name and namespace, its count and last time, and sweeps at most once a minute.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// How long a repeat folds into an earlier event (client-go's and kube-rs's six minutes).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How often the series past their time are swept out.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// Whether an event reports something normal or a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Normal operation.
    Normal,
    /// A problem.
    Warning,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// Normal or Warning.
    pub type_: EventType,
    /// Why (`ScalingReplicaSet`, `RolloutAborted`, …).
    pub reason: String,
    /// What the controller did; with [`action`] a digest of the message.
    pub action: String,
    /// The human-readable message.
    pub note: Option<String>,
    /// Another object the event concerns.
    pub secondary: Option<ObjectReference>,
}

/// Who records: the controller's name and, where several replicas run, the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `reportingController`.
    pub controller: String,
    /// `reportingInstance` (the controller's name when unset).
    pub instance: Option<String>,
}

/// The open series: what a repeat needs to find and bump its Event.
#[derive(Default)]
struct Series {
    open: HashMap<u64, Open>,
    swept: Option<Timestamp>,
}

impl Series {
    /// The Event `key` continues, its count bumped, if one is open at `now`; sweeps the
    /// closed ones at most once a minute.
    fn continued(&mut self, key: u64, now: Timestamp) -> Option<(String, String, i32)> {
        if self.swept.is_none_or(|at| at + SWEEP_EVERY <= now) {
            self.open.retain(|_, open| open.last + SERIES_TTL > now);
            self.swept = Some(now);
        }
        let open = self.open.get_mut(&key)?;
        if open.last + SERIES_TTL <= now {
            return None;
        }
        open.count += 1;
        open.last = now;
        Some((open.namespace.clone(), open.name.clone(), open.count))
    }

    /// A new Event `namespace/name` created at `now` opens the series `key`.
    fn opened(&mut self, key: u64, namespace: String, name: String, now: Timestamp) {
        let open = Open {
            namespace,
            name,
            count: 1,
            last: now,
        };
        self.open.insert(key, open);
    }
}

/// An Event that a repeat within [`SERIES_TTL`] folds into.
struct Open {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Records events for a controller; cheap to clone (the open series are shared).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    series: Arc<Mutex<Series>>,
}

impl Recorder {
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            series: Arc::default(),
        }
    }

    /// How many series are open (for tests and benchmarks).
    pub fn open_series(&self) -> usize {
        self.series.lock().expect("series lock").open.len()
    }

    /// The identity a repeat shares: type, reason, action, reporter, the object and the
    /// secondary object.
    fn key(&self, event: &Event, regarding: &ObjectReference) -> u64 {
        let mut hasher = DefaultHasher::new();
        event.type_.hash(&mut hasher);
        event.reason.hash(&mut hasher);
        event.action.hash(&mut hasher);
        self.reporter.controller.hash(&mut hasher);
        self.reporter.instance.hash(&mut hasher);
        for reference in std::iter::once(regarding).chain(event.secondary.as_ref()) {
            reference.api_version.hash(&mut hasher);
            reference.kind.hash(&mut hasher);
            reference.namespace.hash(&mut hasher);
            reference.name.hash(&mut hasher);
            reference.uid.hash(&mut hasher);
            reference.field_path.hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Publishes `event` about `regarding`: a new Event, or the series of an equal one within
    /// six minutes bumped. Cluster-scoped objects' events go to `default`, as Kubernetes'.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.key(event, regarding);
        let continued = self.series.lock().expect("series lock").continued(key, now);
        if let Some((namespace, name, count)) = continued {
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            return events
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(drop);
        }
        let created = self.event(event, regarding, now);
        let namespace = created.metadata.namespace.clone().unwrap_or_default();
        let name = created.metadata.name.clone().unwrap_or_default();
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &created).await?;
        self.series
            .lock()
            .expect("series lock")
            .opened(key, namespace, name, now);
        Ok(())
    }

    /// The Event to create, named `<object>.<nanoseconds in hex>` as client-go names them.
    fn event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let object = regarding.name.as_ref().unwrap_or(&self.reporter.controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace),
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..K8sEvent::default()
        }
    }
}

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

/// The event's `action`: its reason and a digest of its message. Events fold into a series by
/// reason and action, not message; with the digest, events with other messages ("Scaled up …
/// to 2" after "… to 1") stay separate, and only repeats fold.
pub fn action(reason: &str, note: &str) -> String {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_repeat_within_six_minutes_continues_the_series() {
        let mut series = Series::default();
        assert_eq!(series.continued(7, at(0)), None);
        series.opened(7, "ns".into(), "r.1".into(), at(0));
        let bumped = series.continued(7, at(300));
        assert_eq!(bumped, Some(("ns".into(), "r.1".into(), 2)));
        // Six minutes after the last repeat, not the first.
        assert_eq!(series.continued(7, at(659)).map(|s| s.2), Some(3));
        assert_eq!(series.continued(8, at(659)), None);
    }

    #[test]
    fn a_series_six_minutes_old_is_closed_and_swept() {
        let mut series = Series::default();
        series.opened(1, "ns".into(), "a.1".into(), at(0));
        series.opened(2, "ns".into(), "b.1".into(), at(200));
        assert_eq!(series.continued(1, at(360)), None);
        // The sweep ran: the closed series is gone, the open one stays.
        assert_eq!(series.open.len(), 1);
        assert!(series.continued(2, at(400)).is_some());
    }

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
