//! Starting and stopping the embedded control plane: store, registry, sluice's CRDs, default
//! namespaces, the garbage collector, and the HTTPS listener with its kubeconfig.
//!
//! Layering: the top room: it wires every other one together (and hands the kubelet to the
//! API server as its [`crate::node::NodeOps`]).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    admission::NODE_NAME,
    apiserver::{ApiError, ApiServer, create_object, sync_crd},
    authn::User,
    controllers, gc, kubeconfig,
    kubelet::{self, Rules, process::Supervisor},
    proxy,
    registry::Registry,
    serve,
    store::{Durability, ObjectKey, ResourceKey, Store, StoreConfig, StoreError},
    tls::{self, TlsError},
};

/// Namespaces every cluster has.
pub const DEFAULT_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// How to start the control plane.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Where the store, CA, token and kubeconfig live.
    pub data_dir: PathBuf,
    /// Keep objects in memory only.
    pub ephemeral: bool,
    /// HTTPS address (port 0 picks one).
    pub listen: SocketAddr,
    /// How hard writes are pushed to disk.
    pub durability: Durability,
    /// Store sizing.
    pub store: StoreConfig,
    /// Run the cluster's own controllers, the kubelet with these image rules and the service
    /// proxy (`None`: the API server alone).
    pub runtime: Option<Rules>,
    /// Serve Ingresses: the data plane's address and its metrics' (port 0 picks one). Needs
    /// `runtime` (its endpoints).
    pub ingress: Option<IngressConfig>,
}

