//! The observe half of a reconcile: what the planner reads, built from the controller's
//! informer stores alone (ReplicaSets, Services, EndpointSlices) and the Rollout itself — no
//! API call, so a reconcile costs memory lookups and the writes it decides on.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
    networking::v1::Ingress,
};
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::Value;
use sluice_analysis::Catalog;
use sluice_api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, ConditionStatus, Rollout,
    RolloutAnalysisRunStatus, RolloutStatus,
    names::{annotation, condition, label, reason},
};
use sluice_reconcile::hash;

use crate::{
    analyses::{self, Hashes},
    gate::{Tracked, TrackedRuns},
    index::{Index, Indexes},
    model::{
        BlueGreenObserved, CanaryObserved, Counts, Deadline, LastProgress, LastReason, Observed,
        Pause, Progress, ReplicaSetState, Routing, ServiceState, Strategy,
    },
    replicasets,
    restart::{PodState, RestartObserved},
    stored::ReplicaSet,
};

mod routing;

/// The informer stores a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    /// Every ReplicaSet the controller can see.
    pub replica_sets: Store<ReplicaSet>,
    /// Every Service.
    pub services: Store<Service>,
    /// Every EndpointSlice.
    pub slices: Store<EndpointSlice>,
    /// Every pod of a Rollout, trimmed to its metadata and Ready condition (the applier gives
    /// live pods their role's metadata; a restart evicts them as they become available).
    pub pods: Store<Pod>,
    /// Every Deployment (`workloadRef`).
    pub deployments: Store<Deployment>,
    /// Every AnalysisRun.
    pub runs: Store<AnalysisRun>,
    /// Every AnalysisTemplate.
    pub templates: Store<AnalysisTemplate>,
    /// Every ClusterAnalysisTemplate.
    pub cluster_templates: Store<ClusterAnalysisTemplate>,
    /// Every Ingress (the NGINX router's).
    pub ingresses: Store<Ingress>,
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
    /// The template (or the canary steps) changed since the status was written: the update's
    /// progress (pause, abort, promote-full, preview scale-up, step) starts afresh, as Argo's
    /// `resetRolloutStatus`.
    pub reset: bool,
    /// The Rollout made progress since the status was written.
    pub progressed: bool,
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
        actual: status.map_or(0, |s| s.replicas),
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
pub fn lookup<K>(store: &Store<K>, index: &Index, namespace: &str, key: &str) -> Vec<Arc<K>>
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

fn progressing_condition(status: &RolloutStatus) -> Option<&sluice_api::Condition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == condition::PROGRESSING)
}

fn tracked(status: Option<&RolloutAnalysisRunStatus>) -> Option<Tracked> {
    status.map(|s| Tracked {
        name: s.name.clone(),
        phase: s.status,
        message: s.message.clone(),
    })
}

fn progress(status: &RolloutStatus) -> Progress {
    let canary = status.canary.as_ref();
    let blue_green = status.blue_green.as_ref();
    let progressing = progressing_condition(status);
    Progress {
        runs: TrackedRuns {
            step: tracked(canary.and_then(|c| c.current_step_analysis_run_status.as_ref())),
            background: tracked(
                canary.and_then(|c| c.current_background_analysis_run_status.as_ref()),
            ),
            pre: tracked(blue_green.and_then(|b| b.pre_promotion_analysis_run_status.as_ref())),
            post: tracked(blue_green.and_then(|b| b.post_promotion_analysis_run_status.as_ref())),
        },
        abort_message: progressing
            .filter(|c| c.reason == reason::ROLLOUT_ABORTED)
            .map(|c| c.message.clone()),
        stable: status.stable_rs.clone(),
        abort: status.abort.unwrap_or(false),
        promote_full: status.promote_full.unwrap_or(false),
        pauses: status
            .pause_conditions
            .iter()
            .flatten()
            .map(|p| Pause {
                reason: p.reason,
                since: p.start_time.0,
            })
            .collect(),
        controller_pause: status.controller_pause.unwrap_or(false),
        aborted_at: status.aborted_at.as_ref().map(|t| t.0),
        reason: match progressing_condition(status).map(|c| c.reason.as_str()) {
            Some(reason::ROLLOUT_ABORTED) => LastReason::Aborted,
            Some(reason::PROGRESS_DEADLINE_EXCEEDED) => LastReason::TimedOut,
            _ => LastReason::Other,
        },
        scale_up_preview: status
            .blue_green
            .as_ref()
            .and_then(|b| b.scale_up_preview_check_point)
            .unwrap_or(false),
        step: status.current_step_index,
    }
}

