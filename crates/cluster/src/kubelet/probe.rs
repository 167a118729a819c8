//! Container probes run for real against local processes: `httpGet` (any status from 200 to 399
//! passes, as the kubelet), `tcpSocket` (a connection opens) and `exec` (the command exits 0; only
//! with `--allow-host-exec`). [`Prober`] applies a probe's timing — initial delay, period,
//! timeout and the success and failure thresholds — and reports each change of its verdict.

use std::{net::IpAddr, time::Duration};

use http_body_util::Empty;
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use k8s_openapi::{
    api::core::v1::{ContainerPort, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::net::TcpStream;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Gates the other two until it passes; failing it restarts the container.
    Startup,
    /// Decides whether the container is ready (in Service endpoints).
    Readiness,
    /// Failing it restarts the container.
    Liveness,
}

impl Kind {
    /// As the kubelet names it in events ("Readiness probe failed: …").
    pub fn label(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Readiness => "Readiness",
            Self::Liveness => "Liveness",
        }
    }
}

/// Where and how probes reach a container.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pod's address.
    pub pod_ip: IpAddr,
    /// The container's ports (for probes naming a port).
    pub ports: Vec<ContainerPort>,
    /// The container's environment (for `exec` probes).
    pub env: Vec<(String, String)>,
    /// Whether `exec` probes may run.
    pub allow_exec: bool,
}

impl Target {
    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
            IntOrString::String(name) => self
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} is not a named port of the container")),
        }
    }
}

/// Runs a probe once. `Err` carries the kubelet-style reason.
pub async fn check(probe: &Probe, target: &Target) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = async {
        if let Some(http) = &probe.http_get {
            if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
                return Err("HTTPS probes are not supported by the local kubelet".to_owned());
            }
            let port = target.port(&http.port)?;
            let host = http
                .host
                .as_deref()
                .and_then(|h| h.parse().ok())
                .unwrap_or(target.pod_ip);
            let path = http.path.as_deref().unwrap_or("/");
            let headers = http.http_headers.iter().flatten();
            let headers = headers.map(|h| (h.name.as_str(), h.value.as_str()));
            return http_get(host, port, path, headers).await;
        }
        if let Some(tcp) = &probe.tcp_socket {
            let port = target.port(&tcp.port)?;
            return TcpStream::connect((target.pod_ip, port))
                .await
                .map(drop)
                .map_err(|e| format!("dial tcp {}:{port}: {e}", target.pod_ip));
        }
        if let Some(exec) = &probe.exec {
            if !target.allow_exec {
                return Err(
                    "exec probes run commands on this host; start sluice up with --allow-host-exec"
                        .to_owned(),
                );
            }
            let argv = exec.command.clone().unwrap_or_default();
            let Some((program, args)) = argv.split_first() else {
                return Err("exec probe without a command".to_owned());
            };
            let output = tokio::process::Command::new(program)
                .args(args)
                .env_clear()
                .envs(target.env.iter().cloned())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| format!("exec {program:?}: {e}"))?;
            return match output.status.code() {
                Some(0) => Ok(()),
                code => Err(format!(
                    "command {argv:?} exited with {}: {}",
                    code.map_or("a signal".to_owned(), |c| c.to_string()),
                    String::from_utf8_lossy(&output.stdout).trim()
                )),
            };
        }
        if probe.grpc.is_some() {
            return Err("gRPC probes are not supported by the local kubelet".to_owned());
        }
        Err("the probe names no handler".to_owned())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "timeout after {}s (context deadline exceeded)",
                timeout.as_secs()
            ))
        })
}

async fn http_get<'a>(
    host: IpAddr,
    port: u16,
    path: &str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let url = format!("http://{host}:{port}{path}");
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Get \"{url}\": dial tcp {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    tokio::spawn(connection);
    let mut request = Request::get(path)
        .header("host", format!("{host}:{port}"))
        .header("user-agent", "kube-probe/1.33")
        .header("accept", "*/*");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let code = response.status().as_u16();
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// The running verdict of one probe: consecutive results against its thresholds.
#[derive(Debug, Clone)]
pub struct Prober {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    passing: bool,
}

