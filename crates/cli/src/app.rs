//! `sluice app list|get|sync|wait|create|set|history|rollback|terminate-op|delete|actions`: Argo CD's `argocd app` verbs over the Application objects
//! themselves (no Argo CD API server needed), so they work on `sluice up` and against a real
//! cluster's Applications alike. Output shapes follow `argocd`: `app get`'s `%-20s%s` summary
//! and its resource table, `app list`'s columns, `app wait`'s exit on Degraded and timeout.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::{connect::Target, inspect::parse_duration};

pub mod diff;
mod edit;
mod history;
mod ops;

/// `sluice app …`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List Applications (argocd's columns).
    List {
        /// Also the repository, path and target revision.
        #[arg(short, long, value_parser = ["wide"])]
        output: Option<String>,
        #[command(flatten)]
        scope: Scope,
    },
    /// Show an Application: summary, conditions and resources.
    Get {
        /// The Application.
        name: String,
        /// Ask for a refresh first (`--hard-refresh`: also re-render).
        #[arg(long)]
        refresh: bool,
        /// A hard refresh.
        #[arg(long)]
        hard_refresh: bool,
        #[command(flatten)]
        scope: Scope,
    },
    /// Sync an Application, and wait for the operation to end (unless `--async`).
    Sync(SyncArgs),
    /// Wait until an Application is synced, healthy and done operating (or as flags say).
    Wait(WaitArgs),
    /// Create an Application (argocd's flags).
    Create(edit::CreateArgs),
    /// Change an Application's spec (only the flags given).
    Set(edit::SetArgs),
    /// What a sync would change: a unified diff per resource (exit 0 none, 1 some, 2 error).
    Diff(diff::DiffArgs),
    /// Show an Application's deployment history.
    History {
        /// The Application.
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Sync a recorded history entry again (refused while auto-sync is on).
    Rollback(ops::RollbackArgs),
    /// Terminate the running operation (its running hooks are deleted).
    TerminateOp {
        /// The Application.
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Delete an Application, and its resources unless `--cascade=false`.
    Delete(ops::DeleteArgs),
    /// Resource actions (`run NAME resume|promote-full|abort|retry|restart --kind Rollout`).
    #[command(subcommand)]
    Actions(ops::ActionsCommand),
}

/// Where Applications are.
#[derive(Debug, Args)]
pub struct Scope {
    /// The namespace Applications live in.
    #[arg(short = 'N', long, default_value = "argocd", global = true)]
    app_namespace: String,
    #[command(flatten)]
    target: Target,
}

/// Flags of `sluice app sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The Application.
    name: String,
    /// Delete resources Git no longer has.
    #[arg(long)]
    prune: bool,
    /// Only a dry run: nothing is changed.
    #[arg(long)]
    dry_run: bool,
    /// Only these resources, as GROUP:KIND:NAME (repeatable).
    #[arg(long, value_name = "GROUP:KIND:NAME")]
    resource: Vec<String>,
    /// The revision to sync (default: the Application's target).
    #[arg(long)]
    revision: Option<String>,
    /// Sync options (`ApplyOutOfSyncOnly=true`, …; repeatable).
    #[arg(long)]
    sync_option: Vec<String>,
    /// `hook` (the default: hooks run) or `apply` (hooks are skipped).
    #[arg(long, value_parser = ["apply", "hook"])]
    strategy: Option<String>,
    /// Do not wait for the operation to end.
    #[arg(long = "async")]
    asynchronous: bool,
    /// Give up waiting after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    scope: Scope,
}

/// Flags of `sluice app wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The Application.
    name: String,
    /// Wait for Synced.
    #[arg(long)]
    sync: bool,
    /// Wait for Healthy (fails on Degraded).
    #[arg(long)]
    health: bool,
    /// Wait for Suspended (a paused Rollout).
    #[arg(long)]
    suspended: bool,
    /// Wait for Degraded.
    #[arg(long)]
    degraded: bool,
    /// Wait for no operation in progress.
    #[arg(long)]
    operation: bool,
    /// Give up after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    scope: Scope,
}