/// Where the ingress data plane listens.
#[derive(Debug, Clone, Copy)]
pub struct IngressConfig {
    /// HTTP address of the data plane.
    pub listen: SocketAddr,
    /// HTTP address of its Prometheus metrics.
    pub metrics_listen: SocketAddr,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS credentials failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding the listener failed.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the kubeconfig failed.
    #[error("writing {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Creating a built-in object failed.
    #[error("bootstrapping {what}: {source}")]
    Bootstrap {
        /// What.
        what: String,
        /// Why.
        #[source]
        source: ApiError,
    },
    /// Manifests to take roles from do not parse or lack a role.
    #[error("{origin}: {message}")]
    Manifests {
        /// Where they come from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A running control plane.
pub struct Cluster {
    api: Arc<ApiServer>,
    address: SocketAddr,
    kubeconfig: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    supervisor: Option<Arc<Supervisor>>,
    ingress: Option<(SocketAddr, SocketAddr)>,
}

async fn listen(address: SocketAddr) -> Result<(TcpListener, SocketAddr), ClusterError> {
    let failed = |source| ClusterError::Listen { address, source };
    let listener = TcpListener::bind(address).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
}

/// How long `shutdown` lets local processes stop after SIGTERM before SIGKILL.
const PROCESS_GRACE: Duration = Duration::from_secs(5);

impl Cluster {
    /// Starts the control plane and returns once it serves every kind.
    ///
    /// # Errors
    /// [`ClusterError`] naming what failed.
    pub async fn start(config: ClusterConfig) -> Result<Self, ClusterError> {
        let store = if config.ephemeral {
            Store::in_memory(config.store.clone())
        } else {
            Store::open(
                &config.data_dir.join("state.db"),
                config.durability,
                config.store.clone(),
            )?
        };
        let (listener, address) = listen(config.listen).await?;
        let ingress_listeners = match config.ingress {
            Some(ingress) => Some((
                listen(ingress.listen).await?,
                listen(ingress.metrics_listen).await?,
            )),
            None => None,
        };
        let mut ips = vec![address.ip()];
        if !address.ip().is_loopback() || address.ip().to_string() != "127.0.0.1" {
            ips.push("127.0.0.1".parse().expect("loopback address"));
        }
        let credentials = tls::load_or_create(&config.data_dir, &ips)?;
        let api = ApiServer::new(
            Arc::new(store),
            Arc::new(Registry::with_builtins()),
            address.to_string(),
            &credentials.token,
        );
        bootstrap(&api)?;
        let url = format!("https://{address}");
        let kubeconfig = config.data_dir.join("kubeconfig");
        let text = kubeconfig::render("sluice", &url, &credentials.ca_pem, &credentials.token);
        std::fs::write(&kubeconfig, text).map_err(|source| ClusterError::Kubeconfig {
            path: kubeconfig.clone(),
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let router = serve::authenticated(api.router(), api.clone());
        let mut tasks = vec![tokio::spawn(serve::serve(
            listener,
            router,
            credentials.server_config,
            stopped.clone(),
        ))];
        tasks.push(tokio::spawn(gc::run(api.clone())));
        let manager = api.client_as(User::controller_manager());
        tasks.push(tokio::spawn(controllers::aggregation::run(manager.clone())));
        tasks.push(tokio::spawn(compact(api.clone(), stopped)));
        let mut supervisor = None;
        if let Some(rules) = config.runtime {
            let scheduler = api.client_as(User::scheduler());
            tasks.extend(controllers::spawn(
                &manager,
                &scheduler,
                &credentials.ca_pem,
            ));
            let client = api.client_as(User::node(NODE_NAME));
            let kubelet = kubelet::supervisor(&client, &config.data_dir, rules.allow_host_exec);
            supervisor = Some(kubelet.0.clone());
            api.set_node(kubelet.0.clone());
            let data_dir = config.data_dir.clone();
            let proxy_client = api.client_as(User::proxy());
            let endpoint = kubelet::identity::ApiEndpoint {
                address,
                ca_pem: credentials.ca_pem.clone(),
            };
            tasks.push(tokio::spawn(async move {
                if let Err(err) = kubelet::run(client, rules, data_dir, endpoint, kubelet).await {
                    tracing::error!("kubelet stopped: {err}");
                }
            }));
            tasks.push(tokio::spawn(proxy::run(proxy_client)));
        }
        let mut ingress = None;
        if let Some(((listener, at), (metrics_listener, metrics_at))) = ingress_listeners {
            ingress = Some((at, metrics_at));
            let client = api.client_as(User::ingress());
            tasks.push(tokio::spawn(crate::ingress::run(
                client,
                listener,
                metrics_listener,
            )));
        }
        Ok(Self {
            api,
            address,
            kubeconfig,
            stop,
            tasks,
            supervisor,
            ingress,
        })
    }

    /// The API server (for in-process clients).
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// A kube-rs client wired to the API server in-process, acting as the administrator.
    pub fn client(&self) -> kube::Client {
        self.api.client()
    }

    /// Gives `user` exactly `rules`: a ClusterRole named after the user with those rules
    /// (`source`, in an annotation, says where they come from) and a ClusterRoleBinding of it
    /// to the user, created or brought up to date — how `sluice up` gives its controllers the
    /// rules of `deploy/install.yaml`.
    ///
    /// # Errors
    /// [`ClusterError::Bootstrap`] when an object cannot be written.
    pub fn grant(&self, user: &str, rules: Value, source: &str) -> Result<(), ClusterError> {
        let group = "rbac.authorization.k8s.io";
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": user, "annotations": {"sluice.io/rules-of": source}},
            "rules": rules,
        });
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": user},
            "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": user},
            "subjects": [{"apiGroup": group, "kind": "User", "name": user}],
        });
        for (resource, object, field) in [
            ("clusterroles", role, "rules"),
            ("clusterrolebindings", binding, "subjects"),
        ] {
            let rt = self
                .api
                .registry()
                .get(group, resource)
                .expect("built-in kind");
            let key = ObjectKey::new("", user);
            let Some(stored) = self.api.store().get(&rt.storage, &key) else {
                create(&self.api, &rt, object, user)?;
                continue;
            };
            let mut value = stored.value();
            if value[field] == object[field] {
                continue;
            }
            value[field] = object[field].clone();
            self.api
                .store()
                .write(|txn| {
                    txn.put(&rt.storage, key, value);
                    Ok::<_, ApiError>(())
                })
                .map_err(|source| ClusterError::Bootstrap {
                    what: format!("{resource} {user}"),
                    source,
                })?;
        }
        Ok(())
    }

    /// Gives each user of `grants` (`(ClusterRole name, user)`) exactly the rules of that
    /// ClusterRole among `manifests` (multi-document YAML from `origin`), as [`Self::grant`]
    /// does — how `sluice up` gives its controllers the rules of `deploy/install.yaml`.
    ///
    /// # Errors
    /// [`ClusterError::Manifests`] when they do not parse or lack a role,
    /// [`ClusterError::Bootstrap`] when an object cannot be written.
    pub fn grant_roles_of(
        &self,
        manifests: &str,
        origin: &str,
        grants: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let failed = |message: String| ClusterError::Manifests {
            origin: origin.to_owned(),
            message,
        };
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(manifests).map_err(|e| failed(e.to_string()))?;
        for (role, user) in grants {
            let rules = documents
                .iter()
                .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == *role)
                .map(|d| d["rules"].clone())
                .ok_or_else(|| failed(format!("no ClusterRole {role}")))?;
            self.grant(user, rules, &format!("{origin} ClusterRole {role}"))?;
        }
        Ok(())
    }

    /// The HTTPS address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The ingress data plane's address and its metrics' address, when it runs.
    pub fn ingress_addresses(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.ingress
    }

    /// The kubeconfig written for this cluster.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Stops serving and background work, then every local process (SIGTERM, then SIGKILL
    /// after a few seconds).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        if let Some(supervisor) = self.supervisor {
            supervisor.shutdown(PROCESS_GRACE).await;
        }
    }
}

