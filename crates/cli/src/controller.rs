//! `sluice controller`: sluice's controllers against any cluster the kubeconfig reaches — the
//! same code `sluice up` runs in-process — with Lease leader election (Lease
//! `sluice-controller`) so several replicas can run, `/healthz` and Argo's `/metrics`.
//! Flags follow Argo's controller (`--instance-id`, `--leader-elect`,
//! `--leader-election-namespace`, `--leader-election-lease-duration` …) and Argo CD's
//! application controller (`--app-namespace`, `--app-resync`, a repository cache dir).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, routing::get};
use clap::Args;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use sluice_reconcile::lease::{Elector, Timing};
use sluice_rollouts::{controller::Settings, metrics::Metrics};

/// The controllers' metrics: the Rollout controller's and the AnalysisRun controller's.
#[derive(Clone, Default)]
pub struct ControllerMetrics {
    /// The Rollout controller's.
    pub rollouts: Arc<Metrics>,
    /// The AnalysisRun controller's.
    pub analysis: Arc<sluice_analysis::metrics::Metrics>,
}

impl ControllerMetrics {
    /// `GET /metrics`: both expositions.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    let mut text = metrics.rollouts.render();
                    text.push_str(&metrics.analysis.render());
                    text
                }
            }),
        )
    }

    /// Runs the chosen controllers until one stops (the API server went away): the Rollout
    /// and AnalysisRun controllers on `client` when `rollouts` (the analysis controller handles
    /// what the Rollout controller does: its instance and namespace), the Application
    /// controller when `gitops` has its client and settings.
    pub async fn run(
        &self,
        client: kube::Client,
        (settings, analysis): (Settings, sluice_analysis::controller::Settings),
        rollouts: bool,
        gitops: Option<(kube::Client, sluice_gitops::controller::Settings)>,
    ) {
        let analysis = sluice_analysis::controller::Settings {
            instance_id: settings.instance_id.clone(),
            namespace: settings.namespace.clone(),
            ..analysis
        };
        // Aborts by analysis, counted by the Rollout controller, in `analysis_aborts_total`.
        self.rollouts.count_aborts_in(self.analysis.clone());
        let progressive = async {
            if !rollouts {
                return std::future::pending().await;
            }
            tokio::select! {
                () = sluice_rollouts::controller::run(client.clone(), settings, self.rollouts.clone()) => {}
                () = sluice_analysis::controller::run(client.clone(), analysis, self.analysis.clone()) => {}
            }
        };
        let applications = async {
            match gitops {
                Some((client, gitops)) => {
                    // The namespace and the `default` AppProject, as Argo CD's API server
                    // creates them at start (Applications name a project that must exist).
                    if let Err(e) =
                        sluice_gitops::controller::ensure_home(&client, &gitops.namespace).await
                    {
                        tracing::warn!(
                            "creating the {} namespace and default project: {e}",
                            gitops.namespace
                        );
                    }
                    sluice_gitops::controller::run(client.clone(), gitops).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = progressive => {}
            () = applications => {}
        }
    }
}

use crate::{connect, inspect::parse_duration};

/// The Lease replicas of `sluice controller` elect their leader on.
const LEASE: &str = "sluice-controller";
/// The Lease of `sluice controller --controllers gitops`.
const GITOPS_LEASE: &str = "sluice-gitops-controller";

/// Flags of `sluice controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    target: connect::Target,
    /// Handle only Rollouts labelled `argo-rollouts.argoproj.io/controller-instance-id=ID`
    /// (without it: only unlabelled ones).
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// The Prometheus server of metrics that name no `address` (Argo's
    /// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`, read when this is not given).
    #[arg(long, value_name = "URL", env = sluice_analysis::provider::prometheus::ADDRESS_ENV)]
    prometheus_address: Option<String>,
    /// How many Rollouts reconcile at once (Argo's flag).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    rollout_threads: u16,
    /// How many AnalysisRuns reconcile at once (Argo's flag).
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..))]
    analysis_threads: u16,
    /// `/healthz` address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    health_listen: SocketAddr,
    /// Prometheus `/metrics` address (Argo's port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    metrics_listen: SocketAddr,
    /// Elect a leader among replicas (`--leader-elect=false`: run at once).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the Lease [default: $POD_NAMESPACE, else the kubeconfig's namespace]
    #[arg(long, value_name = "NS")]
    leader_election_namespace: Option<String>,
    /// How long a Lease lasts without renewal.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    leader_election_lease_duration: Duration,
    /// A leader that could not renew for this long stops leading.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    leader_election_renew_deadline: Duration,
    /// Pause between tries to take or renew the Lease.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    leader_election_retry_period: Duration,
    /// Which controllers run: `rollouts`, `gitops`, or both (the install manifest runs them
    /// apart, each with its own ServiceAccount: the GitOps controller applies whatever Git
    /// holds and needs broad rights, the Rollout controller does not).
    #[arg(long, value_delimiter = ',', default_value = "rollouts,gitops", value_parser = ["rollouts", "gitops"])]
    controllers: Vec<String>,
    /// The namespace Applications are read from (Argo CD's controller namespace).
    #[arg(long, value_name = "NS", default_value = "argocd")]
    app_namespace: String,
    /// Where git mirrors are kept (an emptyDir in the install manifest).
    #[arg(long, value_name = "DIR", default_value = "/tmp/sluice-repos")]
    cache_dir: std::path::PathBuf,
    /// How often Applications re-read Git without another trigger (Argo CD's
    /// `timeout.reconciliation`); 0 turns polling off.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    app_resync: Duration,
    /// The most random time added to each Application's resync (Argo CD's
    /// `--app-resync-jitter`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    app_resync_jitter: Duration,
    /// Terminate sync operations running longer than this (Argo CD's `--sync-timeout`;
    /// 0, the default, never). The delay between sync waves is `ARGOCD_SYNC_WAVE_DELAY`
    /// (seconds, default 2), as Argo CD reads it.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    sync_timeout: Duration,
    /// Git push webhooks (`POST /api/webhook`, Argo CD's path) when the GitOps controller
    /// runs, or `off` (served by every replica, leader or not).
    #[arg(long, value_name = "ADDR|off", default_value = "off", value_parser = parse_listen)]
    webhook_listen: Listen,
}

