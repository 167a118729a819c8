//! The I/O side of a sync operation: each reconcile reads the operation's recorded state
//! (`status.operationState`), plans its tasks ([`sync::plan`]), asks the pure state machine
//! ([`operation::advance`]) what comes next, does it — the destination namespace and the dry
//! run on the first step, a step's applies and prunes, hooks deleted before creation — and
//! records the results before returning. Nothing blocks: a step waits for health across
//! reconciles, woken by the objects' changes. A `Terminating` phase (`sluice app
//! terminate-op`) or the sync timeout deletes running hooks and fails the operation.

use std::time::Duration;

use jiff::Timestamp;
use kube::{Api, ResourceExt, api::PropagationPolicy, runtime::controller::Action};
use serde_json::{Value, json};
use sluice_api::{Application, ResourceResult};

use super::{Context, ControllerError, lock, source::Refreshed, write_status};
use crate::{
    apply::{self, Outcome, Status},
    compare::Comparison,
    hooks, ignore,
    operation::{self, Next, Observed, State},
    project, status,
    sync::{self, SyncTask, Task},
    tracking::ResourceKey,
};

fn result(task: &SyncTask, outcome: &Outcome, multi: bool) -> ResourceResult {
    let key = &outcome.key;
    let hook_phase = match outcome.status {
        Status::SyncFailed => "Failed",
        Status::Synced | Status::Pruned if multi => "Running",
        _ => "Succeeded",
    };
    ResourceResult {
        group: key.group.clone(),
        version: outcome
            .api_version
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status: Some(outcome.status.as_str().into()),
        message: Some(outcome.message.clone()),
        hook_type: task.hook.map(|_| task.phase.as_str().into()),
        hook_phase: Some(hook_phase.into()),
        sync_phase: Some(task.phase.as_str().into()),
        images: None,
    }
}

fn live_of(context: &Context, key: &ResourceKey) -> Option<Value> {
    context
        .live
        .watched(&key.group, &key.kind)
        .and_then(|k| k.get(&key.namespace, &key.name))
}

/// Whether the Application asks for Argo CD's strict wait (`sluice.dev/sync-wait: Healthy`).
fn strict(app: &Application) -> bool {
    app.annotations()
        .get(operation::SYNC_WAIT)
        .is_some_and(|w| w.eq_ignore_ascii_case("healthy"))
}

/// The sync settings an operation asks for.
fn settings(app: &Application, sync_op: &Value, revision: &str, started: i64) -> sync::Settings {
    let options = sluice_api::SyncOptions::new(
        app.spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.sync_options.as_deref())
            .unwrap_or_default(),
    );
    let op_options: Vec<String> =
        serde_json::from_value(sync_op["syncOptions"].clone()).unwrap_or_default();
    let op_options = sluice_api::SyncOptions::new(&op_options);
    let only: Vec<(String, String, String)> = sync_op["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap_or_default().to_owned();
            (text("group"), text("kind"), text("name"))
        })
        .collect();
    sync::Settings {
        prune: sync_op["prune"].as_bool().unwrap_or(false),
        apply_out_of_sync_only: options.apply_out_of_sync_only()
            || op_options.apply_out_of_sync_only(),
        // Selective syncs and the apply strategy run no hooks (Argo CD's `skipHooks`).
        skip_hooks: !only.is_empty() || sync_op["syncStrategy"]["apply"].is_object(),
        only,
        prune_last: options.prune_last() || op_options.prune_last(),
        revision: revision.to_owned(),
        started,
    }
}

fn run_options(app: &Application, sync_op: &Value) -> apply::Options {
    let options = sluice_api::SyncOptions::new(
        app.spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.sync_options.as_deref())
            .unwrap_or_default(),
    );
    let op_options: Vec<String> =
        serde_json::from_value(sync_op["syncOptions"].clone()).unwrap_or_default();
    let op_options = sluice_api::SyncOptions::new(&op_options);
    // `argocd app sync --force`: `syncStrategy.apply.force` or `syncStrategy.hook.force`.
    let strategy = &sync_op["syncStrategy"];
    let forced = strategy["apply"]["force"] == true || strategy["hook"]["force"] == true;
    let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
    let create_namespace = (options.create_namespace() && !namespace.is_empty()).then(|| {
        let meta = app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.managed_namespace_metadata.clone())
            .unwrap_or_default();
        apply::NewNamespace {
            name: namespace.clone(),
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
        }
    });
    let propagation = Some(match options.prune_propagation_policy() {
        sluice_api::PropagationPolicy::Background => PropagationPolicy::Background,
        sluice_api::PropagationPolicy::Orphan => PropagationPolicy::Orphan,
        sluice_api::PropagationPolicy::Foreground => PropagationPolicy::Foreground,
    });
    apply::Options {
        dry_run: sync_op["dryRun"].as_bool().unwrap_or(false),
        propagation,
        create_namespace,
        replace: options.replace() || op_options.replace(),
        force: forced || options.force() || op_options.force(),
        server_side: options.server_side_apply() || op_options.server_side_apply(),
    }
}

