//! The `sluice` binary: parses the command line and hands off to a command. Linked as
//! `kubectl-argo-rollouts` or `kubectl-sluice` it is that kubectl plugin ([`plugin`]).

mod analysis;
mod app;
mod cli;
mod connect;
mod controller;
mod image_set;
mod inspect;
mod lint;
mod list;
mod plugin;
mod smoke;
mod tree;
mod up;
mod verbs;
mod version;

use clap::{CommandFactory, FromArgMatches};

/// jemalloc, not glibc's malloc: see `Cargo.toml` and `benches/scale.rs`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args.first().map_or("sluice", plugin::invoked_as);
    let matches = cli::Cli::command()
        .bin_name(name)
        .get_matches_from(plugin::arguments(args));
    match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli.run(),
        Err(err) => err.exit(),
    }
}
