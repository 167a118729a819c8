//! `sluice list rollouts [-A] [-w] [--name] [--timestamps]`: a line per Rollout with
//! `kubectl argo rollouts list rollouts`' columns (`NAME STRATEGY STATUS STEP SET-WEIGHT READY
//! DESIRED UP-TO-DATE AVAILABLE`, NAMESPACE first with `-A`, TIMESTAMP before all with
//! `--timestamps`), each cell computed as Argo's `list` package computes it
//! (`cmd/list/rollloutinfo.go`); with `--watch`, then a line for each Rollout whose row
//! changed, as Argo prints them. Cells are padded as Argo's format string pads them and the
//! table is aligned as Go's `tabwriter` aligns it, so the bytes are Argo's.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{WatchStreamExt, watcher},
};
use sluice_api::{Rollout, RolloutPhase};

use crate::connect::{Target, connect};

/// What `list` lists.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List Rollouts (of the namespace, or of all with `-A`).
    #[command(visible_aliases = ["ro", "rollout"])]
    Rollouts(ListRollouts),
}

/// Flags of `list rollouts`.
#[derive(Debug, Args)]
pub struct ListRollouts {
    /// Only show the Rollout of this name.
    #[arg(long)]
    name: Option<String>,
    /// Include all namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Watch for changes: after the table, a line for each Rollout whose row changed.
    #[arg(short, long)]
    watch: bool,
    /// Print a timestamp (UTC, to the second) before each line.
    #[arg(long)]
    timestamps: bool,
    #[command(flatten)]
    target: Target,
}

/// Argo's header, tab-separated.
const HEADER: &str =
    "NAME\tSTRATEGY\tSTATUS\tSTEP\tSET-WEIGHT\tREADY\tDESIRED\tUP-TO-DATE\tAVAILABLE";

/// One Rollout's row (Argo's `rolloutInfo`): what is compared to decide a watch prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    namespace: String,
    name: String,
    strategy: &'static str,
    status: String,
    step: String,
    set_weight: String,
    ready: String,
    desired: i32,
    up_to_date: i32,
    available: i32,
}

impl Row {
    /// The row of `rollout`, each cell as Argo computes it.
    pub fn of(rollout: &Rollout) -> Row {
        let status = rollout.status.clone().unwrap_or_default();
        let strategy = rollout.spec.strategy.as_ref();
        let canary = strategy.and_then(|s| s.canary.as_ref());
        let (strategy, step, set_weight) = match canary {
            Some(canary) => {
                let steps = canary.steps().len();
                let step = match status.current_step_index {
                    Some(index) if steps > 0 => format!("{index}/{steps}"),
                    _ => "-".to_owned(),
                };
                ("Canary", step, set_weight(rollout, canary).to_string())
            }
            None if strategy.is_some_and(|s| s.blue_green.is_some()) => {
                ("BlueGreen", "-".into(), "-".into())
            }
            None => ("unknown", "-".into(), "-".into()),
        };
        Row {
            namespace: rollout.namespace().unwrap_or_default(),
            name: rollout.name_any(),
            strategy,
            status: phase(rollout).to_owned(),
            step,
            set_weight,
            ready: format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                status.replicas.unwrap_or(0)
            ),
            desired: rollout.spec.replicas.unwrap_or(1),
            up_to_date: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
        }
    }

    /// The line, tab-separated, each cell padded as Argo's `columnFmtString` pads it.
    /// `timestamp` is the TIMESTAMP cell when `--timestamps` is on.
    pub fn line(&self, timestamp: Option<&str>, namespace: bool) -> String {
        let mut line = String::new();
        if let Some(timestamp) = timestamp {
            line.push_str(&format!("{timestamp:<20}\t"));
        }
        if namespace {
            line.push_str(&format!("{:<9}\t", self.namespace));
        }
        line.push_str(&format!(
            "{:<10}\t{:<9}\t{:<12}\t{:<4}\t{:<10}\t{:<5}\t{:<7}\t{:<10}\t{:<9}",
            self.name,
            self.strategy,
            self.status,
            self.step,
            self.set_weight,
            self.ready,
            self.desired,
            self.up_to_date,
            self.available
        ));
        line
    }
}

/// The header for these flags.
pub fn header(timestamps: bool, namespace: bool) -> String {
    let mut header = String::new();
    if timestamps {
        header.push_str("TIMESTAMP\t");
    }
    if namespace {
        header.push_str("NAMESPACE\t");
    }
    header.push_str(HEADER);
    header
}

