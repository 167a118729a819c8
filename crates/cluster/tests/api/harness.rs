//! A cluster for tests: started once on its own runtime, reached over HTTPS (with the
//! kubeconfig it writes) or in-process.

use std::{net::SocketAddr, path::Path, sync::LazyLock};

use kube::Client;

use sluice_cluster::{
    Cluster, ClusterConfig,
    store::{Durability, StoreConfig},
};
pub use sluice_testkit::{eventually, from, namespace};

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
        ingress: None,
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
