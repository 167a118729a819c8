//! Command-line definition and dispatch. Commands stay thin: they call the library crates and
//! print.

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::up;

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
    /// Print sluice's CustomResourceDefinitions as one multi-document YAML stream
    /// (`sluice crds | kubectl apply --server-side -f -`).
    Crds,
}

impl Cli {
    /// Runs the command; errors are printed with their causes and give exit code 1.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Up(args) => runtime().and_then(|rt| rt.block_on(up::run(args))),
            Command::Crds => print_crds(),
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn print_crds() -> anyhow::Result<()> {
    let yaml = sluice_api::crd::yaml_stream().context("rendering CRDs")?;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(yaml.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
