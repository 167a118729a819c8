//! The supervisor of real containers: the local processes of the `process` and `exec` runtimes.
//! It starts a container (after checking its ports are free on the pod's address), captures its
//! output into the log files, runs its probes, and stops it (SIGTERM to the process group, then
//! SIGKILL when the grace period ends). It keeps what it sees per container and tells the kubelet
//! (through the trigger stream) whenever that changes; the kubelet's planner decides what to do.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures::channel::mpsc;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Probe};
use kube::runtime::reflector::ObjectRef;
use sluice_reconcile::events::Recorder;
use tokio::{
    io::AsyncRead,
    process::Command,
    sync::{broadcast, watch},
};

use super::probe::{self, Kind, Prober, Target};
use crate::{
    controllers::record,
    node::{Attachment, ExecContext, NodeOps, logs},
    os::{
        group::{self, PidFiles, Signal},
        terminal::{self, Pty, Terminal},
        usage::{Sampler, Usage},
    },
};

/// What the supervisor sees of one container.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// No process in this run of sluice (never started, or started before a restart of sluice).
    Absent,
    /// Running.
    Running {
        /// The container ID (`process://PID`).
        id: String,
        /// When it started.
        started_at: Timestamp,
        /// The startup probe passed (or there is none).
        started: bool,
        /// Ready: started and the readiness probe passes (or there is none).
        ready: bool,
        /// A liveness or startup probe failed: why (the container must be restarted).
        unhealthy: Option<String>,
        /// It is being stopped.
        stopping: bool,
    },
    /// The process exited.
    Exited {
        /// The container ID it had.
        id: String,
        /// When it started.
        started_at: Timestamp,
        /// When it exited.
        finished_at: Timestamp,
        /// Exit code (128 + signal when killed by a signal).
        code: i32,
    },
    /// It could not be started.
    Failed {
        /// Kubernetes' waiting reason (`CreateContainerError`, `RunContainerError`).
        reason: String,
        /// Why.
        message: String,
        /// When.
        at: Timestamp,
    },
}

/// Everything needed to start one container.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The pod (for triggers), and its reference (for events).
    pub pod: ObjectRef<Pod>,
    /// The pod as an event subject.
    pub reference: ObjectReference,
    /// Container name.
    pub container: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory (the pod's directory).
    pub dir: PathBuf,
    /// The log file of this start.
    pub log: PathBuf,
    /// Ports that must be free on the pod's address (the `process` runtime binds them).
    pub ports: Vec<u16>,
    /// How probes reach the container.
    pub target: Target,
    /// Startup, readiness and liveness probes.
    pub probes: [(Kind, Option<Probe>); 3],
    /// The container's `stdin` and `stdinOnce`: keep a stdin open for `attach`, and close it
    /// after the first attach that used it.
    pub stdin: (bool, bool),
    /// The container's `tty`: run it on a pseudo-terminal (its stdin, stdout and stderr).
    pub tty: bool,
}

#[derive(Debug)]
struct Life {
    id: String,
    pid: u32,
    started_at: Timestamp,
    started: bool,
    ready: bool,
    unhealthy: Option<String>,
    stopping: bool,
    exit: Option<(i32, Timestamp)>,
    /// How it was started, for `exec`.
    exec: ExecContext,
    /// Its output as read, for `attach`: stdout (or the terminal) and stderr.
    live: (broadcast::Sender<Bytes>, Option<broadcast::Sender<Bytes>>),
    /// Its terminal (`tty: true`).
    terminal: Option<Arc<Terminal>>,
    /// Its stdin, for `attach` (`stdin: true`; taken by the first attach with `stdinOnce`).
    stdin: Option<tokio::sync::mpsc::Sender<Bytes>>,
    /// `stdinOnce`.
    stdin_once: bool,
    /// True once it exited and its output is all in the log.
    exited: watch::Receiver<bool>,
}

#[derive(Debug)]
enum Slot {
    Live(Arc<Mutex<Life>>),
    Failed {
        reason: String,
        message: String,
        at: Timestamp,
    },
}

type Key = (String, String);

