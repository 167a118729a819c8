//! The local kubelet: the one Node `sluice-local`, and the pods scheduled to it. How each
//! container runs comes from the image rules ([`rules`]): simulated (its status follows its
//! behaviour over time) or real — a local process started, probed and stopped by the supervisor
//! ([`process`], [`probe`], [`crate::os::group`]) with its command line and environment from [`launch`] and
//! its output in log files ([`crate::node::logs`]). The planner ([`lifecycle`]) decides; this module observes
//! and applies. It talks to the API like any kubelet: it watches its pods, reports their status
//! and removes them once their containers have stopped.
//!
//! Layering: a client of the API server (over kube-rs) like the controllers; it implements
//! [`crate::node::NodeOps`] for the API server and uses [`crate::os`] to run processes.

pub mod identity;
pub mod launch;
pub mod lifecycle;
pub mod node;
pub mod probe;
pub mod process;
pub mod rules;

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{StreamExt, channel::mpsc::UnboundedReceiver};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::json;

use crate::{admission::NODE_NAME, controllers::record, node::logs};
use lifecycle::{Run, RuntimeAction};
use process::{Launch, Supervisor};
pub use rules::{Behaviour, Rules, Runtime};
use sluice_reconcile::events::{Recorder, Reporter};

/// Pod addresses (DESIGN §7).
const POD_IPS: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 255, 254));

/// Why the kubelet failed a step.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// An API call failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// No pod address is free.
    #[error("no free pod address in 127.1.0.0/16")]
    NoAddress,
}

struct Context {
    client: Client,
    rules: Rules,
    recorder: Recorder,
    store: kube::runtime::reflector::Store<Pod>,
    supervisor: Arc<Supervisor>,
    data_dir: PathBuf,
    api: identity::ApiEndpoint,
    assigned: Mutex<HashSet<Ipv4Addr>>,
    warned: Mutex<HashSet<String>>,
}

fn recorder(client: &Client) -> Recorder {
    let reporter = Reporter {
        controller: "kubelet".into(),
        instance: Some(NODE_NAME.into()),
    };
    Recorder::new(client.clone(), reporter)
}

/// The kubelet's process supervisor, made before the kubelet runs so its owner can stop every
/// process at shutdown; and the stream of pods whose processes changed, for [`run`].
pub fn supervisor(
    client: &Client,
    data_dir: &std::path::Path,
    allow_host_exec: bool,
) -> (Arc<Supervisor>, UnboundedReceiver<ObjectRef<Pod>>) {
    Supervisor::new(data_dir, recorder(client), allow_host_exec)
}

/// Runs the kubelet until the client's server goes away. Pod directories (logs, the pods'
/// kubeconfigs) live under `data_dir/pods`; pods reach the API server at `api`.
///
/// # Errors
/// When the Node cannot be registered.
pub async fn run(
    client: Client,
    rules: Rules,
    data_dir: PathBuf,
    api: identity::ApiEndpoint,
    (supervisor, changed): (Arc<Supervisor>, UnboundedReceiver<ObjectRef<Pod>>),
) -> Result<(), KubeletError> {
    node::register(&client).await?;
    let heartbeat = tokio::spawn(node::heartbeat(client.clone()));
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let controller = Controller::new(pods, config).reconcile_on(changed);
    let context = Arc::new(Context {
        recorder: recorder(&client),
        client,
        rules,
        store: controller.store(),
        supervisor,
        data_dir,
        api,
        assigned: Mutex::default(),
        warned: Mutex::default(),
    });
    let sweeper = tokio::spawn(sweep_orphans(context.clone()));
    controller
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
    sweeper.abort();
    heartbeat.abort();
    Ok(())
}

/// Stops the processes of pods that vanished without a graceful deletion (for example
/// `kubectl delete --force --grace-period=0`), as the kubelet's housekeeping does.
async fn sweep_orphans(context: Arc<Context>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let live: BTreeSet<String> = context
            .store
            .state()
            .iter()
            .filter_map(|p| p.uid())
            .collect();
        for uid in context.supervisor.pods() {
            if live.contains(&uid) {
                continue;
            }
            context.supervisor.stop_pod(&uid, Duration::from_secs(5));
            if context.supervisor.all_stopped(&uid) {
                context.supervisor.forget(&uid);
            }
        }
    }
}