/// The weight the current step sets (Argo's `GetCurrentSetWeight`, the desired weight, not
/// the actual): 0 when aborted; the maximum weight without steps or past the last; else the
/// nearest `setWeight` at or before the current step, 0 if none.
fn set_weight(rollout: &Rollout, canary: &sluice_api::CanaryStrategy) -> i32 {
    let status = rollout.status.as_ref();
    if status.and_then(|s| s.abort) == Some(true) {
        return 0;
    }
    let steps = canary.steps();
    let index = status.and_then(|s| s.current_step_index).unwrap_or(0);
    let Ok(index) = usize::try_from(index) else {
        return 0;
    };
    if index >= steps.len() {
        return canary.max_traffic_weight();
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// The STATUS cell (Argo's `GetRolloutPhase`): Progressing while the spec's generation is not
/// yet observed, or while a promotion clears the controller's pause; else the controller's
/// phase. A Rollout no controller has written a phase for is Paused when paused by the user,
/// else Progressing.
fn phase(rollout: &Rollout) -> &'static str {
    let status = rollout.status.clone().unwrap_or_default();
    // Argo's isGenerationObserved: a non-numeric observedGeneration (v0.9) counts as observed,
    // and so does one ahead of the generation.
    let generation = rollout.metadata.generation.unwrap_or(0);
    let observed = status
        .observed_generation
        .as_deref()
        .and_then(|g| g.parse::<i64>().ok())
        .is_none_or(|g| g >= generation);
    let pauses = status
        .pause_conditions
        .as_ref()
        .is_some_and(|p| !p.is_empty());
    if !observed || (status.controller_pause == Some(true) && !pauses) {
        return "Progressing";
    }
    match status.phase {
        Some(RolloutPhase::Healthy) => "Healthy",
        Some(RolloutPhase::Progressing) => "Progressing",
        Some(RolloutPhase::Paused) => "Paused",
        Some(RolloutPhase::Degraded) => "Degraded",
        None if rollout.spec.paused() => "Paused",
        None => "Progressing",
    }
}

/// Aligns tab-separated lines as Go's `tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)` does when
/// every line has the same number of cells: each cell but the last padded with spaces to the
/// widest in its column plus two; the last cell written as it is.
pub fn align(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &split {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for cells in &split {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] + 2 - cell.chars().count();
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Now, as Argo's `--timestamps` prints it.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Runs `list …`.
pub async fn run(command: ListCommand) -> anyhow::Result<()> {
    match command {
        ListCommand::Rollouts(args) => rollouts(args).await,
    }
}

async fn rollouts(args: ListRollouts) -> anyhow::Result<()> {
    let (client, namespace): (Client, String) = connect(&args.target).await?;
    let api: Api<Rollout> = if args.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &namespace)
    };
    let mut params = ListParams::default();
    if let Some(name) = &args.name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    let list = api.list(&params).await.context("listing rollouts")?;
    let stamp = |timestamps: bool| timestamps.then(now);
    if list.items.is_empty() && !args.watch {
        eprintln!("No resources found.");
        return Ok(());
    }
    let mut lines = vec![header(args.timestamps, args.all_namespaces)];
    let mut shown: HashMap<(String, String), Row> = HashMap::new();
    for rollout in &list.items {
        let row = Row::of(rollout);
        lines.push(row.line(stamp(args.timestamps).as_deref(), args.all_namespaces));
        shown.insert((row.namespace.clone(), row.name.clone()), row);
    }
    print!("{}", align(&lines));
    if !args.watch {
        return Ok(());
    }
    watch(api, &args, shown).await
}

/// Prints a line for each Rollout whose row differs from the one last printed for it; lines
/// that arrive together (within half a second, Argo's flush interval) are aligned together.
async fn watch(
    api: Api<Rollout>,
    args: &ListRollouts,
    mut shown: HashMap<(String, String), Row>,
) -> anyhow::Result<()> {
    let mut config = watcher::Config::default();
    if let Some(name) = &args.name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    let mut changes = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut pending: Vec<String> = Vec::new();
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            _ = &mut interrupt => break,
            _ = flush.tick() => {
                if !pending.is_empty() {
                    print!("{}", align(&pending));
                    pending.clear();
                }
            }
            next = changes.next() => match next {
                None => break,
                Some(Err(err)) => tracing::warn!("watching rollouts: {err}"),
                Some(Ok(rollout)) => {
                    let row = Row::of(&rollout);
                    let key = (row.namespace.clone(), row.name.clone());
                    if shown.get(&key) != Some(&row) {
                        let timestamp = args.timestamps.then(now);
                        pending.push(row.line(timestamp.as_deref(), args.all_namespaces));
                        shown.insert(key, row);
                    }
                }
            },
        }
    }
    print!("{}", align(&pending));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(strategy: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "can-guestbook", "namespace": "test"},
            "spec": {"replicas": 5, "strategy": strategy},
            "status": {"currentStepIndex": 1, "replicas": 4, "readyReplicas": 1,
                "updatedReplicas": 3, "availableReplicas": 2}}))
        .unwrap()
    }

    fn canary() -> Rollout {
        rollout(json!({"canary": {"steps": [
            {"setWeight": 10}, {"pause": {"duration": 60}}, {"setWeight": 20}]}}))
    }

    /// Argo's `TestListCanaryRollout`, byte for byte (trailing padding included).
    #[test]
    fn a_canary_row_is_argos() {
        let lines = [header(false, false), Row::of(&canary()).line(None, false)];
        assert_eq!(
            align(&lines),
            "NAME           STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE\n\
             can-guestbook  Canary     Progressing   1/3   10          1/4    5        3           2        \n"
        );
    }

    /// Argo's `TestListBlueGreenResource`.
    #[test]
    fn a_blue_green_row_is_argos() {
        let mut bg = rollout(json!({"blueGreen": {"activeService": "bg-active"}}));
        bg.metadata.name = Some("bg-guestbook".into());
        let lines = [header(false, false), Row::of(&bg).line(None, false)];
        assert_eq!(
            align(&lines),
            "NAME          STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE\n\
             bg-guestbook  BlueGreen  Progressing   -     -           1/4    5        3           2        \n"
        );
    }

    /// Argo's `TestListNamespaceAndTimestamp`.
    #[test]
    fn namespace_and_timestamp_columns_come_first() {
        let lines = [
            header(true, true),
            Row::of(&canary()).line(Some("2024-05-01T10:00:00Z"), true),
        ];
        let out = align(&lines);
        assert!(out.contains("TIMESTAMP             NAMESPACE  NAME           STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE"), "{out}");
        assert!(out.contains("2024-05-01T10:00:00Z  test       can-guestbook  Canary     Progressing   1/3   10          1/4    5        3           2"), "{out}");
    }

    #[test]
    fn set_weight_follows_argos_get_current_set_weight() {
        let with = |status: serde_json::Value, routing: serde_json::Value| {
            let mut value = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "r"},
                "spec": {"strategy": {"canary": {"trafficRouting": routing,
                    "steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}]}}},
                "status": status});
            if value["spec"]["strategy"]["canary"]["trafficRouting"].is_null() {
                value["spec"]["strategy"]["canary"]
                    .as_object_mut()
                    .unwrap()
                    .remove("trafficRouting");
            }
            Row::of(&serde_json::from_value(value).unwrap()).set_weight
        };
        let none = serde_json::Value::Null;
        assert_eq!(with(json!({"currentStepIndex": 1}), none.clone()), "10");
        assert_eq!(with(json!({"currentStepIndex": 3}), none.clone()), "40");
        assert_eq!(with(json!({}), none.clone()), "10", "no index is step 0");
        assert_eq!(with(json!({"currentStepIndex": 4}), none.clone()), "100");
        assert_eq!(
            with(
                json!({"currentStepIndex": 4}),
                json!({"maxTrafficWeight": 1000})
            ),
            "1000"
        );
        assert_eq!(
            with(json!({"currentStepIndex": 3, "abort": true}), none),
            "0"
        );
    }

    #[test]
    fn status_waits_for_the_spec_to_be_observed_and_for_an_unpause() {
        let mut paused = canary();
        paused.metadata.generation = Some(2);
        let status = paused.status.as_mut().unwrap();
        status.phase = Some(RolloutPhase::Paused);
        status.observed_generation = Some("2".into());
        assert_eq!(phase(&paused), "Paused");
        paused.status.as_mut().unwrap().controller_pause = Some(true);
        assert_eq!(phase(&paused), "Progressing", "pause conditions cleared");
        let mut ahead = canary();
        ahead.metadata.generation = Some(3);
        let status = ahead.status.as_mut().unwrap();
        status.phase = Some(RolloutPhase::Healthy);
        status.observed_generation = Some("2".into());
        assert_eq!(phase(&ahead), "Progressing");
        ahead.status.as_mut().unwrap().observed_generation = Some("abc1234".into());
        assert_eq!(phase(&ahead), "Healthy", "a v0.9 hash counts as observed");
    }
}
