//! `sluice up`: the embedded control plane on this machine, with the flags of DESIGN §7; with
//! `--prometheus`, a real Prometheus beside it scraping its pods, its ingress and its
//! controllers, which the controllers query by default.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::controller::ControllerMetrics;
use anyhow::Context;
use clap::Args;
use sluice_cluster::{
    Cluster, ClusterConfig, DataDir, IngressConfig,
    authn::User,
    kubelet::Rules,
    os::group::PidFiles,
    prometheus::{self, Prometheus, PrometheusConfig, TargetGroup, targets},
    store::Durability,
};

/// Image rules when `--images` is not given: demo images run the demo app (built in, after any
/// file's rules), every other image runs simulated, ready after a second.
const BUILT_IN_RULES: &str = "default:\n  readyAfter: 1s\n";

/// Where Applications live, as in Argo CD.
const ARGOCD: &str = "argocd";

/// The user the Rollout and AnalysisRun controllers act as in `sluice up`.
const ROLLOUTS_USER: &str = "sluice:rollouts";
/// The user the Application controller (and its webhooks) act as in `sluice up`.
const GITOPS_USER: &str = "sluice:gitops";

/// `deploy/install.yaml`: `sluice up` gives its controllers exactly the rights the install gives
/// `sluice controller`, so running it proves the install's rules.
const INSTALL: &str = include_str!("../../../deploy/install.yaml");

/// Gives `sluice:rollouts` and `sluice:gitops` the rules of the install's `sluice-controller`
/// and `sluice-gitops-controller` ClusterRoles, in ClusterRoles of their own names (brought up
/// to date at every start, so they follow the install; named apart from the install's own, so
/// applying the install to `sluice up` changes nothing of them).
fn install_identities(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.grant_roles_of(
        INSTALL,
        "deploy/install.yaml",
        &[
            ("sluice-controller", ROLLOUTS_USER),
            ("sluice-gitops-controller", GITOPS_USER),
        ],
    )?;
    Ok(())
}

/// Flags of `sluice up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Store, CA, kubeconfig, logs and pid files [default: $XDG_DATA_HOME/sluice]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the object store in memory (the CA and kubeconfig still go to the data dir).
    #[arg(long)]
    ephemeral: bool,
    /// HTTPS address of the API server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Ingress data plane address, or `off`.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:8080")]
    ingress_listen: String,
    /// Ingress Prometheus metrics address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:10254")]
    ingress_metrics_listen: SocketAddr,
    /// How the local kubelet runs each image (built-in rules when absent).
    #[arg(long, value_name = "FILE")]
    images: Option<PathBuf>,
    /// Let `exec` runs and `exec` probes run commands on this host.
    #[arg(long)]
    allow_host_exec: bool,
    /// Start the `prometheus` binary on PATH as a child, on this loopback address, scraping
    /// pods and sluice every 2 s; the controllers' default Prometheus.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9090")]
    prometheus: Option<SocketAddr>,
    /// The controllers' Prometheus metrics (as `sluice controller`'s); not bound with
    /// `--no-controllers`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    metrics_listen: SocketAddr,
    /// Git push webhooks (`POST /api/webhook`, Argo CD's path) for the Application
    /// controller, or `off`; not bound with `--no-controllers`.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:8070", value_parser = crate::controller::parse_listen)]
    webhook_listen: crate::controller::Listen,
    /// Only the cluster (API server and cluster runtime), no sluice controllers.
    #[arg(long)]
    no_controllers: bool,
}

/// `$XDG_DATA_HOME/sluice`, or `~/.local/share/sluice`.
pub fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("sluice")
}

impl UpArgs {
    /// The ingress listeners, unless `--ingress-listen off`.
    fn ingress(&self) -> anyhow::Result<Option<IngressConfig>> {
        if self.ingress_listen == "off" {
            return Ok(None);
        }
        let listen = self.ingress_listen.parse().with_context(|| {
            format!(
                "--ingress-listen {:?}: expected an address such as 127.0.0.1:8080, or off",
                self.ingress_listen
            )
        })?;
        Ok(Some(IngressConfig {
            listen,
            metrics_listen: self.ingress_metrics_listen,
        }))
    }

