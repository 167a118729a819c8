//! The local kubelet: the one Node `sluice-local`, and the pods scheduled to it, run by the
//! simulated runtime ([`lifecycle`]) according to the image rules ([`rules`]). It talks to the
//! API like any kubelet: it watches its pods, reports their status and removes them once their
//! containers have stopped.

pub mod lifecycle;
pub mod rules;

use std::{
    collections::{BTreeSet, HashSet},
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{
        Controller,
        controller::Action,
        events::{Recorder, Reporter},
        watcher,
    },
};
use serde_json::json;

use crate::{admission::NODE_NAME, controllers::record, object::timestamp};
pub use rules::{Behaviour, Rules};

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
    assigned: Mutex<HashSet<Ipv4Addr>>,
    warned: Mutex<HashSet<String>>,
}

/// Runs the kubelet until the client's server goes away.
///
/// # Errors
/// When the Node cannot be registered.
pub async fn run(client: Client, rules: Rules) -> Result<(), KubeletError> {
    register_node(&client).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let controller = Controller::new(pods, config);
    let reporter = Reporter {
        controller: "kubelet".into(),
        instance: Some(NODE_NAME.into()),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        rules,
        store: controller.store(),
        assigned: Mutex::default(),
        warned: Mutex::default(),
    });
    controller
        .run(reconcile, error_policy, context)
        .for_each(|_| async {})
        .await;
    Ok(())
}

async fn register_node(client: &Client) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(NODE_NAME).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": NODE_NAME, "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": std::env::consts::OS,
                "kubernetes.io/arch": std::env::consts::ARCH,
                "node-role.kubernetes.io/control-plane": "",
            }},
            "spec": {},
        }))
        .expect("a valid Node");
        nodes.create(&PostParams::default(), &node).await?;
    }
    let now = timestamp(Timestamp::now());
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
        "capacity": {"cpu": "2", "memory": "24Gi", "pods": "1000"},
        "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "1000"},
        "nodeInfo": {"kubeletVersion": "v1.33.0-sluice", "containerRuntimeVersion": "sluice://simulated",
            "operatingSystem": std::env::consts::OS, "architecture": std::env::consts::ARCH,
            "kernelVersion": "", "osImage": "sluice", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
    }});
    nodes
        .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

/// The pod's address, or a free one.
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
    let (first, last) = (u32::from(POD_IPS.0), u32::from(POD_IPS.1));
    let ip = (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !used.contains(ip) && !assigned.contains(ip))
        .ok_or(KubeletError::NoAddress)?;
    assigned.retain(|ip| !used.contains(ip));
    assigned.insert(ip);
    Ok(ip.to_string())
}

async fn reconcile(pod: Arc<Pod>, context: Arc<Context>) -> Result<Action, KubeletError> {
    let api: Api<Pod> =
        Api::namespaced(context.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let ip = address(&context, &pod)?;
    let behaviour = |c: &k8s_openapi::api::core::v1::Container| {
        context
            .rules
            .lookup(c.image.as_deref().unwrap_or_default())
            .0
            .clone()
    };
    let plan = lifecycle::plan(&pod, &behaviour, &ip, Timestamp::now());
    let reference = pod.object_ref(&());
    let unknown: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.image.clone())
        .filter(|image| !context.rules.lookup(image).1)
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
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after.max(Duration::from_millis(10))),
        None => Action::await_change(),
    })
}

fn error_policy(_: Arc<Pod>, err: &KubeletError, _: Arc<Context>) -> Action {
    tracing::warn!("kubelet: {err}");
    Action::requeue(Duration::from_millis(500))
}
