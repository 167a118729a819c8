//! The node operations the API server needs — running a command in a container (`exec`,
//! `kubectl cp`), attaching to one, reading its logs and what it uses (the metrics API) —
//! behind one trait, [`NodeOps`], that the kubelet implements and `Cluster::start` hands to the
//! API server. Port-forward needs none: it dials the pod's address, which the pod's status has.
//! [`logs`] is the container log format both sides share: the kubelet writes it, `pods/log`
//! reads it.
//!
//! Layering: below the API server and the kubelet, above [`crate::os`]; the API server never
//! imports the kubelet, only this.

pub mod logs;

use std::{path::PathBuf, sync::Arc};

use crate::os::{terminal, usage::Usage};

/// How to run a command in a running container: what the kubelet launched it with.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// The container's environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub dir: PathBuf,
}

/// What `attach` connects to: a running container's output as the kubelet reads it, from the
/// moment of attaching, and its stdin when it has one.
#[derive(Debug)]
pub struct Attachment {
    /// Its stdout — or its terminal, for a `tty: true` container.
    pub stdout: tokio::sync::broadcast::Receiver<bytes::Bytes>,
    /// Its stderr (none on a terminal).
    pub stderr: Option<tokio::sync::broadcast::Receiver<bytes::Bytes>>,
    /// Its stdin (`stdin: true`); with `stdinOnce` only the first attach gets it, and the
    /// container's stdin closes when that attach ends.
    pub stdin: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    /// Its terminal, for resizing.
    pub terminal: Option<Arc<terminal::Terminal>>,
    /// Turns true once the container has exited and the kubelet has read all its output.
    pub exited: tokio::sync::watch::Receiver<bool>,
    /// The attach ends when the client's input does (as containerd's, unless the container's
    /// stdin closes with it: `stdinOnce` without a terminal).
    pub ends_with_input: bool,
}

impl ExecContext {
    /// `argv` as a command run in this directory with this environment and no other; `None`
    /// for an empty `argv`.
    pub fn command(&self, argv: &[String]) -> Option<tokio::process::Command> {
        let (program, args) = argv.split_first()?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .current_dir(&self.dir);
        Some(command)
    }
}

/// What the API server asks of the node: the kubelet's side of `exec`, `attach`, `pods/log`
/// and the metrics API. The kubelet implements it; `Cluster::start` hands it to the API server.
pub trait NodeOps: Send + Sync {
    /// How to run a command in `container` of the pod with `uid`.
    ///
    /// # Errors
    /// Why no command can run there (simulated, not running, host exec not allowed).
    fn exec_context(&self, uid: &str, container: &str) -> Result<ExecContext, String>;

    /// The running `container` of the pod with `uid`, to attach to.
    /// With `stdin` the attachment carries the container's stdin, if it has one.
    ///
    /// # Errors
    /// Why there is nothing to attach to (simulated, not running).
    fn attach(&self, uid: &str, container: &str, stdin: bool) -> Result<Attachment, String>;

    /// What the running containers of the pod with `uid` that are local processes use, by
    /// container name.
    fn usage(&self, uid: &str) -> Vec<(String, Usage)>;

    /// What this machine uses.
    fn node_usage(&self) -> Option<Usage>;

    /// The file the kubelet writes the log of one start (`restart`) of `container` to, in the
    /// pod `namespace`/`name` with `uid` (CRI records, [`logs`]).
    fn log_file(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        restart: i64,
    ) -> PathBuf;
}
