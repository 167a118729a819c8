//! The operator verbs on a Rollout, as `kubectl argo rollouts` sends them (research §2.6):
//! `promote [--full]`, `abort`, `retry rollout`, `undo` (of the referenced Deployment's
//! template for a `workloadRef`), `pause`, `restart [--in]`, `set image`. Each is one patch;
//! the controller does the rest. Also the two that look: `status` and `get rollout`
//! ([`crate::inspect`]). The cluster is found as kubectl finds it ([`crate::connect`]).

use std::time::Duration;

use clap::Subcommand;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Api;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_api::{
    Rollout,
    names::{annotation, label},
};

use crate::{
    analysis,
    connect::{Target, connect},
    inspect,
};

/// A verb on one Rollout.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Resume a paused Rollout (`--full`: skip every remaining pause and step).
    Promote {
        /// The Rollout.
        name: String,
        /// Promote all the way.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Abort the update: production and preview go back to the stable version.
    Abort {
        /// The Rollout.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Retry an aborted update.
    Retry {
        #[command(subcommand)]
        what: Retry,
    },
    /// Roll back to an earlier revision's template (default: the one before the current).
    Undo {
        /// The Rollout.
        name: String,
        /// The revision to go back to.
        #[arg(long, value_name = "N")]
        to_revision: Option<i64>,
        #[command(flatten)]
        target: Target,
    },
    /// Restart the pods of a Rollout (now, or `--in` a while): each pod created before then is
    /// evicted and replaced, as availability and PodDisruptionBudgets allow.
    Restart {
        /// The Rollout.
        name: String,
        /// Amount of time before a restart (e.g. 30s, 5m, 1h).
        #[arg(short, long = "in", value_name = "DURATION")]
        in_: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Pause the Rollout: no scaling and no Service switch until promoted.
    Pause {
        /// The Rollout.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Change the Rollout's pod template.
    Set {
        #[command(subcommand)]
        what: Set,
    },
    /// Print the Rollout's status; by default watch it until Healthy (exit 0) or Degraded
    /// or the timeout (exit 1).
    Status {
        /// The Rollout.
        name: String,
        /// Keep watching (`--watch=false`: print once).
        #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        watch: bool,
        /// Give up after this long (e.g. `90s`, `5m`).
        #[arg(short, long, value_parser = inspect::parse_duration)]
        timeout: Option<Duration>,
        #[command(flatten)]
        target: Target,
    },
    /// Draw a Rollout's revisions, ReplicaSets and pods, or an AnalysisRun's measurements.
    Get {
        #[command(subcommand)]
        what: Get,
    },
    /// Create an AnalysisRun from a template.
    Create {
        #[command(subcommand)]
        what: Create,
    },
    /// Terminate an AnalysisRun: no further measurements; it completes.
    Terminate {
        #[command(subcommand)]
        what: Terminate,
    },
}

/// What `create` creates.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// A standalone AnalysisRun from an AnalysisTemplate or ClusterAnalysisTemplate.
    #[command(alias = "ar")]
    Analysisrun {
        #[command(flatten)]
        run: analysis::CreateRun,
        #[command(flatten)]
        target: Target,
    },
}

/// What `terminate` terminates.
#[derive(Debug, Subcommand)]
pub enum Terminate {
    /// An AnalysisRun.
    #[command(alias = "ar")]
    Analysisrun {
        /// The AnalysisRun.
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

/// What `set` changes.
#[derive(Debug, Subcommand)]
pub enum Set {
    /// Set container images: `CONTAINER=IMAGE`, or `*=IMAGE` for every container.
    Image {
        /// The Rollout.
        name: String,
        /// `CONTAINER=IMAGE` pairs.
        #[arg(required = true, value_name = "CONTAINER=IMAGE")]
        images: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
}

/// What `get` draws.
#[derive(Debug, Subcommand)]
pub enum Get {
    /// One Rollout as a tree.
    Rollout {
        /// The Rollout.
        name: String,
        /// Redraw on every change.
        #[arg(short, long)]
        watch: bool,
        /// With `--watch`, stop after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout_seconds: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// One AnalysisRun: its metrics and each measurement.
    #[command(alias = "ar")]
    Analysisrun {
        /// The AnalysisRun.
        name: String,
        /// Redraw on every change, until it completes.
        #[arg(short, long)]
        watch: bool,
        /// With `--watch`, stop after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout_seconds: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
}

/// What `retry` retries.
#[derive(Debug, Subcommand)]
pub enum Retry {
    /// An aborted Rollout.
    Rollout {
        /// The Rollout.
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

/// The template of revision `to` (default: the newest before the current one), without the
/// hash label, from the Rollout's ReplicaSets.
async fn previous_template(
    sets: &Api<ReplicaSet>,
    rollout: &Rollout,
    to: Option<i64>,
) -> anyhow::Result<serde_json::Value> {
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<ReplicaSet> = sets
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    let revision = |rs: &ReplicaSet| {
        rs.annotations()
            .get(annotation::REVISION)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let current_hash = rollout
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone());
    let current = owned
        .iter()
        .find(|rs| rs.labels().get(label::POD_TEMPLATE_HASH) == current_hash.as_ref())
        .map_or(i64::MAX, revision);
    let target = match to {
        Some(n) => owned.iter().find(|rs| revision(rs) == n),
        None => owned
            .iter()
            .filter(|rs| revision(rs) < current)
            .max_by_key(|rs| revision(rs)),
    };
    let Some(target) = target else {
        anyhow::bail!(match to {
            Some(n) => format!("unable to find specified revision {n} in history"),
            None => "no rollout history found".to_owned(),
        });
    };
    Ok(sluice_rollouts::replicasets::template_of(
        &serde_json::to_value(target)?,
    ))
}

/// The JSON patch that sets images in `rollout`'s template: each `CONTAINER=IMAGE` names a
/// container, init container or ephemeral container (`*` all of them). Each replaced image is
/// guarded by a `test` of the container's name, so a template changed since it was read fails
/// the patch rather than changing the wrong container.
fn set_image(rollout: &Rollout, pairs: &[String]) -> anyhow::Result<json_patch::Patch> {
    let template = serde_json::to_value(&rollout.spec.template)?;
    let mut ops = Vec::new();
    for pair in pairs {
        let Some((container, image)) = pair.split_once('=') else {
            anyhow::bail!("expected CONTAINER=IMAGE, got {pair:?}");
        };
        let mut found = false;
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            let items = template["spec"][list]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                let name = item["name"].as_str().unwrap_or_default();
                if container == "*" || container == name {
                    found = true;
                    let path = format!("/spec/template/spec/{list}/{i}");
                    ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": name}));
                    ops.push(
                        json!({"op": "replace", "path": format!("{path}/image"), "value": image}),
                    );
                }
            }
        }
        if !found {
            anyhow::bail!("unable to find container named \"{container}\"");
        }
    }
    Ok(serde_json::from_value(serde_json::Value::Array(ops))?)
}

/// `spec.restartAt` for a restart `in_` from `now`: RFC 3339 to the second, UTC, as Argo's
/// CLI writes it.
fn restart_at(now: jiff::Timestamp, in_: Option<Duration>) -> anyhow::Result<String> {
    let delay = jiff::SignedDuration::try_from(in_.unwrap_or_default())?;
    let at = now.checked_add(delay)?;
    Ok(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The step after the current one of a canary Rollout with steps left (what `promote` moves
/// to when nothing is paused).
fn next_step(rollout: &Rollout) -> Option<i32> {
    let steps = rollout
        .spec
        .strategy
        .as_ref()?
        .canary
        .as_ref()?
        .steps()
        .len();
    let steps = i32::try_from(steps).ok()?;
    let current = rollout.status.as_ref()?.current_step_index.unwrap_or(0);
    (current < steps).then_some(current + 1)
}

/// Runs a verb on an AnalysisRun; `None` when the verb is about a Rollout.
async fn analysis_verb(verb: &Verb) -> Option<anyhow::Result<()>> {
    Some(match verb {
        Verb::Create {
            what: Create::Analysisrun { run, target },
        } => match connect(target).await {
            Ok((client, namespace)) => analysis::create(client, &namespace, run).await,
            Err(e) => Err(e),
        },
        Verb::Terminate {
            what: Terminate::Analysisrun { name, target },
        } => match connect(target).await {
            Ok((client, namespace)) => analysis::terminate(client, &namespace, name).await,
            Err(e) => Err(e),
        },
        Verb::Get {
            what:
                Get::Analysisrun {
                    name,
                    watch,
                    timeout_seconds,
                    target,
                },
        } => match connect(target).await {
            Ok((client, namespace)) => {
                let timeout = timeout_seconds.map(Duration::from_secs);
                analysis::get(client, &namespace, name, *watch, timeout).await
            }
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

/// Runs a verb and prints what it did, as kubectl-argo-rollouts does.
pub async fn run(verb: Verb) -> anyhow::Result<()> {
    if let Some(done) = analysis_verb(&verb).await {
        return done;
    }
    let (name, target) = match &verb {
        Verb::Promote { name, target, .. }
        | Verb::Abort { name, target }
        | Verb::Pause { name, target }
        | Verb::Restart { name, target, .. }
        | Verb::Undo { name, target, .. }
        | Verb::Status { name, target, .. }
        | Verb::Set {
            what: Set::Image { name, target, .. },
        }
        | Verb::Get {
            what: Get::Rollout { name, target, .. },
        }
        | Verb::Retry {
            what: Retry::Rollout { name, target },
        } => (name.clone(), target),
        Verb::Create { .. }
        | Verb::Terminate { .. }
        | Verb::Get {
            what: Get::Analysisrun { .. },
        } => unreachable!("handled above"),
    };
    let (client, namespace) = connect(target).await?;
    match &verb {
        Verb::Status { watch, timeout, .. } => {
            return inspect::status(client, &namespace, &name, *watch, *timeout).await;
        }
        Verb::Get {
            what:
                Get::Rollout {
                    watch,
                    timeout_seconds,
                    ..
                },
        } => {
            let timeout = timeout_seconds.map(Duration::from_secs);
            return inspect::get(client, &namespace, &name, *watch, timeout).await;
        }
        _ => {}
    }
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &namespace);
    let rollout = inspect::read(&rollouts, &name, &namespace).await?;
    let params = PatchParams::default();
    let status = |value| Patch::Merge(json!({ "status": value }));
    let done = match verb {
        Verb::Promote { full, .. } => {
            if rollout.spec.paused() {
                let unpause = Patch::Merge(json!({"spec": {"paused": false}}));
                rollouts.patch(&name, &params, &unpause).await?;
            }
            if full {
                rollouts
                    .patch_status(&name, &params, &status(json!({"promoteFull": true})))
                    .await?;
                "fully promoted"
            } else {
                let paused = rollout
                    .status
                    .as_ref()
                    .and_then(|s| s.pause_conditions.as_ref())
                    .is_some_and(|p| !p.is_empty());
                if paused {
                    let resume = status(json!({"pauseConditions": null}));
                    rollouts.patch_status(&name, &params, &resume).await?;
                } else if let Some(next) = next_step(&rollout) {
                    // Not paused mid-canary: skip the current step, as Argo's promote does.
                    let skip = status(json!({"currentStepIndex": next}));
                    rollouts.patch_status(&name, &params, &skip).await?;
                }
                "promoted"
            }
        }
        Verb::Abort { .. } => {
            rollouts
                .patch_status(&name, &params, &status(json!({"abort": true})))
                .await?;
            "aborted"
        }
        Verb::Retry { .. } => {
            rollouts
                .patch_status(&name, &params, &status(json!({"abort": false})))
                .await?;
            "retried"
        }
        Verb::Undo { to_revision, .. } => {
            let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
            let template = previous_template(&sets, &rollout, to_revision).await?;
            let patch: json_patch::Patch = serde_json::from_value(
                json!([{"op": "replace", "path": "/spec/template", "value": template}]),
            )?;
            // A workloadRef's template is the Deployment's: undo patches it (Argo's
            // `undoWorkloadRef`).
            match &rollout.spec.workload_ref {
                Some(reference) => {
                    let kind = reference.kind.as_deref().unwrap_or_default();
                    if kind != "Deployment" {
                        anyhow::bail!(
                            "failed restoring revision {}: workload of type {kind} is not supported",
                            to_revision.unwrap_or(0)
                        );
                    }
                    let deployments: Api<Deployment> = Api::namespaced(client, &namespace);
                    let workload = reference.name.as_deref().unwrap_or_default();
                    deployments
                        .patch(workload, &params, &Patch::<()>::Json(patch))
                        .await?;
                }
                None => {
                    rollouts
                        .patch(&name, &params, &Patch::<()>::Json(patch))
                        .await?;
                }
            }
            "undo"
        }
        Verb::Restart { in_, .. } => {
            let delay = in_
                .as_deref()
                .map(inspect::parse_duration)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let at = restart_at(jiff::Timestamp::now(), delay)?;
            let patch = Patch::Merge(json!({"spec": {"restartAt": at}}));
            rollouts.patch(&name, &params, &patch).await?;
            let after = in_.unwrap_or_else(|| "0s".to_owned());
            println!("rollout '{name}' restarts in {after}");
            return Ok(());
        }
        Verb::Pause { .. } => {
            let pause = Patch::Merge(json!({"spec": {"paused": true}}));
            rollouts.patch(&name, &params, &pause).await?;
            "paused"
        }
        Verb::Set {
            what: Set::Image { images, .. },
        } => {
            let patch = set_image(&rollout, &images)?;
            rollouts
                .patch(&name, &params, &Patch::<()>::Json(patch))
                .await?;
            "image updated"
        }
        Verb::Status { .. } | Verb::Get { .. } | Verb::Create { .. } | Verb::Terminate { .. } => {
            unreachable!("handled above")
        }
    };
    println!("rollout '{name}' {done}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_at_is_now_plus_in_to_the_second() {
        let now: jiff::Timestamp = "2026-11-01T10:00:00.75Z".parse().unwrap();
        assert_eq!(restart_at(now, None).unwrap(), "2026-11-01T10:00:00Z");
        assert_eq!(
            restart_at(now, Some(Duration::from_secs(90))).unwrap(),
            "2026-11-01T10:01:30Z"
        );
    }
}
