//! `spec.workloadRef`: a Rollout whose pod template (and, when it has none, selector) comes
//! from a Deployment, as Argo's `rollout/templateref.go` resolves it — the Rollout is read with
//! the Deployment's template in place of its empty one, so an update of the Deployment's
//! template rolls out like an update of the Rollout's. The Deployment's generation is kept in
//! the Rollout's `rollout.argoproj.io/workload-generation` annotation and, once reconciled, in
//! `status.workloadObservedGeneration`. `scaleDown` says what becomes of the Deployment's own
//! pods during the migration (Argo's `sync.go` and `replicaset.go`): `never` leaves it alone,
//! `onsuccess` scales it to zero once the Rollout is Healthy, `progressively` scales it down as
//! the Rollout's pods become ready — both only while the Rollout runs its first revision.
//!
//! Argo also resolves `ReplicaSet` and `PodTemplate` references; sluice resolves Deployments
//! only and reports the others as not supported.

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::Value;
use sluice_api::{Rollout, RolloutPhase, RolloutSpec, WorkloadRef};

use crate::model::{Action, Observed, Plan};

/// `spec.workloadRef.scaleDown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleDown {
    /// `never` (or unset): the Deployment is left alone.
    #[default]
    Never,
    /// `onsuccess`: scaled to zero once the Rollout is Healthy.
    OnSuccess,
    /// `progressively`: scaled down as the Rollout's pods become ready.
    Progressively,
}

impl ScaleDown {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("onsuccess") => Self::OnSuccess,
            Some("progressively") => Self::Progressively,
            _ => Self::Never,
        }
    }
}

/// The referenced Deployment as the planner reads it, with the Rollout's last status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadObserved {
    /// The Deployment's name.
    pub name: String,
    /// What becomes of it.
    pub scale_down: ScaleDown,
    /// Its `spec.replicas`.
    pub replicas: i32,
    /// Its `metadata.generation`.
    pub generation: i64,
    /// The Rollout's status said Healthy.
    pub healthy: bool,
    /// The Rollout's `status.readyReplicas`.
    pub ready: i32,
}

/// A Rollout with its `workloadRef` resolved.
#[derive(Debug)]
pub enum Resolved {
    /// It has no `workloadRef`.
    Plain,
    /// The Rollout with the Deployment's template (and selector), and the Deployment.
    Resolved(Box<Rollout>, WorkloadObserved),
    /// The reference cannot be resolved: Argo's InvalidSpec message.
    Invalid(String),
}

/// Argo's message for a reference that cannot be resolved (`InvalidWorkloadRef`: a
/// `field.Invalid` of `spec.workloadRef`, the value printed as Go's `%#v`).
fn invalid(reference: &WorkloadRef, problem: &str) -> String {
    let text = |v: &Option<String>| format!("{:?}", v.as_deref().unwrap_or_default());
    format!(
        "spec.workloadRef: Invalid value: v1alpha1.ObjectRef{{APIVersion:{}, Kind:{}, Name:{}, ScaleDown:{}}}: {problem}",
        text(&reference.api_version),
        text(&reference.kind),
        text(&reference.name),
        text(&reference.scale_down),
    )
}

/// Resolves `rollout`'s `workloadRef` from the Deployments in `deployments`.
pub fn resolve(rollout: &Rollout, deployments: &Store<Deployment>) -> Resolved {
    let Some(reference) = rollout.spec.workload_ref.as_ref() else {
        return Resolved::Plain;
    };
    let template_set = rollout
        .spec
        .template
        .as_ref()
        .is_some_and(|t| !t.as_object().is_empty());
    if template_set {
        return Resolved::Invalid(invalid(
            reference,
            "template must be empty for workload reference rollout",
        ));
    }
    let api_version = reference.api_version.as_deref().unwrap_or_default();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let kind = reference.kind.as_deref().unwrap_or_default();
    if (group, kind) != ("apps", "Deployment") {
        return Resolved::Invalid(invalid(
            reference,
            &format!("workload of type {group}/{kind} is not supported"),
        ));
    }
    let namespace = rollout.namespace().unwrap_or_default();
    let name = reference.name.clone().unwrap_or_default();
    let Some(deployment) = deployments.get(&ObjectRef::new(&name).within(&namespace)) else {
        return Resolved::Invalid(invalid(
            reference,
            &format!("deployments.apps \"{namespace}/{name}\" not found"),
        ));
    };
    let mut resolved = rollout.clone();
    let spec = deployment.spec.clone().unwrap_or_default();
    let template = match serde_json::to_value(&spec.template) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    resolved.spec.template = Some(sluice_api::Preserved::from_object(template));
    if resolved.spec.selector.is_none() {
        resolved.spec.selector = Some(spec.selector.clone());
    }
    let status = rollout.status.as_ref();
    let observed = WorkloadObserved {
        name,
        scale_down: ScaleDown::parse(reference.scale_down.as_deref()),
        replicas: spec.replicas.unwrap_or(1),
        generation: deployment.metadata.generation.unwrap_or(0),
        healthy: status.and_then(|s| s.phase) == Some(RolloutPhase::Healthy),
        ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
    };
    Resolved::Resolved(Box::new(resolved), observed)
}

/// The first problem with a spec, for a Rollout read with its `workloadRef` resolved: the
/// reference's own fields, then the template it brought (its emptiness was checked when
/// resolving).
pub fn validate(spec: &RolloutSpec) -> Option<String> {
    let first = |spec: &RolloutSpec| {
        sluice_api::validation::validate_rollout(spec)
            .first()
            .map(ToString::to_string)
    };
    if spec.workload_ref.is_none() {
        return first(spec);
    }
    let bare = RolloutSpec {
        template: None,
        ..spec.clone()
    };
    let inline = RolloutSpec {
        workload_ref: None,
        ..spec.clone()
    };
    first(&bare).or_else(|| spec.template.as_ref().and_then(|_| first(&inline)))
}

/// The Deployment's replicas `scaleDown` asks for after `plan`, if they change: Argo scales it
/// only while the Rollout runs its first revision — to zero once the Rollout is Healthy
/// (`onsuccess`, `progressively`), else (`progressively`) to the replicas the Rollout's ready
/// pods do not cover yet, once some are ready or its ReplicaSet is scaled down.
pub fn scale_down(observed: &Observed<'_>, plan: &Plan) -> Option<Action> {
    let workload = observed.workload.as_ref()?;
    let current = observed.replica_set(&observed.hash)?;
    if current.revision != 1 {
        return None;
    }
    let target = match workload.scale_down {
        ScaleDown::Never => return None,
        _ if workload.healthy => 0,
        ScaleDown::OnSuccess => return None,
        ScaleDown::Progressively => {
            let planned = plan
                .actions
                .iter()
                .find_map(|a| match a {
                    Action::Scale { name, replicas, .. } if *name == current.name => {
                        Some(*replicas)
                    }
                    _ => None,
                })
                .unwrap_or(current.replicas);
            if workload.ready > 0 || current.replicas > planned {
                (observed.replicas - workload.ready).max(0)
            } else {
                return None;
            }
        }
    };
    (target != workload.replicas).then(|| Action::ScaleWorkload {
        name: workload.name.clone(),
        replicas: target,
    })
}

#[cfg(test)]
mod tests;