/// Runs the requested operation one step further, recording where it is.
pub(super) async fn operate(
    api: &Api<Application>,
    app: Application,
    context: &Context,
    (project_name, project): (&str, &Value),
    target: &Refreshed,
    comparison: Comparison,
    (now, application_health): (Timestamp, bool),
) -> Result<Action, ControllerError> {
    let name = app.name_any();
    let operation = serde_json::to_value(&app.operation)?;
    let sync_op = operation["sync"].clone();
    let state = serde_json::to_value(&app.status)?["operationState"].clone();
    let phase = state["phase"].as_str().unwrap_or_default().to_owned();
    let in_progress = matches!(phase.as_str(), "Running" | "Terminating");
    let (app, started) = if in_progress {
        let started = state["startedAt"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        (app, started)
    } else {
        // Whole seconds, as recorded: later reconciles read it back from `startedAt`.
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let patch = status::running(&app, &operation, now, &target.revision);
        (write_status(api, &app, patch).await?, now)
    };
    let recorded: Vec<ResourceResult> = if in_progress {
        serde_json::from_value(state["syncResult"]["resources"].clone()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let settings = settings(&app, &sync_op, &target.revision, started.as_second());
    let mut tasks = sync::plan(&comparison, &settings);
    // `RespectIgnoreDifferences=true`: the ignored fields are applied as live has them.
    let options = sluice_api::SyncOptions::new(
        app.spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.sync_options.as_deref())
            .unwrap_or_default(),
    );
    let op_options: Vec<String> =
        serde_json::from_value(sync_op["syncOptions"].clone()).unwrap_or_default();
    if options.respect_ignore_differences()
        || sluice_api::SyncOptions::new(&op_options).respect_ignore_differences()
    {
        let rules = app.spec.ignore_differences.as_deref().unwrap_or_default();
        for task in &mut tasks {
            if let Task::Apply {
                key,
                object,
                live: Some(live),
                ..
            } = &mut task.task
            {
                let ignored = ignore::rules_for(rules, key);
                *object = ignore::keep_live(object, live, &ignored);
            }
        }
    }
    // Hooks are not compared: their live copies come from the cache here.
    for task in &mut tasks {
        if task.hook.is_some()
            && let Task::Apply { key, live, .. } = &mut task.task
        {
            *live = live_of(context, key);
        }
    }
    let timed_out = context.settings.sync_timeout.is_some_and(|timeout| {
        now.duration_since(started) > jiff::SignedDuration::try_from(timeout).unwrap_or_default()
    });
    let ending = |results: &[ResourceResult], phase: &'static str, message: String| {
        (results.to_vec(), phase, message)
    };
    let run = run_options(&app, &sync_op);
    let multi = operation::multi_step(&tasks);
    let mut results = recorded;
    let (results, end_phase, message) = 'run: {
        if phase == "Terminating" || timed_out {
            let message = if timed_out {
                "Operation terminated, triggered by controller sync timeout"
            } else {
                "Operation terminated"
            };
            break 'run ending(&results, "Failed", message.into());
        }
        loop {
            let applied_at = lock(&context.applied_at)
                .get(&name)
                .filter(|(s, _)| *s == started)
                .map(|(_, at)| *at);
            let live = |key: &ResourceKey| live_of(context, key);
            let (updated, next) = operation::advance(&Observed {
                tasks: &tasks,
                results: &results,
                live: &live,
                applied_at,
                now: Timestamp::now(),
                wave_delay: context.settings.wave_delay,
                strict: strict(&app),
                application_health,
            });
            results = updated;
            let step = match next {
                Next::Finish { succeeded, message } => {
                    let phase = if succeeded { "Succeeded" } else { "Failed" };
                    let message = if succeeded
                        && let Some(paused) = results.iter().find(|r| {
                            r.message
                                .as_deref()
                                .is_some_and(|m| m.ends_with(operation::PAUSED_APPLIED))
                        }) {
                        format!(
                            "{message}; {} {} is {}",
                            paused.kind,
                            paused.name,
                            operation::PAUSED_APPLIED
                        )
                    } else {
                        message
                    };
                    break 'run ending(&results, phase, message);
                }
                Next::Wait(delay, message) => {
                    let patch =
                        status::progress(&operation, started, &target.revision, &results, &message);
                    write_status(api, &app, patch).await?;
                    return Ok(Action::requeue(
                        delay.clamp(Duration::from_millis(100), Duration::from_secs(5)),
                    ));
                }
                Next::Apply(step) => step,
            };
            let first = results.is_empty();
            if first {
                // The project's kinds and namespaces: one refused resource fails the sync
                // before anything is applied.
                let refused = tasks.iter().find_map(|task| {
                    let Task::Apply { key, .. } = &task.task else {
                        return None;
                    };
                    let namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
                    project::resource_refused(
                        project_name,
                        project,
                        &key.group,
                        &key.kind,
                        namespace,
                    )
                });
                if let Some(message) = refused {
                    break 'run ending(&[], "Failed", message);
                }
                if let Some(namespace) = &run.create_namespace
                    && let Err(message) = apply::ensure_namespace(&context.live, namespace).await
                {
                    break 'run ending(&[], "Failed", message);
                }
                let all: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
                let failures = apply::dry_run(&context.live, &all, &run).await;
                if !failures.is_empty() {
                    let failed: Vec<ResourceResult> = failures
                        .iter()
                        .map(|o| {
                            let task = tasks.iter().find(|t| t.task.key() == &o.key);
                            result(task.unwrap_or(&tasks[0]), o, false)
                        })
                        .collect();
                    break 'run ending(
                        &failed,
                        "Failed",
                        "one or more objects failed to apply (dry run)".into(),
                    );
                }
                if run.dry_run {
                    break 'run ending(&[], "Succeeded", "successfully synced (dry run)".into());
                }
            }
            // `BeforeHookCreation`: an earlier copy of a hook goes before this one is made.
            let mut deleting = false;
            for i in &step {
                let task = &tasks[*i];
                if let (
                    Some(policy),
                    Task::Apply {
                        key,
                        api_version,
                        live: Some(_),
                        ..
                    },
                ) = (task.hook, &task.task)
                    && policy.before_creation
                {
                    deleting = true;
                    let _ =
                        apply::remove_finalizer(&context.live, key, api_version, hooks::FINALIZER)
                            .await;
                    let _ = apply::delete(
                        &context.live,
                        key,
                        api_version,
                        PropagationPolicy::Background,
                    )
                    .await;
                }
            }
            if deleting {
                let patch = status::progress(
                    &operation,
                    started,
                    &target.revision,
                    &results,
                    "deleting hooks before creation",
                );
                write_status(api, &app, patch).await?;
                return Ok(Action::requeue(Duration::from_millis(250)));
            }
            for i in &step {
                let task = &tasks[*i];
                let outcome = apply::one(&context.live, &task.task, &run).await;
                results.push(result(task, &outcome, multi));
            }
            lock(&context.applied_at).insert(name.clone(), (started, Timestamp::now()));
        }
    };
    finish(
        api,
        &app,
        context,
        &tasks,
        (&operation, started),
        target,
        (results, end_phase, message),
    )
    .await
}

