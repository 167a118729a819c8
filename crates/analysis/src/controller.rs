//! The AnalysisRun controller's wiring and reconcile: one watch of AnalysisRuns (with Argo's
//! `controller-instance-id` selection), one of the Jobs Job metrics create (each wakes the run
//! that owns it) and one of their pods (for image pull errors). A reconcile reads the run from
//! the store, resolves its arguments (Secrets are read through the API, never stored or
//! logged), and runs [`plan::begin`] → the providers → [`plan::finish`] → [`crate::apply`].
//!
//! A restart loses nothing and repeats nothing: every measurement lives in the run's status,
//! due times are computed from it, and a status write carries the version it was planned
//! from. A measurement whose write conflicts with a concurrent change of the run's spec (a
//! `terminate`) is re-planned on the fresh run rather than dropped.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, future};
use jiff::Timestamp;
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Pod, Secret},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        Controller,
        controller::{Action as Requeue, Config as ControllerConfig},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use sluice_api::{AnalysisRun, names::label};
use sluice_reconcile::{
    backoff::Backoff,
    events::{self, Recorder},
    expectations::Expectations,
    informer,
};

use crate::{
    apply::{ApplyError, Target, owner_key},
    args::{ArgsError, Values},
    metrics::Metrics,
    plan::{self, Expiry, Pass, Taken},
    provider::{
        Providers, RunContext, job::JobProvider, prometheus::Prometheus, transport::Transport,
        web::Web,
    },
    schedule::Task,
};

/// Why a reconcile failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Writing failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Reading the run failed.
    #[error("reading the AnalysisRun: {0}")]
    Read(#[from] kube::Error),
}

/// What the controller handles.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Only runs labelled `argo-rollouts.argoproj.io/controller-instance-id` with this value;
    /// without it, only runs without that label (Argo's `--instance-id`).
    pub instance_id: Option<String>,
    /// Only this namespace (default: all).
    pub namespace: Option<String>,
    /// The Prometheus server of metrics that name none (`--prometheus-address`, the one
    /// `sluice up --prometheus` starts, or `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    pub prometheus_address: Option<String>,
    /// How many runs reconcile at once (Argo's `--analysis-threads`; 0 means Argo's default,
    /// 30): bounded, so thousands of runs due together do not hold thousands of requests in
    /// memory at once.
    pub threads: u16,
}

/// Argo's `--analysis-threads` default.
const THREADS: u16 = 30;

struct Context {
    client: Client,
    ready: Arc<AtomicBool>,
    runs: Store<AnalysisRun>,
    providers: Providers,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    expectations: Expectations,
    backoff: Backoff<ObjectRef<AnalysisRun>>,
}

fn api<K>(client: &Client, settings: &Settings) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &settings.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// The run that controls a Job.
fn owning_run(job: &Job) -> Option<ObjectRef<AnalysisRun>> {
    let owner = job
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "AnalysisRun")?;
    Some(ObjectRef::new(&owner.name).within(&job.namespace().unwrap_or_default()))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long a run with nothing scheduled waits before it is looked at again anyway.
const RESYNC: Duration = Duration::from_secs(15 * 60);

