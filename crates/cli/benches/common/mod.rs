//! What the benchmarks share: an in-process cluster whose demo images run `sluice demo-app`,
//! process usage, `sluice up` as a child, and HTTP load ([`http`]).

pub mod http;

use sluice_cluster::{
    Cluster, ClusterConfig, IngressConfig,
    kubelet::Rules,
    store::{Durability, StoreConfig},
};

/// A cluster on `dir` with fsync per commit, the process runtime for demo images (others
/// simulated) and, when asked, the ingress on an ephemeral port.
#[allow(dead_code)]
pub async fn demo_cluster(dir: &std::path::Path, ingress: bool) -> Cluster {
    let rules = Rules {
        demo: Some(vec![env!("CARGO_BIN_EXE_sluice").into(), "demo-app".into()]),
        ..Rules::default()
    };
    Cluster::start(ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::Full,
        store: StoreConfig::default(),
        runtime: Some(rules),
        ingress: ingress.then(|| IngressConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
        }),
    })
    .await
    .unwrap()
}

/// `(VmHWM, VmRSS)` in MiB and CPU seconds (user + system) of a process.
#[allow(dead_code)]
pub fn usage(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (field("VmHWM:"), field("VmRSS:"), cpu)
}

/// A child process, killed and reaped when dropped.
#[allow(dead_code)]
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `sluice` binary the benchmark runs as its own processes: this build's, or `$SLUICE_BIN`
/// (another build's, to set two builds side by side).
#[allow(dead_code)]
pub fn sluice_bin() -> std::path::PathBuf {
    std::env::var_os("SLUICE_BIN").map_or_else(|| env!("CARGO_BIN_EXE_sluice").into(), Into::into)
}

/// `sluice up --no-controllers --ephemeral --ingress-listen off` on `dir` as its own process,
/// once it printed its ready line (its kubeconfig is `dir/kubeconfig`).
#[allow(dead_code)]
pub fn bare_up(dir: &std::path::Path) -> Child {
    use std::io::BufRead;
    let mut up = std::process::Command::new(sluice_bin())
        .args([
            "up",
            "--no-controllers",
            "--ephemeral",
            "--ingress-listen",
            "off",
        ])
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run sluice up");
    let mut line = String::new();
    std::io::BufReader::new(up.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("sluice up's ready line");
    Child(up)
}