/// Ends the operation: hooks lose their finalizer and go as their delete policy says, and
/// a failure is retried when the retry strategy allows.
async fn finish(
    api: &Api<Application>,
    app: &Application,
    context: &Context,
    tasks: &[SyncTask],
    (operation, started): (&Value, Timestamp),
    target: &Refreshed,
    (results, phase, message): (Vec<ResourceResult>, &str, String),
) -> Result<Action, ControllerError> {
    let succeeded = phase == "Succeeded";
    for task in tasks {
        let (
            Some(policy),
            Task::Apply {
                key, api_version, ..
            },
        ) = (task.hook, &task.task)
        else {
            continue;
        };
        let recorded = operation::result_of(&results, task);
        if recorded.is_none() {
            continue;
        }
        let _ = apply::remove_finalizer(&context.live, key, api_version, hooks::FINALIZER).await;
        let running = operation::state_of(recorded) == State::Running;
        if running || (succeeded && policy.succeeded) || (!succeeded && policy.failed) {
            let _ = apply::delete(
                &context.live,
                key,
                api_version,
                PropagationPolicy::Background,
            )
            .await;
        }
    }
    lock(&context.applied_at).remove(&app.name_any());
    let retry = app
        .operation
        .as_ref()
        .map(|o| o.retry())
        .unwrap_or_default();
    let retry_count = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .and_then(|o| o.retry_count)
        .unwrap_or(0);
    let terminated = message.starts_with("Operation terminated");
    let finished = Timestamp::now();
    if !succeeded && !terminated && retry.allows_retry(retry_count) {
        let delay = retry
            .next_retry_delay(retry_count)
            .unwrap_or(Duration::from_secs(5));
        let patch = status::retrying(
            operation,
            started,
            &target.revision,
            &message,
            retry_count + 1,
            delay,
            finished,
        );
        write_status(api, app, patch).await?;
        return Ok(Action::requeue(delay));
    }
    let patch = status::finished(
        app,
        &status::Ending {
            operation,
            started,
            revision: &target.revision,
            results: &results,
            phase,
            message: &message,
            retry_count,
        },
        finished,
    );
    write_status(api, app, json!(patch)).await?;
    Ok(Action::requeue(Duration::from_millis(300)))
}