impl Prober {
    /// A prober for `probe`; readiness starts failing, liveness and startup start passing
    /// (a container is live until proven otherwise, ready only once shown).
    pub fn new(probe: &Probe, kind: Kind) -> Self {
        Self {
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            successes: 0,
            failures: 0,
            passing: kind != Kind::Readiness,
        }
    }

    /// Records one result; returns the verdict when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if !self.passing && self.successes >= self.success_threshold {
                self.passing = true;
                return Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.passing && self.failures >= self.failure_threshold {
                self.passing = false;
                return Some(false);
            }
        }
        None
    }
}

/// The probe's initial delay and period.
pub fn timing(probe: &Probe) -> (Duration, Duration) {
    (
        Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64),
        Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(value: serde_json::Value) -> Probe {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn thresholds_decide_when_the_verdict_flips() {
        let p = probe(serde_json::json!({"successThreshold": 2, "failureThreshold": 3}));
        let mut readiness = Prober::new(&p, Kind::Readiness);
        assert_eq!(readiness.record(true), None);
        assert_eq!(readiness.record(true), Some(true));
        assert_eq!(readiness.record(false), None);
        assert_eq!(
            readiness.record(true),
            None,
            "a success resets the failures"
        );
        assert_eq!(readiness.record(false), None);
        assert_eq!(readiness.record(false), None);
        assert_eq!(readiness.record(false), Some(false));
        let mut liveness = Prober::new(&probe(serde_json::json!({})), Kind::Liveness);
        assert_eq!(liveness.record(false), None);
        assert_eq!(liveness.record(false), None);
        assert_eq!(liveness.record(false), Some(false));
    }

    #[tokio::test]
    async fn tcp_http_and_exec_probes_check_for_real() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let app = axum::Router::new()
                .route("/ok", axum::routing::get(|| async { "ok" }))
                .route(
                    "/bad",
                    axum::routing::get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "no") }),
                );
            axum::serve(listener, app).await.unwrap();
        });
        let target = Target {
            pod_ip: "127.0.0.1".parse().unwrap(),
            ports: vec![
                serde_json::from_value(serde_json::json!({"name": "http", "containerPort": port}))
                    .unwrap(),
            ],
            env: vec![("WHO".into(), "probe".into())],
            allow_exec: false,
        };
        let get =
            |path: &str| probe(serde_json::json!({"httpGet": {"path": path, "port": "http"}}));
        assert_eq!(check(&get("/ok"), &target).await, Ok(()));
        let failed = check(&get("/bad"), &target).await.unwrap_err();
        assert_eq!(failed, "HTTP probe failed with statuscode: 503");
        assert_eq!(
            check(
                &probe(serde_json::json!({"tcpSocket": {"port": port}})),
                &target
            )
            .await,
            Ok(())
        );
        server.abort();
        let _ = server.await;
        assert!(
            check(
                &probe(serde_json::json!({"tcpSocket": {"port": port}})),
                &target
            )
            .await
            .is_err()
        );
        let exec =
            probe(serde_json::json!({"exec": {"command": ["sh", "-c", "test \"$WHO\" = probe"]}}));
        let refused = check(&exec, &target).await.unwrap_err();
        assert!(refused.contains("--allow-host-exec"), "{refused}");
        let allowed = Target {
            allow_exec: true,
            ..target
        };
        assert_eq!(check(&exec, &allowed).await, Ok(()));
        let failing = probe(serde_json::json!({"exec": {"command": ["sh", "-c", "exit 2"]}}));
        assert!(
            check(&failing, &allowed)
                .await
                .unwrap_err()
                .contains("exited with 2")
        );
    }
}
