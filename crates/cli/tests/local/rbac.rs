//! Authorization end to end: local pods reach the API as their ServiceAccount through the
//! kubeconfig the kubelet writes them; and `deploy/install.yaml` proven sufficient — its RBAC
//! applied, `sluice controller` run as its own process with its ServiceAccount's token drives a
//! blue-green and a canary Rollout with no request refused, and the same install missing one
//! rule makes the controller say which request was refused (a Warning event on the Rollout and
//! an error log naming verb and resource), not stall in silence.
//!
//! The controller under test handles only Rollouts with its instance id, so the in-process
//! controllers of this binary's cluster leave them alone; each test has its own ClusterRole,
//! namespace and Lease.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sluice_api::Rollout;
use sluice_testkit::process::Running;

use super::{SHARED, client, eventually, from, namespace};

/// POSTs an object of a kind these tests apply.
async fn create(client: &Client, object: &Value) {
    let kind = object["kind"].as_str().unwrap();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let (prefix, plural, namespaced) = match kind {
        "ServiceAccount" => ("/api/v1", "serviceaccounts", true),
        "Role" => ("/apis/rbac.authorization.k8s.io/v1", "roles", true),
        "RoleBinding" => ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", true),
        "ClusterRole" => ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", false),
        "ClusterRoleBinding" => (
            "/apis/rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            false,
        ),
        other => panic!("unexpected kind {other}"),
    };
    let path = if namespaced {
        format!("{prefix}/namespaces/{namespace}/{plural}")
    } else {
        format!("{prefix}/{plural}")
    };
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object).unwrap())
        .unwrap();
    let _: Value = client.request(request).await.unwrap();
}

/// A token of ServiceAccount `ns/name`, as `kubectl create token` issues it.
async fn token(client: &Client, ns: &str, name: &str) -> String {
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&json!({"spec": {"expirationSeconds": 3600}})).unwrap())
    .unwrap();
    let answer: Value = client.request(request).await.unwrap();
    answer["status"]["token"].as_str().unwrap().to_owned()
}

/// A kubeconfig for the test cluster with `token`, written next to the test's data.
fn kubeconfig(token: &str, ns: &str) -> PathBuf {
    let dir = SHARED.cluster.kubeconfig().parent().unwrap().to_owned();
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let url = format!("https://{}", SHARED.cluster.address());
    let path = dir.join(format!("kubeconfig-{ns}"));
    std::fs::write(
        &path,
        sluice_cluster::kubeconfig::render_in("sluice", &url, &ca, token, ns),
    )
    .unwrap();
    path
}

fn pod(name: &str, account: Option<&str>, automount: Option<bool>, script: &str) -> Pod {
    let mut spec = json!({"restartPolicy": "Never",
        "containers": [{"name": "run", "image": "busybox", "command": ["sh", "-c", script],
            "env": [{"name": "SLUICE", "value": env!("CARGO_BIN_EXE_sluice")}]}]});
    if let Some(account) = account {
        spec["serviceAccountName"] = json!(account);
    }
    if let Some(automount) = automount {
        spec["automountServiceAccountToken"] = json!(automount);
    }
    from(json!({"metadata": {"name": name}, "spec": spec}))
}

