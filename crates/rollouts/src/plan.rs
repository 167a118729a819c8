//! The one `plan` for every strategy: classify the Rollout into a [`Stage`] — invalid,
//! without its ReplicaSet, manually paused, aborted, steady, updating — then plan that stage:
//! the first three the same way for every strategy, the others in the strategy's planner
//! ([`crate::blue_green`], [`crate::canary`]). Pure: `now` is a parameter.

use jiff::Timestamp;
use sluice_api::AntiAffinity;

use crate::{
    blue_green, canary,
    model::{
        Action, Avoid, Degraded, NamedService, Observed, Phase, Plan, ReplicaSetState,
        ServiceState, Strategy,
    },
    planner::Planner,
    restart::{CHECK, Restart},
    workload,
};

/// Where a Rollout stands, as the planners see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage<'o> {
    /// The spec is invalid (or names a Service that does not exist): nothing is scaled.
    Invalid,
    /// No ReplicaSet runs the current template yet.
    Create,
    /// `spec.paused`.
    ManuallyPaused,
    /// The update was aborted: back to stable.
    Aborted {
        /// The stable ReplicaSet.
        stable: &'o ReplicaSetState,
        /// The aborted one.
        current: &'o ReplicaSetState,
    },
    /// The current ReplicaSet is (or becomes, on the first deploy) the stable one.
    Steady {
        /// The current ReplicaSet.
        current: &'o ReplicaSetState,
        /// There is no stable ReplicaSet yet.
        first: bool,
    },
    /// A new template is rolling out.
    Updating {
        /// The stable ReplicaSet.
        stable: &'o ReplicaSetState,
        /// The current one.
        current: &'o ReplicaSetState,
    },
}

