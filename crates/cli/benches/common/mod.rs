//! What the benchmarks share: an in-process cluster whose demo images run `sluice demo-app`.

use sluice_cluster::{
    Cluster, ClusterConfig, IngressConfig,
    kubelet::Rules,
    store::{Durability, StoreConfig},
};

/// A cluster on `dir` with fsync per commit, the process runtime for demo images (others
/// simulated) and, when asked, the ingress on an ephemeral port.
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