/// Waits for a pod to finish; its phase and log.
async fn finished(pods: &Api<Pod>, name: &str) -> (String, String) {
    let mut phase = String::new();
    for _ in 0..600 {
        let pod = pods.get(name).await.unwrap();
        phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = pods.logs(name, &Default::default()).await.unwrap();
    (phase, log)
}

#[tokio::test]
async fn pods_reach_the_api_as_their_service_account() {
    let client = client();
    let ns = namespace(&client, "podauth").await;
    for object in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": ns}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "rollout-reader", "namespace": ns},
            "rules": [{"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rollout-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader"}]}),
    ] {
        create(&client, &object).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually("the default ServiceAccount", || async {
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &ns)
            .get_opt("default")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let script = r#"echo "api $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT mode $(stat -c %a "$KUBECONFIG")"; "$SLUICE" list rollouts"#;
    for (name, account, automount) in [
        ("bound", Some("reader"), None),
        ("unbound", None, None),
        ("optout", Some("reader"), Some(false)),
    ] {
        pods.create(
            &PostParams::default(),
            &pod(name, account, automount, script),
        )
        .await
        .unwrap();
    }
    let address = SHARED.cluster.address();
    let (phase, log) = finished(&pods, "bound").await;
    assert_eq!(phase, "Succeeded", "{log}");
    assert!(
        log.starts_with(&format!(
            "api {}:{} mode 600\n",
            address.ip(),
            address.port()
        )),
        "{log}"
    );
    let (phase, log) = finished(&pods, "unbound").await;
    assert_eq!(phase, "Failed", "{log}");
    assert!(
        log.contains(&format!(
            "User \"system:serviceaccount:{ns}:default\" cannot list resource \"rollouts\" in API group \"argoproj.io\" in the namespace \"{ns}\""
        )),
        "{log}"
    );
    // No token: no kubeconfig (sluice then falls back to what it finds, not the account).
    let (_, log) = finished(&pods, "optout").await;
    assert!(log.contains("mode \n") || log.contains("mode  "), "{log}");
}

/// The RBAC documents of `deploy/install.yaml` for a test: in namespace `ns` instead of
/// `sluice`, the ClusterRole and its binding named after the test, and `edit` applied to the
/// ClusterRole's rules.
fn install_rbac(ns: &str, edit: impl Fn(&mut Vec<Value>)) -> Vec<Value> {
    let text = include_str!("../../../../deploy/install.yaml");
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
    let mut objects = Vec::new();
    for mut object in documents {
        if object["metadata"]["namespace"] == "sluice" {
            object["metadata"]["namespace"] = json!(ns);
        }
        for subject in object["subjects"].as_array_mut().into_iter().flatten() {
            if subject["namespace"] == "sluice" {
                subject["namespace"] = json!(ns);
            }
        }
        match (
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default(),
        ) {
            ("ClusterRole", "sluice-controller") => {
                object["metadata"]["name"] = json!(format!("sluice-controller-{ns}"));
                let mut rules = object["rules"].as_array().unwrap().clone();
                edit(&mut rules);
                object["rules"] = json!(rules);
            }
            ("ClusterRoleBinding", "sluice-controller") => {
                object["metadata"]["name"] = json!(format!("sluice-controller-{ns}"));
                object["roleRef"]["name"] = json!(format!("sluice-controller-{ns}"));
            }
            ("ServiceAccount" | "Role" | "RoleBinding", name)
                if name.starts_with("sluice-controller") => {}
            _ => continue,
        }
        objects.push(object);
    }
    assert_eq!(objects.len(), 5, "{objects:#?}");
    objects
}

/// `sluice controller` for the Rollouts of instance `ns`, as the install's ServiceAccount;
/// its stderr goes to the returned file.
async fn controller(client: &Client, ns: &str) -> (Running, PathBuf) {
    let token = token(client, ns, "sluice-controller").await;
    let kubeconfig = kubeconfig(&token, ns);
    let log = kubeconfig.with_file_name(format!("controller-{ns}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["controller", "--controllers=rollouts", "--instance-id", ns])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--leader-election-namespace", ns, "--kubeconfig"])
        .arg(&kubeconfig)
        .env("POD_NAMESPACE", ns)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (Running(child), log)
}

fn rollout(ns: &str, name: &str, strategy: Value) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name,
            "labels": {"argo-rollouts.argoproj.io/controller-instance-id": ns}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}},
            "strategy": strategy}}),
    )
}

async fn service(client: &Client, ns: &str, name: &str, app: &str) {
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), ns);
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": name},
                "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}})),
        )
        .await
        .unwrap();
}