impl Observed<'_> {
    /// The Services the strategy names.
    pub fn services(&self) -> Vec<NamedService> {
        let named = |field, name: Option<&str>, state: Option<&ServiceState>| {
            Some(NamedService {
                field,
                name: name?.to_owned(),
                state: state?.clone(),
            })
        };
        match &self.strategy {
            Strategy::BlueGreen(bg) => [
                named(
                    "activeService",
                    Some(bg.spec.active_service.as_str()),
                    Some(&bg.active),
                ),
                named(
                    "previewService",
                    bg.spec.preview_service(),
                    bg.preview.as_ref(),
                ),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Strategy::Canary(c) => [
                named(
                    "canaryService",
                    c.spec.canary_service.as_deref().filter(|s| !s.is_empty()),
                    c.canary_service.as_ref(),
                ),
                named(
                    "stableService",
                    c.spec.stable_service.as_deref().filter(|s| !s.is_empty()),
                    c.stable_service.as_ref(),
                ),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }

    /// The ReplicaSet of `hash`.
    pub fn replica_set(&self, hash: &str) -> Option<&ReplicaSetState> {
        self.replica_sets.iter().find(|rs| rs.hash == hash)
    }

    /// Argo's InvalidSpec message, if the spec is invalid or names a missing Service.
    fn invalid(&self) -> Option<String> {
        if let Some(problem) = &self.invalid {
            return Some(problem.clone());
        }
        let strategy = match self.strategy {
            Strategy::BlueGreen(_) => "blueGreen",
            Strategy::Canary(_) => "canary",
        };
        self.services()
            .into_iter()
            .find(|s| s.state == ServiceState::Missing)
            .map(|s| {
                format!(
                    "spec.strategy.{strategy}.{}: Invalid value: \"{}\": service \"{}\" not found",
                    s.field, s.name, s.name
                )
            })
    }

    /// Classifies the Rollout.
    pub fn stage(&self) -> Stage<'_> {
        if self.invalid().is_some() {
            return Stage::Invalid;
        }
        let Some(current) = self.replica_set(&self.hash) else {
            return Stage::Create;
        };
        if self.paused {
            return Stage::ManuallyPaused;
        }
        let stable = self
            .status
            .stable
            .as_deref()
            .and_then(|s| self.replica_set(s));
        match stable {
            Some(stable) if self.status.abort && stable.hash != self.hash => {
                Stage::Aborted { stable, current }
            }
            Some(stable) if stable.hash != self.hash => Stage::Updating { stable, current },
            _ => Stage::Steady {
                current,
                first: stable.is_none(),
            },
        }
    }
}

/// The anti-affinity term the strategy asks for.
fn avoid(anti: Option<&AntiAffinity>, stable: Option<&str>) -> Option<Avoid> {
    let anti = anti?;
    Some(Avoid {
        hash: stable?.to_owned(),
        preferred: anti
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .map(|p| p.weight),
    })
}

/// The next step of a Rollout.
pub fn plan(observed: &Observed<'_>, now: Timestamp) -> Plan {
    let mut planner = Planner::new(observed, now, targets_now(observed));
    match observed.stage() {
        Stage::Invalid => {
            let message = observed.invalid().unwrap_or_default();
            planner.phase(Phase::Degraded(Degraded::InvalidSpec(message)));
        }
        Stage::Create if observed.collision => {
            planner.phase(Phase::progressing("more replicas need to be updated"));
        }
        Stage::Create => {
            let revision = observed
                .replica_sets
                .iter()
                .map(|rs| rs.revision)
                .max()
                .unwrap_or(0)
                + 1;
            let anti = match &observed.strategy {
                Strategy::BlueGreen(bg) => bg.spec.anti_affinity.as_ref(),
                Strategy::Canary(c) => c.spec.anti_affinity.as_ref(),
            };
            let stable = observed
                .status
                .stable
                .as_deref()
                .filter(|s| observed.replica_set(s).is_some());
            let avoid = avoid(anti, stable);
            planner
                .plan
                .actions
                .push(Action::CreateReplicaSet { revision, avoid });
            planner.phase(Phase::progressing("more replicas need to be updated"));
        }
        Stage::ManuallyPaused => planner.phase(Phase::ManuallyPaused),
        stage => {
            if let Stage::Aborted { current, .. }
            | Stage::Steady { current, .. }
            | Stage::Updating { current, .. } = stage
            {
                planner.renumber(current);
            }
            match &observed.strategy {
                Strategy::BlueGreen(bg) => blue_green::plan_stage(&mut planner, bg, stage),
                Strategy::Canary(c) => canary::plan_stage(&mut planner, c, stage),
            }
        }
    }
    // The runs no gate follows: terminated, pruned — all of them once the update is over or
    // aborted. Nothing is touched while the spec is invalid.
    let stage = observed.stage();
    if stage != Stage::Invalid {
        let over = matches!(stage, Stage::Aborted { .. } | Stage::Steady { .. })
            || planner.plan.progress.abort;
        planner.runs_housekeeping(over);
        // A restart's evictions are carried out before the plan ([`restart`]); here it is
        // looked at again in time, and recorded once done.
        match restart(observed, now) {
            Restart::Idle => {}
            Restart::Scheduled(at) => planner.soonest(at),
            Restart::Restarting { .. } => {
                let again = planner.plan.requeue.map_or(CHECK, |r| r.min(CHECK));
                planner.plan.requeue = Some(again);
            }
            Restart::Done(at) => planner.plan.restarted_at = Some(at),
        }
        if let Some(scale) = workload::scale_down(observed, &planner.plan) {
            planner.plan.actions.push(scale);
        }
    }
    planner.plan
}

/// Where the Rollout's restart stands (nothing while the spec is invalid): its evictions
/// ([`Restart::action`]) come before the rest of the plan, as in Argo's reconcile.
pub fn restart(observed: &Observed<'_>, now: Timestamp) -> Restart {
    if observed.stage() == Stage::Invalid {
        return Restart::Idle;
    }
    let name = |hash: Option<&str>| {
        hash.and_then(|h| observed.replica_set(h))
            .map(|rs| rs.name.as_str())
    };
    crate::restart::plan(
        &observed.restart,
        observed.replicas,
        &observed.replica_sets,
        name(observed.status.stable.as_deref()),
        name(Some(observed.hash.as_str())),
        now,
    )
}

/// The strategy's targets as they stand before any switch: what its Services select now.
fn targets_now(observed: &Observed<'_>) -> crate::model::Targets {
    match &observed.strategy {
        Strategy::BlueGreen(bg) => crate::model::Targets::BlueGreen {
            active: bg.active.hash().map(str::to_owned),
            preview: bg
                .preview
                .as_ref()
                .and_then(|p| p.hash())
                .map(str::to_owned),
        },
        Strategy::Canary(c) => crate::model::Targets::Canary {
            step_hash: c.step_hash.clone(),
            steps: c.spec.steps().len(),
            weights: match &c.routing {
                crate::model::Routing::Routed(routed) => routed.weights.clone(),
                _ => None,
            },
        },
    }
}
