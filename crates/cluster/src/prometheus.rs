//! `sluice up --prometheus`: the `prometheus` binary found on PATH, run as a child of this
//! process like a pod's container (its own process group with a parent-death signal, a pid
//! file as the backstop, restarted with back-off if it exits), listening on loopback only,
//! keeping its config, targets, data and log under one directory of the data dir:
//!
//! ```text
//! DIR/prometheus.yml     one job, `kubernetes-pods`, scraping every interval (2 s under `sluice up`)
//!                        whatever DIR/targets/*.json lists (a group may set its own `job`)
//! DIR/targets/*.json     file_sd target groups, each written atomically ([`write_targets`]);
//!                        pods.json is kept up to date by [`targets::run`]
//! DIR/data/              the TSDB
//! DIR/prometheus.log     its output
//! ```

pub mod targets;

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::watch,
    task::JoinHandle,
};

use crate::os::group::{self, PidFiles, Signal};

/// How to install the binary, for the error when it is missing.
pub const INSTALL_HINT: &str = "install Prometheus and put its `prometheus` binary on PATH (Debian and Ubuntu: `sudo apt-get install prometheus`; elsewhere: the release archive from prometheus.io)";

/// How long a started Prometheus may take to answer `/-/ready`.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How long `shutdown` lets Prometheus stop after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Why Prometheus could not start.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// No `prometheus` on PATH.
    #[error("no `prometheus` binary on PATH: {INSTALL_HINT}")]
    NotInstalled,
    /// Writing its config or targets failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Spawning it failed.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// It exited or did not become ready.
    #[error("prometheus on {address} {what}; the end of {log}:\n{tail}")]
    NotReady {
        /// Where it was to listen.
        address: SocketAddr,
        /// `exited with …` or `was not ready within …`.
        what: String,
        /// Its log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
}

/// How to run Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Its HTTP address (loopback).
    pub listen: SocketAddr,
    /// Its directory (config, targets, data, log).
    pub dir: PathBuf,
    /// Scrape and target-refresh interval.
    pub scrape_interval: Duration,
    /// Where pid files go (the data dir's `pids`, reaped at the next start), if anywhere.
    pub pid_files: Option<PidFiles>,
}

/// One file_sd target group: addresses and the labels their series carry. A label named
/// `__metrics_path__` sets the path scraped, `job` the job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A running Prometheus.
pub struct Prometheus {
    address: SocketAddr,
    dir: PathBuf,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    leader: Arc<AtomicU32>,
}

/// The `prometheus` binary on PATH.
///
/// # Errors
/// [`PrometheusError::NotInstalled`] when there is none.
pub fn find() -> Result<PathBuf, PrometheusError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or(PrometheusError::NotInstalled)
}

/// Writes `groups` as the file_sd file `DIR/targets/NAME.json`, atomically (a temporary file
/// renamed over it), so Prometheus never reads half a file.
///
/// # Errors
/// The write's error, with the path.
pub fn write_targets(
    dir: &Path,
    name: &str,
    groups: &[TargetGroup],
) -> Result<(), PrometheusError> {
    let targets = dir.join("targets");
    let path = targets.join(format!("{name}.json"));
    let temporary = targets.join(format!(".{name}.json.tmp"));
    let failed = |source| PrometheusError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&targets).map_err(failed)?;
    let text = serde_json::to_vec_pretty(groups).map_err(|e| failed(io::Error::other(e)))?;
    std::fs::write(&temporary, text).map_err(failed)?;
    std::fs::rename(&temporary, &path).map_err(failed)
}

/// Prometheus' configuration: one job scraping whatever the target files list.
fn config_text(dir: &Path, interval: Duration) -> String {
    let seconds = interval.as_secs_f64();
    let pattern = dir.join("targets").join("*.json");
    // JSON is YAML; a path with any character in it stays one string.
    let files = serde_json::to_string(&pattern.display().to_string()).unwrap_or_default();
    format!(
        "# Written by sluice up --prometheus; rewritten at every start.\n\
         global:\n  scrape_interval: {seconds}s\n  scrape_timeout: {seconds}s\n  evaluation_interval: {seconds}s\n\
         scrape_configs:\n\
         - job_name: kubernetes-pods\n  file_sd_configs:\n  - files: [{files}]\n    refresh_interval: {seconds}s\n"
    )
}

