//! Process groups of local containers. Each container process is spawned as the leader of its
//! own process group with a parent-death signal (SIGKILL), so no container outlives `sluice up`,
//! even when `sluice up` itself is killed with SIGKILL. Pid files under `DIR/pids` are the
//! backstop: the next start kills any group still alive (for example a daemon a container forked
//! off, which the parent-death signal of the leader does not reach).
//!
//! This module holds nearly all of the project's `unsafe` code: the `pre_exec` hooks (std
//! offers no parent-death signal, no new session with a controlling terminal) and `kill(2)` on
//! a process group (std signals single children only). The one other place registers a pty
//! with tokio's reactor ([`super::terminal`]).

use std::{
    io,
    path::{Path, PathBuf},
    sync::{OnceLock, mpsc},
};

use tokio::process::{Child, Command};

type Job = Box<dyn FnOnce() + Send>;

/// The thread every container is spawned from. Linux sends the parent-death signal when the
/// *thread* that forked the child exits, not the process; this thread lives as long as the
/// process, so the signal fires exactly when `sluice up` goes.
fn spawner() -> &'static mpsc::Sender<Job> {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sluice-spawner".into())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .expect("starting the spawner thread");
        sender
    })
}

/// Spawns `command` as the leader of a new process group that dies with this process.
///
/// # Errors
/// The spawn's error (program not found, not executable, …).
pub async fn spawn(mut command: Command) -> io::Result<Child> {
    command.process_group(0);
    let parent = std::process::id();
    // SAFETY: the hook runs in the forked child before exec and calls only `prctl` and
    // `getppid`, both async-signal-safe; it allocates nothing and touches no lock.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
    on_spawner(command).await
}

/// Spawns `command`, whose stdin is a terminal, as the leader of a new session with that
/// terminal as its controlling terminal (so the shell gets job control, ^C reaches its
/// foreground job and the terminal's hangup ends it) — also a new process group, which dies
/// with this process.
///
/// # Errors
/// The spawn's error, or stdin not being a terminal.
pub async fn spawn_on_terminal(mut command: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: as in `spawn`, plus `setsid` and `ioctl(TIOCSCTTY)` on fd 0, async-signal-safe
    // system calls with integer arguments.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            die_with_parent(parent)
        });
    }
    on_spawner(command).await
}

/// Spawns `command` from the spawner thread.
async fn on_spawner(mut command: Command) -> io::Result<Child> {
    let runtime = tokio::runtime::Handle::current();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        let _ = reply.send(command.spawn());
    });
    spawner()
        .send(job)
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the spawner thread dropped the spawn")))
}

/// In the child: SIGKILL when the parent goes; if it already went (a race with the fork), fail.
fn die_with_parent(parent: u32) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: plain system calls with integer arguments.
    let (set, now) = unsafe {
        (
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
            libc::getppid(),
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    if now as u32 != parent {
        return Err(io::Error::other(
            "sluice exited while starting the container",
        ));
    }
    Ok(())
}

/// A signal for a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop gracefully.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// Sends `signal` to every process of the group led by `leader`. False when the group is gone.
pub fn signal_group(leader: u32, signal: Signal) -> bool {
    let Ok(group) = i32::try_from(leader) else {
        return false;
    };
    if group <= 1 {
        return false;
    }
    let number = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    let result = unsafe { libc::kill(-group, number) };
    result == 0
}

/// Sends `signal` to every process of the session led by `leader` (a container on a terminal
/// leads a session, and a shell there puts each job in a process group of its own). False
/// when none was found.
pub fn signal_session(leader: u32, signal: Signal) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let number = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    let mut found = false;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok();
        let in_session = stat
            .as_deref()
            .and_then(super::usage::parse_stat)
            .is_some_and(|s| s.session == leader);
        if in_session && leader > 1 && pid > 1 {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) of one process; no memory is involved.
            let sent = unsafe { libc::kill(pid, number) };
            found |= sent == 0;
        }
    }
    found
}

/// The start time of a process (clock ticks since boot, field 22 of `/proc/PID/stat`), which
/// tells a live container from an unrelated process that reused its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    super::usage::parse_stat(&stat).map(|s| s.started)
}

/// Pid files of running containers, in `DIR/pids`.
#[derive(Debug, Clone)]
pub struct PidFiles {
    dir: PathBuf,
}

impl PidFiles {
    /// Pid files under `data_dir/pids`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("pids"),
        }
    }

    /// Records a started group leader.
    pub fn record(&self, pid: u32, what: &str) {
        let Some(started) = start_time(pid) else {
            return;
        };
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::write(
            self.dir.join(pid.to_string()),
            format!("{started} {what}\n"),
        );
    }

    /// Forgets a group whose leader exited.
    pub fn remove(&self, pid: u32) {
        let _ = std::fs::remove_file(self.dir.join(pid.to_string()));
    }

    /// Kills every recorded group whose leader is still the recorded process, and clears the
    /// records. Returns how many groups were killed.
    pub fn reap(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut killed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
            let recorded = std::fs::read_to_string(&path).ok().and_then(|text| {
                let (started, what) = text.trim_end().split_once(' ')?;
                Some((started.parse::<u64>().ok()?, what.to_owned()))
            });
            if let (Some(pid), Some((started, what))) = (pid, recorded)
                && start_time(pid) == Some(started)
                && signal_group(pid, Signal::Kill)
            {
                tracing::warn!("killed leftover container {what} (process group {pid})");
                killed += 1;
            }
            let _ = std::fs::remove_file(&path);
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spawned_group_is_signalled_and_a_stale_pid_file_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let files = PidFiles::new(dir.path());
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawn(command).await.unwrap();
        let pid = child.id().unwrap();
        files.record(pid, "test/sleeper/main");
        assert!(start_time(pid).is_some());
        // A record for a pid whose process is something else is dropped without a kill.
        std::fs::write(dir.path().join("pids/1"), "1 not-ours\n").unwrap();
        assert_eq!(files.reap(), 1);
        let status = child.wait().await.unwrap();
        assert!(!status.success());
        assert!(
            std::fs::read_dir(dir.path().join("pids"))
                .unwrap()
                .next()
                .is_none()
        );
        assert!(!signal_group(pid, Signal::Terminate), "the group is gone");
    }
}
