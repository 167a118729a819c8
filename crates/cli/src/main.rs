//! The `sluice` binary: parses the command line and hands off to a command.

mod cli;
mod connect;
mod controller;
mod image_set;
mod inspect;
mod tree;
mod up;
mod verbs;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::Cli::parse().run()
}
