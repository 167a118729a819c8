//! The service proxy (kube-proxy's job, in user space, L4): every Service with a clusterIP
//! listens on that address and its TCP ports and forwards each new connection to a ready
//! endpoint of the port, round robin. Endpoints are read from the EndpointSlices at each
//! connection, so a selector or readiness change applies to the next connection while open
//! ones finish. NodePort and LoadBalancer Services are served on their node ports too, on the
//! node's address (127.0.0.1), as kube-proxy serves them on every node's. LoadBalancer Services
//! get `status.loadBalancer.ingress`. A port below 1024 that
//! cannot be bound (not root) is served on a high port instead, recorded in the annotation
//! [`LOCAL_PORTS`] and an event with reason `PortRemapped`.
//!
//! Layering: a client of the API server (over kube-rs), beside the kubelet.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::reflector::Store,
};
use serde_json::json;
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::controllers::{Recorder, record, recorder, watched};

/// The annotation mapping a Service's ports to the local ports serving them (`{"80": 8080}`),
/// for ports below 1024 that could not be bound.
pub const LOCAL_PORTS: &str = "sluice.dev/local-ports";

/// Where a remapped port is tried first: `port + REMAP_OFFSET` (80 → 8080, 443 → 8443).
const REMAP_OFFSET: u16 = 8000;

/// Where a Service port is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Exposure {
    /// On the Service's clusterIP and port.
    ClusterIp,
    /// On the node's address and the port's node port.
    NodePort,
}

/// One served Service port: namespace, Service name, port (the node port for
/// [`Exposure::NodePort`]), and where.
type Key = (String, String, i32, Exposure);

/// The node's address, where node ports are served.
const NODE_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

struct Listener {
    ip: IpAddr,
    local_port: u16,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Stops accepting; connections already forwarded run on in their own tasks.
        self.task.abort();
    }
}

/// Runs the proxy until the client's server goes away.
pub async fn run(client: Client) {
    let (services, service_events) = watched::<Service>(&client);
    let (slices, slice_events) = watched::<EndpointSlice>(&client);
    tokio::spawn(slice_events.for_each(|_| async {}));
    let recorder = recorder(&client, "service-proxy");
    let mut listeners: HashMap<Key, Listener> = HashMap::new();
    let mut changes = Box::pin(service_events);
    while changes.next().await.is_some() {
        sync(&client, &recorder, &services, &slices, &mut listeners).await;
    }
}

/// A Service port: number and name.
type ServicePort = (i32, Option<String>);

/// The TCP ports a Service is served on, with its clusterIP.
fn served(service: &Service) -> Option<(IpAddr, Vec<ServicePort>)> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let ip: IpAddr = spec.cluster_ip.as_deref()?.parse().ok()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .map(|p| (p.port, p.name.clone()))
        .collect();
    Some((ip, ports))
}

/// The TCP node ports of a Service, with the names of their Service ports.
fn node_ports(service: &Service) -> Vec<ServicePort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    spec.ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| Some((p.node_port?, p.name.clone())))
        .collect()
}

async fn sync(
    client: &Client,
    recorder: &Recorder,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    listeners: &mut HashMap<Key, Listener>,
) {
    let all = services.state();
    let mut desired = HashMap::new();
    for service in &all {
        let (namespace, service_name) =
            (service.namespace().unwrap_or_default(), service.name_any());
        if let Some((ip, ports)) = served(service) {
            for (port, name) in ports {
                let key = (
                    namespace.clone(),
                    service_name.clone(),
                    port,
                    Exposure::ClusterIp,
                );
                desired.insert(key, (ip, name));
            }
        }
        for (port, name) in node_ports(service) {
            let key = (
                namespace.clone(),
                service_name.clone(),
                port,
                Exposure::NodePort,
            );
            desired.insert(key, (NODE_IP, name));
        }
    }
    listeners.retain(|key, listener| desired.get(key).is_some_and(|(ip, _)| *ip == listener.ip));
    for (key, (ip, name)) in &desired {
        if listeners.contains_key(key) {
            continue;
        }
        let Ok(port) = u16::try_from(key.2) else {
            continue;
        };
        let Some(listener) = bind(*ip, port).await else {
            continue;
        };
        let local_port = listener.local_addr().map_or(port, |a| a.port());
        let backends = Backends {
            slices: slices.clone(),
            namespace: key.0.clone(),
            service: key.1.clone(),
            port_name: name.clone().unwrap_or_default(),
            next: AtomicUsize::new(0),
        };
        let task = tokio::spawn(accept(listener, Arc::new(backends)));
        let entry = Listener {
            ip: *ip,
            local_port,
            task,
        };
        listeners.insert(key.clone(), entry);
    }
    for service in &all {
        report(client, recorder, service, listeners).await;
    }
}

