//! The Rollout controller's observe and apply halves around the pure planners: it watches
//! Rollouts, the ReplicaSets they own and the Services they name, builds what the planner reads
//! from those stores, and executes the plan through kube-rs — ReplicaSets created and scaled,
//! deadlines annotated, Service selectors switched, events recorded, then the status written to
//! `/status`. Blue-green only for now; a canary Rollout gets an event saying it is not handled.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::Service, discovery::v1::EndpointSlice},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action as Requeue,
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::{Value, json};
use sluice_api::{
    PauseReason, Rollout,
    names::{annotation, label},
};

use crate::{
    blue_green::{self, Action, Observed, Progress, ReplicaSetState, ServiceState},
    hash, replicasets,
};

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An API call failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// The Rollout could not be read as JSON.
    #[error("encoding the Rollout: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Context {
    client: Client,
    replica_sets: Store<ReplicaSet>,
    recorder: Recorder,
}

/// Runs the controller until the client's server goes away.
pub async fn run(client: Client) {
    let rollouts: Api<Rollout> = Api::all(client.clone());
    let controller = Controller::new(rollouts, watcher::Config::default()).owns(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let rollout_store = controller.store();
    let services = Api::<Service>::all(client.clone());
    // A Service a Rollout names changed: look at that Rollout again.
    let controller = controller.watches(services, watcher::Config::default(), move |service| {
        let namespace = service.namespace();
        rollout_store
            .state()
            .into_iter()
            .filter(|r| r.namespace() == namespace)
            .filter(|r| {
                let strategy = r.spec.strategy.as_ref().and_then(|s| s.blue_green.as_ref());
                strategy.is_some_and(|bg| {
                    bg.active_service == service.name_any()
                        || bg.preview_service() == Some(service.name_any().as_str())
                })
            })
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect::<Vec<_>>()
    });
    let (replica_sets, writer) = kube::runtime::reflector::store();
    let sets = kube::runtime::reflector(
        writer,
        watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        ),
    );
    tokio::spawn(sets.for_each(|_| async {}));
    let reporter = Reporter {
        controller: "rollouts-controller".into(),
        instance: None,
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        replica_sets,
    });
    controller
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
}

fn error_policy(_: Arc<Rollout>, err: &ControllerError, _: Arc<Context>) -> Requeue {
    tracing::debug!("rollouts controller: {err}");
    Requeue::requeue(Duration::from_millis(500))
}

fn replica_set_state(rs: &ReplicaSet) -> ReplicaSetState {
    let annotations = rs.annotations();
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
        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        available: rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
        ready: rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        scale_down_deadline: annotations
            .get(annotation::SCALE_DOWN_DEADLINE)
            .and_then(|d| d.parse().ok()),
    }
}

async fn service_state(api: &Api<Service>, name: &str) -> Result<ServiceState, kube::Error> {
    Ok(match api.get_opt(name).await? {
        None => ServiceState::Missing,
        Some(service) => ServiceState::Selects(
            service
                .spec
                .and_then(|s| s.selector)
                .and_then(|s| s.get(label::POD_TEMPLATE_HASH).cloned()),
        ),
    })
}

/// Whether every endpoint of `service` is a pod of the ReplicaSet `name`.
async fn settled(
    client: &Client,
    namespace: &str,
    service: &str,
    name: &str,
) -> Result<bool, kube::Error> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let prefix = format!("{name}-");
    Ok(slices.list(&params).await?.items.iter().all(|slice| {
        slice.endpoints.iter().all(|e| {
            e.target_ref
                .as_ref()
                .and_then(|t| t.name.as_deref())
                .is_some_and(|pod| pod.starts_with(&prefix))
        })
    }))
}