async fn applications(scope: &Scope) -> anyhow::Result<Api<DynamicObject>> {
    let (client, _): (Client, String) = crate::connect::connect(&scope.target).await?;
    let resource = ApiResource::erase::<sluice_api::Application>(&());
    Ok(Api::namespaced_with(
        client,
        &scope.app_namespace,
        &resource,
    ))
}

async fn get(api: &Api<DynamicObject>, name: &str) -> anyhow::Result<Value> {
    let app = api
        .get_opt(name)
        .await?
        .with_context(|| format!("application {name:?} not found"))?;
    Ok(serde_json::to_value(app)?)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Runs an `app` verb.
pub async fn run(command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::List { output, scope } => list(&scope, output.is_some()).await,
        AppCommand::Get {
            name,
            refresh,
            hard_refresh,
            scope,
        } => {
            let api = applications(&scope).await?;
            if refresh || hard_refresh {
                let kind = if hard_refresh { "hard" } else { "normal" };
                request_refresh(&api, &name, kind).await?;
            }
            print!("{}", summary(&get(&api, &name).await?));
            Ok(())
        }
        AppCommand::Sync(args) => sync(args).await,
        AppCommand::Wait(args) => wait(args).await,
        AppCommand::Create(args) => edit::create(args).await,
        AppCommand::Set(args) => edit::set(args).await,
        AppCommand::History { name, scope } => {
            let api = applications(&scope).await?;
            print!("{}", history::history(&get(&api, &name).await?));
            Ok(())
        }
        AppCommand::Rollback(args) => ops::rollback(args).await,
        AppCommand::TerminateOp { name, scope } => ops::terminate(&name, &scope).await,
        AppCommand::Delete(args) => ops::delete(args).await,
        AppCommand::Actions(command) => ops::actions(command).await,
        // cli.rs runs it for its exit status (1: differences); here a difference is no error.
        AppCommand::Diff(args) => diff::run(args).await.map(drop),
    }
}

/// Sets the refresh annotation and waits until the controller has taken it.
async fn request_refresh(api: &Api<DynamicObject>, name: &str, kind: &str) -> anyhow::Result<()> {
    let patch = json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": kind}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let app = get(api, name).await?;
        if app["metadata"]["annotations"]["argocd.argoproj.io/refresh"].is_null() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the refresh of {name} was not taken within 30 s: is the GitOps controller running?")
}

fn sync_policy(app: &Value) -> String {
    let automated = &app["spec"]["syncPolicy"]["automated"];
    if !automated.is_object() || automated["enabled"] == false {
        return "Manual".into();
    }
    let mut flags = Vec::new();
    if automated["prune"] == true {
        flags.push("Prune");
    }
    if flags.is_empty() {
        "Automated".into()
    } else {
        format!("Automated ({})", flags.join(","))
    }
}

fn server(app: &Value) -> String {
    let destination = &app["spec"]["destination"];
    if destination["server"].is_string() {
        text(&destination["server"]).to_owned()
    } else {
        text(&destination["name"]).to_owned()
    }
}

fn source(app: &Value) -> &Value {
    let sources = &app["spec"]["sources"];
    if sources.as_array().is_some_and(|s| !s.is_empty()) {
        &sources[0]
    } else {
        &app["spec"]["source"]
    }
}

fn target(app: &Value) -> &str {
    match text(&source(app)["targetRevision"]) {
        "" => "HEAD",
        revision => revision,
    }
}

fn qualified(app: &Value) -> String {
    format!(
        "{}/{}",
        text(&app["metadata"]["namespace"]),
        text(&app["metadata"]["name"])
    )
}

