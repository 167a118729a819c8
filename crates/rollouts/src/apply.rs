//! The apply half of a reconcile: each planned action as API writes — ReplicaSets created
//! (with anti-affinity), scaled, renumbered, annotated, given their role's metadata, deleted;
//! Service selectors switched — and the events that go with them, with Argo's reasons.

use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ObjectReference, Pod, Service},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::events::{Event, EventType, Recorder},
};
use serde_json::{Map, Value, json};
use sluice_api::{
    Rollout,
    names::{annotation, label},
};

use crate::{
    blue_green::{Action, ReplicaSetState},
    expectations::Expectations,
    metrics::Metrics,
    observe::Observation,
    replicasets,
};

/// Where the actions go.
pub struct Target<'a> {
    /// The API.
    pub client: &'a Client,
    /// Events.
    pub recorder: &'a Recorder,
    /// Counters.
    pub metrics: &'a Metrics,
    /// Writes not yet seen in the stores.
    pub expectations: &'a Expectations,
    /// The Rollout.
    pub rollout: &'a Rollout,
}

/// What applying found that the status must carry.
#[derive(Debug, Default)]
pub struct Applied {
    /// A ReplicaSet of the planned name exists and is not this template's: a hash collision
    /// (`status.collisionCount` goes up, giving the template another hash).
    pub collision: bool,
}

impl Target<'_> {
    /// Records an event on the Rollout.
    pub async fn record(&self, warning: bool, reason: &str, note: String) {
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
        self.metrics.event(warning, reason);
        let reference: ObjectReference = self.rollout.object_ref(&());
        if let Err(err) = self.recorder.publish(&event, &reference).await {
            tracing::debug!("recording event {reason}: {err}");
        }
    }

    /// Carries out `actions` in order; the first failure stops them (the reconcile is retried
    /// from fresh state).
    pub async fn apply(
        &self,
        actions: &[Action],
        observation: &Observation<'_>,
    ) -> Result<Applied, kube::Error> {
        let namespace = self.rollout.namespace().unwrap_or_default();
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &namespace);
        let states = &observation.observed.replica_sets;
        let mut applied = Applied::default();
        for action in actions {
            match action {
                Action::CreateReplicaSet { revision, avoid } => {
                    applied.collision |= self.create(&sets, observation, *revision, avoid).await?;
                }
                Action::Scale { name, replicas } => {
                    let desired = self.rollout.spec.replicas().to_string();
                    let patch = json!({"metadata": {"annotations": {annotation::DESIRED_REPLICAS: desired}},
                        "spec": {"replicas": replicas}});
                    let written = sets
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&written);
                    let before = states.iter().find(|rs| &rs.name == name);
                    let from = before.map_or(0, |rs| rs.replicas);
                    let direction = if from > *replicas { "down" } else { "up" };
                    let revision = before.map_or(0, |rs| rs.revision);
                    let note = format!(
                        "Scaled {direction} ReplicaSet {name} (revision {revision}) from {from} to {replicas}"
                    );
                    self.record(false, "ScalingReplicaSet", note).await;
                }
                Action::ScaleDownDeadline { name, at } => {
                    let value =
                        at.map(|t| Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                    let patch = json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: value}}});
                    let written = sets
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&written);
                }
                Action::Renumber {
                    name,
                    revision,
                    previous,
                } => {
                    let history = observation
                        .owned
                        .iter()
                        .find(|rs| &rs.name_any() == name)
                        .and_then(|rs| rs.annotations().get(annotation::REVISION_HISTORY).cloned())
                        .map_or_else(|| previous.to_string(), |h| format!("{h},{previous}"));
                    let patch = json!({"metadata": {"annotations": {
                        annotation::REVISION: revision.to_string(),
                        annotation::REVISION_HISTORY: history,
                    }}});
                    let written = sets
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&written);
                }
                Action::DeleteReplicaSet { name } => {
                    self.expectations.forget::<ReplicaSet>(&namespace, name);
                    match sets.delete(name, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::EphemeralMetadata {
                    name,
                    before,
                    after,
                } => {
                    let state = states.iter().find(|rs| &rs.name == name);
                    self.metadata(&sets, name, state, before.as_ref(), after.as_ref())
                        .await?;
                }
                Action::SwitchService { service, to, .. } => {
                    let services: Api<Service> = Api::namespaced(self.client.clone(), &namespace);
                    let patch = json!({"metadata": {"annotations": {annotation::MANAGED_BY_ROLLOUTS: self.rollout.name_any()}},
                        "spec": {"selector": {label::POD_TEMPLATE_HASH: to}}});
                    let written = services
                        .patch(service, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&written);
                }
            }
        }
        Ok(applied)
    }

    /// Creates the current template's ReplicaSet; `Ok(true)` on a hash collision.
    async fn create(
        &self,
        sets: &Api<ReplicaSet>,
        observation: &Observation<'_>,
        revision: i64,
        avoid: &Option<String>,
    ) -> Result<bool, kube::Error> {
        let hash = &observation.observed.hash;
        let mut desired =
            replicasets::desired(&observation.value, &observation.template, hash, revision);
        let anti = observation.observed.strategy.anti_affinity.as_ref();
        if let (Some(anti), Some(avoid)) = (anti, avoid) {
            let preferred = anti
                .preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .map(|p| p.weight);
            replicasets::add_anti_affinity(&mut desired["spec"]["template"], preferred, avoid);
        }
        let desired: ReplicaSet =
            serde_json::from_value(desired).map_err(kube::Error::SerdeError)?;
        let name = desired.name_any();
        match sets.create(&PostParams::default(), &desired).await {
            Ok(created) => {
                self.expectations.wrote(&created);
                let note = format!("Created ReplicaSet {name} (revision {revision})");
                self.record(false, "NewReplicaSetCreated", note).await;
                Ok(false)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours, not yet in the store — or someone else's under our name.
                let existing = sets.get(&name).await?;
                let uid = self.rollout.uid();
                let ours = existing
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref());
                Ok(!ours)
            }
            Err(err) => Err(err),
        }
    }

    /// Sets a ReplicaSet's role metadata on its template and on its live pods.
    /// Sets a ReplicaSet's role metadata: on its template first (pods it creates from now on
    /// carry it), then on its live pods, and only then records it in the ReplicaSet's
    /// annotation — so a failure part-way leaves the record unchanged and the next reconcile
    /// does it again.
    async fn metadata(
        &self,
        sets: &Api<ReplicaSet>,
        name: &str,
        state: Option<&ReplicaSetState>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), kube::Error> {
        let overlay = overlay(before, after);
        let template = json!({"spec": {"template": {"metadata": overlay}}});
        sets.patch(name, &PatchParams::default(), &Patch::Merge(template))
            .await?;
        if let Some(state) = state {
            let pods: Api<Pod> = Api::namespaced(
                self.client.clone(),
                &self.rollout.namespace().unwrap_or_default(),
            );
            let selector = format!("{}={}", label::POD_TEMPLATE_HASH, state.hash);
            for pod in pods.list(&ListParams::default().labels(&selector)).await? {
                let patch = Patch::Merge(json!({"metadata": overlay}));
                match pods
                    .patch(&pod.name_any(), &PatchParams::default(), &patch)
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(err) => return Err(err),
                }
            }
        }
        let recorded = after.map(Value::to_string);
        let record =
            json!({"metadata": {"annotations": {annotation::EPHEMERAL_METADATA: recorded}}});
        let written = sets
            .patch(name, &PatchParams::default(), &Patch::Merge(record))
            .await?;
        self.expectations.wrote(&written);
        Ok(())
    }
}

