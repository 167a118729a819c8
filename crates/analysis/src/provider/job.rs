//! The `job` provider, Argo's `metricproviders/job`: a measurement is a batch Job made from the
//! metric's spec (kept exactly as written), named `<run uid>.<metric>.<n>` (the metric's name
//! shortened to keep the name within 63 characters), labelled `analysisrun.argoproj.io/uid`
//! (its pods too), annotated with the run's name and namespace and the metric's name, and
//! owned by the run — so it is deleted with it. The Job's `Complete` condition makes the
//! measurement Successful, `Failed` makes it Failed; a pod stuck on `ErrImagePull`,
//! `ImagePullBackOff` or `InvalidImageName` makes it Inconclusive; a terminated run deletes
//! the Job and the measurement is Inconclusive. In between, the measurement is checked again
//! after √(2 × seconds elapsed) seconds.

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::{
    api::{batch::v1::Job, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy},
    core::GroupVersionKind,
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::{Value, json};
use sluice_api::{
    AnalysisPhase, Measurement, Metric,
    names::{annotation, label},
};

use super::{Provider, RunContext, error, finished, started};

/// The measurement's metadata key holding its Job's name.
pub const JOB_NAME: &str = "job-name";
/// The measurement's metadata key holding its Job's namespace.
pub const JOB_NAMESPACE: &str = "job-namespace";

/// Container waiting reasons a Job never recovers from by itself.
const TERMINAL_WAITING: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// Kubernetes' limit on a name used as a label value.
const NAME_LIMIT: usize = 63;

/// Job metrics: the cluster client and the stores of metric Jobs and their pods (both selected
/// by the `analysisrun.argoproj.io/uid` label).
#[derive(Clone)]
pub struct JobProvider {
    client: Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
}

/// The Job of measurement number `n` of a metric (Argo's `newJobName`).
pub fn job_name(uid: &str, metric: &str, n: i32) -> String {
    let name = format!("{uid}.{metric}.{n}");
    if name.len() <= NAME_LIMIT {
        return name;
    }
    let over = name.len() - NAME_LIMIT;
    let mut keep = metric.len().saturating_sub(over);
    while !metric.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{uid}.{}.{n}", &metric[..keep])
}

/// The Job for a measurement of `metric` in `run`, as JSON (the spec exactly as written).
pub fn job_manifest(run: &RunContext, metric: &Metric) -> Option<Value> {
    let job = metric.provider.job.as_ref()?;
    let mut spec = Value::Object(job.spec.as_object().clone());
    let pod_labels = &mut spec["template"]["metadata"]["labels"];
    if !pod_labels.is_object() {
        *pod_labels = json!({});
    }
    pod_labels[label::ANALYSIS_RUN_UID] = json!(run.uid);
    let metadata = job.metadata.as_ref();
    let mut labels = json!(metadata.and_then(|m| m.labels.clone()).unwrap_or_default());
    labels[label::ANALYSIS_RUN_UID] = json!(run.uid);
    let mut annotations = json!(
        metadata
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
    );
    annotations[annotation::ANALYSIS_RUN_NAME] = json!(run.name);
    annotations[annotation::ANALYSIS_RUN_NAMESPACE] = json!(run.namespace);
    annotations[annotation::ANALYSIS_RUN_METRIC_NAME] = json!(metric.name);
    Some(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(&run.uid, &metric.name, run.taken + 1),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisRun",
                "name": run.name,
                "uid": run.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    }))
}