    /// Parts whose flags are accepted but that are not built yet.
    fn not_yet_available(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.no_controllers {
            notes.push(
                "the Rollout controller runs blue-green and canary with analysis gates (web, job and prometheus metrics) and the NGINX traffic router, and Applications sync Git directories and kustomize overlays; the other traffic routers (Istio, SMI, Gateway API, ALB) and Helm sources are not built yet"
                    .into(),
            );
        }
        notes
    }

    /// `--prometheus`'s address, checked before anything starts: loopback only, and the
    /// binary installed.
    fn prometheus(&self) -> anyhow::Result<Option<SocketAddr>> {
        let Some(address) = self.prometheus else {
            return Ok(None);
        };
        anyhow::ensure!(
            address.ip().is_loopback(),
            "--prometheus={address}: Prometheus listens on loopback only (such as 127.0.0.1:9090)"
        );
        sluice_cluster::prometheus::find().context("--prometheus")?;
        Ok(Some(address))
    }
}

/// Runs the control plane until SIGINT or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let mut rules = match &args.images {
        Some(path) => Rules::load(path)?,
        None => Rules::parse(BUILT_IN_RULES).expect("the built-in image rules parse"),
    };
    let program = std::env::current_exe().context("finding the sluice binary for demo pods")?;
    rules.demo = Some(vec![program.display().to_string(), "demo-app".into()]);
    rules.smoke = Some(vec![program.display().to_string(), "smoke".into()]);
    rules.allow_host_exec = args.allow_host_exec;
    let ingress = args.ingress()?;
    let prometheus_listen = args.prometheus()?;
    let lock = DataDir::lock(&data_dir)?;
    for note in args.not_yet_available() {
        tracing::warn!("not yet available: {note}");
    }
    let cluster = Cluster::start(ClusterConfig {
        data_dir: lock.path().to_owned(),
        ephemeral: args.ephemeral,
        listen: args.listen,
        durability: Durability::Full,
        store: Default::default(),
        runtime: Some(rules),
        ingress,
    })
    .await
    .context("starting the control plane")?;
    check_serving(&cluster).await?;
    if !args.no_controllers {
        install_identities(&cluster)
            .context("binding the controllers' users to deploy/install.yaml's roles")?;
    }
    let rollouts_client = cluster.api().client_as(User::component(ROLLOUTS_USER, &[]));
    let gitops_client = cluster.api().client_as(User::component(GITOPS_USER, &[]));
    if !args.no_controllers {
        sluice_gitops::controller::ensure_home(&gitops_client, ARGOCD)
            .await
            .context("creating the argocd namespace and the default AppProject")?;
    }
    let repos = lock.path().join("repos");
    let mut ready = format!(
        "sluice: ready at https://{} (kubeconfig: {})",
        cluster.address(),
        cluster.kubeconfig().display()
    );
    let metrics_listener = if args.no_controllers {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("listening for metrics on {}", args.metrics_listen))?;
        let address = listener.local_addr()?;
        Some((listener, address))
    };
    let prometheus = match prometheus_listen {
        Some(listen) => Some(
            start_prometheus(
                &cluster,
                lock.path(),
                listen,
                metrics_listener.as_ref().map(|(_, a)| *a),
            )
            .await?,
        ),
        None => None,
    };
    let prometheus_address = prometheus
        .as_ref()
        .map(|(p, _)| p.url())
        .or_else(|| std::env::var(sluice_analysis::provider::prometheus::ADDRESS_ENV).ok());
    let controllers = if let Some((listener, address)) = metrics_listener {
        let metrics = ControllerMetrics::default();
        let router = metrics.router();
        let scrape = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let client = rollouts_client;
        let webhook = match args.webhook_listen.0 {
            Some(address) => Some(
                sluice_gitops::webhook::listener::start(address, gitops_client.clone(), ARGOCD)
                    .await
                    .with_context(|| format!("listening for webhooks on {address}"))?,
            ),
            None => None,
        };
        if let Some(address) = webhook {
            ready.push_str(&format!(" webhooks http://{address}/api/webhook"));
        }
        let gitops = sluice_gitops::controller::Settings::new(ARGOCD, repos);
        let run = tokio::spawn(async move {
            metrics
                .run(
                    client,
                    (
                        Default::default(),
                        sluice_analysis::controller::Settings {
                            prometheus_address,
                            ..Default::default()
                        },
                    ),
                    true,
                    Some((gitops_client, gitops)),
                )
                .await
        });
        Some((run, scrape, address))
    } else {
        None
    };
    if let Some((ingress, metrics)) = cluster.ingress_addresses() {
        ready.push_str(&format!(
            " ingress http://{ingress} ingress metrics http://{metrics}/metrics"
        ));
    }
    if let Some((_, _, address)) = &controllers {
        ready.push_str(&format!(" metrics http://{address}/metrics"));
    }
    if let Some((prometheus, _)) = &prometheus {
        ready.push_str(&format!(" prometheus {}", prometheus.url()));
    }
    println!("{ready}");
    wait_for_signal().await?;
    tracing::info!("shutting down");
    if let Some((run, scrape, _)) = controllers {
        run.abort();
        scrape.abort();
    }
    if let Some((prometheus, targets)) = prometheus {
        targets.abort();
        prometheus.shutdown().await;
    }
    cluster.shutdown().await;
    drop(lock);
    Ok(())
}