fn progress(rollout: &Rollout) -> Progress {
    let status = rollout.status.clone().unwrap_or_default();
    let paused_since = status
        .pause_conditions
        .iter()
        .flatten()
        .find(|p| p.reason == PauseReason::BlueGreenPause)
        .map(|p| p.start_time.0);
    Progress {
        stable: status.stable_rs,
        abort: status.abort.unwrap_or(false),
        promote_full: status.promote_full.unwrap_or(false),
        paused_since,
        controller_pause: status.controller_pause.unwrap_or(false),
        scale_up_preview: status
            .blue_green
            .and_then(|b| b.scale_up_preview_check_point)
            .unwrap_or(false),
    }
}

async fn reconcile(
    rollout: Arc<Rollout>,
    context: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let namespace = rollout.namespace().unwrap_or_default();
    let reference = rollout.object_ref(&());
    let Some(strategy) = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.blue_green.as_ref())
    else {
        return Ok(Requeue::await_change());
    };
    let value = serde_json::to_value(rollout.as_ref())?;
    let template = value["spec"]["template"].clone();
    let collision = rollout.status.as_ref().and_then(|s| s.collision_count);
    let uid = rollout.uid();
    let owned: Vec<ReplicaSet> = context
        .replica_sets
        .state()
        .into_iter()
        .filter(|rs| rs.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
        })
        .map(|rs| rs.as_ref().clone())
        .collect();
    let owned_values: Vec<Value> = owned
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let computed = hash::pod_template_hash(&template, collision);
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
    let services: Api<Service> = Api::namespaced(context.client.clone(), &namespace);
    let active = service_state(&services, &strategy.active_service).await?;
    let preview = match strategy.preview_service() {
        Some(name) => Some(service_state(&services, name).await?),
        None => None,
    };
    let states: Vec<ReplicaSetState> = owned.iter().map(replica_set_state).collect();
    let active_rs = match &active {
        ServiceState::Selects(Some(h)) => states
            .iter()
            .find(|rs| &rs.hash == h)
            .map(|rs| rs.name.clone()),
        _ => None,
    };
    let switch_settled = match &active_rs {
        Some(name) => settled(&context.client, &namespace, &strategy.active_service, name).await?,
        None => true,
    };
    let observed = Observed {
        strategy,
        replicas: rollout.spec.replicas(),
        paused: rollout.spec.paused(),
        hash: hash.clone(),
        replica_sets: states.clone(),
        active,
        preview,
        switch_settled,
        status: progress(&rollout),
        invalid: sluice_api::validation::validate_rollout(&rollout.spec)
            .first()
            .map(ToString::to_string),
    };
    let now = Timestamp::now();
    let plan = blue_green::plan(&observed, now);
    let sets: Api<ReplicaSet> = Api::namespaced(context.client.clone(), &namespace);
    for action in &plan.actions {
        match action {
            Action::CreateReplicaSet { revision } => {
                let desired = replicasets::desired(&value, &template, &hash, *revision);
                let desired: ReplicaSet = serde_json::from_value(desired)?;
                match sets.create(&PostParams::default(), &desired).await {
                    Ok(_) => {
                        let note = format!(
                            "Created ReplicaSet {} (revision {revision})",
                            desired.name_any()
                        );
                        record(
                            &context.recorder,
                            &reference,
                            false,
                            "NewReplicaSetCreated",
                            note,
                        )
                        .await;
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Action::Scale { name, replicas } => {
                let patch = json!({"metadata": {"annotations": {annotation::DESIRED_REPLICAS: rollout.spec.replicas().to_string()}},
                    "spec": {"replicas": replicas}});
                sets.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                let before = states.iter().find(|rs| &rs.name == name);
                let direction = if before.is_some_and(|rs| rs.replicas > *replicas) {
                    "down"
                } else {
                    "up"
                };
                let revision = before.map_or(0, |rs| rs.revision);
                let note = format!(
                    "Scaled {direction} ReplicaSet {name} (revision {revision}) to {replicas}"
                );
                record(
                    &context.recorder,
                    &reference,
                    false,
                    "ScalingReplicaSet",
                    note,
                )
                .await;
            }
            Action::ScaleDownDeadline { name, at } => {
                let value = at.map(|t| Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                let patch =
                    json!({"metadata": {"annotations": {annotation::SCALE_DOWN_DEADLINE: value}}});
                sets.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
            Action::Renumber {
                name,
                revision,
                previous,
            } => {
                let history = owned
                    .iter()
                    .find(|rs| &rs.name_any() == name)
                    .and_then(|rs| rs.annotations().get(annotation::REVISION_HISTORY).cloned())
                    .map_or_else(|| previous.to_string(), |h| format!("{h},{previous}"));
                let patch = json!({"metadata": {"annotations": {
                    annotation::REVISION: revision.to_string(),
                    annotation::REVISION_HISTORY: history,
                }}});
                sets.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
            Action::SwitchService { service, to, .. } => {
                let patch = json!({"metadata": {"annotations": {annotation::MANAGED_BY_ROLLOUTS: rollout.name_any()}},
                    "spec": {"selector": {label::POD_TEMPLATE_HASH: to}}});
                services
                    .patch(service, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
        }
    }
    for event in &plan.events {
        record(
            &context.recorder,
            &reference,
            event.warning,
            event.reason,
            event.message.clone(),
        )
        .await;
    }
    write_status(&context, &rollout, &plan, &hash, &states).await?;
    Ok(match plan.requeue {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(50))),
        None => Requeue::await_change(),
    })
}

async fn write_status(
    context: &Context,
    rollout: &Rollout,
    plan: &blue_green::Plan,
    hash: &str,
    states: &[ReplicaSetState],
) -> Result<(), kube::Error> {
    let progress = &plan.progress;
    let current = states.iter().find(|rs| rs.hash == hash);
    let active = plan
        .selectors
        .0
        .as_deref()
        .and_then(|h| states.iter().find(|rs| rs.hash == h));
    let pause_conditions = progress
        .paused_since
        .map(|since| json!([{"reason": "BlueGreenPause", "startTime": Time(since)}]));
    let previous: Vec<Value> = rollout
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.conditions).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let facts = crate::conditions::Facts {
        phase: &plan.phase,
        paused: rollout.spec.paused() || progress.paused_since.is_some(),
        completed: progress.stable.as_deref() == Some(hash),
        available: active.is_some_and(|rs| rs.available >= rollout.spec.replicas()),
        replica_set: current.map_or("", |rs| rs.name.as_str()),
    };
    let conditions = crate::conditions::conditions(&facts, &previous, Timestamp::now());
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(
            plan.selectors
                .0
                .iter()
                .map(|h| format!("{}={h}", label::POD_TEMPLATE_HASH)),
        )
        .collect::<Vec<_>>()
        .join(",");
    let status = json!({"status": {
        "observedGeneration": rollout.metadata.generation.unwrap_or(0).to_string(),
        "currentPodHash": hash,
        "stableRS": progress.stable,
        "controllerPause": progress.controller_pause.then_some(true),
        "promoteFull": progress.promote_full.then_some(true),
        "pauseConditions": pause_conditions,
        "phase": plan.phase.0,
        "message": plan.phase.1,
        "replicas": states.iter().map(|rs| rs.replicas).sum::<i32>(),
        "updatedReplicas": current.map_or(0, |rs| rs.replicas),
        "readyReplicas": active.map_or(0, |rs| rs.ready),
        "availableReplicas": active.map_or(0, |rs| rs.available),
        "HPAReplicas": active.map_or(0, |rs| rs.replicas),
        "selector": selector,
        "conditions": conditions,
        "blueGreen": {
            "activeSelector": plan.selectors.0,
            "previewSelector": plan.selectors.1,
            "scaleUpPreviewCheckPoint": progress.scale_up_preview.then_some(true),
        },
    }});
    let api: Api<Rollout> = Api::namespaced(
        context.client.clone(),
        &rollout.namespace().unwrap_or_default(),
    );
    api.patch_status(
        &rollout.name_any(),
        &PatchParams::default(),
        &Patch::Merge(status),
    )
    .await?;
    Ok(())
}

async fn record(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    warning: bool,
    reason: &str,
    note: String,
) {
    let event = KubeEvent {
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
fn action(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}
