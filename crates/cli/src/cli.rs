//! Command-line definition and dispatch. Commands stay thin: they call the library crates and
//! print.

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::{app, controller, image_set, lint, list, smoke, up, verbs, version};

/// sluice: progressive delivery for Kubernetes (blue-green and canary, gated by analysis).
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded Kubernetes-compatible control plane on this machine.
    Up(up::UpArgs),
    /// Run sluice's controllers against the cluster of a kubeconfig, with leader election.
    Controller(controller::ControllerArgs),
    /// Run the demo application (what local pods of `argoproj/rollouts-demo` run).
    DemoApp(DemoAppArgs),
    /// Check URLs and exit 1 when too many fail (what the `sluice/smoke` image runs).
    #[command(hide = true)]
    Smoke(smoke::SmokeArgs),
    /// Print sluice's CustomResourceDefinitions as one multi-document YAML stream
    /// (`sluice crds | kubectl apply --server-side -f -`).
    Crds,
    /// Edit images in the CD repository (the CI step after building and pushing an image).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Argo CD's Applications: list, get, sync, wait (as `argocd app …`).
    #[command(subcommand)]
    App(app::AppCommand),
    /// List Rollouts with `kubectl argo rollouts list`' columns.
    #[command(subcommand)]
    List(list::ListCommand),
    /// Check the Rollouts of a file, and the Services and Ingresses it references there,
    /// without a cluster; exit 1 naming every problem.
    Lint(lint::LintArgs),
    /// Print the version and build information.
    Version(version::VersionArgs),
    /// Print a shell completion script (`source <(sluice completion bash)`).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Verb(verbs::Verb),
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Set a container's image in manifests, a kustomization or Helm values, changing only the
    /// bytes of that value; optionally commit and push.
    Set(image_set::ImageSetArgs),
}

impl Cli {
    /// Runs the command; errors are printed with their causes and give exit code 1.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Up(args) => runtime().and_then(|rt| rt.block_on(up::run(args))),
            Command::Controller(args) => {
                runtime().and_then(|rt| rt.block_on(controller::run(args)))
            }
            Command::DemoApp(args) => runtime().and_then(|rt| rt.block_on(demo_app(args))),
            Command::Smoke(args) => match runtime().and_then(|rt| rt.block_on(smoke::run(args))) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(err) => Err(err),
            },
            Command::Crds => print_crds(),
            Command::Image(ImageCommand::Set(args)) => return image_set::run(args),
            Command::App(app::AppCommand::Diff(args)) => {
                return match runtime().and_then(|rt| rt.block_on(app::diff::run(args))) {
                    Ok(false) => ExitCode::SUCCESS,
                    Ok(true) => ExitCode::from(1),
                    Err(err) => {
                        eprintln!("sluice: {err:#}");
                        ExitCode::from(2)
                    }
                };
            }
            Command::App(command) => runtime().and_then(|rt| rt.block_on(app::run(command))),
            Command::List(command) => runtime().and_then(|rt| rt.block_on(list::run(command))),
            Command::Lint(args) => return lint::run(&args),
            Command::Version(args) => {
                version::run(&args);
                Ok(())
            }
            Command::Completion { shell } => {
                let name = version::program_name(std::env::args_os().next());
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), name, &mut script);
                write_stdout(&script)
            }
            Command::Verb(verb) => runtime().and_then(|rt| rt.block_on(verbs::run(verb))),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sluice: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Flags of `sluice demo-app`. `COLOR`, `ERROR_RATE` (percent), `LATENCY` (seconds) and
/// `VERSION` in the environment override the tag.
#[derive(Debug, clap::Args)]
struct DemoAppArgs {
    /// Address to listen on [default: $POD_IP:$PORT, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// A rollouts-demo image tag: a colour, bad-<colour> (15 % errors) or slow-<colour> (2 s).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Seconds to keep serving after SIGTERM, while load balancers stop sending traffic.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    termination_delay: f64,
}

async fn demo_app(args: DemoAppArgs) -> anyhow::Result<()> {
    let config = match &args.tag {
        Some(tag) => sluice_demo::DemoConfig::from_tag(tag)?,
        None => sluice_demo::DemoConfig::default(),
    };
    let mut config = config.with_env(|name| std::env::var(name).ok())?;
    config.termination_delay = std::time::Duration::from_secs_f64(args.termination_delay.max(0.0));
    let listen = match args.listen {
        Some(address) => address,
        None => {
            let ip = std::env::var("POD_IP").unwrap_or_else(|_| "127.0.0.1".into());
            let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
            format!("{ip}:{port}")
                .parse()
                .context("POD_IP and PORT do not form an address")?
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("sluice demo-app: serving on http://{listen}");
    let stop = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    sluice_demo::serve(sluice_demo::Demo::new(config), listener, stop).await?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // kube-rs and the API server both use rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Argo CD's Application is a deep type: serde's derived decoding of it (in the GitOps
    // controller's watch) needs more than the 2 MiB a worker gets by default in debug builds.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()
        .context("starting the async runtime")
}

fn print_crds() -> anyhow::Result<()> {
    let yaml = sluice_api::crd::yaml_stream().context("rendering CRDs")?;
    write_stdout(yaml.as_bytes())
}

/// Writes to stdout; a reader that stopped early (`| head`) is no error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