/// The supervisor; one per kubelet.
pub struct Supervisor {
    slots: Mutex<HashMap<Key, Slot>>,
    /// Whether `kubectl exec` may run commands on this host (`--allow-host-exec`).
    allow_host_exec: bool,
    trigger: mpsc::UnboundedSender<ObjectRef<Pod>>,
    pid_files: PidFiles,
    /// The data dir, where pod directories (logs) live.
    data_dir: PathBuf,
    recorder: Recorder,
    usage: Sampler,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    /// A supervisor keeping pid files in the data dir, and the stream of pods whose containers
    /// changed. Groups left by an earlier run that was killed are reaped first.
    pub fn new(
        data_dir: &std::path::Path,
        recorder: Recorder,
        allow_host_exec: bool,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<ObjectRef<Pod>>) {
        let pid_files = PidFiles::new(data_dir);
        pid_files.reap();
        let (trigger, triggered) = mpsc::unbounded();
        let supervisor = Self {
            slots: Mutex::default(),
            allow_host_exec,
            trigger,
            pid_files,
            data_dir: data_dir.to_owned(),
            recorder,
            usage: Sampler::default(),
        };
        (Arc::new(supervisor), triggered)
    }

    /// What is known of a container of the pod with `uid`.
    pub fn observe(&self, uid: &str, container: &str) -> Observed {
        let slots = lock(&self.slots);
        match slots.get(&(uid.to_owned(), container.to_owned())) {
            None => Observed::Absent,
            Some(Slot::Failed {
                reason,
                message,
                at,
            }) => Observed::Failed {
                reason: reason.clone(),
                message: message.clone(),
                at: *at,
            },
            Some(Slot::Live(life)) => {
                let life = lock(life);
                // Reported exited once its last output is read (the log complete); until then
                // it is a container on its way out.
                match life.exit.filter(|_| *life.exited.borrow()) {
                    Some((code, finished_at)) => Observed::Exited {
                        id: life.id.clone(),
                        started_at: life.started_at,
                        finished_at,
                        code,
                    },
                    None => Observed::Running {
                        id: life.id.clone(),
                        started_at: life.started_at,
                        started: life.started,
                        ready: life.ready,
                        unhealthy: life.unhealthy.clone(),
                        stopping: life.stopping || life.exit.is_some(),
                    },
                }
            }
        }
    }

    /// UIDs of pods with containers known here.
    pub fn pods(&self) -> std::collections::BTreeSet<String> {
        lock(&self.slots).keys().map(|(u, _)| u.clone()).collect()
    }

    /// Whether no container of the pod is running.
    pub fn all_stopped(&self, uid: &str) -> bool {
        lock(&self.slots).iter().all(|((u, _), slot)| match slot {
            Slot::Live(life) => u != uid || lock(life).exit.is_some(),
            Slot::Failed { .. } => true,
        })
    }

    /// Forgets a pod whose containers have all stopped.
    pub fn forget(&self, uid: &str) {
        lock(&self.slots).retain(|(u, _), _| u != uid);
    }

    /// Records that a container could not be started: `reason` is Kubernetes' waiting reason.
    pub fn fail(
        &self,
        uid: &str,
        container: &str,
        pod: &ObjectRef<Pod>,
        reason: &str,
        message: String,
    ) {
        lock(&self.slots).insert(
            (uid.to_owned(), container.to_owned()),
            Slot::Failed {
                reason: reason.to_owned(),
                message,
                at: Timestamp::now(),
            },
        );
        let _ = self.trigger.unbounded_send(pod.clone());
    }