/// The merge patch of pod metadata that takes `before`'s injected labels and annotations to
/// `after`'s: keys no longer wanted become `null`.
fn overlay(before: Option<&Value>, after: Option<&Value>) -> Value {
    let mut out = json!({"labels": {}, "annotations": {}});
    for field in ["labels", "annotations"] {
        let mut map = Map::new();
        if let Some(old) = before.and_then(|b| b[field].as_object()) {
            for key in old.keys() {
                map.insert(key.clone(), Value::Null);
            }
        }
        if let Some(new) = after.and_then(|a| a[field].as_object()) {
            for (key, value) in new {
                map.insert(key.clone(), value.clone());
            }
        }
        out[field] = Value::Object(map);
    }
    out
}

/// The event's `action`: its reason and a digest of its message. kube-rs's Recorder folds
/// events into a series by reason and action, not message; with the digest, events with other
/// messages ("Scaled up … to 2" after "… to 1") stay separate, and only repeats fold.
fn action(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_overlay_removes_what_is_no_longer_injected() {
        let before = json!({"labels": {"role": "preview", "old": "x"}});
        let after = json!({"labels": {"role": "active"}, "annotations": {"a": "1"}});
        assert_eq!(
            overlay(Some(&before), Some(&after)),
            json!({"labels": {"role": "active", "old": null}, "annotations": {"a": "1"}})
        );
        assert_eq!(
            overlay(Some(&after), None),
            json!({"labels": {"role": null}, "annotations": {"a": null}})
        );
    }
}
