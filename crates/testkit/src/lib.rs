//! Test support shared by sluice's test binaries, a dev-dependency only: one embedded cluster
//! per test binary on a runtime of its own ([`cluster`]), typed objects from JSON, a namespace
//! per test and waiting for a condition ([`objects`]), and the process-level pieces — the
//! `sluice` binary, `sluice up` as a child process and the kubectl on PATH, which is required
//! under CI ([`process`]), a real Prometheus with a metrics endpoint a test controls
//! ([`prometheus`]), and a real sshd serving the machine's git repositories ([`sshd`]).

pub mod cluster;
pub mod git;
pub mod git_http;
pub mod objects;
pub mod process;
pub mod prometheus;
pub mod sshd;

pub use cluster::Shared;
pub use objects::{eventually, from, namespace};
