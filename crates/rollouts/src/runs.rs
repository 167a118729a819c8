//! A Rollout's AnalysisRuns: the controller's reading of one ([`run_state`]), the object a
//! gate's new run becomes ([`desired`]: named, labelled, annotated and owned as Argo's), and
//! what happens to the runs no gate follows any more ([`Planner::runs_housekeeping`]): those
//! still going are terminated (promote --full, abort, fast rollback, a newer template, a
//! finished update), finished ones are kept up to `successfulRunHistoryLimit` and
//! `unsuccessfulRunHistoryLimit`, newest first, and deleted once their ReplicaSet is gone
//! (Argo's `FilterAnalysisRunsToDelete`). Pure.

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};
use serde_json::json;
use sluice_api::{
    AnalysisPhase, AnalysisRun, Rollout,
    names::{annotation, label},
};

use crate::{
    gate::{NewRun, RunKind, RunState},
    model::Action,
    planner::Planner,
};

/// The controller's reading of a run (`None`: not a run of a Rollout's gate).
pub fn run_state(run: &AnalysisRun) -> Option<RunState> {
    let labels = run.labels();
    let kind = RunKind::from_labels(
        labels.get(label::ROLLOUT_TYPE)?,
        labels.get(label::STEP_INDEX).map(String::as_str),
    )?;
    let status = run.status.as_ref();
    let failed_metric = status
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|results| {
            results.iter().find(|r| {
                matches!(r.phase, AnalysisPhase::Failed | AnalysisPhase::Error)
                    && r.dry_run != Some(true)
            })
        })
        .map(|r| r.name.clone());
    Some(RunState {
        name: run.name_any(),
        kind,
        hash: labels.get(label::POD_TEMPLATE_HASH)?.clone(),
        phase: status.map_or(AnalysisPhase::Pending, |s| s.phase),
        message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
        terminate: run.spec.terminate(),
        created: run.metadata.creation_timestamp.as_ref().map(|t| t.0),
        failed_metric,
    })
}

/// The AnalysisRun `run` becomes, owned by `rollout`: Argo's labels (the hash, `rollout-type`,
/// `step-index`, the instance id, the Rollout's selector, `analysisRunMetadata`) and the
/// revision annotation.
pub fn desired(run: &NewRun, rollout: &Rollout) -> Result<AnalysisRun, serde_json::Error> {
    let mut labels: BTreeMap<String, String> = run.prepared.labels.clone();
    labels.insert(label::POD_TEMPLATE_HASH.into(), run.hash.clone());
    labels.insert(label::ROLLOUT_TYPE.into(), run.kind.label().into());
    if let RunKind::Step(index) = run.kind {
        labels.insert(label::STEP_INDEX.into(), index.to_string());
    }
    if let Some(id) = rollout.labels().get(label::CONTROLLER_INSTANCE_ID) {
        labels.insert(label::CONTROLLER_INSTANCE_ID.into(), id.clone());
    }
    let mut annotations = run.prepared.annotations.clone();
    annotations.insert(annotation::REVISION.into(), run.revision.to_string());
    let owner = rollout.controller_owner_ref(&());
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": run.name,
            "namespace": rollout.namespace(),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": owner.map(|o| vec![o]),
        },
        "spec": run.prepared.spec,
    }))
}

impl Planner<'_> {
    /// Runs no gate follows now: terminated while they go on (every one when `all`: the
    /// update is over or aborted), pruned beyond the history limits once finished.
    pub fn runs_housekeeping(&mut self, all: bool) {
        let observed = self.observed;
        let tracked: Vec<String> = self
            .plan
            .progress
            .runs
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let current = |name: &str| tracked.iter().any(|t| t == name);
        for run in &observed.analysis.runs {
            if !run.phase.completed() && !run.terminate && (all || !current(&run.name)) {
                let name = run.name.clone();
                self.plan.actions.push(Action::TerminateRun { name });
            }
        }
        let mut finished: Vec<_> = observed
            .analysis
            .runs
            .iter()
            .filter(|r| r.phase.completed() && !current(&r.name))
            .collect();
        finished.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
        let (mut successful, mut unsuccessful) = (0, 0);
        let analysis = &observed.analysis;
        for run in finished {
            let kept = if observed.replica_set(&run.hash).is_none() {
                false
            } else if run.phase == AnalysisPhase::Successful {
                successful += 1;
                successful <= analysis.successful_limit
            } else {
                unsuccessful += 1;
                unsuccessful <= analysis.unsuccessful_limit
            };
            if !kept {
                let name = run.name.clone();
                self.plan.actions.push(Action::DeleteRun { name });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_read_from_its_labels_and_status() {
        let run: AnalysisRun = serde_json::from_value(json!({
            "metadata": {"name": "demo-abc-2-1", "labels": {
                "rollout-type": "Step", "step-index": "1", "rollouts-pod-template-hash": "abc"}},
            "spec": {"metrics": []},
            "status": {"phase": "Failed", "message": "Metric \"errors\" assessed Failed",
                "metricResults": [{"name": "dry", "phase": "Failed", "dryRun": true},
                    {"name": "errors", "phase": "Failed"}]}
        }))
        .unwrap();
        let state = run_state(&run).unwrap();
        assert_eq!(state.kind, RunKind::Step(1));
        assert_eq!(state.hash, "abc");
        assert_eq!(state.phase, AnalysisPhase::Failed);
        assert_eq!(state.failed_metric.as_deref(), Some("errors"));
        let mut other = run.clone();
        other.metadata.labels = None;
        assert_eq!(run_state(&other), None, "not a gate's run");
    }

    #[test]
    fn a_new_run_carries_argos_labels_annotation_and_owner() {
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop", "uid": "u1",
                "labels": {"argo-rollouts.argoproj.io/controller-instance-id": "x"}},
            "spec": {"selector": {"matchLabels": {"app": "demo"}}, "template": {}}
        }))
        .unwrap();
        let mut prepared = crate::gate::Prepared::default();
        prepared.labels.insert("team".into(), "a".into());
        let run = NewRun {
            name: "demo-abc-2-pre".into(),
            kind: RunKind::PrePromotion,
            hash: "abc".into(),
            revision: 2,
            prepared,
        };
        let object = serde_json::to_value(desired(&run, &rollout).unwrap()).unwrap();
        let meta = &object["metadata"];
        assert_eq!(meta["labels"]["rollout-type"], "PrePromotion");
        assert_eq!(meta["labels"]["rollouts-pod-template-hash"], "abc");
        assert_eq!(
            meta["labels"]["argo-rollouts.argoproj.io/controller-instance-id"],
            "x"
        );
        assert_eq!(meta["labels"]["team"], "a");
        assert_eq!(meta["annotations"]["rollout.argoproj.io/revision"], "2");
        assert_eq!(meta["ownerReferences"][0]["uid"], "u1");
        assert_eq!(meta["ownerReferences"][0]["controller"], true);
    }
}