/// The pod's address, or a free one: the lowest address no pod of this cluster has, on which
/// the pod's ports are free too (another `sluice up` on this machine may be using it).
fn address(context: &Context, pod: &Pod) -> Result<String, KubeletError> {
    if let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) {
        return Ok(ip);
    }
    let used: BTreeSet<Ipv4Addr> = context
        .store
        .state()
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
        .collect();
    let mut assigned = context.assigned.lock().unwrap_or_else(|e| e.into_inner());
    let ports: Vec<u16> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    let ports = if ports.is_empty() {
        vec![launch::DEFAULT_PORT]
    } else {
        ports
    };
    let free = |ip: &Ipv4Addr| {
        ports
            .iter()
            .all(|port| std::net::TcpListener::bind((*ip, *port)).is_ok())
    };
    let (first, last) = (u32::from(POD_IPS.0), u32::from(POD_IPS.1));
    let unused = |ip: &Ipv4Addr| !used.contains(ip) && !assigned.contains(ip);
    let candidates = || (first..=last).map(Ipv4Addr::from).filter(unused);
    // A port taken on every address (bound to 0.0.0.0) fails the container later, saying so.
    let ip = candidates()
        .take(256)
        .find(free)
        .or_else(|| candidates().next())
        .ok_or(KubeletError::NoAddress)?;
    assigned.retain(|ip| !used.contains(ip));
    assigned.insert(ip);
    Ok(ip.to_string())
}

async fn reconcile(pod: Arc<Pod>, context: Arc<Context>) -> Result<Action, KubeletError> {
    let api: Api<Pod> =
        Api::namespaced(context.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let ip = address(&context, &pod)?;
    let run_to_completion = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .is_some_and(|p| p != "Always");
    let ephemeral = lifecycle::ephemeral_containers(&pod);
    // What may run its own command here: containers that run to completion, ephemeral ones
    // (they run once) and interactive ones (`stdin`: `kubectl run -i`, `debug`).
    let runtimes: BTreeMap<String, (Runtime, bool)> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c, run_to_completion))
        .chain(ephemeral.iter().map(|c| (c, true)))
        .map(|(c, once)| {
            let image = c.image.as_deref().unwrap_or_default();
            let on_host = once || c.stdin.unwrap_or(false);
            let command = launch::host_command(c);
            let runtime = context.rules.runtime(image, command.as_deref(), on_host);
            (c.name.clone(), runtime)
        })
        .collect();
    let runs = |c: &Container| match runtimes.get(&c.name) {
        Some((Runtime::Simulated(b), _)) => Run::Simulated(b.clone()),
        Some(_) => Run::Real(context.supervisor.observe(&uid, &c.name)),
        None => Run::Simulated(Behaviour::default()),
    };
    let plan = lifecycle::plan(&pod, &runs, &ip, Timestamp::now());
    let reference = pod.object_ref(&());
    let unknown: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter(|c| runtimes.get(&c.name).is_some_and(|(_, matched)| !matched))
        .filter_map(|c| c.image.clone())
        .collect();
    for image in unknown {
        let first = context
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(image.clone());
        if first {
            record(
                &context.recorder,
                &reference,
                false,
                "Simulated",
                format!("image {image} has no rule in the images file; running it simulated"),
            )
            .await;
        }
    }
    for event in &plan.events {
        record(
            &context.recorder,
            &reference,
            event.warning,
            event.reason,
            event.note.clone(),
        )
        .await;
    }
    if plan.remove {
        context.supervisor.forget(&uid);
        let dir = logs::pod_dir(
            &context.data_dir,
            &pod.namespace().unwrap_or_default(),
            &name,
            &uid,
        );
        let _ = tokio::fs::remove_dir_all(dir).await;
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        return Ok(Action::await_change());
    }
    if let Some(status) = plan.status {
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(err) => return Err(err.into()),
        }
    }
    for action in plan.actions {
        match action {
            RuntimeAction::Start { container, restart } => {
                let mut spec = pod
                    .spec
                    .iter()
                    .flat_map(|s| &s.containers)
                    .chain(&ephemeral);
                let spec = spec.find(|c| c.name == container);
                if let (Some(spec), Some((runtime, _))) = (spec, runtimes.get(&container)) {
                    start(&context, &pod, spec, runtime, &ip, restart).await;
                }
            }
            RuntimeAction::Restart { container, grace } => {
                context.supervisor.stop(&uid, &container, grace);
            }
            RuntimeAction::Stop { grace } => context.supervisor.stop_pod(&uid, grace),
        }
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after.max(Duration::from_millis(10))),
        None => Action::await_change(),
    })
}