/// Why a Job's pods cannot make progress, in Argo's words.
pub fn stuck(pods: &[&Pod]) -> Option<String> {
    for pod in pods {
        let status = pod.status.as_ref();
        let containers = status
            .and_then(|s| s.init_container_statuses.as_ref())
            .into_iter()
            .flatten()
            .chain(
                status
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten(),
            );
        for container in containers {
            let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if TERMINAL_WAITING.contains(&reason) {
                return Some(format!(
                    "Pod {}, container {} has terminal error ({reason}): {}",
                    pod.name_any(),
                    container.name,
                    waiting.message.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    None
}

/// The measurement's phase from its Job's conditions, when it finished.
pub fn outcome(job: &Job) -> Option<AnalysisPhase> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(AnalysisPhase::Successful),
            "Failed" => Some(AnalysisPhase::Failed),
            _ => None,
        })
}

fn job_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1", "Job"))
}

/// The Job a measurement refers to: namespace and name.
fn reference(measurement: &Measurement, run: &RunContext) -> Result<(String, String), String> {
    let metadata = measurement
        .metadata
        .as_ref()
        .ok_or("job metadata reference missing")?;
    let name = metadata
        .get(JOB_NAME)
        .filter(|n| !n.is_empty())
        .ok_or("job metadata reference missing")?;
    let namespace = metadata
        .get(JOB_NAMESPACE)
        .filter(|n| !n.is_empty())
        .unwrap_or(&run.namespace);
    Ok((namespace.clone(), name.clone()))
}

impl JobProvider {
    /// A provider reading Jobs and pods from these stores.
    pub fn new(client: Client, jobs: Store<Job>, pods: Store<Pod>) -> Self {
        Self { client, jobs, pods }
    }

    async fn create(&self, run: &RunContext, metric: &Metric) -> Measurement {
        let mut measurement = started();
        let Some(manifest) = job_manifest(run, metric) else {
            return error(measurement, "not a job metric");
        };
        let object: DynamicObject = match serde_json::from_value(manifest) {
            Ok(object) => object,
            Err(e) => return error(measurement, format!("job initialization failed: {e}")),
        };
        let name = object.name_any();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &run.namespace, &job_resource());
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Created by an earlier pass whose status write was lost: ours if the run owns it.
                let existing = match api.get(&name).await {
                    Ok(existing) => existing,
                    Err(e) => return error(measurement, format!("job create {name}: {e}")),
                };
                let owned = existing
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && o.uid == run.uid);
                if !owned {
                    return error(measurement, status.message);
                }
            }
            Err(e) => return error(measurement, format!("job create {name}: {e}")),
        }
        measurement.metadata = Some(
            [
                (JOB_NAME.to_owned(), name),
                (JOB_NAMESPACE.to_owned(), run.namespace.clone()),
            ]
            .into(),
        );
        // Checked at once, so a Job that is quick to end is seen ending.
        measurement.resume_at = measurement.started_at.clone();
        measurement
    }

    /// The Job, from the store, else from the API (a Job created this pass may not have
    /// reached the store yet).
    async fn job(&self, namespace: &str, name: &str) -> Result<Job, String> {
        if let Some(job) = self.jobs.get(&ObjectRef::new(name).within(namespace)) {
            return Ok((*job).clone());
        }
        Api::<Job>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| match e {
                kube::Error::Api(status) => status.message,
                other => other.to_string(),
            })
    }

    async fn check(&self, run: &RunContext, measurement: Measurement) -> Measurement {
        let (namespace, name) = match reference(&measurement, run) {
            Ok(r) => r,
            Err(e) => return error(measurement, e),
        };
        let job = match self.job(&namespace, &name).await {
            Ok(job) => job,
            Err(e) => return error(measurement, e),
        };
        if let Some(phase) = outcome(&job) {
            return finished(measurement, phase);
        }
        let uid = job.uid().unwrap_or_default();
        let pods = self.pods.state();
        let pods: Vec<&Pod> = pods
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
            .collect();
        if let Some(message) = stuck(&pods) {
            let mut measurement = finished(measurement, AnalysisPhase::Inconclusive);
            measurement.message = Some(message);
            return measurement;
        }
        let now = Timestamp::now();
        let started = measurement.started_at.as_ref().map_or(now, |t| t.0);
        let elapsed = now.duration_since(started).as_secs_f64().max(0.0);
        let delay = jiff::SignedDuration::from_secs_f64((2.0 * elapsed).sqrt().max(1.0));
        let mut measurement = measurement;
        measurement.resume_at = now.checked_add(delay).ok().map(Time);
        measurement
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), String> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        match Api::<Job>::namespaced(self.client.clone(), namespace)
            .delete(name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Provider for JobProvider {
    fn kind(&self) -> &'static str {
        "Job"
    }

    fn run<'a>(&'a self, run: &'a RunContext, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(self.create(run, metric))
    }

    fn resume<'a>(
        &'a self,
        run: &'a RunContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(self.check(run, measurement))
    }

    fn terminate<'a>(
        &'a self,
        run: &'a RunContext,
        _metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let (namespace, name) = match reference(&measurement, run) {
                Ok(r) => r,
                Err(e) => return error(measurement, e),
            };
            match self.delete(&namespace, &name).await {
                Ok(()) => {
                    let mut measurement = finished(measurement, AnalysisPhase::Inconclusive);
                    measurement.message = Some("Metric Terminated".into());
                    measurement
                }
                Err(e) => error(measurement, e),
            }
        })
    }

    /// Deletes the metric's oldest Jobs beyond `keep`. (Argo counts every Job of the run
    /// against one metric's limit; sluice counts the metric's own.)
    fn garbage_collect<'a>(
        &'a self,
        run: &'a RunContext,
        metric: &'a Metric,
        keep: usize,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let api = Api::<Job>::namespaced(self.client.clone(), &run.namespace);
            let selector = format!("{}={}", label::ANALYSIS_RUN_UID, run.uid);
            let Ok(list) = api.list(&ListParams::default().labels(&selector)).await else {
                return;
            };
            let mut jobs: Vec<Job> = list
                .items
                .into_iter()
                .filter(|j| {
                    j.annotations().get(annotation::ANALYSIS_RUN_METRIC_NAME) == Some(&metric.name)
                })
                .collect();
            jobs.sort_by_key(|j| j.creation_timestamp().map(|t| t.0));
            let excess = jobs.len().saturating_sub(keep);
            for job in &jobs[..excess] {
                if let Err(e) = self.delete(&run.namespace, &job.name_any()).await {
                    tracing::warn!("deleting old metric job {}: {e}", job.name_any());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_sixty_three_characters() {
        let uid = "0f6e9c8e-3c1f-4d0e-9a51-8d7f7c5b4a21";
        assert_eq!(job_name(uid, "smoke", 1), format!("{uid}.smoke.1"));
        let long = job_name(uid, "a-very-long-metric-name-that-goes-on", 12);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(".12"));
    }

    #[test]
    fn jobs_carry_argos_labels_annotations_and_owner() {
        let run = RunContext {
            name: "r".into(),
            namespace: "ns".into(),
            uid: "u".into(),
            taken: 2,
        };
        let metric: Metric = serde_json::from_value(json!({"name": "smoke", "provider": {"job": {
            "metadata": {"labels": {"team": "a"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "sluice/smoke", "futureField": 1}]}}}}}}))
        .unwrap();
        let job = job_manifest(&run, &metric).unwrap();
        assert_eq!(job["metadata"]["name"], "u.smoke.3");
        assert_eq!(job["metadata"]["labels"]["team"], "a");
        assert_eq!(
            job["metadata"]["labels"]["analysisrun.argoproj.io/uid"],
            "u"
        );
        assert_eq!(
            job["metadata"]["annotations"]["analysisrun.argoproj.io/metric-name"],
            "smoke"
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "AnalysisRun");
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["analysisrun.argoproj.io/uid"],
            "u"
        );
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["futureField"],
            1
        );
    }
}
