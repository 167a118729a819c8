//! A cluster for tests: started once on its own runtime, reached over HTTPS (with the
//! kubeconfig it writes) or in-process.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use sluice_cluster::{
    Cluster, ClusterConfig,
    store::{Durability, StoreConfig},
};

pub struct Shared {
    runtime: tokio::runtime::Runtime,
    pub cluster: Cluster,
    _dir: tempfile::TempDir,
}

pub static SHARED: LazyLock<Shared> = LazyLock::new(|| {
    // Tests touch this from inside their own runtimes, where blocking on another is not
    // allowed; the cluster's runtime is built on a thread of its own.
    std::thread::spawn(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cluster = runtime
            .block_on(Cluster::start(config(
                dir.path(),
                "127.0.0.1:0".parse().unwrap(),
            )))
            .unwrap();
        Shared {
            runtime,
            cluster,
            _dir: dir,
        }
    })
    .join()
    .unwrap()
});

/// A persistent cluster configuration for tests (durability relaxed for speed).
pub fn config(dir: &Path, listen: SocketAddr) -> ClusterConfig {
    ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: false,
        listen,
        durability: Durability::Normal,
        store: StoreConfig::default(),
        runtime: None,
    }
}

/// A client of `cluster` over HTTPS, configured from its kubeconfig like any user.
pub async fn client_from_kubeconfig(path: &Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// The shared cluster over HTTPS.
pub async fn tcp() -> Client {
    client_from_kubeconfig(SHARED.cluster.kubeconfig()).await
}

/// The shared cluster in-process.
pub fn local() -> Client {
    let _ = &SHARED.runtime;
    SHARED.cluster.client()
}

/// Both ways of reaching the shared cluster, named.
pub async fn both() -> [(&'static str, Client); 2] {
    [("https", tcp().await), ("in-process", local())]
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh namespace for one test.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

/// Retries `check` for up to 10 s; panics with `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A typed object from JSON.
pub fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// The HTTP status of a raw request through `client`, with the body as JSON.
pub async fn raw(client: &Client, request: http::Request<Vec<u8>>) -> (u16, serde_json::Value) {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}
