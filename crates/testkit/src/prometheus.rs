//! A real Prometheus for tests: the `prometheus` binary on PATH started by
//! `sluice_cluster::prometheus` on a free loopback port (never 9090), in a temporary
//! directory, scraping every second whatever target files the test writes — and a metrics
//! endpoint whose exposition text a test sets ([`Exposition`]). Where the binary is absent,
//! [`TestPrometheus::start`] says so loudly and answers `None`, and the test returns.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_cluster::prometheus::{Prometheus, PrometheusConfig, TargetGroup, write_targets};

/// A free loopback address (bound, then released).
pub fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address")
}

/// A Prometheus in a temporary directory.
pub struct TestPrometheus {
    /// The running server.
    pub prometheus: Prometheus,
    dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts one scraping every second, or says loudly why not and answers `None` when the
    /// binary is not installed.
    pub async fn start() -> Option<Self> {
        if sluice_cluster::prometheus::find().is_err() {
            eprintln!(
                "SKIPPED: no `prometheus` binary on PATH ({}); scripts/test.sh installs it",
                sluice_cluster::prometheus::INSTALL_HINT
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let prometheus = Prometheus::start(PrometheusConfig {
            listen: free_address(),
            dir: dir.path().to_owned(),
            scrape_interval: Duration::from_secs(1),
            pid_files: None,
        })
        .await
        .expect("starting prometheus");
        Some(Self { prometheus, dir })
    }

    /// Scrapes `target` as job `job`.
    pub fn scrape(&self, job: &str, target: SocketAddr) {
        let group = TargetGroup {
            targets: vec![target.to_string()],
            labels: [("job".to_owned(), job.to_owned())].into(),
        };
        write_targets(self.dir.path(), job, &[group]).expect("writing targets");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        self.prometheus.url()
    }

    /// `GET path` on its HTTP API, as JSON.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let address = self.prometheus.address();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || get_json(address, &path))
            .await
            .expect("the request thread")
    }

    /// Waits until an instant query answers at least one sample.
    pub async fn wait_for(&self, query: &str) {
        let path = format!("/api/v1/query?query={}", encode(query));
        for _ in 0..300 {
            let answer = self.get(&path).await;
            if answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus never answered {query}");
    }
}

impl Drop for TestPrometheus {
    /// Kills it at once (the test's runtime, and the supervisor on it, may already be gone).
    fn drop(&mut self) {
        let pid = self.prometheus.pid();
        if pid != 0 {
            sluice_cluster::os::group::signal_group(pid, sluice_cluster::os::group::Signal::Kill);
        }
    }
}

/// A query string component.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over HTTP/1.0, the body as JSON (`null` when it is not).
pub fn get_json(address: SocketAddr, path: &str) -> serde_json::Value {
    let attempt = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    let text = attempt().unwrap_or_default();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// A `/metrics` endpoint on a free port serving whatever text was last set.
#[derive(Clone)]
pub struct Exposition {
    /// Its address.
    pub address: SocketAddr,
    text: Arc<Mutex<String>>,
}

impl Exposition {
    /// Serves `text` (Prometheus' text format) on its own thread.
    pub fn serve(text: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
        let address = listener.local_addr().expect("its address");
        let shared = Arc::new(Mutex::new(text.to_owned()));
        let text = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = text.lock().expect("exposition lock").clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            address,
            text: shared,
        }
    }

    /// Serves `text` from now on.
    pub fn set(&self, text: &str) {
        *self.text.lock().expect("exposition lock") = text.to_owned();
    }
}
