//! The observe half of a reconcile: what the blue-green planner reads, built from the
//! controller's informer stores alone (ReplicaSets, Services, EndpointSlices) and the Rollout
//! itself — no API call, so a reconcile costs memory lookups and the writes it decides on.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::Value;
use sluice_api::{
    BlueGreenStrategy, ConditionStatus, PauseReason, Rollout, RolloutStatus,
    names::{annotation, label},
};

use crate::{
    blue_green::{
        Deadline, LastProgress, Observed, Progress, ReplicaSetState, ServiceState, TIMED_OUT,
    },
    hash,
    index::{Index, Indexes},
    replicasets,
};

/// The informer stores a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    /// Every ReplicaSet the controller can see.
    pub replica_sets: Store<ReplicaSet>,
    /// Every Service.
    pub services: Store<Service>,
    /// Every EndpointSlice.
    pub slices: Store<EndpointSlice>,
    /// Who owns and names what.
    pub indexes: Arc<Indexes>,
}

/// A Rollout as observed, ready for the planner.
pub struct Observation<'a> {
    /// What the planner reads.
    pub observed: Observed<'a>,
    /// The Rollout as JSON.
    pub value: Value,
    /// Its pod template as JSON.
    pub template: Value,
    /// The ReplicaSets it controls.
    pub owned: Vec<Arc<ReplicaSet>>,
    /// The template changed since the status was written: the update's progress (pause,
    /// abort, promote-full, preview scale-up) starts afresh, as Argo's `resetRolloutStatus`.
    pub reset: bool,
}

/// The controller's reading of one ReplicaSet.
pub fn replica_set_state(rs: &ReplicaSet) -> ReplicaSetState {
    let annotations = rs.annotations();
    let status = rs.status.as_ref();
    ReplicaSetState {
        name: rs.name_any(),
        hash: rs
            .labels()
            .get(label::POD_TEMPLATE_HASH)
            .cloned()
            .unwrap_or_default(),
        revision: annotations
            .get(annotation::REVISION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        previous_revision: annotations
            .get(annotation::REVISION_HISTORY)
            .and_then(|h| h.rsplit(',').next())
            .and_then(|r| r.trim().parse().ok()),
        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        available: status.and_then(|s| s.available_replicas).unwrap_or(0),
        ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        scale_down_deadline: annotations
            .get(annotation::SCALE_DOWN_DEADLINE)
            .and_then(|d| d.parse().ok()),
        ephemeral: annotations
            .get(annotation::EPHEMERAL_METADATA)
            .and_then(|m| serde_json::from_str(m).ok()),
    }
}

fn service_state(services: &Store<Service>, namespace: &str, name: &str) -> ServiceState {
    match services.get(&ObjectRef::new(name).within(namespace)) {
        None => ServiceState::Missing,
        Some(service) => ServiceState::Selects(
            service
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.get(label::POD_TEMPLATE_HASH).cloned()),
        ),
    }
}

/// The objects `index` lists under `key`, from `store` (names it no longer holds are dropped).
fn lookup<K>(store: &Store<K>, index: &Index, namespace: &str, key: &str) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let get = |name: &str| store.get(&ObjectRef::new(name).within(namespace));
    let names = index.names(namespace, key);
    let found: Vec<Arc<K>> = names.iter().filter_map(|name| get(name)).collect();
    if found.len() < names.len() {
        index.retain(namespace, key, |name| get(name).is_some());
    }
    found
}

/// Whether every endpoint of `service` is a pod of the ReplicaSet `name`.
fn settled(stores: &Stores, namespace: &str, service: &str, name: &str) -> bool {
    // Pods are named `<ReplicaSet>-xxxxx` with the prefix cut to 58 characters, as the API
    // server's name generator does.
    let prefix: String = format!("{name}-").chars().take(58).collect();
    let slices = lookup(
        &stores.slices,
        &stores.indexes.slices_by_service,
        namespace,
        service,
    );
    slices
        .iter()
        .filter(|slice| {
            slice
                .labels()
                .get("kubernetes.io/service-name")
                .map(String::as_str)
                == Some(service)
        })
        .all(|slice| {
            slice.endpoints.iter().all(|e| {
                e.target_ref
                    .as_ref()
                    .and_then(|t| t.name.as_deref())
                    .is_some_and(|pod| pod.starts_with(&prefix))
            })
        })
}