/// Runs the controller until its watches end (the API server went away).
pub async fn run(client: Client, settings: Settings, metrics: Arc<Metrics>) {
    let instance = match &settings.instance_id {
        Some(id) => format!("{}={id}", label::CONTROLLER_INSTANCE_ID),
        None => format!("!{}", label::CONTROLLER_INSTANCE_ID),
    };
    let (runs, run_changes, run_watch) = informer::shared(
        api::<AnalysisRun>(&client, &settings),
        watcher::Config::default().labels(&instance),
    );
    let (jobs, job_changes, job_watch) = informer::shared(
        api::<Job>(&client, &settings),
        watcher::Config::default().labels(label::ANALYSIS_RUN_UID),
    );
    let (pods, pod_watch) = informer::store_only(
        api::<Pod>(&client, &settings),
        watcher::Config::default().labels(label::ANALYSIS_RUN_UID),
    );
    metrics.watch(runs.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let gate = {
        let (jobs, pods, ready) = (jobs.clone(), pods.clone(), ready.clone());
        AbortOnDrop(tokio::spawn(async move {
            let (a, b) = future::join(jobs.wait_until_ready(), pods.wait_until_ready()).await;
            if a.is_ok() && b.is_ok() {
                ready.store(true, Ordering::Release);
            }
        }))
    };
    let transport = Transport::new();
    let providers = Providers {
        web: Web::with_transport(transport.clone()),
        job: Some(JobProvider::new(client.clone(), jobs, pods)),
        prometheus: Prometheus::new(transport, settings.prometheus_address.clone()),
    };
    let controller = Controller::for_shared_stream(run_changes, runs.clone())
        .watches_shared_stream(job_changes, |job| owning_run(&job));
    let context = Arc::new(Context {
        recorder: events::recorder(&client, "rollouts-controller"),
        client,
        ready,
        runs,
        providers,
        metrics,
        expectations: Expectations::default(),
        backoff: Backoff::default(),
    });
    let controller = controller
        .with_config(
            ControllerConfig::default().concurrency(match settings.threads {
                0 => THREADS,
                n => n,
            }),
        )
        .run(reconcile, error_policy, context)
        .for_each(|_| future::ready(()));
    tokio::select! {
        () = controller => {}
        () = run_watch => {}
        () = job_watch => {}
        () = pod_watch => {}
    }
    drop(gate);
}

fn error_policy(run: Arc<AnalysisRun>, err: &ControllerError, context: Arc<Context>) -> Requeue {
    context.metrics.failed();
    let (failures, delay) = context.backoff.failed(ObjectRef::from_obj(run.as_ref()));
    tracing::warn!(
        "analysisrun {}: {err} (failure {failures} in a row; retrying in {delay:?})",
        owner_key(&run)
    );
    Requeue::requeue(delay)
}

/// The values of the run's arguments: Secrets read from its namespace.
async fn values(client: &Client, run: &AnalysisRun) -> Result<Values, ArgsError> {
    let namespace = run.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut read: BTreeMap<String, Result<Secret, String>> = BTreeMap::new();
    for arg in run.spec.args.iter().flatten() {
        let Some(reference) = arg
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        else {
            continue;
        };
        if arg.value.is_some() || read.contains_key(&reference.name) {
            continue;
        }
        let secret = secrets.get(&reference.name).await.map_err(|e| match e {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        });
        read.insert(reference.name.clone(), secret);
    }
    let object = serde_json::to_value(run).unwrap_or_default();
    Values::resolve(run.spec.args.as_deref().unwrap_or_default(), &object, |r| {
        let secret = read
            .get(&r.name)
            .cloned()
            .unwrap_or_else(|| Err(format!("secrets \"{}\" not found", r.name)))
            .map_err(ArgsError::Secret)?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .map(|s| s.clone().into_bytes())
            })
            .ok_or_else(|| {
                ArgsError::Secret(format!(
                    "key '{}' does not exist in secret '{}'",
                    r.key, r.name
                ))
            })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn context_of(run: &AnalysisRun, metric: &str) -> RunContext {
    let result = run
        .status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|r| r.iter().find(|r| r.name == metric));
    RunContext {
        name: run.name_any(),
        namespace: run.namespace().unwrap_or_default(),
        uid: run.uid().unwrap_or_default(),
        taken: result.map_or(0, |r| r.count.unwrap_or(0) + r.error.unwrap_or(0)),
    }
}

/// Runs the due tasks through the providers, concurrently.
async fn measure(
    context: &Context,
    run: &AnalysisRun,
    values: &Values,
    due: Vec<crate::schedule::Due>,
) -> Result<Vec<(Taken, Timestamp, &'static str)>, String> {
    let mut jobs = Vec::new();
    for d in due {
        let metric = values
            .apply(&run.spec.metrics[d.metric])
            .map_err(|e| format!("Unable to resolve metric arguments: {e}"))?;
        jobs.push(async move {
            let ctx = context_of(run, &metric.name);
            let provider = context.providers.for_metric(&metric);
            let new = matches!(d.task, Task::Take);
            let (measurement, metadata, kind) = match provider {
                Err(message) => {
                    let measurement = match d.task {
                        Task::Take => crate::provider::started(),
                        Task::Resume(m) | Task::Terminate(m) => m,
                    };
                    (
                        crate::provider::error(measurement, message),
                        None,
                        "Unknown",
                    )
                }
                Ok(provider) => match d.task {
                    Task::Take => (
                        provider.run(&ctx, &metric).await,
                        provider.metadata(&metric),
                        provider.kind(),
                    ),
                    Task::Resume(m) => (
                        provider.resume(&ctx, &metric, m).await,
                        None,
                        provider.kind(),
                    ),
                    Task::Terminate(m) => {
                        let mut m = provider.terminate(&ctx, &metric, m).await;
                        if matches!(
                            m.phase,
                            sluice_api::AnalysisPhase::Successful
                                | sluice_api::AnalysisPhase::Inconclusive
                        ) {
                            m.message = Some("Metric Terminated".into());
                        }
                        (m, None, provider.kind())
                    }
                },
            };
            (
                Taken {
                    metric: d.metric,
                    new,
                    measurement,
                    metadata,
                },
                d.since,
                kind,
            )
        });
    }
    Ok(future::join_all(jobs).await)
}

async fn reconcile(
    run: Arc<AnalysisRun>,
    context: Arc<Context>,
) -> Result<Requeue, ControllerError> {
    let started = Instant::now();
    if !context.ready.load(Ordering::Acquire) {
        return Ok(Requeue::requeue(Duration::from_millis(200)));
    }
    let owner = owner_key(&run);
    let runs = &context.runs;
    if !context.expectations.satisfied(&owner, |key| {
        runs.get(&ObjectRef::new(&key.2).within(&key.1))
            .map(|r| r.resource_version().and_then(|v| v.parse().ok()))
    }) {
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }
    let Some(run) = runs.get(&ObjectRef::from_obj(run.as_ref())) else {
        return Ok(Requeue::await_change());
    };
    if run.meta().deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    let requeue = pass(&context, &run).await?;
    context.metrics.reconciled(started.elapsed().as_secs_f64());
    context
        .backoff
        .succeeded(&ObjectRef::from_obj(run.as_ref()));
    Ok(requeue)
}

fn after(at: Option<Timestamp>, now: Timestamp) -> Requeue {
    match at {
        Some(at) => {
            let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            Requeue::requeue(wait.max(Duration::from_millis(50)).min(RESYNC))
        }
        None => Requeue::requeue(RESYNC),
    }
}

/// One pass over `run`: plan, measure, record.
async fn pass(context: &Context, run: &AnalysisRun) -> Result<Requeue, ControllerError> {
    let now = Timestamp::now();
    let completed = run.status.as_ref().is_some_and(|s| s.phase.completed());
    let values = if completed {
        Ok(Values::default())
    } else {
        values(&context.client, run).await
    };
    let target = Target {
        client: &context.client,
        recorder: &context.recorder,
        expectations: &context.expectations,
        run,
    };
    let (prepared, due) = match plan::begin(run, values.as_ref(), now) {
        Pass::Complete(Expiry::Keep) => return Ok(Requeue::await_change()),
        Pass::Complete(Expiry::At(at)) => return Ok(after(Some(at), now)),
        Pass::Complete(Expiry::Delete) => {
            target.delete(now).await?;
            return Ok(Requeue::await_change());
        }
        Pass::Invalid(outcome) => {
            if target.write_status(&outcome.status).await? {
                target.record(&outcome.events).await;
            }
            return Ok(Requeue::await_change());
        }
        Pass::Measure { prepared, due } => (prepared, due),
    };
    let values = values.unwrap_or_default();
    let taken = match measure(context, run, &values, due).await {
        Ok(taken) => taken,
        Err(message) => {
            let outcome = plan::fail(run, values.redact(&message), now);
            if target.write_status(&outcome.status).await? {
                target.record(&outcome.events).await;
            }
            return Ok(Requeue::await_change());
        }
    };
    let finished_at = Timestamp::now();
    let outcome = plan::finish(
        run,
        &prepared,
        &values,
        taken.iter().map(|t| t.0.clone()).collect(),
        finished_at,
    );
    let written = match target.write_status(&outcome.status).await {
        Ok(written) => written,
        Err(ApplyError::Conflict) if !taken.is_empty() => {
            // The run changed meanwhile (a terminate): record the same measurements on it,
            // if its status is still the one they were taken against.
            let fresh = Api::<AnalysisRun>::namespaced(
                context.client.clone(),
                &run.namespace().unwrap_or_default(),
            )
            .get(&run.name_any())
            .await?;
            if fresh.status != run.status {
                return Err(ApplyError::Conflict.into());
            }
            let outcome = plan::finish(
                &fresh,
                &prepared,
                &values,
                taken.iter().map(|t| t.0.clone()).collect(),
                finished_at,
            );
            let target = Target {
                run: &fresh,
                ..target
            };
            let written = target.write_status(&outcome.status).await?;
            return Ok(recorded(context, &target, &outcome, &taken, written, now).await);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(recorded(context, &target, &outcome, &taken, written, now).await)
}

/// After the status write: events, provider garbage collection, metrics, the next look.
async fn recorded(
    context: &Context,
    target: &Target<'_>,
    outcome: &plan::Outcome,
    taken: &[(Taken, Timestamp, &'static str)],
    written: bool,
    now: Timestamp,
) -> Requeue {
    if written {
        target.record(&outcome.events).await;
        let recorded_at = Timestamp::now();
        for (t, since, kind) in taken {
            if t.measurement.phase.completed() {
                context.metrics.measured(kind, t.measurement.phase);
            }
            if t.new {
                let delay = recorded_at.duration_since(*since).as_secs_f64();
                context.metrics.delayed(delay.max(0.0));
            }
        }
        for (metric, keep) in &outcome.trimmed {
            let run = target.run;
            let Some(spec) = run.spec.metrics.get(*metric) else {
                continue;
            };
            if let Ok(provider) = context.providers.for_metric(spec) {
                let ctx = context_of(run, &spec.name);
                provider.garbage_collect(&ctx, spec, *keep).await;
            }
        }
    }
    after(outcome.requeue, now)
}