fn error_policy(_: Arc<Pod>, err: &KubeletError, _: Arc<Context>) -> Action {
    tracing::warn!("kubelet: {err}");
    Action::requeue(Duration::from_millis(500))
}

/// Reads the ConfigMaps and Secrets a container's env refers to (missing ones stay absent).
async fn sources(client: &Client, namespace: &str, container: &Container) -> launch::Sources {
    let (maps, secrets) = launch::references(container);
    let mut sources = launch::Sources::default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in maps {
        if let Ok(Some(map)) = config_maps.get_opt(&name).await {
            sources
                .config_maps
                .insert(name, map.data.unwrap_or_default());
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in secrets {
        if let Ok(Some(secret)) = secret_api.get_opt(&name).await {
            let mut data: BTreeMap<String, String> = secret.string_data.unwrap_or_default();
            for (key, value) in secret.data.unwrap_or_default() {
                data.insert(key, String::from_utf8_lossy(&value.0).into_owned());
            }
            sources.secrets.insert(name, data);
        }
    }
    sources
}

/// Starts one real container: its command line and environment, then the supervisor.
async fn start(
    context: &Context,
    pod: &Pod,
    container: &Container,
    runtime: &Runtime,
    ip: &str,
    restart: i64,
) {
    let namespace = pod.namespace().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let pod_ref = ObjectRef::from_obj(pod);
    let services: Api<Service> = Api::namespaced(context.client.clone(), &namespace);
    let services = services
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let sources = sources(&context.client, &namespace, container).await;
    let dir = logs::pod_dir(&context.data_dir, &namespace, &pod.name_any(), &uid);
    let kubeconfig = match runtime {
        Runtime::Process(_) | Runtime::Builtin(_) | Runtime::Exec => {
            identity::prepare(&context.client, &context.api, pod, &dir).await
        }
        Runtime::Simulated(_) | Runtime::ExecNotAllowed => Ok(None),
    };
    let prepared = kubeconfig.and_then(|kubeconfig| {
        let mut env = launch::environment(
            pod,
            container,
            ip,
            &services.iter().collect::<Vec<_>>(),
            &sources,
        )?;
        // Before the container's own variables, which win (as Kubernetes' service variables).
        let mut cluster = identity::service_variables(&context.api);
        cluster.extend(kubeconfig);
        env.splice(2..2, cluster);
        Ok((launch::command_line(runtime, container, &env, ip)?, env))
    });
    let (argv, env) = match prepared {
        Ok(prepared) => prepared,
        Err(message) => {
            let supervisor = &context.supervisor;
            return supervisor.fail(
                &uid,
                &container.name,
                &pod_ref,
                "CreateContainerError",
                message,
            );
        }
    };
    let ports = match runtime {
        Runtime::Process(_) => {
            let tcp = container.ports.iter().flatten();
            let tcp = tcp.filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP");
            let mut ports: Vec<u16> = tcp
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .collect();
            if ports.is_empty() {
                ports.push(launch::DEFAULT_PORT);
            }
            ports
        }
        _ => Vec::new(),
    };
    let launch = Launch {
        pod: pod_ref,
        reference: pod.object_ref(&()),
        container: container.name.clone(),
        log: logs::log_file(&dir, &container.name, restart),
        dir,
        ports,
        target: probe::Target {
            pod_ip: ip
                .parse()
                .unwrap_or(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ports: container.ports.clone().unwrap_or_default(),
            env: env.clone(),
            allow_exec: context.rules.allow_host_exec,
        },
        probes: [
            (probe::Kind::Startup, container.startup_probe.clone()),
            (probe::Kind::Readiness, container.readiness_probe.clone()),
            (probe::Kind::Liveness, container.liveness_probe.clone()),
        ],
        stdin: (
            container.stdin.unwrap_or(false),
            container.stdin_once.unwrap_or(false),
        ),
        tty: container.tty.unwrap_or(false),
        argv,
        env,
    };
    context.supervisor.start(&uid, launch).await;
}