    /// Starts a container of the pod `uid` (replacing an exited or failed one). A port in use or
    /// a program that cannot run leaves it `Failed` with the reason.
    pub async fn start(self: &Arc<Self>, uid: &str, launch: Launch) {
        if matches!(
            self.observe(uid, &launch.container),
            Observed::Running { .. }
        ) {
            return;
        }
        let fail = |reason: &str, message: String| {
            self.fail(uid, &launch.container, &launch.pod, reason, message);
        };
        for port in &launch.ports {
            if let Err(err) = TcpListener::bind((launch.target.pod_ip, *port)) {
                let ip = launch.target.pod_ip;
                return fail(
                    "CreateContainerError",
                    format!("port {port} on {ip} is not free: {err}"),
                );
            }
        }
        let exec = ExecContext {
            env: launch.env.clone(),
            dir: launch.dir.clone(),
        };
        let (Some(command), Some(program)) = (exec.command(&launch.argv), launch.argv.first())
        else {
            return fail(
                "CreateContainerError",
                "the container has no command to run".into(),
            );
        };
        if let Some(dir) = launch.log.parent()
            && let Err(err) = std::fs::create_dir_all(dir)
        {
            return fail(
                "CreateContainerError",
                format!("creating {}: {err}", dir.display()),
            );
        }
        let spawned = if launch.tty {
            on_terminal(command, launch.stdin.0).await
        } else {
            on_pipes(command, launch.stdin.0).await
        };
        let Spawned {
            mut child,
            stdout,
            stderr,
            stdin,
            terminal,
        } = match spawned {
            Ok(spawned) => spawned,
            Err(err) => return fail("RunContainerError", format!("exec {program:?}: {err}")),
        };
        let pid = child.id().unwrap_or_default();
        let what = format!("{}/{}", launch.pod, launch.container);
        self.pid_files.record(pid, &what);
        let live = (
            broadcast::channel(LIVE_CHUNKS).0,
            stderr.is_some().then(|| broadcast::channel(LIVE_CHUNKS).0),
        );
        let log = launch.log.clone();
        let pumps = [
            Some(tokio::spawn(logs::pump(
                stdout,
                "stdout",
                log.clone(),
                live.0.clone(),
            ))),
            stderr
                .zip(live.1.clone())
                .map(|(err, live)| tokio::spawn(logs::pump(err, "stderr", log, live))),
        ];
        let (exited, on_exit) = watch::channel(false);
        let has_startup = launch.probes[0].1.is_some();
        let has_readiness = launch.probes[1].1.is_some();
        let life = Arc::new(Mutex::new(Life {
            id: format!("process://{pid}"),
            pid,
            started_at: Timestamp::now(),
            started: !has_startup,
            ready: !has_startup && !has_readiness,
            unhealthy: None,
            stopping: false,
            exit: None,
            exec,
            live,
            terminal,
            stdin,
            stdin_once: launch.stdin.1,
            exited: on_exit.clone(),
        }));
        lock(&self.slots).insert(
            (uid.to_owned(), launch.container.clone()),
            Slot::Live(life.clone()),
        );
        let (startup_passed, on_startup) = watch::channel(!has_startup);
        let launch = Arc::new(launch);
        for (kind, probe) in launch.probes.iter().cloned() {
            let Some(probe) = probe else { continue };
            let run = self.clone().probe(
                kind,
                probe,
                launch.clone(),
                life.clone(),
                on_exit.clone(),
                (startup_passed.clone(), on_startup.clone()),
            );
            tokio::spawn(run);
        }
        let supervisor = self.clone();
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => status
                    .code()
                    .or_else(|| {
                        std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s)
                    })
                    .unwrap_or(-1),
                Err(_) => -1,
            };
            // Whatever the leader left in its group (or, on a terminal, its session) goes too.
            kill_container(pid, &life);
            supervisor.pid_files.remove(pid);
            lock(&life).exit = Some((code, Timestamp::now()));
            // Its last output reaches the log and attached clients before anyone hears it
            // exited.
            for pump in pumps.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
            }
            let _ = exited.send(true);
            let _ = supervisor.trigger.unbounded_send(launch.pod.clone());
        });
    }

    /// Runs one probe until the container exits or the probe decides it must restart.
    async fn probe(
        self: Arc<Self>,
        kind: Kind,
        probe: Probe,
        launch: Arc<Launch>,
        life: Arc<Mutex<Life>>,
        mut exited: watch::Receiver<bool>,
        (startup_passed, mut on_startup): (watch::Sender<bool>, watch::Receiver<bool>),
    ) {
        if kind != Kind::Startup && on_startup.wait_for(|passed| *passed).await.is_err() {
            return;
        }
        let (delay, period) = probe::timing(&probe);
        let mut prober = Prober::new(&probe, kind);
        let mut next = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = exited.wait_for(|gone| *gone) => return,
                () = tokio::time::sleep_until(next) => {}
            }
            next += period;
            let result = probe::check(&probe, &launch.target).await;
            if let Err(why) = &result {
                let note = format!("{} probe failed: {why}", kind.label());
                record(&self.recorder, &launch.reference, true, "Unhealthy", note).await;
            }
            let Some(passing) = prober.record(result.is_ok()) else {
                continue;
            };
            {
                let mut life = lock(&life);
                match (kind, passing) {
                    (Kind::Readiness, ready) => life.ready = ready,
                    (Kind::Startup, true) => {
                        life.started = true;
                        life.ready = launch.probes[1].1.is_none();
                    }
                    (Kind::Liveness | Kind::Startup, _) => {
                        life.unhealthy = Some(format!("{} probe", kind.label().to_lowercase()));
                    }
                }
            }
            let _ = self.trigger.unbounded_send(launch.pod.clone());
            match (kind, passing) {
                (Kind::Startup, true) => {
                    let _ = startup_passed.send(true);
                    return;
                }
                (Kind::Liveness | Kind::Startup, false) => return,
                _ => {}
            }
        }
    }

    /// Stops a container: SIGTERM to its group now, SIGKILL after `grace`. Idempotent.
    pub fn stop(&self, uid: &str, container: &str, grace: Duration) {
        let life = match lock(&self.slots).get(&(uid.to_owned(), container.to_owned())) {
            Some(Slot::Live(life)) => life.clone(),
            _ => return,
        };
        let pid = {
            let mut life = lock(&life);
            if life.stopping || life.exit.is_some() {
                return;
            }
            life.stopping = true;
            life.ready = false;
            life.pid
        };
        group::signal_group(pid, Signal::Terminate);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if lock(&life).exit.is_none() {
                group::signal_group(pid, Signal::Kill);
            }
        });
    }

    /// Stops every container of a pod.
    pub fn stop_pod(&self, uid: &str, grace: Duration) {
        let containers: Vec<String> = lock(&self.slots)
            .keys()
            .filter(|(u, _)| u == uid)
            .map(|(_, c)| c.clone())
            .collect();
        for container in containers {
            self.stop(uid, &container, grace);
        }
    }

    fn live_groups(&self) -> Vec<(u32, Arc<Mutex<Life>>)> {
        lock(&self.slots)
            .values()
            .filter_map(|slot| match slot {
                Slot::Live(life) => Some(life.clone()),
                Slot::Failed { .. } => None,
            })
            .filter_map(|life| {
                let pid = {
                    let l = lock(&life);
                    l.exit.is_none().then_some(l.pid)
                }?;
                Some((pid, life))
            })
            .collect()
    }

    /// Stops every container: SIGTERM, then SIGKILL for those still running after `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let live = self.live_groups();
        for (pid, _) in &live {
            group::signal_group(*pid, Signal::Terminate);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline
            && live.iter().any(|(_, life)| lock(life).exit.is_none())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_all();
    }

    fn kill_all(&self) {
        for (pid, life) in self.live_groups() {
            kill_container(pid, &life);
            self.pid_files.remove(pid);
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Kills a container's process group and, when it runs on a terminal (it then leads a session
/// whose shell gives each job a group of its own), its whole session — the `/proc` scan only
/// where a session can hold more.
fn kill_container(pid: u32, life: &Mutex<Life>) {
    group::signal_group(pid, Signal::Kill);
    if lock(life).terminal.is_some() {
        group::signal_session(pid, Signal::Kill);
    }
}

/// How many chunks of output an attached client may fall behind before it misses some.
const LIVE_CHUNKS: usize = 1024;

/// A started container process and its streams.
struct Spawned {
    child: tokio::process::Child,
    stdout: Box<dyn AsyncRead + Send + Unpin>,
    stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    stdin: Option<tokio::sync::mpsc::Sender<Bytes>>,
    terminal: Option<Arc<Terminal>>,
}

/// Starts `command` on pipes (stdin only with `stdin: true`).
async fn on_pipes(mut command: Command, stdin: bool) -> std::io::Result<Spawned> {
    command
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = group::spawn(command).await?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
        return Err(std::io::Error::other(
            "the container's output pipes are missing",
        ));
    };
    Ok(Spawned {
        stdin: child.stdin.take().map(feed),
        stdout: Box::new(stdout),
        stderr: Some(Box::new(stderr)),
        terminal: None,
        child,
    })
}

/// Starts `command` on a new pseudo-terminal, its controlling terminal; what the terminal shows
/// is its output (no stderr apart, as with any `tty: true` container).
async fn on_terminal(command: Command, stdin: bool) -> std::io::Result<Spawned> {
    let (child, terminal) = terminal::spawn(command, None).await?;
    Ok(Spawned {
        child,
        stdout: Box::new(Pty(Arc::clone(&terminal))),
        stderr: None,
        stdin: stdin.then(|| feed(Pty(Arc::clone(&terminal)))),
        terminal: Some(terminal),
    })
}

/// Writes what attach sessions send into a container's stdin; the stdin closes when every
/// sender is gone.
fn feed(
    mut stdin: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
) -> tokio::sync::mpsc::Sender<Bytes> {
    let (sender, mut received) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Some(bytes) = received.recv().await {
            if stdin.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    sender
}

impl NodeOps for Supervisor {
    fn usage(&self, uid: &str) -> Vec<(String, Usage)> {
        let running: Vec<(String, u32)> = lock(&self.slots)
            .iter()
            .filter(|((u, _), _)| u == uid)
            .filter_map(|((_, container), slot)| match slot {
                Slot::Live(life) => {
                    let life = lock(life);
                    life.exit.is_none().then(|| (container.clone(), life.pid))
                }
                Slot::Failed { .. } => None,
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(container, pid)| Some((container, self.usage.group(pid)?)))
            .collect()
    }

    fn node_usage(&self) -> Option<Usage> {
        self.usage.node()
    }

    fn attach(&self, uid: &str, container: &str, stdin: bool) -> Result<Attachment, String> {
        let slots = lock(&self.slots);
        match slots.get(&(uid.to_owned(), container.to_owned())) {
            Some(Slot::Live(life)) => {
                let mut life = lock(life);
                if life.exit.is_some() {
                    return Err(format!("container {container} is not running"));
                }
                // As containerd: only `stdinOnce` without a terminal closes stdin after the
                // first attach; a terminal's stays open for the next `attach -it`.
                let once = life.stdin_once && life.terminal.is_none();
                let stdin = match (stdin, once) {
                    (false, _) => None,
                    (true, false) => life.stdin.clone(),
                    (true, true) => life.stdin.take(),
                };
                Ok(Attachment {
                    stdout: life.live.0.subscribe(),
                    stderr: life.live.1.as_ref().map(broadcast::Sender::subscribe),
                    stdin,
                    terminal: life.terminal.clone(),
                    exited: life.exited.clone(),
                    ends_with_input: !once,
                })
            }
            Some(Slot::Failed { message, .. }) => {
                Err(format!("container {container} did not start: {message}"))
            }
            None => Err(format!(
                "container {container} runs no local process (its image is simulated, or it has not started)"
            )),
        }
    }

    fn log_file(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        restart: i64,
    ) -> PathBuf {
        logs::log_file(
            &logs::pod_dir(&self.data_dir, namespace, name, uid),
            container,
            restart,
        )
    }

    fn exec_context(&self, uid: &str, container: &str) -> Result<ExecContext, String> {
        if !self.allow_host_exec {
            return Err(
                "exec runs the command on this host; start sluice up with --allow-host-exec".into(),
            );
        }
        let slots = lock(&self.slots);
        match slots.get(&(uid.to_owned(), container.to_owned())) {
            Some(Slot::Live(life)) => {
                let life = lock(life);
                if life.exit.is_some() || life.stopping {
                    Err(format!("container {container} is not running"))
                } else {
                    Ok(life.exec.clone())
                }
            }
            Some(Slot::Failed { message, .. }) => {
                Err(format!("container {container} did not start: {message}"))
            }
            None => Err(format!(
                "container {container} runs no local process (its image is simulated, or it has not started)"
            )),
        }
    }
}