/// `maxUnavailable` as a pod count, as Argo's `MaxUnavailable`: the canary's through the
/// fenceposts with `maxSurge`, blue-green's rounded down; never more than `spec.replicas`.
fn max_unavailable(rollout: &Rollout) -> i32 {
    let replicas = rollout.spec.replicas();
    if replicas == 0 {
        return 0;
    }
    let Some(strategy) = rollout.spec.strategy.as_ref() else {
        return 0;
    };
    let unavailable = if let Some(canary) = &strategy.canary {
        crate::replica_math::resolve_surge_unavailable(
            replicas,
            &canary.max_surge(),
            &canary.max_unavailable(),
        )
        .map_or(0, |(_, unavailable)| unavailable)
    } else if let Some(bg) = &strategy.blue_green {
        sluice_api::int_or_percent::resolve(&bg.max_unavailable(), replicas, false).unwrap_or(0)
    } else {
        0
    };
    unavailable.min(replicas)
}

/// The pods of the Rollout's ReplicaSets `owned`, for a restart: each with its ReplicaSet,
/// creation time, whether it is terminating and whether it is available (ready for
/// `min_ready` seconds, as Kubernetes' `IsPodAvailable`).
fn restart_pods(
    stores: &Stores,
    namespace: &str,
    owned: &[Arc<ReplicaSet>],
    min_ready: i32,
    now: Timestamp,
) -> Vec<PodState> {
    let sets: Vec<(String, String)> = owned
        .iter()
        .filter_map(|rs| Some((rs.uid()?, rs.name_any())))
        .collect();
    stores
        .pods
        .state()
        .iter()
        .filter(|pod| pod.namespace().as_deref() == Some(namespace))
        .filter_map(|pod| {
            let replica_set = pod.owner_references().iter().find_map(|o| {
                sets.iter()
                    .find(|(uid, _)| *uid == o.uid)
                    .map(|(_, name)| name.clone())
            })?;
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready" && c.status == "True");
            let available = ready.is_some_and(|c| {
                min_ready <= 0
                    || c.last_transition_time
                        .as_ref()
                        .is_some_and(|t| crate::planner::at(t.0, min_ready) <= now)
            });
            Some(PodState {
                name: pod.name_any(),
                replica_set,
                created: pod.metadata.creation_timestamp.as_ref()?.0,
                deleting: pod.metadata.deletion_timestamp.is_some(),
                available,
            })
        })
        .collect()
}

/// The templates of `namespace` and the cluster's, by name.
fn catalog(stores: &Stores, namespace: &str) -> Catalog {
    let mut catalog = Catalog::default();
    for template in stores.templates.state() {
        if template.namespace().as_deref() == Some(namespace) {
            catalog
                .templates
                .insert(template.name_any(), template.spec.clone());
        }
    }
    for template in stores.cluster_templates.state() {
        catalog
            .cluster_templates
            .insert(template.name_any(), template.spec.template.clone());
    }
    catalog
}

/// A Service the Rollout names that another Rollout manages (its `managed-by-rollouts`
/// annotation), as Argo's InvalidSpec message: two Rollouts must not fight over a selector.
fn managed_elsewhere(
    stores: &Stores,
    namespace: &str,
    rollout: &str,
    observed: &Observed<'_>,
) -> Option<String> {
    let strategy = match observed.strategy {
        Strategy::BlueGreen(_) => "blueGreen",
        Strategy::Canary(_) => "canary",
    };
    observed.services().into_iter().find_map(|named| {
        let service = stores
            .services
            .get(&ObjectRef::new(&named.name).within(namespace))?;
        let manager = service.annotations().get(annotation::MANAGED_BY_ROLLOUTS)?;
        (manager != rollout).then(|| {
            format!(
                "spec.strategy.{strategy}.{}: Invalid value: \"{}\": Service \"{}\" is managed by another Rollout ({manager})",
                named.field, named.name, named.name
            )
        })
    })
}

/// When the Rollout last made progress (Argo's `RolloutProgressing`): now if, since the status
/// was written, the current hash or the updated replicas changed, fewer old replicas are left
/// (`replicas − updated`), or more are ready or available (fewer is no progress), or if it was
/// not progressing (paused, aborted, new); else the Progressing condition's `lastUpdateTime`,
/// or timed out if the condition says so.
fn last_progress(
    status: &RolloutStatus,
    hash: &str,
    counts: Counts,
    now: Timestamp,
) -> (bool, LastProgress) {
    let old_before = status.replicas.unwrap_or(0) - status.updated_replicas.unwrap_or(0);
    let moved = status.current_pod_hash.as_deref() != Some(hash)
        || status.updated_replicas.unwrap_or(0) != counts.updated
        || counts.replicas - counts.updated < old_before
        || status.ready_replicas.unwrap_or(0) < counts.ready
        || status.available_replicas.unwrap_or(0) < counts.available;
    let condition = progressing_condition(status).filter(|c| {
        c.status == ConditionStatus::True || c.reason == reason::PROGRESS_DEADLINE_EXCEEDED
    });
    match condition {
        Some(c) if !moved && c.reason == reason::PROGRESS_DEADLINE_EXCEEDED => {
            (false, LastProgress::TimedOut)
        }
        Some(c) if !moved => (false, LastProgress::At(c.last_update_time.0)),
        _ => (true, LastProgress::At(now)),
    }
}