async fn list(scope: &Scope, wide: bool) -> anyhow::Result<()> {
    let api = applications(scope).await?;
    let mut rows = vec![
        vec![
            "NAME",
            "CLUSTER",
            "NAMESPACE",
            "PROJECT",
            "STATUS",
            "HEALTH",
            "SYNCPOLICY",
            "CONDITIONS",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>(),
    ];
    if wide {
        rows[0].extend(["REPO", "PATH", "TARGET"].map(str::to_owned));
    }
    for app in api.list(&ListParams::default()).await? {
        let app = serde_json::to_value(app)?;
        let conditions: Vec<&str> = app["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| text(&c["type"]))
            .collect();
        let project = match text(&app["spec"]["project"]) {
            "" => "default",
            p => p,
        };
        let mut row = vec![
            qualified(&app),
            server(&app),
            text(&app["spec"]["destination"]["namespace"]).to_owned(),
            project.to_owned(),
            text(&app["status"]["sync"]["status"]).to_owned(),
            text(&app["status"]["health"]["status"]).to_owned(),
            sync_policy(&app),
            if conditions.is_empty() {
                "<none>".into()
            } else {
                conditions.join(",")
            },
        ];
        if wide {
            let source = source(&app);
            row.extend([
                text(&source["repoURL"]).to_owned(),
                text(&source["path"]).to_owned(),
                target(&app).to_owned(),
            ]);
        }
        rows.push(row);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Columns padded as Go's tabwriter pads them (two spaces).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `argocd app get`'s output.
pub fn summary(app: &Value) -> String {
    let status = &app["status"];
    let source = source(app);
    let mut out = String::new();
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key:<20}{value}\n"));
    line("Name:", &qualified(app));
    line(
        "Project:",
        match text(&app["spec"]["project"]) {
            "" => "default",
            p => p,
        },
    );
    line("Server:", &server(app));
    line("Namespace:", text(&app["spec"]["destination"]["namespace"]));
    line("Source:", "");
    line("- Repo:", text(&source["repoURL"]));
    line("  Target:", target(app));
    line("  Path:", text(&source["path"]));
    line("SyncWindow:", "Sync Allowed");
    line("Sync Policy:", &sync_policy(app));
    let revision = text(&status["sync"]["revision"]);
    let short = &revision[..revision.len().min(7)];
    let sync = text(&status["sync"]["status"]);
    let sync_line = match sync {
        "Synced" => format!("Synced to {} ({short})", target(app)),
        "" => String::new(),
        other => format!("{other} from {} ({short})", target(app)),
    };
    line("Sync Status:", &sync_line);
    let health = text(&status["health"]["status"]);
    line("Health Status:", health);
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        out.push('\n');
        let mut rows = vec![
            ["CONDITION", "MESSAGE", "LAST TRANSITION"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for c in conditions {
            rows.push(vec![
                text(&c["type"]).to_owned(),
                text(&c["message"]).to_owned(),
                text(&c["lastTransitionTime"]).to_owned(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push('\n');
    out.push_str(&resources(status));
    out
}

/// The resource table of `app get` and `app sync`: each resource's sync status and health,
/// with the last operation's message for it.
fn resources(status: &Value) -> String {
    let mut rows = vec![
        [
            "GROUP",
            "KIND",
            "NAMESPACE",
            "NAME",
            "STATUS",
            "HEALTH",
            "HOOK",
            "MESSAGE",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let results = status["operationState"]["syncResult"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for r in status["resources"].as_array().into_iter().flatten() {
        let message = results
            .iter()
            .find(|x| {
                x["kind"] == r["kind"]
                    && x["name"] == r["name"]
                    && text(&x["group"]) == text(&r["group"])
            })
            .map(|x| text(&x["message"]).to_owned())
            .unwrap_or_default();
        rows.push(vec![
            text(&r["group"]).to_owned(),
            text(&r["kind"]).to_owned(),
            text(&r["namespace"]).to_owned(),
            text(&r["name"]).to_owned(),
            text(&r["status"]).to_owned(),
            text(&r["health"]["status"]).to_owned(),
            String::new(),
            message,
        ]);
    }
    // Hooks are the operation's, not managed resources: their rows come from its results.
    for x in results.iter().filter(|x| !text(&x["hookType"]).is_empty()) {
        rows.push(vec![
            text(&x["group"]).to_owned(),
            text(&x["kind"]).to_owned(),
            text(&x["namespace"]).to_owned(),
            text(&x["name"]).to_owned(),
            text(&x["hookPhase"]).to_owned(),
            String::new(),
            text(&x["hookType"]).to_owned(),
            text(&x["message"]).to_owned(),
        ]);
    }
    table(&rows)
}

fn operation_lines(state: &Value) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key:<20}{value}\n"));
    line("Operation:", "Sync");
    line("Sync Revision:", text(&state["syncResult"]["revision"]));
    line("Phase:", text(&state["phase"]));
    line("Start:", text(&state["startedAt"]));
    line("Finished:", text(&state["finishedAt"]));
    let duration = match (
        text(&state["startedAt"]).parse::<jiff::Timestamp>(),
        text(&state["finishedAt"]).parse::<jiff::Timestamp>(),
    ) {
        (Ok(start), Ok(end)) => format!("{}s", end.duration_since(start).as_secs()),
        _ => String::new(),
    };
    line("Duration:", &duration);
    line("Message:", text(&state["message"]));
    out
}

async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let api = applications(&args.scope).await?;
    let app = get(&api, &args.name).await?;
    if !app["operation"].is_null() {
        bail!("another operation is already in progress for {}", args.name);
    }
    let mut sync = json!({"prune": args.prune});
    if args.dry_run {
        sync["dryRun"] = json!(true);
    }
    if let Some(revision) = &args.revision {
        sync["revision"] = json!(revision);
    }
    if !args.sync_option.is_empty() {
        sync["syncOptions"] = json!(args.sync_option);
    }
    if let Some(strategy) = &args.strategy {
        sync["syncStrategy"] = json!({ strategy.as_str(): {} });
    }
    if !args.resource.is_empty() {
        let mut resources = Vec::new();
        for r in &args.resource {
            let parts: Vec<&str> = r.splitn(3, ':').collect();
            let [group, kind, name] = parts[..] else {
                bail!(
                    "--resource {r:?}: expected GROUP:KIND:NAME (an empty group for core kinds: :Service:web)"
                );
            };
            resources.push(json!({"group": group, "kind": kind, "name": name}));
        }
        sync["resources"] = json!(resources);
    }
    let request = request_operation(&api, &args.name, sync).await?;
    if args.asynchronous {
        return Ok(());
    }
    wait_operation(&api, &args.name, &request, args.timeout).await
}

/// Writes the `operation` field, as `argocd app sync` does; the request's id (an `info`
/// entry, so its end is told from an earlier operation's started in the same second).
async fn request_operation(
    api: &Api<DynamicObject>,
    name: &str,
    sync: Value,
) -> anyhow::Result<String> {
    let user = std::env::var("USER").unwrap_or_else(|_| "sluice".into());
    let request = format!("{}", jiff::Timestamp::now().as_nanosecond());
    let patch = json!({"operation": {"sync": sync, "initiatedBy": {"username": user},
        "info": [{"name": REQUEST_INFO, "value": request}]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(request)
}

/// The `operation.info` entry naming a request.
const REQUEST_INFO: &str = "sluice-request";

/// Waits for the operation `request` to end; prints it as `argocd app sync` does.
async fn wait_operation(
    api: &Api<DynamicObject>,
    name: &str,
    request: &str,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let app = get(api, name).await?;
        let state = &app["status"]["operationState"];
        let ours = state["operation"]["info"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["name"] == REQUEST_INFO && i["value"] == request);
        let finished = app["operation"].is_null()
            && matches!(text(&state["phase"]), "Succeeded" | "Failed" | "Error")
            && ours;
        if finished {
            print!("{}", summary(&app));
            println!();
            print!("{}", operation_lines(state));
            if state["phase"] != "Succeeded" {
                bail!(
                    "operation has completed with phase: {}",
                    text(&state["phase"])
                );
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!("timed out waiting for the sync of {name} to end");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What `app wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    sync: bool,
    health: bool,
    suspended: bool,
    degraded: bool,
    operation: bool,
}

/// Whether the Application is as wanted; an error when `--health` meets Degraded.
fn satisfied(app: &Value, wanted: Wanted) -> anyhow::Result<bool> {
    let status = &app["status"];
    let health = text(&status["health"]["status"]);
    if wanted.health && !wanted.degraded && health == "Degraded" {
        bail!(
            "application {:?} health status has transitioned from Progressing to Degraded",
            text(&app["metadata"]["name"])
        );
    }
    let synced = !wanted.sync || status["sync"]["status"] == "Synced";
    let healthy = !wanted.health || health == "Healthy";
    let suspended = !wanted.suspended || health == "Suspended";
    let degraded = !wanted.degraded || health == "Degraded";
    let idle = !wanted.operation
        || (app["operation"].is_null() && status["operationState"]["phase"] != "Running");
    Ok(synced && healthy && suspended && degraded && idle)
}

async fn wait(args: WaitArgs) -> anyhow::Result<()> {
    let api = applications(&args.scope).await?;
    let none = !(args.sync || args.health || args.suspended || args.degraded || args.operation);
    let wanted = Wanted {
        sync: args.sync || none,
        health: args.health || none,
        suspended: args.suspended,
        degraded: args.degraded,
        operation: args.operation || none,
    };
    let started = Instant::now();
    loop {
        let app = get(&api, &args.name).await?;
        if satisfied(&app, wanted)? {
            print!("{}", resources(&app["status"]));
            return Ok(());
        }
        if let Some(timeout) = args.timeout
            && started.elapsed() >= timeout
        {
            bail!(
                "timed out ({}s) waiting for app {:?} match desired state",
                timeout.as_secs(),
                args.name
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(sync: &str, health: &str) -> Value {
        json!({"metadata": {"name": "guestbook", "namespace": "argocd"},
            "spec": {"project": "", "source": {"repoURL": "file:///cd", "path": "."},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "demo"},
                "syncPolicy": {"automated": {"prune": true}}},
            "status": {"sync": {"status": sync, "revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba"},
                "health": {"status": health},
                "resources": [{"version": "v1", "kind": "Service", "namespace": "demo", "name": "web",
                    "status": "Synced", "health": {"status": "Healthy"}}],
                "operationState": {"phase": "Succeeded", "syncResult": {"resources": [
                    {"group": "", "kind": "Service", "name": "web", "message": "service/web created"}]}}}})
    }

    #[test]
    fn get_prints_argocds_summary_and_resource_table() {
        let out = summary(&app("Synced", "Healthy"));
        assert!(
            out.contains("Name:               argocd/guestbook\n"),
            "{out}"
        );
        assert!(out.contains("Project:            default\n"));
        assert!(out.contains("Sync Policy:        Automated (Prune)\n"));
        assert!(out.contains("Sync Status:        Synced to HEAD (53e28ff)\n"));
        assert!(out.contains("Health Status:      Healthy\n"));
        assert!(
            out.contains("GROUP  KIND     NAMESPACE  NAME  STATUS  HEALTH   HOOK  MESSAGE\n"),
            "{out}"
        );
        assert!(out.contains("service/web created"));
    }

    #[test]
    fn wait_flags() {
        let all = Wanted {
            sync: true,
            health: true,
            suspended: false,
            degraded: false,
            operation: true,
        };
        assert!(satisfied(&app("Synced", "Healthy"), all).unwrap());
        assert!(!satisfied(&app("OutOfSync", "Healthy"), all).unwrap());
        assert!(
            satisfied(&app("OutOfSync", "Degraded"), all).is_err(),
            "--health fails on Degraded"
        );
        let suspended = Wanted {
            sync: false,
            health: false,
            suspended: true,
            degraded: false,
            operation: false,
        };
        assert!(satisfied(&app("Synced", "Suspended"), suspended).unwrap());
        assert!(!satisfied(&app("Synced", "Healthy"), suspended).unwrap());
    }
}