fn progress(status: &RolloutStatus) -> Progress {
    Progress {
        stable: status.stable_rs.clone(),
        abort: status.abort.unwrap_or(false),
        promote_full: status.promote_full.unwrap_or(false),
        paused_since: status
            .pause_conditions
            .iter()
            .flatten()
            .find(|p| p.reason == PauseReason::BlueGreenPause)
            .map(|p| p.start_time.0),
        controller_pause: status.controller_pause.unwrap_or(false),
        scale_up_preview: status
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            .unwrap_or(false),
        aborted_at: status.aborted_at.as_ref().map(|t| t.0),
        reason: progressing(status).map(|c| c.reason.clone()),
    }
}

fn progressing(status: &RolloutStatus) -> Option<&sluice_api::Condition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
}

/// A Service the Rollout names that another Rollout manages (its `managed-by-rollouts`
/// annotation), as Argo's InvalidSpec message: two Rollouts must not fight over a selector.
fn managed_elsewhere(
    stores: &Stores,
    namespace: &str,
    rollout: &str,
    strategy: &BlueGreenStrategy,
) -> Option<String> {
    let services = [
        ("activeService", Some(strategy.active_service.as_str())),
        ("previewService", strategy.preview_service()),
    ];
    services.into_iter().find_map(|(field, name)| {
        let name = name?;
        let service = stores
            .services
            .get(&ObjectRef::new(name).within(namespace))?;
        let manager = service.annotations().get(annotation::MANAGED_BY_ROLLOUTS)?;
        (manager != rollout).then(|| {
            format!(
                "spec.strategy.blueGreen.{field}: Invalid value: \"{name}\": Service \"{name}\" is managed by another Rollout ({manager})"
            )
        })
    })
}

/// The counts the status reports, from the ReplicaSets: replicas, updated (the current
/// ReplicaSet's), ready (all pods), available (the active ReplicaSet's).
pub fn counts(states: &[ReplicaSetState], hash: &str, active: Option<&str>) -> [i32; 4] {
    let current = states.iter().find(|rs| rs.hash == hash);
    let active = active.and_then(|h| states.iter().find(|rs| rs.hash == h));
    [
        states.iter().map(|rs| rs.replicas).sum(),
        current.map_or(0, |rs| rs.replicas),
        states.iter().map(|rs| rs.ready).sum(),
        active.map_or(0, |rs| rs.available),
    ]
}

/// When the Rollout last made progress (Argo's `RolloutProgressing`): now if, since the status
/// was written, the current hash or the updated replicas changed, fewer old replicas are left
/// (`replicas − updated`), or more are ready or available (fewer is no progress), or if it was
/// not progressing (paused, aborted, new); else the Progressing condition's `lastUpdateTime`,
/// or timed out if the condition says so.
fn last_progress(
    status: &RolloutStatus,
    hash: &str,
    counts: [i32; 4],
    now: Timestamp,
) -> (bool, LastProgress) {
    let [replicas, updated, ready, available] = counts;
    let old_before = status.replicas.unwrap_or(0) - status.updated_replicas.unwrap_or(0);
    let moved = status.current_pod_hash.as_deref() != Some(hash)
        || status.updated_replicas.unwrap_or(0) != updated
        || replicas - updated < old_before
        || status.ready_replicas.unwrap_or(0) < ready
        || status.available_replicas.unwrap_or(0) < available;
    let condition =
        progressing(status).filter(|c| c.status == ConditionStatus::True || c.reason == TIMED_OUT);
    match condition {
        Some(c) if !moved && c.reason == TIMED_OUT => (false, LastProgress::TimedOut),
        Some(c) if !moved => (false, LastProgress::At(c.last_update_time.0)),
        _ => (true, LastProgress::At(now)),
    }
}

