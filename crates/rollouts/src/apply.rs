//! The apply half of a reconcile: each planned action as API writes — ReplicaSets created
//! (with anti-affinity), scaled, renumbered, annotated, given their role's metadata, deleted;
//! Service selectors switched — then the events that go with them, with Argo's reasons, and
//! the status patch. It reads only the informer stores; every write is recorded in the
//! expectations so the next reconcile waits until the stores show it.

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{ObjectReference, Pod, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams},
};
use serde_json::{Map, Value, json};
use sluice_api::{
    AnalysisRun, Rollout,
    names::{annotation, event, label},
};
use sluice_reconcile::{
    events::{self, Recorder},
    expectations::Expectations,
};

use crate::{
    metrics::Metrics,
    model::{Action, Event},
    observe::{Observation, Stores},
    replicasets,
    router::RouteWrite,
    runs,
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
    /// The stores (pods, to give them their role's metadata).
    pub stores: &'a Stores,
    /// The Rollout.
    pub rollout: &'a Rollout,
}

/// What carrying out actions did that the reconcile needs to know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Pods evicted.
    pub evicted: i32,
}

/// The key the expectations of a Rollout's reconcile are kept under.
pub fn owner_key(rollout: &Rollout) -> String {
    format!(
        "{}/{}",
        rollout.namespace().unwrap_or_default(),
        rollout.name_any()
    )
}