/// Starts Prometheus under `DATA_DIR/prometheus` scraping every 2 s: the pods (followed into
/// `targets/pods.json`), the ingress data plane's metrics and the controllers'.
async fn start_prometheus(
    cluster: &Cluster,
    data_dir: &Path,
    listen: SocketAddr,
    controller_metrics: Option<SocketAddr>,
) -> anyhow::Result<(Prometheus, tokio::task::JoinHandle<()>)> {
    let dir = data_dir.join("prometheus");
    let mut groups = Vec::new();
    let mut job = |job: &str, address: SocketAddr| {
        groups.push(TargetGroup {
            targets: vec![address.to_string()],
            labels: [("job".to_owned(), job.to_owned())].into(),
        });
    };
    if let Some((_, metrics)) = cluster.ingress_addresses() {
        job("ingress-nginx", metrics);
    }
    if let Some(metrics) = controller_metrics {
        job("sluice", metrics);
    }
    prometheus::write_targets(&dir, "sluice", &groups)?;
    prometheus::write_targets(&dir, targets::POD_TARGETS, &[])?;
    let prometheus = Prometheus::start(PrometheusConfig {
        listen,
        dir: dir.clone(),
        scrape_interval: Duration::from_secs(2),
        pid_files: Some(PidFiles::new(data_dir)),
    })
    .await
    .context("--prometheus")?;
    let client = cluster.api().client_as(User::prometheus());
    let targets = tokio::spawn(targets::run(client, dir));
    Ok((prometheus, targets))
}

/// Confirms, through the kubeconfig as a user would, that discovery lists every kind.
async fn check_serving(cluster: &Cluster) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let groups = client
        .list_api_groups()
        .await
        .context("discovery over HTTPS")?;
    for t in cluster.api().registry().all() {
        if t.group.is_empty() {
            continue;
        }
        anyhow::ensure!(
            groups.groups.iter().any(|g| g.name == t.group),
            "discovery does not list {}",
            t.group
        );
    }
    let resources = client
        .list_api_group_resources("argoproj.io/v1alpha1")
        .await
        .context("discovery of argoproj.io/v1alpha1")?;
    for kind in [
        "Rollout",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "AnalysisRun",
        "Experiment",
    ] {
        anyhow::ensure!(
            resources.resources.iter().any(|r| r.kind == kind),
            "{kind} is not served"
        );
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