impl Prometheus {
    /// Writes the config, starts `prometheus` and returns once it answers `/-/ready`.
    ///
    /// # Errors
    /// [`PrometheusError`]: no binary, a file not written, a spawn that failed, or a
    /// Prometheus that exited or was not ready in time (with its log's last lines).
    pub async fn start(config: PrometheusConfig) -> Result<Self, PrometheusError> {
        let program = find()?;
        let dir = config.dir.clone();
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text).map_err(|source| PrometheusError::Write { path, source })
        };
        std::fs::create_dir_all(dir.join("targets")).map_err(|source| PrometheusError::Write {
            path: dir.join("targets"),
            source,
        })?;
        write(
            dir.join("prometheus.yml"),
            config_text(&dir, config.scrape_interval),
        )?;
        let log = dir.join("prometheus.log");
        let leader = Arc::new(AtomicU32::new(0));
        let mut child = spawn(&program, &config, &leader).await?;
        let ready = async {
            loop {
                if is_ready(config.listen).await {
                    return Ok(());
                }
                tokio::select! {
                    status = child.wait() => return Err(format!("exited ({})", status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()))),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        };
        let outcome = tokio::time::timeout(READY_WITHIN, ready)
            .await
            .unwrap_or_else(|_| Err(format!("was not ready within {READY_WITHIN:?}")));
        if let Err(what) = outcome {
            stop(
                &leader,
                &mut child,
                Duration::ZERO,
                config.pid_files.as_ref(),
            )
            .await;
            return Err(PrometheusError::NotReady {
                address: config.listen,
                what,
                tail: tail(&log),
                log,
            });
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            program,
            config.clone(),
            child,
            leader.clone(),
            stop_rx,
        ));
        Ok(Self {
            address: config.listen,
            dir,
            stop: stop_tx,
            supervisor,
            leader,
        })
    }

    /// Its HTTP address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its URL (`http://127.0.0.1:9090`), the controllers' default Prometheus address.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Its directory; target files go in `targets/` ([`write_targets`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process group leader's pid now (0 between restarts).
    pub fn pid(&self) -> u32 {
        self.leader.load(Ordering::Acquire)
    }

    /// Stops it: SIGTERM, then SIGKILL after a few seconds.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

async fn spawn(
    program: &Path,
    config: &PrometheusConfig,
    leader: &AtomicU32,
) -> Result<tokio::process::Child, PrometheusError> {
    let dir = &config.dir;
    let failed = |source| PrometheusError::Spawn {
        program: program.to_owned(),
        source,
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))
        .map_err(failed)?;
    let mut command = tokio::process::Command::new(program);
    command
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={}", config.listen))
        .arg("--storage.tsdb.retention.time=2d")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(failed)?)
        .stderr(log);
    let child = group::spawn(command).await.map_err(failed)?;
    let pid = child.id().unwrap_or_default();
    leader.store(pid, Ordering::Release);
    if let Some(files) = &config.pid_files {
        files.record(pid, "prometheus");
    }
    Ok(child)
}

/// Restarts Prometheus whenever it exits (back-off from 1 s to 30 s), until stopped.
async fn supervise(
    program: PathBuf,
    config: PrometheusConfig,
    mut child: tokio::process::Child,
    leader: Arc<AtomicU32>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = stopped.changed() => {
                stop(&leader, &mut child, GRACE, config.pid_files.as_ref()).await;
                return;
            }
            status = child.wait() => {
                if let Some(files) = &config.pid_files {
                    files.remove(leader.swap(0, Ordering::AcqRel));
                }
                tracing::warn!(
                    "prometheus exited ({}); restarting in {delay:?} (log: {})",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    config.dir.join("prometheus.log").display()
                );
            }
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
        match spawn(&program, &config, &leader).await {
            Ok(next) => child = next,
            Err(err) => {
                tracing::error!("prometheus could not be restarted: {err}");
                return;
            }
        }
    }
}

/// SIGTERM to the group, SIGKILL after `grace`.
async fn stop(
    leader: &AtomicU32,
    child: &mut tokio::process::Child,
    grace: Duration,
    pid_files: Option<&PidFiles>,
) {
    let pid = leader.swap(0, Ordering::AcqRel);
    if pid != 0 {
        group::signal_group(pid, Signal::Terminate);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            group::signal_group(pid, Signal::Kill);
            let _ = child.wait().await;
        }
        if let Some(files) = pid_files {
            files.remove(pid);
        }
    }
}

/// Whether `GET /-/ready` answers 200.
async fn is_ready(address: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /-/ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, io::Error>(
            answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"),
        )
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .is_ok_and(|r| r.unwrap_or(false))
}

/// The last lines of a log.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let group = TargetGroup {
            targets: vec!["127.0.0.1:1".into()],
            labels: BTreeMap::from([("job".into(), "x".into())]),
        };
        write_targets(dir.path(), "pods", std::slice::from_ref(&group)).unwrap();
        write_targets(dir.path(), "pods", &[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("targets/pods.json")).unwrap();
        assert_eq!(text.trim(), "[]");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("targets"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pods.json"]);
    }

    #[test]
    fn the_config_scrapes_every_target_file() {
        let text = config_text(Path::new("/d/prometheus"), Duration::from_secs(2));
        assert!(text.contains("scrape_interval: 2s"), "{text}");
        assert!(
            text.contains("files: [\"/d/prometheus/targets/*.json\"]"),
            "{text}"
        );
    }
}