impl Target<'_> {
    fn owner(&self) -> String {
        owner_key(self.rollout)
    }

    fn namespace(&self) -> String {
        self.rollout.namespace().unwrap_or_default()
    }

    /// Records an event on the Rollout.
    pub async fn record(&self, warning: bool, reason: &str, note: String) {
        self.metrics.event(warning, reason);
        let reference: ObjectReference = self.rollout.object_ref(&());
        events::record(self.recorder, &reference, warning, reason, note).await;
    }

    /// Carries out `actions` in order, then records `events`; the first failure stops them
    /// (the reconcile is retried from fresh state).
    pub async fn apply(
        &self,
        actions: &[Action],
        plan_events: &[Event],
        observation: &Observation<'_>,
    ) -> Result<Applied, kube::Error> {
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace());
        let owner = self.owner();
        let mut applied = Applied::default();
        for action in actions {
            match action {
                Action::CreateReplicaSet { revision, avoid } => {
                    let hash = &observation.observed.hash;
                    let mut desired = replicasets::desired(
                        &observation.value,
                        &observation.template,
                        hash,
                        *revision,
                    );
                    if let Some(avoid) = avoid {
                        replicasets::add_anti_affinity(
                            &mut desired["spec"]["template"],
                            avoid.preferred,
                            &avoid.hash,
                        );
                    }
                    let desired: ReplicaSet =
                        serde_json::from_value(desired).map_err(kube::Error::SerdeError)?;
                    let name = desired.name_any();
                    match sets.create(&PostParams::default(), &desired).await {
                        Ok(created) => {
                            self.expectations.wrote(&owner, &created);
                            let note = format!("Created ReplicaSet {name} (revision {revision})");
                            self.record(false, event::NEW_REPLICA_SET_CREATED, note)
                                .await;
                        }
                        // Ours, not yet in the store — or another owner's under our name,
                        // which the next observation finds (a hash collision).
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::Scale {
                    name,
                    revision,
                    from,
                    replicas,
                } => {
                    let desired = self.rollout.spec.replicas().to_string();
                    let patch = json!({"metadata": {"annotations": {annotation::DESIRED_REPLICAS: desired}},
                        "spec": {"replicas": replicas}});
                    let written = sets
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&owner, &written);
                    let direction = if from > replicas { "down" } else { "up" };
                    let note = format!(
                        "Scaled {direction} ReplicaSet {name} (revision {revision}) from {from} to {replicas}"
                    );
                    self.record(false, event::SCALING_REPLICA_SET, note).await;
                }
                Action::ScaleDownDeadline { name, at } => {
                    let value =
                        at.map(|t| Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                    let patch = json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: value}}});
                    let written = sets
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&owner, &written);
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
                    self.expectations.wrote(&owner, &written);
                }
                Action::DeleteReplicaSet { name } => {
                    let key = ("ReplicaSet".to_owned(), self.namespace(), name.clone());
                    self.expectations.deleted(&owner, key);
                    match sets.delete(name, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::EphemeralMetadata {
                    name,
                    hash,
                    before,
                    after,
                } => {
                    self.metadata(&sets, name, hash, before.as_ref(), after.as_ref())
                        .await?;
                }
                Action::CreateRun(run) => {
                    let runs_api: Api<AnalysisRun> =
                        Api::namespaced(self.client.clone(), &self.namespace());
                    let desired =
                        runs::desired(run, self.rollout).map_err(kube::Error::SerdeError)?;
                    match runs_api.create(&PostParams::default(), &desired).await {
                        Ok(created) => self.expectations.wrote(&owner, &created),
                        // Ours, created by a reconcile whose status write was lost: the gate
                        // follows it by name. Another owner's: the next reconcile sees it
                        // and picks the next free name.
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::TerminateRun { name } => {
                    let runs_api: Api<AnalysisRun> =
                        Api::namespaced(self.client.clone(), &self.namespace());
                    let patch = json!({"spec": {"terminate": true}});
                    match runs_api
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                    {
                        Ok(written) => self.expectations.wrote(&owner, &written),
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::DeleteRun { name } => {
                    let runs_api: Api<AnalysisRun> =
                        Api::namespaced(self.client.clone(), &self.namespace());
                    let key = ("AnalysisRun".to_owned(), self.namespace(), name.clone());
                    self.expectations.deleted(&owner, key);
                    match runs_api.delete(name, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(err) => return Err(err),
                    }
                }
                Action::Route(write) => self.route(write).await?,
                Action::SwitchService { service, to, .. } => {
                    let services: Api<Service> =
                        Api::namespaced(self.client.clone(), &self.namespace());
                    let patch = json!({"metadata": {"annotations": {annotation::MANAGED_BY_ROLLOUTS: self.rollout.name_any()}},
                        "spec": {"selector": {label::POD_TEMPLATE_HASH: to}}});
                    let written = services
                        .patch(service, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&owner, &written);
                }
                Action::Evict { candidates, budget } => {
                    applied.evicted += self.evict(candidates, *budget).await?;
                }
                Action::ScaleWorkload { name, replicas } => {
                    let deployments: Api<Deployment> =
                        Api::namespaced(self.client.clone(), &self.namespace());
                    tracing::info!("Scaling deployment {name} to {replicas} replicas");
                    let patch = json!({"spec": {"replicas": replicas}});
                    let written = deployments
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.expectations.wrote(&owner, &written);
                }
            }
        }
        for event in plan_events {
            self.record(event.warning, event.reason, event.message.clone())
                .await;
        }
        Ok(applied)
    }

    /// Evicts `candidates` in order until `budget` evictions succeeded, as Argo's pod
    /// restarter: a pod a PodDisruptionBudget protects (429) is skipped, one already gone
    /// too. Each evicted pod is expected in the store as terminating (or gone). The number
    /// evicted.
    async fn evict(&self, candidates: &[String], budget: i32) -> Result<i32, kube::Error> {
        let namespace = self.namespace();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let mut evicted = 0;
        for name in candidates {
            if evicted >= budget {
                break;
            }
            match pods.evict(name, &EvictParams::default()).await {
                Ok(_) => {
                    evicted += 1;
                    tracing::info!(
                        "rollout {}: restarting Pod {name} that's older than restartAt Time",
                        self.owner()
                    );
                    match pods.get_opt(name).await? {
                        Some(pod) => self.expectations.terminating(&self.owner(), &pod),
                        None => {
                            let key = ("Pod".to_owned(), namespace.clone(), name.clone());
                            self.expectations.deleted(&self.owner(), key);
                        }
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 429 => {
                    tracing::warn!("rollout {}: pod {name}: {}", self.owner(), s.message);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(evicted)
    }

    /// Carries out a router's write, with its event.
    async fn route(&self, write: &RouteWrite) -> Result<(), kube::Error> {
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), &self.namespace());
        let (reason, note) = match write {
            RouteWrite::CreateIngress { object, event, .. } => {
                let desired: Ingress =
                    serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
                match ingresses.create(&PostParams::default(), &desired).await {
                    Ok(created) => self.expectations.wrote(&self.owner(), &created),
                    // Created by a reconcile whose view was stale: patched at the next one.
                    Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                    Err(err) => return Err(err),
                }
                event
            }
            RouteWrite::PatchIngress { name, patch, event } => {
                let written = ingresses
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                self.expectations.wrote(&self.owner(), &written);
                event
            }
        };
        self.record(false, reason, note.clone()).await;
        Ok(())
    }

    /// Writes the status patch (`/status`, a merge patch of the changed fields).
    pub async fn write_status(&self, patch: Value) -> Result<(), kube::Error> {
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), &self.namespace());
        let patch = json!({"status": patch});
        let written = api
            .patch_status(
                &self.rollout.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        self.expectations.wrote(&self.owner(), &written);
        Ok(())
    }

    /// Sets a ReplicaSet's role metadata: on its template first (pods it creates from now on
    /// carry it), then on its live pods (from the pod store), and only then records it in the
    /// ReplicaSet's annotation — so a failure part-way leaves the record unchanged and the next
    /// reconcile does it again.
    async fn metadata(
        &self,
        sets: &Api<ReplicaSet>,
        name: &str,
        hash: &str,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), kube::Error> {
        let overlay = overlay(before, after);
        let template = json!({"spec": {"template": {"metadata": overlay}}});
        sets.patch(name, &PatchParams::default(), &Patch::Merge(template))
            .await?;
        let namespace = self.namespace();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let live = self.stores.pods.state().into_iter().filter(|pod| {
            pod.namespace().as_deref() == Some(namespace.as_str())
                && pod
                    .labels()
                    .get(label::POD_TEMPLATE_HASH)
                    .map(String::as_str)
                    == Some(hash)
        });
        for pod in live {
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
        let recorded = after.map(Value::to_string);
        let record =
            json!({"metadata": {"annotations": {annotation::EPHEMERAL_METADATA: recorded}}});
        let written = sets
            .patch(name, &PatchParams::default(), &Patch::Merge(record))
            .await?;
        self.expectations.wrote(&self.owner(), &written);
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