/// Reads `rollout` and what it owns and names from the stores; `None` for a Rollout without
/// a strategy sluice runs.
pub fn observe<'a>(
    rollout: &'a Rollout,
    stores: &Stores,
    now: Timestamp,
) -> Result<Option<Observation<'a>>, serde_json::Error> {
    let Some(strategy) = rollout.spec.strategy.as_ref() else {
        return Ok(None);
    };
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let value = serde_json::to_value(rollout)?;
    let template = value["spec"]["template"].clone();
    let status = rollout.status.clone().unwrap_or_default();
    let uid = rollout.uid();
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
    let computed = hash::pod_template_hash(&template, status.collision_count);
    let labelled = owned
        .iter()
        .any(|rs| rs.labels().get(label::POD_TEMPLATE_HASH) == Some(&computed));
    // The templates are read (parsed from the store's raw JSON) only when no ReplicaSet has
    // the template's hash: a new template, an adoption or an undo.
    let (found, held) = if labelled {
        (true, None)
    } else {
        let owned_values: Vec<Value> = owned
            .iter()
            .map(|rs| serde_json::to_value(rs.as_ref()))
            .collect::<Result<_, _>>()?;
        let current = replicasets::find_current(
            &owned_values,
            &template,
            &computed,
            replicasets::recorded_hash(&value),
        );
        let held = current
            .and_then(|rs| rs["metadata"]["labels"][label::POD_TEMPLATE_HASH].as_str())
            .map(str::to_owned);
        (current.is_some(), held)
    };
    let hash = held.unwrap_or(computed);
    let collision = !found
        && stores
            .replica_sets
            .get(&ObjectRef::new(&replicasets::name(&name, &hash)).within(&namespace))
            .is_some_and(|rs| {
                !rs.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid.as_ref())
            });
    let states: Vec<ReplicaSetState> = owned.iter().map(|rs| replica_set_state(rs)).collect();
    let service = |name: Option<&str>| {
        let name = name.filter(|n| !n.is_empty())?;
        stores
            .indexes
            .rollouts_by_service
            .insert(&namespace, name, &rollout.name_any());
        Some(service_state(&stores.services, &namespace, name))
    };
    let mut routing_problem = None;
    let (strategy, active) = if let Some(bg) = strategy.blue_green.as_ref() {
        let active = service(Some(&bg.active_service)).unwrap_or(ServiceState::Missing);
        let preview = service(bg.preview_service());
        let active_hash = active.hash().map(str::to_owned);
        let switch_settled = active_hash
            .as_deref()
            .and_then(|h| states.iter().find(|rs| rs.hash == h))
            .is_none_or(|rs| settled(stores, &namespace, &bg.active_service, &rs.name));
        let observed = BlueGreenObserved {
            spec: bg,
            active,
            preview,
            switch_settled,
        };
        (Strategy::BlueGreen(observed), active_hash)
    } else if let Some(canary) = strategy.canary.as_ref() {
        let steps = serde_json::to_value(canary.steps())?;
        let current = states
            .iter()
            .find(|rs| rs.hash == hash)
            .map(|rs| rs.name.as_str());
        let routing = routing::observe(stores, rollout, canary, current);
        let (routing, problem) = match routing {
            Ok(routing) => (routing, None),
            Err(problem) => (Routing::Replicas, Some(problem)),
        };
        routing_problem = problem;
        let observed = CanaryObserved {
            spec: canary,
            canary_service: service(canary.canary_service.as_deref()),
            stable_service: service(canary.stable_service.as_deref()),
            step_hash: hash::json_hash(&steps),
            routing,
        };
        (Strategy::Canary(observed), None)
    } else {
        return Ok(None);
    };
    let counts = Counts::of(&states, &hash, active.as_deref());
    let (progressed, last) = last_progress(&status, &hash, counts, now);
    // The steps changed since the status was written — unless nothing changed since the
    // controller that wrote it saw the Rollout (Argo hashes Go's encoding of the steps, which
    // orders some keys otherwise: an adopted Rollout must not start its steps over).
    let seen_as_is = replicasets::recorded_hash(&value).is_some();
    let steps_changed = match &strategy {
        Strategy::Canary(c) => status
            .current_step_hash
            .as_deref()
            .is_some_and(|before| before != c.step_hash && !seen_as_is),
        Strategy::BlueGreen(_) => false,
    };
    let reset = steps_changed
        || status
            .current_pod_hash
            .as_deref()
            .is_some_and(|before| before != hash);
    let mut progress = progress(&status);
    if reset {
        progress = Progress {
            stable: progress.stable,
            reason: progress.reason,
            abort_message: progress.abort_message,
            ..Progress::default()
        };
    }
    let mut observed = Observed {
        replicas: rollout.spec.replicas(),
        paused: rollout.spec.paused(),
        hash,
        replica_sets: states,
        status: progress,
        invalid: crate::workload::validate(&rollout.spec),
        deadline: Deadline {
            seconds: rollout.spec.progress_deadline_seconds(),
            abort: rollout.spec.progress_deadline_abort(),
            last_progress: last,
        },
        history_limit: rollout.spec.revision_history_limit(),
        rollback_window: rollout
            .spec
            .rollback_window
            .as_ref()
            .and_then(|w| w.revisions),
        collision,
        strategy,
        analysis: Default::default(),
        restart: RestartObserved {
            restart_at: rollout.spec.restart_at.as_ref().map(|t| t.0),
            restarted_at: status.restarted_at.as_ref().map(|t| t.0),
            pods: Vec::new(),
            max_unavailable: max_unavailable(rollout),
        },
        workload: None,
    };
    if observed.restart.due(now) {
        let min_ready = rollout.spec.min_ready_seconds.unwrap_or(0);
        observed.restart.pods = restart_pods(stores, &namespace, &owned, min_ready, now);
    }
    if observed.invalid.is_none() {
        observed.invalid = routing_problem;
    }
    if observed.invalid.is_none() {
        observed.invalid = managed_elsewhere(stores, &namespace, &name, &observed);
    }
    let hashes = Hashes {
        latest: &observed.hash,
        stable: observed.status.stable.as_deref(),
    };
    let catalog = if analyses::any(rollout) {
        catalog(stores, &namespace)
    } else {
        Catalog::default()
    };
    match analyses::prepare_all(rollout, &value, &catalog, hashes) {
        Ok(mut analysis) => {
            analysis.rollout = name.clone();
            analysis.successful_limit = rollout.spec.successful_run_history_limit();
            analysis.unsuccessful_limit = rollout.spec.unsuccessful_run_history_limit();
            analysis.runs = lookup(
                &stores.runs,
                &stores.indexes.runs_by_owner,
                &namespace,
                &owner,
            )
            .iter()
            .filter(|run| {
                run.owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
            })
            .filter_map(|run| crate::runs::run_state(run))
            .collect();
            observed.analysis = analysis;
        }
        Err(err) => {
            observed.invalid.get_or_insert(err.to_string());
        }
    }
    Ok(Some(Observation {
        observed,
        value,
        template,
        owned,
        reset,
        progressed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: &str, counts: [i32; 4]) -> RolloutStatus {
        let [replicas, updated, ready, available] = counts;
        let status = if reason == reason::PROGRESS_DEADLINE_EXCEEDED {
            "False"
        } else {
            "True"
        };
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

    fn counts([replicas, updated, ready, available]: [i32; 4]) -> Counts {
        Counts {
            replicas,
            updated,
            ready,
            available,
            hpa: replicas,
        }
    }

    #[test]
    fn progress_is_a_new_hash_fewer_old_pods_or_more_ready_and_a_timeout_stands_until_then() {
        let now: Timestamp = "2026-11-01T10:05:00Z".parse().unwrap();
        let then = LastProgress::At("2026-11-01T10:00:00Z".parse().unwrap());
        let seen = status("ReplicaSetUpdated", [6, 3, 4, 3]);
        let cases = [
            ([6, 3, 4, 3], "new", false, "no change"),
            ([6, 3, 3, 2], "new", false, "fewer ready is no progress"),
            (
                [7, 3, 4, 3],
                "new",
                false,
                "an old pod more (recreated, evicted) is no progress",
            ),
            ([6, 3, 5, 3], "new", true, "more ready"),
            ([6, 3, 4, 4], "new", true, "more available"),
            ([5, 3, 4, 3], "new", true, "fewer old pods"),
            ([6, 2, 4, 3], "new", true, "updated changed"),
            ([6, 3, 4, 3], "newer", true, "a new hash"),
        ];
        for (c, hash, moved, why) in cases {
            let want = if moved {
                (true, LastProgress::At(now))
            } else {
                (false, then)
            };
            assert_eq!(last_progress(&seen, hash, counts(c), now), want, "{why}");
        }
        let timed_out = status(reason::PROGRESS_DEADLINE_EXCEEDED, [6, 3, 4, 3]);
        assert_eq!(
            last_progress(&timed_out, "new", counts([6, 3, 4, 3]), now),
            (false, LastProgress::TimedOut)
        );
        assert_eq!(
            last_progress(&timed_out, "new", counts([6, 3, 5, 3]), now),
            (true, LastProgress::At(now))
        );
    }
}
