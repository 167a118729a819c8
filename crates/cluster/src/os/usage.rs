//! What the metrics API reports (the kubelet's resource metrics, which metrics-server would
//! scrape): the CPU and memory a local container uses — every process of its process group,
//! read from `/proc` — and what this machine uses. CPU is a rate over the time since the last
//! sample (at least [`MIN_WINDOW`]; a container's first is its average since it started, the
//! machine's first is over the time since the sampler was made); memory is resident memory for a container and
//! `MemTotal − MemAvailable` for the machine.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The shortest window a CPU rate is measured over; asked sooner, the last rate stands.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// A group whose last sample is older than this is forgotten.
const FORGET: Duration = Duration::from_secs(600);

/// How long one reading of every process in `/proc` is reused.
const SCAN_TTL: Duration = Duration::from_millis(500);

/// Usage of a container or the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU, in billionths of a core.
    pub cpu_nanocores: u64,
    /// Memory, in bytes.
    pub memory_bytes: u64,
    /// The window the CPU rate is over.
    pub window: Duration,
}

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStat {
    /// Its process group.
    pub group: u32,
    /// Its session.
    pub session: u32,
    /// User + system CPU, in clock ticks.
    pub ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// Start, in clock ticks after boot.
    pub started: u64,
}

/// Parses a `/proc/PID/stat` line (the command name, in parentheses, may hold spaces).
pub fn parse_stat(line: &str) -> Option<ProcessStat> {
    let after_name = &line[line.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields after the name, from 0: state(3) ppid(4) pgrp(5) … utime(14) stime(15) …
    // starttime(22) vsize(23) rss(24), numbered as in proc(5).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(ProcessStat {
        group: u32::try_from(field(5)?).ok()?,
        session: u32::try_from(field(6)?).ok()?,
        ticks: field(14)? + field(15)?,
        rss_pages: field(24)?,
        started: field(22)?,
    })
}

/// The busy and total ticks of the machine, from `/proc/stat`'s first line.
pub fn parse_cpu_line(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Bytes in use from `/proc/meminfo`: `MemTotal − MemAvailable`.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(kib("MemTotal:")?.saturating_sub(kib("MemAvailable:")?) * 1024)
}

/// A CPU rate in nanocores: `ticks` over `elapsed`.
fn rate(ticks: u64, ticks_per_second: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 || ticks_per_second == 0 {
        return 0;
    }
    (ticks as f64 / ticks_per_second as f64 / seconds * 1e9) as u64
}

/// CPU ticks and resident pages per process group.
type Totals = HashMap<u32, (u64, u64)>;

#[derive(Debug, Default)]
struct State {
    /// Every process's totals by group, and when they were read.
    scan: Option<(Instant, Totals)>,
    /// Per group leader: the last sample (when, ticks) and the rate then.
    groups: HashMap<u32, (Instant, u64, Usage)>,
    /// The machine's last sample (when, busy ticks) and its usage then (none yet when only
    /// the first sample was taken).
    node: Option<(Instant, u64, Option<Usage>)>,
}

/// Samples usage on demand, keeping the last sample of each container and the machine.
#[derive(Debug)]
pub struct Sampler {
    state: Mutex<State>,
}

impl Default for Sampler {
    /// A sampler that has taken the machine's first sample.
    fn default() -> Self {
        let state = State {
            node: node_busy().map(|busy| (Instant::now(), busy, None)),
            ..State::default()
        };
        Self {
            state: Mutex::new(state),
        }
    }
}

/// The machine's busy ticks.
fn node_busy() -> Option<u64> {
    parse_cpu_line(&std::fs::read_to_string("/proc/stat").ok()?).map(|(busy, _)| busy)
}

fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Every process's (ticks, resident pages), summed per process group.
fn scan() -> Totals {
    let mut groups = Totals::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = entry.path().join("stat");
        if let Some(stat) = std::fs::read_to_string(path)
            .ok()
            .and_then(|l| parse_stat(&l))
        {
            let totals = groups.entry(stat.group).or_default();
            totals.0 += stat.ticks;
            totals.1 += stat.rss_pages;
        }
    }
    groups
}

/// Seconds since boot.
fn uptime() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

