//! The Job controller: runs pods to completion (`completions`, `parallelism`), gives up after
//! `backoffLimit` failures or `activeDeadlineSeconds`, and reports `Complete` or `Failed`.
//! Observe (the Job's pods) → [`plan`] → apply.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::{
    batch::v1::JobStatus,
    core::v1::{Pod, PodTemplateSpec},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, watcher},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_api::Preserved;

use super::{ControllerError, PodOwners, pods, record};
use crate::object::timestamp;

/// A Job whose pod template is kept exactly as written.
pub type Job = super::exact::Exact<k8s_openapi::api::batch::v1::Job, JobSpec, JobStatus>;

/// The parts of a Job's spec the controller reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Successful pods needed (default 1).
    pub completions: Option<i32>,
    /// Pods at once (default 1).
    pub parallelism: Option<i32>,
    /// Failed pods tolerated (default 6).
    pub backoff_limit: Option<i32>,
    /// Seconds the Job may run.
    pub active_deadline_seconds: Option<i64>,
    /// Pod template, as written.
    pub template: Option<Preserved<PodTemplateSpec>>,
}

/// How a Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Enough pods succeeded.
    Complete,
    /// Too many pods failed.
    BackoffLimitExceeded,
    /// It ran past `activeDeadlineSeconds`.
    DeadlineExceeded,
}

/// What the controller does next for one Job.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to create.
    pub create: usize,
    /// Active pods to delete (the Job ended).
    pub delete: Vec<String>,
    /// The Job just ended this way.
    pub finished: Option<Outcome>,
    /// Status to write, when it changed.
    pub status: Option<Value>,
    /// When to look again (the deadline).
    pub requeue: Option<Duration>,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// The next step for `job`, given the pods it controls.
pub fn plan(job: &Job, owned: &[&Pod], now: Timestamp) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let completions = spec.completions.unwrap_or(1).max(0);
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let backoff_limit = spec.backoff_limit.unwrap_or(6).max(0);
    let active: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();
    let succeeded = owned
        .iter()
        .filter(|p| phase(p) == Some("Succeeded"))
        .count() as i32;
    let failed = owned.iter().filter(|p| phase(p) == Some("Failed")).count() as i32;
    let start = status.start_time.as_ref().map_or(now, |t| t.0);
    let already = status
        .conditions
        .iter()
        .flatten()
        .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True");
    let mut plan = Plan::default();
    let deadline = spec
        .active_deadline_seconds
        .map(|s| start + SignedDuration::from_secs(s));
    if !already {
        plan.finished = if succeeded >= completions {
            Some(Outcome::Complete)
        } else if failed > backoff_limit {
            Some(Outcome::BackoffLimitExceeded)
        } else if deadline.is_some_and(|d| now >= d) {
            Some(Outcome::DeadlineExceeded)
        } else {
            None
        };
    }
    let ended = already || plan.finished.is_some();
    if ended {
        plan.delete = active.iter().map(|p| p.name_any()).collect();
    } else {
        let wanted = parallelism.min(completions - succeeded).max(0) as usize;
        plan.create = wanted.saturating_sub(active.len());
        plan.requeue =
            deadline.map(|d| Duration::try_from(d.duration_since(now)).unwrap_or_default());
    }
    let mut next = json!({
        "active": if ended { 0 } else { active.len() },
        "succeeded": succeeded,
        "failed": failed,
        "startTime": timestamp(start),
    });
    if let Some(outcome) = plan.finished {
        let (type_, reason, message) = match outcome {
            Outcome::Complete => ("Complete", "", String::new()),
            Outcome::BackoffLimitExceeded => (
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".to_owned(),
            ),
            Outcome::DeadlineExceeded => (
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline".to_owned(),
            ),
        };
        let mut condition = json!({"type": type_, "status": "True", "lastProbeTime": timestamp(now), "lastTransitionTime": timestamp(now)});
        if !reason.is_empty() {
            condition["reason"] = json!(reason);
            condition["message"] = json!(message);
        }
        next["conditions"] = json!([condition]);
        if outcome == Outcome::Complete {
            next["completionTime"] = json!(timestamp(now));
        }
    }
    let current = json!({
        "active": status.active.unwrap_or(0),
        "succeeded": status.succeeded.unwrap_or(0),
        "failed": status.failed.unwrap_or(0),
        "startTime": status.start_time.as_ref().map(|t| timestamp(t.0)),
    });
    let mut comparable = next.clone();
    if let Some(o) = comparable.as_object_mut() {
        o.remove("conditions");
        o.remove("completionTime");
    }
    if comparable != current || plan.finished.is_some() {
        plan.status = Some(next);
    }
    plan
}

/// Runs the Job controller.
pub async fn run(client: Client) {
    let (context, pod_events) = PodOwners::start(&client, "job-controller");
    Controller::new(Api::<Job>::all(client), watcher::Config::default())
        .owns_stream(pod_events)
        .run(reconcile, super::error_policy, context)
        .for_each(|_| async {})
        .await;
}

async fn reconcile(job: Arc<Job>, context: Arc<PodOwners>) -> Result<Action, ControllerError> {
    let uid = job.uid().unwrap_or_default();
    let namespace = job.namespace().unwrap_or_default();
    let all = context.pods.state();
    let owned = pods::owned_by(&all, &namespace, &uid);
    if !context.caught_up(&uid) {
        return Ok(Action::requeue(Duration::from_millis(50)));
    }
    let plan = plan(&job, &owned, Timestamp::now());
    let name = job.name_any();
    let reference = job.object_ref(&());
    let pod_api: Api<DynamicObject> = Api::namespaced_with(
        context.client.clone(),
        &namespace,
        &ApiResource::erase::<Pod>(&()),
    );
    let mut created = Vec::new();
    let labels = [
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("job-name", name.as_str()),
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("controller-uid", uid.as_str()),
    ];
    for _ in 0..plan.create {
        let template = job.spec.as_ref().and_then(|s| s.template.as_ref());
        let pod = pods::from_template(
            template,
            &name,
            &namespace,
            job.controller_owner_ref(&()),
            &labels,
        );
        let pod: DynamicObject = serde_json::from_value(pod).map_err(ControllerError::Encode)?;
        let pod = pod_api.create(&PostParams::default(), &pod).await?;
        record(
            &context.recorder,
            &reference,
            false,
            "SuccessfulCreate",
            format!("Created pod: {}", pod.name_any()),
        )
        .await;
        created.push((
            pod.name_any(),
            pod.resource_version().and_then(|v| v.parse().ok()),
        ));
    }
    for pod in &plan.delete {
        match pod_api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                record(
                    &context.recorder,
                    &reference,
                    false,
                    "SuccessfulDelete",
                    format!("Deleted pod: {pod}"),
                )
                .await
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(err) => return Err(err.into()),
        }
    }
    context.expect(&uid, &namespace, &created, &plan.delete);
    if let Some(status) = plan.status {
        let api: Api<Job> = Api::namespaced(context.client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    match plan.finished {
        Some(Outcome::Complete) => {
            record(
                &context.recorder,
                &reference,
                false,
                "Completed",
                "Job completed".into(),
            )
            .await
        }
        Some(Outcome::BackoffLimitExceeded) => {
            record(
                &context.recorder,
                &reference,
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            )
            .await
        }
        Some(Outcome::DeadlineExceeded) => {
            record(
                &context.recorder,
                &reference,
                true,
                "DeadlineExceeded",
                "Job was active longer than specified deadline".into(),
            )
            .await
        }
        None => {}
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after + Duration::from_millis(20)),
        None => Action::await_change(),
    })
}
