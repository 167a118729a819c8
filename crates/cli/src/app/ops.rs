//! `sluice app rollback|terminate-op|delete|actions run`: as `argocd app` does them, on the
//! Application objects. A rollback syncs a recorded history entry's revision and source (and
//! is refused while auto-sync is on, with Argo CD's message); terminate-op marks the running
//! operation `Terminating` for the controller to end; delete cascades through the
//! `resources-finalizer.argocd.argoproj.io` finalizer unless `--cascade=false`; a resource
//! action on Rollouts sends the rollout verbs' patches ([`crate::verbs`]).

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Scope, applications, get, request_operation, text, wait_operation};
use crate::{connect::Target, inspect::parse_duration, verbs};

/// The Application finalizer that deletes its resources first (foreground).
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// Flags of `sluice app rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The Application.
    name: String,
    /// The history ID to go back to (default: the entry before the latest).
    id: Option<i64>,
    /// Delete resources that revision does not have.
    #[arg(long)]
    prune: bool,
    /// Give up waiting after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    scope: Scope,
}

/// Flags of `sluice app delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The Application.
    name: String,
    /// Delete its resources too (the default, as argocd); `--cascade=false` keeps them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    cascade: bool,
    /// `foreground` (the default) or `background`: how the resources are deleted.
    #[arg(long, value_parser = ["foreground", "background"])]
    propagation_policy: Option<String>,
    /// Do not wait for the Application to be gone.
    #[arg(long)]
    wait: Option<bool>,
    #[command(flatten)]
    scope: Scope,
}

/// `sluice app actions …`.
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// Run an action on the Application's resources of a kind.
    Run(RunArgs),
}

/// Flags of `sluice app actions run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Application.
    name: String,
    /// `resume`, `promote-full`, `abort`, `retry` or `restart`.
    #[arg(value_parser = ["resume", "promote-full", "abort", "retry", "restart"])]
    action: String,
    /// The kind of the resources (Rollout).
    #[arg(long)]
    kind: String,
    /// Only the resource of this name.
    #[arg(long)]
    resource_name: Option<String>,
    /// The API group.
    #[arg(long)]
    group: Option<String>,
    #[command(flatten)]
    scope: Scope,
}

/// `sluice app rollback NAME [ID]`.
pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let api = applications(&args.scope).await?;
    let app = get(&api, &args.name).await?;
    let automated = &app["spec"]["syncPolicy"]["automated"];
    if automated.is_object() && automated["enabled"] != false {
        bail!("rollback cannot be initiated when auto-sync is enabled");
    }
    let history: Vec<&Value> = app["status"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let entry = match args.id {
        Some(id) => history.iter().find(|h| h["id"] == id).copied(),
        None if history.len() >= 2 => Some(history[history.len() - 2]),
        None => None,
    };
    let Some(entry) = entry else {
        match args.id {
            Some(id) => bail!(
                "application {} does not have deployment id '{id}' in history",
                args.name
            ),
            None => bail!(
                "application {} should have at least two successful deployments",
                args.name
            ),
        }
    };
    if !app["operation"].is_null() {
        bail!("another operation is already in progress for {}", args.name);
    }
    let sync =
        json!({"revision": entry["revision"], "source": entry["source"], "prune": args.prune});
    let request = request_operation(&api, &args.name, sync).await?;
    wait_operation(&api, &args.name, &request, args.timeout).await
}

/// `sluice app terminate-op NAME`.
pub async fn terminate(name: &str, scope: &Scope) -> anyhow::Result<()> {
    let api = applications(scope).await?;
    let app = get(&api, name).await?;
    let phase = text(&app["status"]["operationState"]["phase"]);
    if app["operation"].is_null() || !matches!(phase, "Running" | "Terminating") {
        bail!("Unable to terminate operation. No operation is in progress");
    }
    let patch = json!({"metadata": {"resourceVersion": app["metadata"]["resourceVersion"]},
        "status": {"operationState": {"phase": "Terminating"}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    println!("Application '{name}' operation terminating");
    Ok(())
}

/// `sluice app delete NAME [--cascade]`.
pub async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let api = applications(&args.scope).await?;
    let app = get(&api, &args.name).await?;
    let mut finalizers: Vec<String> =
        serde_json::from_value(app["metadata"]["finalizers"].clone()).unwrap_or_default();
    finalizers.retain(|f| !f.starts_with(RESOURCES_FINALIZER));
    if args.cascade {
        finalizers.push(match args.propagation_policy.as_deref() {
            Some("background") => format!("{RESOURCES_FINALIZER}/background"),
            _ => RESOURCES_FINALIZER.to_owned(),
        });
    }
    let patch = json!({"metadata": {"finalizers": finalizers}});
    api.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    api.delete(&args.name, &DeleteParams::default()).await?;
    if args.wait != Some(false) {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while api.get_opt(&args.name).await?.is_some() {
            if std::time::Instant::now() > deadline {
                bail!(
                    "timed out waiting for application {} to be deleted",
                    args.name
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    println!("application '{}' deleted", args.name);
    Ok(())
}

/// `sluice app actions run NAME ACTION --kind Rollout [--resource-name R]`.
pub async fn actions(command: ActionsCommand) -> anyhow::Result<()> {
    let ActionsCommand::Run(args) = command;
    if args.kind != "Rollout" {
        bail!(
            "action {:?} is not available on kind {:?}: sluice runs actions on Rollouts",
            args.action,
            args.kind
        );
    }
    let api = applications(&args.scope).await?;
    let app = get(&api, &args.name).await?;
    let targets: Vec<(String, String)> = app["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == args.kind.as_str())
        .filter(|r| args.group.as_deref().is_none_or(|g| r["group"] == g))
        .filter(|r| args.resource_name.as_deref().is_none_or(|n| r["name"] == n))
        .map(|r| {
            (
                text(&r["name"]).to_owned(),
                text(&r["namespace"]).to_owned(),
            )
        })
        .collect();
    if targets.is_empty() {
        bail!(
            "no {} resource{} in application {}",
            args.kind,
            args.resource_name
                .as_deref()
                .map(|n| format!(" named {n:?}"))
                .unwrap_or_default(),
            args.name
        );
    }
    for (name, namespace) in targets {
        let target = Target {
            namespace: Some(namespace),
            ..args.scope.target.clone()
        };
        let verb = match args.action.as_str() {
            "resume" => verbs::Verb::Promote {
                name,
                full: false,
                target,
            },
            "promote-full" => verbs::Verb::Promote {
                name,
                full: true,
                target,
            },
            "abort" => verbs::Verb::Abort { name, target },
            "retry" => verbs::Verb::Retry {
                what: verbs::Retry::Rollout { name, target },
            },
            _ => verbs::Verb::Restart {
                name,
                in_: None,
                target,
            },
        };
        verbs::run(verb).await?;
    }
    Ok(())
}
