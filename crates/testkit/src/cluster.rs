//! One cluster per test binary, started on its own thread and runtime so that every test's
//! runtime can use it.

use sluice_cluster::{Cluster, ClusterConfig};

/// A running cluster with the runtime and data dir it lives on.
pub struct Shared {
    _runtime: tokio::runtime::Runtime,
    /// The cluster.
    pub cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl Shared {
    /// Starts a cluster configured by `config` for a fresh data dir, then runs `then` (to start
    /// more on the cluster's runtime).
    pub fn start(
        config: impl FnOnce(&std::path::Path) -> ClusterConfig + Send + 'static,
        then: impl FnOnce(&Cluster, &tokio::runtime::Runtime) + Send + 'static,
    ) -> Self {
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(16 << 20)
                .build()
                .unwrap();
            let cluster = runtime
                .block_on(Cluster::start(config(dir.path())))
                .unwrap();
            {
                let _entered = runtime.enter();
                then(&cluster, &runtime);
            }
            Self {
                _runtime: runtime,
                cluster,
                _dir: dir,
            }
        })
        .join()
        .unwrap()
    }
}