/// Binds the port; one below 1024 that cannot be bound moves to `port + 8000`, else any port.
async fn bind(ip: IpAddr, port: u16) -> Option<TcpListener> {
    match TcpListener::bind((ip, port)).await {
        Ok(listener) => Some(listener),
        Err(err) if port >= 1024 => {
            tracing::warn!("service proxy: cannot listen on {ip}:{port}: {err}");
            None
        }
        Err(_) => match TcpListener::bind((ip, port + REMAP_OFFSET)).await {
            Ok(listener) => Some(listener),
            Err(_) => TcpListener::bind((ip, 0)).await.ok(),
        },
    }
}

/// Writes the local-ports annotation (with a `PortRemapped` event) and a LoadBalancer's status
/// when they differ from what the proxy serves.
async fn report(
    client: &Client,
    recorder: &Recorder,
    service: &Service,
    listeners: &HashMap<Key, Listener>,
) {
    let Some((ip, ports)) = served(service) else {
        return;
    };
    let (namespace, name) = (service.namespace().unwrap_or_default(), service.name_any());
    let mut remapped = BTreeMap::new();
    for (port, _) in &ports {
        let key = (namespace.clone(), name.clone(), *port, Exposure::ClusterIp);
        if let Some(listener) = listeners.get(&key)
            && i32::from(listener.local_port) != *port
        {
            remapped.insert(port.to_string(), listener.local_port);
        }
    }
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let current = service.annotations().get(LOCAL_PORTS);
    let wanted = (!remapped.is_empty()).then(|| json!(remapped).to_string());
    if current != wanted.as_ref() {
        let patch = json!({"metadata": {"annotations": {LOCAL_PORTS: wanted}}});
        if api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .is_ok()
        {
            for (port, local) in &remapped {
                let note = format!(
                    "port {port} needs root to bind; serving {ip}:{port} on {}",
                    SocketAddr::new(ip, *local)
                );
                let reference = service.object_ref(&());
                record(recorder, &reference, false, "PortRemapped", note).await;
            }
        }
    }
    let load_balancer =
        service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .and_then(|i| i.first())
        .and_then(|i| i.ip.clone());
    if load_balancer && ingress != Some(ip.to_string()) {
        let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}}});
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
        {
            tracing::debug!("service proxy: load balancer status of {namespace}/{name}: {err}");
        }
    }
}

/// The ready endpoints of one Service port, read at each connection.
struct Backends {
    slices: Store<EndpointSlice>,
    namespace: String,
    service: String,
    port_name: String,
    next: AtomicUsize,
}

impl Backends {
    fn ready(&self) -> Vec<SocketAddr> {
        let mut ready = Vec::new();
        for slice in self.slices.state() {
            let owned = slice.namespace().as_deref() == Some(self.namespace.as_str())
                && slice.labels().get("kubernetes.io/service-name") == Some(&self.service);
            if !owned {
                continue;
            }
            let port = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or_default() == self.port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok());
            let Some(port) = port else { continue };
            for endpoint in &slice.endpoints {
                let is_ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !is_ready {
                    continue;
                }
                let addresses = endpoint.addresses.iter();
                ready.extend(
                    addresses
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, port)),
                );
            }
        }
        ready.sort();
        ready
    }

    /// Connects to the next ready endpoint, trying each once.
    async fn connect(&self) -> Option<TcpStream> {
        let ready = self.ready();
        for _ in 0..ready.len() {
            let at = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
            if let Ok(stream) = TcpStream::connect(ready[at]).await {
                return Some(stream);
            }
        }
        None
    }
}

async fn accept(listener: TcpListener, backends: Arc<Backends>) {
    loop {
        let Ok((mut downstream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: let connections finish.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let backends = backends.clone();
        tokio::spawn(async move {
            // No ready endpoint: the connection is closed, as a rejecting kube-proxy would.
            let Some(mut upstream) = backends.connect().await else {
                return;
            };
            let _ = downstream.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
        });
    }
}
