//! Looking at a Rollout: `sluice status NAME [--watch] [--timeout]` (a line per change of
//! phase or message, until Healthy — exit 0 — or Degraded, or the timeout — exit 1, with
//! Argo's messages) and `sluice get rollout NAME [-w]` (the tree of [`crate::tree`], redrawn
//! on every change of the Rollout, its ReplicaSets or their pods, and each second for ages),
//! after a `Warning:` line on stderr when Argo Rollouts' own controller would act on the
//! Rollout too ([`sluice_rollouts::rival`]).

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use futures::{StreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    coordination::v1::Lease,
    core::v1::Pod,
};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{WatchStreamExt, reflector, watcher},
};
use sluice_api::{AnalysisRun, Rollout, names::label};
use sluice_rollouts::rival;

use crate::tree;

/// A duration as `kubectl` takes it (`90s`, `5m`, `1h30m`), or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string());
    }
    let parsed: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 90s, 5m or 1h30m"))?;
    Duration::try_from(parsed).map_err(|e| e.to_string())
}

/// The Rollout `name`, or the API's message for it ("rollouts.argoproj.io \"x\" not found").
pub async fn read(api: &Api<Rollout>, name: &str, namespace: &str) -> anyhow::Result<Rollout> {
    match api.get(name).await {
        Ok(rollout) => Ok(rollout),
        Err(kube::Error::Api(status)) => {
            anyhow::bail!("{} (namespace {namespace})", status.message)
        }
        Err(err) => Err(err).context(format!("reading rollout '{name}'")),
    }
}

/// `sluice status`: prints the status, and with `watch` each change until the Rollout is
/// Healthy (Ok) or Degraded or `timeout` passes (errors, so the exit code is 1).
pub async fn status(
    client: Client,
    namespace: &str,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let api: Api<Rollout> = Api::namespaced(client, namespace);
    let rollout = read(&api, name, namespace).await?;
    let line = |(phase, message): &(String, String)| {
        if message.is_empty() {
            phase.clone()
        } else {
            format!("{phase} - {message}")
        }
    };
    let mut last = tree::phase(&rollout);
    println!("{}", line(&last));
    if !watch {
        return Ok(());
    }
    let outcome = |(phase, message): &(String, String)| match phase.as_str() {
        "Healthy" => Some(Ok(())),
        "Degraded" => Some(Err(anyhow::anyhow!(
            "The rollout is in a degraded state with message: {message}"
        ))),
        _ => None,
    };
    if let Some(done) = outcome(&last) {
        return done;
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut changes = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => anyhow::bail!("Rollout status watch exceeded timeout"),
            next = changes.next() => {
                let rollout = match next {
                    None => anyhow::bail!("the watch on rollout '{name}' ended"),
                    // The watcher reconnects by itself (with back-off); keep watching.
                    Some(Err(err)) => {
                        tracing::debug!("watching rollout '{name}': {err}");
                        continue;
                    }
                    Some(Ok(rollout)) => rollout,
                };
                let now = tree::phase(&rollout);
                if now != last {
                    println!("{}", line(&now));
                    last = now;
                }
                if let Some(done) = outcome(&last) {
                    return done;
                }
            }
        }
    }
}

/// `sluice get rollout`: draws the tree once, or with `watch` on every change until
/// `timeout` (if any) or Ctrl-C.
pub async fn get(
    client: Client,
    namespace: &str,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), namespace);
    let rollout = read(&rollouts, name, namespace).await?;
    if let Some(warning) = rival_warning(&client, &rollout).await {
        eprintln!("Warning: {warning}");
    }
    if !watch {
        let owned_sets = owned(&rollout, sets.list(&ListParams::default()).await?.items);
        let pods = pods.list(&ListParams::default()).await?.items;
        // A cluster without the AnalysisRun kind still draws its Rollouts.
        let runs = runs
            .list(&ListParams::default())
            .await
            .map(|l| owned(&rollout, l.items))
            .unwrap_or_default();
        print!(
            "{}",
            tree::render(&rollout, &owned_sets, &pods, &runs, Timestamp::now())
        );
        return Ok(());
    }
    let (rollout_store, writer) = reflector::store();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let rollout_events = reflector(writer, watcher(rollouts, by_name)).map(|_| ());
    let (set_store, writer) = reflector::store();
    let set_events = reflector(writer, watcher(sets, watcher::Config::default())).map(|_| ());
    let (pod_store, writer) = reflector::store();
    let pod_events = reflector(writer, watcher(pods, watcher::Config::default())).map(|_| ());
    let (run_store, writer) = reflector::store();
    let run_events = reflector(
        writer,
        watcher(runs, watcher::Config::default()).default_backoff(),
    )
    .map(|_| ());
    let ticks = stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some(((), ()))
    });
    let mut wakes = stream::select_all([
        rollout_events.boxed(),
        set_events.boxed(),
        pod_events.boxed(),
        run_events.boxed(),
        ticks.boxed(),
    ]);
    let clear = std::io::stdout().is_terminal();
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::MAX / 4));
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(deadline, interrupt);
    let mut shown = String::new();
    loop {
        tokio::select! {
            () = &mut deadline => return Ok(()),
            _ = &mut interrupt => return Ok(()),
            next = wakes.next() => if next.is_none() { return Ok(()) },
        }
        // Let a burst of changes land before drawing.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(rollout) = rollout_store.state().into_iter().next() else {
            continue;
        };
        let sets: Vec<ReplicaSet> = set_store.state().iter().map(|rs| (**rs).clone()).collect();
        let owned_sets = owned(&rollout, sets);
        let pods: Vec<Pod> = pod_store.state().iter().map(|p| (**p).clone()).collect();
        let runs: Vec<AnalysisRun> = run_store.state().iter().map(|r| (**r).clone()).collect();
        let runs = owned(&rollout, runs);
        let picture = tree::render(&rollout, &owned_sets, &pods, &runs, Timestamp::now());
        if picture != shown {
            if clear {
                print!("\x1b[H\x1b[2J");
            } else if !shown.is_empty() {
                println!();
            }
            print!("{picture}");
            shown = picture;
        }
    }
}

/// What to say when Argo Rollouts' controller runs and would act on `rollout`: its Deployment
/// or Lease looked up by name in every namespace (nothing is said when they cannot be read).
async fn rival_warning(client: &Client, rollout: &Rollout) -> Option<String> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let leases: Api<Lease> = Api::all(client.clone());
    let by_name = |name: &str| ListParams::default().fields(&format!("metadata.name={name}"));
    let deployments = deployments
        .list(&by_name(rival::DEPLOYMENT))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let leases = leases
        .list(&by_name(rival::LEASE))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let found = rival::find(&deployments, &leases, Timestamp::now());
    let instance = rollout
        .labels()
        .get(label::CONTROLLER_INSTANCE_ID)
        .map(String::as_str);
    rival::contending(&found, instance).map(rival::Rival::message)
}

/// The ReplicaSets `rollout` controls.
fn owned<K: kube::Resource>(rollout: &Rollout, sets: Vec<K>) -> Vec<K> {
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    sets.into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect()
}