impl Sampler {
    /// The usage of the process group led by `leader`; `None` when it has no process.
    pub fn group(&self, leader: u32) -> Option<Usage> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state
            .scan
            .as_ref()
            .is_none_or(|(at, _)| now.duration_since(*at) > SCAN_TTL)
        {
            state.scan = Some((now, scan()));
        }
        let (ticks, pages) = *state.scan.as_ref()?.1.get(&leader)?;
        let memory_bytes = pages * rustix::param::page_size() as u64;
        let per_second = ticks_per_second();
        let usage = match state.groups.get(&leader) {
            Some((at, _, last)) if now.duration_since(*at) < MIN_WINDOW => Usage {
                memory_bytes,
                ..*last
            },
            Some((at, before, _)) => {
                let window = now.duration_since(*at);
                Usage {
                    cpu_nanocores: rate(ticks.saturating_sub(*before), per_second, window),
                    memory_bytes,
                    window,
                }
            }
            None => {
                // Its first sample: the average since the leader started.
                let started = std::fs::read_to_string(format!("/proc/{leader}/stat"))
                    .ok()
                    .and_then(|l| parse_stat(&l))
                    .map_or(0, |s| s.started);
                let age = uptime().unwrap_or(0.0) - started as f64 / per_second.max(1) as f64;
                let window = Duration::from_secs_f64(age.max(0.001));
                Usage {
                    cpu_nanocores: rate(ticks, per_second, window),
                    memory_bytes,
                    window,
                }
            }
        };
        let keep = match state.groups.get(&leader) {
            Some((at, before, _)) if now.duration_since(*at) < MIN_WINDOW => (*at, *before),
            _ => (now, ticks),
        };
        state.groups.insert(leader, (keep.0, keep.1, usage));
        // Groups not asked about for a while are gone, or their next rate starts afresh.
        state
            .groups
            .retain(|_, (at, _, _)| now.duration_since(*at) < FORGET);
        Some(usage)
    }

    /// The machine's usage.
    pub fn node(&self) -> Option<Usage> {
        let busy = node_busy()?;
        let memory_bytes = parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (at, before, last) = state.node.unwrap_or((now, busy, None));
        let window = now.duration_since(at);
        if let Some(last) = last
            && window < MIN_WINDOW
        {
            return Some(Usage {
                memory_bytes,
                ..last
            });
        }
        let usage = Usage {
            cpu_nanocores: rate(busy.saturating_sub(before), ticks_per_second(), window),
            memory_bytes,
            window,
        };
        state.node = Some((now, busy, Some(usage)));
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_proc5_describes_them() {
        let line = "4242 (my app) S 1 4240 4240 0 -1 4194560 500 0 0 0 120 30 0 0 20 0 3 0 \
                    98765 123456789 2048 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcessStat {
                group: 4240,
                session: 4240,
                ticks: 150,
                rss_pages: 2048,
                started: 98765,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_cpu_line(stat), Some((161, 981)));
        let meminfo = "MemTotal:       1000 kB\nMemFree:    10 kB\nMemAvailable:    400 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(600 * 1024));
        assert_eq!(rate(50, 100, Duration::from_secs(2)), 250_000_000);
    }

    #[tokio::test]
    async fn a_busy_process_group_uses_cpu_and_memory() {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "while :; do :; done"]);
        let mut child = crate::os::group::spawn(command).await.unwrap();
        let leader = child.id().unwrap();
        let sampler = Sampler::default();
        // Read at once, the child may be between fork and exec, with no memory of its own yet.
        let mut first = sampler.group(leader).unwrap();
        for _ in 0..50 {
            if first.memory_bytes > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            first = sampler.group(leader).unwrap();
        }
        assert!(first.memory_bytes > 0, "{first:?}");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let later = sampler.group(leader).unwrap();
        assert!(later.window >= MIN_WINDOW, "{later:?}");
        assert!(
            later.cpu_nanocores > 10_000_000,
            "a spinning shell uses some of a core: {later:?}"
        );
        assert_eq!(
            sampler.group(leader).unwrap().window,
            later.window,
            "reused"
        );
        child.kill().await.unwrap();
        let node = sampler.node().unwrap();
        assert!(
            node.memory_bytes > 0 && node.cpu_nanocores > 10_000_000,
            "{node:?}"
        );
    }
}