/// Waits up to a minute for a Rollout to be Healthy at its latest generation, on `image`.
async fn healthy(rollouts: &Api<Rollout>, name: &str, image: &str, log: &PathBuf) {
    let mut last = Value::Null;
    for _ in 0..600 {
        let rollout = rollouts.get(name).await.unwrap();
        last = serde_json::to_value(&rollout.status).unwrap_or_default();
        let generation = rollout.metadata.generation.map(|g| g.to_string());
        let template = serde_json::to_value(&rollout.spec).unwrap();
        let on = template["template"]["spec"]["containers"][0]["image"] == image;
        if last["phase"] == "Healthy"
            && on
            && last["observedGeneration"].as_str() == generation.as_deref()
            && last["updatedReplicas"] == 2
            && last["availableReplicas"] == 2
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (_, refusals) = SHARED.cluster.api().refusals();
    panic!(
        "{name} never became Healthy on {image}: {last}\ncontroller log:\n{text}\nrefused: {refusals:#?}"
    );
}

fn refused(user: &str) -> Vec<String> {
    let (_, refusals) = SHARED.cluster.api().refusals();
    refusals
        .into_iter()
        .filter(|r| r.user == user)
        .map(|r| r.message)
        .collect()
}

fn new_image(image: &str) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": image}]}}}}))
}

#[tokio::test]
async fn the_install_rbac_suffices_for_blue_green_and_canary() {
    let client = client();
    let ns = namespace(&client, "install").await;
    for object in install_rbac(&ns, |_| {}) {
        create(&client, &object).await;
    }
    let (_controller, log) = controller(&client, &ns).await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    service(&client, &ns, "bg-active", "bg").await;
    service(&client, &ns, "bg-preview", "bg").await;
    service(&client, &ns, "canary-stable", "canary").await;
    service(&client, &ns, "canary-canary", "canary").await;
    let blue_green = json!({"blueGreen": {"activeService": "bg-active",
        "previewService": "bg-preview", "autoPromotionEnabled": true, "scaleDownDelaySeconds": 1}});
    let canary = json!({"canary": {"stableService": "canary-stable", "canaryService": "canary-canary",
        "steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}});
    for (name, strategy) in [("bg", blue_green), ("canary", canary)] {
        rollouts
            .create(&PostParams::default(), &rollout(&ns, name, strategy))
            .await
            .unwrap();
    }
    for name in ["bg", "canary"] {
        healthy(&rollouts, name, "example.com/app:1", &log).await;
        rollouts
            .patch(
                name,
                &PatchParams::default(),
                &new_image("example.com/app:2"),
            )
            .await
            .unwrap();
    }
    for name in ["bg", "canary"] {
        healthy(&rollouts, name, "example.com/app:2", &log).await;
    }
    let user = format!("system:serviceaccount:{ns}:sluice-controller");
    let refusals = refused(&user);
    assert!(
        refusals.is_empty(),
        "the install's rules refused requests: {refusals:#?}"
    );
}

#[tokio::test]
async fn a_missing_rule_is_reported_not_a_silent_stall() {
    let client = client();
    let ns = namespace(&client, "install-missing").await;
    // The rule for the Rollout's status subresource removed.
    let objects = install_rbac(&ns, |rules| {
        rules.retain(|r| r["resources"] != json!(["rollouts/status"]));
    });
    for object in objects {
        create(&client, &object).await;
    }
    let (_controller, log) = controller(&client, &ns).await;
    service(&client, &ns, "bg-active", "bg").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let strategy = json!({"blueGreen": {"activeService": "bg-active"}});
    rollouts
        .create(&PostParams::default(), &rollout(&ns, "bg", strategy))
        .await
        .unwrap();
    let user = format!("system:serviceaccount:{ns}:sluice-controller");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let mut warning = None;
    for _ in 0..300 {
        let list = events.list(&ListParams::default()).await.unwrap();
        warning = list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ReconciliationError"));
        if warning.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let warning =
        warning.unwrap_or_else(|| panic!("no ReconciliationError event; log:\n{log_text}"));
    let message = warning.message.clone().unwrap_or_default();
    let refused_status = format!(
        "User \"{user}\" cannot patch resource \"rollouts/status\" in API group \"argoproj.io\" in the namespace \"{ns}\""
    );
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.involved_object.name.as_deref(),
        Some("bg"),
        "{warning:?}"
    );
    assert!(message.contains(&refused_status), "{message}");
    assert!(
        refused(&user).iter().any(|m| m.contains(&refused_status)),
        "{:?}",
        refused(&user)
    );
    eventually("the refusal in the controller's error log", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains(&refused_status))
    })
    .await;
}