async fn compact(api: Arc<ApiServer>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => {
                let store = api.store().clone();
                match tokio::task::spawn_blocking(move || store.compact()).await {
                    Ok(Ok(removed)) if removed > 0 => tracing::debug!("compacted {removed} log rows"),
                    Ok(Err(err)) => tracing::warn!("compaction failed: {err}"),
                    _ => {}
                }
            }
        }
    }
}

/// Registers stored CRDs, installs sluice's when absent, and creates the default namespaces.
fn bootstrap(api: &Arc<ApiServer>) -> Result<(), ClusterError> {
    default_stored(api)?;
    let crds = ResourceKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    let (stored, _) = api.store().list(&crds, None);
    for crd in stored {
        sync_crd(api, &crd.key.name);
    }
    let crd_type = api
        .registry()
        .get("apiextensions.k8s.io", "customresourcedefinitions")
        .expect("built-in kind");
    let present = |name: &str| api.store().get(&crds, &ObjectKey::new("", name)).is_some();
    let all_present = sluice_api::crd::names().iter().all(|name| present(name));
    for generated in sluice_api::crd::crds().iter().filter(|_| !all_present) {
        let name = generated.crd.metadata.name.clone().unwrap_or_default();
        if present(&name) {
            continue;
        }
        let value = serde_json::to_value(&generated.crd).unwrap_or(Value::Null);
        create(api, &crd_type, value, &name)?;
    }
    default_rbac(api)?;
    let ns_type = api.registry().get("", "namespaces").expect("built-in kind");
    for namespace in DEFAULT_NAMESPACES {
        if api
            .store()
            .get(
                &ResourceKey::new("", "namespaces"),
                &ObjectKey::new("", namespace),
            )
            .is_none()
        {
            let value =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            create(api, &ns_type, value, namespace)?;
        }
    }
    Ok(())
}

/// Kubernetes' default ClusterRoles and ClusterRoleBindings, created when missing (one an
/// administrator deleted comes back at the next start, as Kubernetes' reconciliation does).
fn default_rbac(api: &Arc<ApiServer>) -> Result<(), ClusterError> {
    let group = "rbac.authorization.k8s.io";
    for (resource, objects) in [
        ("clusterroles", crate::rbac::defaults::cluster_roles()),
        (
            "clusterrolebindings",
            crate::rbac::defaults::cluster_role_bindings(),
        ),
    ] {
        let rt = api.registry().get(group, resource).expect("built-in kind");
        for object in objects {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = ObjectKey::new("", &name);
            if api.store().get(&rt.storage, &key).is_none() {
                create(api, &rt, object, &name)?;
            }
        }
    }
    Ok(())
}

/// Gives objects stored by an older sluice the defaults the API server applies now, once at
/// start and without a new generation: otherwise the first unrelated write (a label, a scale)
/// would add them, and a Deployment would take its defaulted template for a new one and roll
/// every pod.
fn default_stored(api: &ApiServer) -> Result<(), ClusterError> {
    let mut seen = std::collections::BTreeSet::new();
    for rt in api.registry().all() {
        let stored = rt.persistence == crate::registry::Persistence::Stored;
        if rt.custom || !stored || !seen.insert(rt.storage.clone()) {
            continue;
        }
        let (objects, _) = api.store().list(&rt.storage, None);
        let changed: Vec<(ObjectKey, Value)> = objects
            .iter()
            .filter_map(|object| {
                let before = object.value();
                let mut after = before.clone();
                crate::defaults::apply(&rt, &mut after);
                (after != before).then(|| (object.key.clone(), after))
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        api.store()
            .write(|txn| {
                for (key, value) in changed {
                    txn.put(&rt.storage, key, value);
                }
                Ok::<_, crate::apiserver::ApiError>(())
            })
            .map_err(|source| ClusterError::Bootstrap {
                what: format!("defaults of stored {}", rt.qualified_name()),
                source,
            })?;
    }
    Ok(())
}

fn create(
    api: &ApiServer,
    rt: &crate::registry::ResourceType,
    value: Value,
    what: &str,
) -> Result<(), ClusterError> {
    create_object(api, rt, value, false)
        .map(|_| ())
        .map_err(|source| ClusterError::Bootstrap {
            what: what.to_owned(),
            source,
        })
}
