//! The operator verbs on a Rollout, as `kubectl argo rollouts` sends them (research §2.6):
//! `promote [--full]`, `abort`, `retry rollout`, `pause`. Each is one patch; the controller does
//! the rest. The cluster is found as kubectl finds it (`--kubeconfig`, `$KUBECONFIG`,
//! `~/.kube/config`), then the default `sluice up` data dir's kubeconfig (DESIGN §7).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;
use sluice_api::{
    Rollout,
    names::{annotation, label},
};

/// Which cluster and namespace (flags may come before or after the Rollout's name).
#[derive(Debug, Args)]
pub struct Target {
    /// Namespace [default: the context's, else `default`]
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// kubeconfig context.
    #[arg(long, global = true)]
    context: Option<String>,
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then sluice up's]
    #[arg(long, global = true, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
}

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
    /// Pause the Rollout: no scaling and no Service switch until promoted.
    Pause {
        /// The Rollout.
        name: String,
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

/// The kubeconfig to use: as kubectl would find it, else `sluice up`'s.
fn kubeconfig_path(explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.clone());
    }
    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if home
        .as_ref()
        .is_some_and(|h| h.join(".kube/config").is_file())
    {
        return None;
    }
    Some(crate::up::default_data_dir().join("kubeconfig"))
}

async fn connect(target: &Target) -> anyhow::Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig_path(target.kubeconfig.as_ref()) {
        Some(path) => {
            let file = Kubeconfig::read_from(&path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
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
    let mut template = serde_json::to_value(target.spec.as_ref().map(|s| &s.template))?;
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(label::POD_TEMPLATE_HASH);
    }
    Ok(template)
}

/// Runs a verb and prints what it did, as kubectl-argo-rollouts does.
pub async fn run(verb: Verb) -> anyhow::Result<()> {
    let (name, target) = match &verb {
        Verb::Promote { name, target, .. }
        | Verb::Abort { name, target }
        | Verb::Pause { name, target }
        | Verb::Undo { name, target, .. }
        | Verb::Retry {
            what: Retry::Rollout { name, target },
        } => (name.clone(), target),
    };
    let (client, namespace) = connect(target).await?;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &namespace);
    let rollout = match rollouts.get(&name).await {
        Ok(rollout) => rollout,
        Err(kube::Error::Api(status)) => {
            anyhow::bail!("{} (namespace {namespace})", status.message)
        }
        Err(err) => return Err(err).context(format!("reading rollout '{name}'")),
    };
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
            let sets: Api<ReplicaSet> = Api::namespaced(client, &namespace);
            let template = previous_template(&sets, &rollout, to_revision).await?;
            let patch: json_patch::Patch = serde_json::from_value(
                json!([{"op": "replace", "path": "/spec/template", "value": template}]),
            )?;
            rollouts
                .patch(&name, &params, &Patch::<()>::Json(patch))
                .await?;
            "undo"
        }
        Verb::Pause { .. } => {
            let pause = Patch::Merge(json!({"spec": {"paused": true}}));
            rollouts.patch(&name, &params, &pause).await?;
            "paused"
        }
    };
    println!("rollout '{name}' {done}");
    Ok(())
}