/// A listen address, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// Parses `ADDR` or `off`.
pub fn parse_listen(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|_| format!("expected an address such as 127.0.0.1:8070, or off: {text:?}"))
}

/// This replica's name in the Lease: host, then a random suffix (as client-go does).
fn identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sluice".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

async fn listen(address: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for {what} on {address}"))
}

/// Runs the controllers until a signal (then gives up the Lease) or the cluster goes away.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let (client, default_namespace) = connect::connect(&args.target).await?;
    let settings = Settings {
        instance_id: args.instance_id.clone(),
        namespace: args.target.namespace.clone(),
        threads: args.rollout_threads,
    };
    let metrics = ControllerMetrics::default();
    let health = Router::new().route("/healthz", get(|| async { "ok" }));
    let metrics_router = metrics.router();
    let health_listener = listen(args.health_listen, "/healthz").await?;
    let metrics_listener = listen(args.metrics_listen, "/metrics").await?;
    eprintln!(
        "sluice controller: health on http://{}/healthz, metrics on http://{}/metrics",
        health_listener.local_addr()?,
        metrics_listener.local_addr()?
    );
    let runs_gitops = args.controllers.iter().any(|c| c == "gitops");
    if let (Some(address), true) = (args.webhook_listen.0, runs_gitops) {
        let bound =
            sluice_gitops::webhook::listener::start(address, client.clone(), &args.app_namespace)
                .await
                .with_context(|| format!("listening for webhooks on {address}"))?;
        eprintln!("sluice controller: webhooks on http://{bound}/api/webhook");
    }
    let health = axum::serve(health_listener, health);
    let scrape = axum::serve(metrics_listener, metrics_router);
    let lease_namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or(default_namespace);
    // The GitOps controller alone elects on its own Lease, so both Deployments run.
    let lease = if args.controllers.iter().all(|c| c == "gitops") {
        GITOPS_LEASE
    } else {
        LEASE
    };
    let elector = Elector::new(
        Api::<Lease>::namespaced(client.clone(), &lease_namespace),
        lease,
        &identity(),
        Timing {
            lease: args.leader_election_lease_duration,
            renew_deadline: args.leader_election_renew_deadline,
            retry: args.leader_election_retry_period,
        }
        .check()?,
    );
    let mut gitops = sluice_gitops::controller::Settings::new(&args.app_namespace, &args.cache_dir);
    gitops.poll = args.app_resync;
    gitops.jitter = args.app_resync_jitter;
    gitops.sync_timeout = (!args.sync_timeout.is_zero()).then_some(args.sync_timeout);
    let rollouts = args.controllers.iter().any(|c| c == "rollouts");
    let gitops = args
        .controllers
        .iter()
        .any(|c| c == "gitops")
        .then_some(gitops);
    let work = || {
        let analysis = sluice_analysis::controller::Settings {
            prometheus_address: args.prometheus_address.clone(),
            threads: args.analysis_threads,
            ..Default::default()
        };
        metrics.run(
            client.clone(),
            (settings.clone(), analysis),
            rollouts,
            gitops.clone().map(|gitops| (client.clone(), gitops)),
        )
    };
    let controllers = async {
        if args.leader_elect {
            eprintln!("sluice controller: waiting for Lease {lease_namespace}/{lease}");
            elector.lead(work).await;
        } else {
            work().await;
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing a SIGTERM handler")?;
    tokio::select! {
        result = health => result.context("serving /healthz")?,
        result = scrape => result.context("serving /metrics")?,
        () = controllers => anyhow::bail!("the controllers stopped: the API server went away"),
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    if args.leader_elect
        && let Err(err) = elector.release().await
    {
        eprintln!("sluice controller: releasing the Lease: {err}");
    }
    Ok(())
}