/// Reads `rollout` (blue-green) and what it owns and names from the stores.
pub fn observe<'a>(
    rollout: &'a Rollout,
    strategy: &'a BlueGreenStrategy,
    stores: &Stores,
    now: Timestamp,
) -> Result<(Observation<'a>, bool), serde_json::Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let value = serde_json::to_value(rollout)?;
    let template = value["spec"]["template"].clone();
    let status = rollout.status.clone().unwrap_or_default();
    let uid = rollout.uid();
    let name = rollout.name_any();
    for service in [
        Some(strategy.active_service.as_str()),
        strategy.preview_service(),
    ]
    .into_iter()
    .flatten()
    {
        stores
            .indexes
            .rollouts_by_service
            .insert(&namespace, service, &name);
    }
    let owner = uid.clone().unwrap_or_default();
    let owned: Vec<Arc<ReplicaSet>> = lookup(
        &stores.replica_sets,
        &stores.indexes.sets_by_owner,
        &namespace,
        &owner,
    )
    .into_iter()
    .filter(|rs| {
        rs.owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
    })
    .collect();
    let owned_values: Vec<Value> = owned
        .iter()
        .map(|rs| serde_json::to_value(rs.as_ref()))
        .collect::<Result<_, _>>()?;
    let computed = hash::pod_template_hash(&template, status.collision_count);
    let current = replicasets::find_current(
        &owned_values,
        &template,
        &computed,
        replicasets::recorded_hash(&value),
    );
    let hash = current
        .and_then(|rs| rs["metadata"]["labels"][label::POD_TEMPLATE_HASH].as_str())
        .unwrap_or(&computed)
        .to_owned();
    let active = service_state(&stores.services, &namespace, &strategy.active_service);
    let preview = strategy
        .preview_service()
        .map(|name| service_state(&stores.services, &namespace, name));
    let states: Vec<ReplicaSetState> = owned.iter().map(|rs| replica_set_state(rs)).collect();
    let active_hash = match &active {
        ServiceState::Selects(h) => h.clone(),
        ServiceState::Missing => None,
    };
    let switch_settled = active_hash
        .as_deref()
        .and_then(|h| states.iter().find(|rs| rs.hash == h))
        .is_none_or(|rs| settled(stores, &namespace, &strategy.active_service, &rs.name));
    let counts = counts(&states, &hash, active_hash.as_deref());
    let (progressed, last) = last_progress(&status, &hash, counts, now);
    let reset = status
        .current_pod_hash
        .as_deref()
        .is_some_and(|before| before != hash);
    let mut progress = progress(&status);
    if reset {
        progress = Progress {
            stable: progress.stable,
            reason: progress.reason,
            ..Progress::default()
        };
    }
    let observed = Observed {
        strategy,
        replicas: rollout.spec.replicas(),
        paused: rollout.spec.paused(),
        hash,
        replica_sets: states,
        active,
        preview,
        switch_settled,
        status: progress,
        invalid: sluice_api::validation::validate_rollout(&rollout.spec)
            .first()
            .map(ToString::to_string)
            .or_else(|| managed_elsewhere(stores, &namespace, &name, strategy)),
        deadline: Deadline {
            seconds: rollout.spec.progress_deadline_seconds(),
            abort: rollout.spec.progress_deadline_abort(),
            last_progress: last,
        },
        history_limit: rollout.spec.revision_history_limit(),
    };
    let observation = Observation {
        observed,
        value,
        template,
        owned,
        reset,
    };
    Ok((observation, progressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: &str, counts: [i32; 4]) -> RolloutStatus {
        let [replicas, updated, ready, available] = counts;
        let status = if reason == TIMED_OUT { "False" } else { "True" };
        serde_json::from_value(serde_json::json!({
            "currentPodHash": "new",
            "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": ready, "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": status, "reason": reason,
                "message": "", "lastUpdateTime": "2026-11-01T10:00:00Z",
                "lastTransitionTime": "2026-11-01T10:00:00Z"}],
        }))
        .unwrap()
    }

    #[test]
    fn progress_is_a_new_hash_fewer_old_pods_or_more_ready_and_a_timeout_stands_until_then() {
        let now: Timestamp = "2026-11-01T10:05:00Z".parse().unwrap();
        let then = LastProgress::At("2026-11-01T10:00:00Z".parse().unwrap());
        let seen = status("ReplicaSetUpdated", [6, 3, 4, 3]);
        assert_eq!(
            last_progress(&seen, "new", [6, 3, 4, 3], now),
            (false, then)
        );
        assert_eq!(
            last_progress(&seen, "new", [6, 3, 3, 2], now),
            (false, then),
            "fewer ready is no progress"
        );
        assert_eq!(
            last_progress(&seen, "new", [7, 3, 4, 3], now),
            (false, then),
            "an old pod more (recreated, evicted) is no progress"
        );
        for moved in [[6, 3, 5, 3], [6, 3, 4, 4], [5, 3, 4, 3], [6, 2, 4, 3]] {
            assert_eq!(
                last_progress(&seen, "new", moved, now),
                (true, LastProgress::At(now))
            );
        }
        assert_eq!(
            last_progress(&seen, "newer", [6, 3, 4, 3], now),
            (true, LastProgress::At(now))
        );
        let timed_out = status(TIMED_OUT, [6, 3, 4, 3]);
        assert_eq!(
            last_progress(&timed_out, "new", [6, 3, 4, 3], now),
            (false, LastProgress::TimedOut)
        );
        assert_eq!(
            last_progress(&timed_out, "new", [6, 3, 5, 3], now),
            (true, LastProgress::At(now))
        );
    }
}
