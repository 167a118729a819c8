//! The canary flow on real demo pods: the user's drill (two replicas, 50 %, a pause, 100 %)
//! driven through the real kubectl with this binary as its `argo rollouts` plugin; abort,
//! retry, promote --full and undo; a rolling update without steps; a step sluice does not run
//! yet holding the Rollout; a spec only a router could run, refused as Argo refuses it.

use std::{net::SocketAddr, path::PathBuf};

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::Rollout;

use super::{
    SHARED, client, eventually, from, http, namespace, probe, rollouts::sluice, served_at, service,
};

fn canary(version: &str, strategy: serde_json::Value) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 2, "revisionHistoryLimit": 3, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "demo",
                    "image": "argoproj/rollouts-demo:blue",
                    "env": [{"name": "VERSION", "value": version}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": probe("/readyz", 1)}]}},
            "strategy": {"canary": strategy}}}),
    )
}

fn drill() -> serde_json::Value {
    json!({"canaryService": "demo-canary", "stableService": "demo-stable",
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]})
}

/// The release marker: a new VERSION in the pod env is a new template.
fn release(version: &str) -> Patch<()> {
    Patch::Json(
        serde_json::from_value(json!([{"op": "replace",
            "path": "/spec/template/spec/containers/0/env/0/value", "value": version}]))
        .unwrap(),
    )
}

fn status_of(rollout: &Rollout) -> serde_json::Value {
    serde_json::to_value(rollout.status.clone()).unwrap_or_default()
}

/// Waits (up to a minute) for the Rollout's phase, with its latest spec observed; its status.
async fn phase(rollouts: &Api<Rollout>, want: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..1200 {
        let rollout = rollouts.get("demo").await.unwrap();
        let generation = rollout.metadata.generation.map(|g| g.to_string());
        last = status_of(&rollout);
        if last["phase"] == want && last["observedGeneration"].as_str() == generation.as_deref() {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sets: Api<ReplicaSet> =
        Api::namespaced(client(), rollouts.namespace().unwrap_or("default"));
    let names: Vec<String> = sets
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|rs| rs.name_any()).collect())
        .unwrap_or_default();
    panic!("timed out waiting for phase {want}: {last}; ReplicaSets {names:?}");
}

/// Replicas of each ReplicaSet by hash.
async fn replicas(sets: &Api<ReplicaSet>, hash: &str) -> i32 {
    let name = format!("demo-{hash}");
    sets.get(&name)
        .await
        .ok()
        .and_then(|rs| rs.spec.and_then(|s| s.replicas))
        .unwrap_or(0)
}

/// The version a Service answers with.
async fn version(services: &Api<Service>, name: &str) -> Option<String> {
    let address: SocketAddr = served_at(&services.get(name).await.ok()?, 80);
    match http(address, "GET", "/version").await {
        Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body).ok()?["version"]
            .as_str()
            .map(str::to_owned),
        _ => None,
    }
}

/// A directory holding this binary as `kubectl-argo-rollouts`, for kubectl to find.
fn plugin_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-argo-rollouts");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), &link).unwrap();
    dir
}

/// `kubectl argo rollouts ARGS` (the plugin) with the kubeconfig flags before the verb, as a
/// CI workflow calls it; stdout, or a panic naming stderr.
fn plugin(kubectl: &PathBuf, args: &[&str], ns: &str) -> String {
    let path = std::env::join_paths(
        std::iter::once(plugin_dir())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = std::process::Command::new(kubectl)
        .args(["argo", "rollouts", "--kubeconfig"])
        .arg(SHARED.cluster.kubeconfig())
        .args(["-n", ns])
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl argo rollouts {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn services(ns: &str) -> Api<Service> {
    let services: Api<Service> = Api::namespaced(client(), ns);
    for name in ["demo-stable", "demo-canary"] {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    services
}

#[tokio::test]
async fn the_canary_drill_through_kubectl_argo_rollouts() {
    let client = client();
    let ns = namespace(&client, "canary-drill").await;
    let services = services(&ns).await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    rollouts
        .create(&PostParams::default(), &canary("1", drill()))
        .await
        .unwrap();
    // The first deploy: Healthy at once, no steps.
    let first = phase(&rollouts, "Healthy").await;
    let v1 = first["stableRS"].as_str().unwrap().to_owned();
    assert_eq!(first["currentStepIndex"], 3);
    assert_eq!(replicas(&sets, &v1).await, 2);

    rollouts
        .patch("demo", &PatchParams::default(), &release("2"))
        .await
        .unwrap();
    let paused = phase(&rollouts, "Paused").await;
    assert_eq!(paused["message"], "CanaryPauseStep");
    assert_eq!(paused["currentStepIndex"], 1);
    let v2 = paused["currentPodHash"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(
        (replicas(&sets, &v2).await, replicas(&sets, &v1).await),
        (1, 1)
    );
    assert_eq!(paused["stableRS"], v1.as_str());
    eventually("both versions answer, each through its Service", || async {
        version(&services, "demo-stable").await.as_deref() == Some("1")
            && version(&services, "demo-canary").await.as_deref() == Some("2")
    })
    .await;

    let Some(kubectl) = sluice_testkit::process::kubectl() else {
        eprintln!("SKIPPING the kubectl half of the canary drill: no kubectl on PATH");
        return;
    };
    let tree = plugin(&kubectl, &["get", "rollout", "demo"], &ns);
    for line in [
        "Status:          ॥ Paused",
        "Strategy:        Canary",
        "  Step:          1/3",
        "  SetWeight:     50",
        "  ActualWeight:  50",
    ] {
        assert!(tree.contains(line), "{line:?} in\n{tree}");
    }
    assert!(
        tree.lines()
            .any(|l| l.contains(&format!("demo-{v2}")) && l.ends_with("canary")),
        "{tree}"
    );
    assert_eq!(
        plugin(&kubectl, &["promote", "demo"], &ns).trim(),
        "rollout 'demo' promoted"
    );
    let done = phase(&rollouts, "Healthy").await;
    assert_eq!(done["currentStepIndex"], 3);
    assert_eq!(done["stableRS"], v2.as_str());
    assert_eq!(done["availableReplicas"], 2);
    eventually("the old version scaled away", || async {
        replicas(&sets, &v1).await == 0 && replicas(&sets, &v2).await == 2
    })
    .await;
    eventually("production answers the new version", || async {
        version(&services, "demo-stable").await.as_deref() == Some("2")
    })
    .await;
    let status = plugin(&kubectl, &["status", "demo", "--watch=false"], &ns);
    assert_eq!(status.trim(), "Healthy");
}

#[tokio::test]
async fn abort_retry_promote_full_and_undo() {
    let client = client();
    let ns = namespace(&client, "canary-ops").await;
    let services = services(&ns).await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    rollouts
        .create(&PostParams::default(), &canary("1", drill()))
        .await
        .unwrap();
    let v1 = phase(&rollouts, "Healthy").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();
    rollouts
        .patch("demo", &PatchParams::default(), &release("2"))
        .await
        .unwrap();
    let v2 = phase(&rollouts, "Paused").await["currentPodHash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sluice(&["abort", "demo"], &ns).trim(),
        "rollout 'demo' aborted"
    );
    let aborted = phase(&rollouts, "Degraded").await;
    assert_eq!(
        aborted["message"],
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    assert_eq!(aborted["currentStepIndex"], 0);
    eventually("everything back on stable", || async {
        replicas(&sets, &v2).await == 0 && replicas(&sets, &v1).await == 2
    })
    .await;
    eventually("the canary Service back on stable", || async {
        version(&services, "demo-canary").await.as_deref() == Some("1")
    })
    .await;

    sluice(&["retry", "rollout", "demo"], &ns);
    let again = phase(&rollouts, "Paused").await;
    assert_eq!(again["currentStepIndex"], 1, "from the first step again");
    assert_eq!(
        (replicas(&sets, &v2).await, replicas(&sets, &v1).await),
        (1, 1)
    );

    sluice(&["promote", "demo", "--full"], &ns);
    let full = phase(&rollouts, "Healthy").await;
    assert_eq!(full["stableRS"], v2.as_str());
    assert!(full["promoteFull"].is_null());
    eventually("the old version scaled away", || async {
        replicas(&sets, &v1).await == 0
    })
    .await;

    // Undo: back to revision 1's template, which is no longer stable: a canary again.
    assert_eq!(sluice(&["undo", "demo"], &ns).trim(), "rollout 'demo' undo");
    let back = phase(&rollouts, "Paused").await;
    assert_eq!(
        back["currentPodHash"],
        v1.as_str(),
        "revision 1's ReplicaSet reused"
    );
    // Undo again, to the stable template: the steps are skipped.
    sluice(&["undo", "demo", "--to-revision", "2"], &ns);
    let skipped = phase(&rollouts, "Healthy").await;
    assert_eq!(skipped["stableRS"], v2.as_str());
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    eventually("a SkipSteps event", || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("SkipSteps"))
    })
    .await;
}

#[tokio::test]
async fn without_steps_a_rolling_update_and_held_or_invalid_steps() {
    let client = client();
    let ns = namespace(&client, "canary-steps").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    rollouts
        .create(
            &PostParams::default(),
            &canary("1", json!({"maxSurge": 1, "maxUnavailable": 0})),
        )
        .await
        .unwrap();
    let v1 = phase(&rollouts, "Healthy").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();
    rollouts
        .patch("demo", &PatchParams::default(), &release("2"))
        .await
        .unwrap();
    let rolled = phase(&rollouts, "Healthy").await;
    let v2 = rolled["stableRS"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert!(rolled["currentStepIndex"].is_null(), "no steps, no index");
    eventually("all on the new version", || async {
        replicas(&sets, &v1).await == 0 && replicas(&sets, &v2).await == 2
    })
    .await;

    // An experiment step: held before it, never skipped.
    let held = json!([{"op": "replace", "path": "/spec/strategy/canary",
        "value": {"steps": [{"setWeight": 50}, {"experiment": {"templates": [{"name": "a", "specRef": "canary"}]}}]}},
        {"op": "replace", "path": "/spec/template/spec/containers/0/env/0/value", "value": "3"}]);
    rollouts
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(held).unwrap()),
        )
        .await
        .unwrap();
    eventually("held before the experiment step", || async {
        let status = status_of(&rollouts.get("demo").await.unwrap());
        status["phase"] == "Progressing"
            && status["currentStepIndex"] == 1
            && status["message"]
                .as_str()
                .is_some_and(|m| m.contains("experiment step (2/2)"))
    })
    .await;

    // setCanaryScale without trafficRouting: InvalidSpec with Argo's message, nothing moves.
    let invalid = json!([{"op": "replace", "path": "/spec/strategy/canary",
        "value": {"steps": [{"setCanaryScale": {"replicas": 1}}]}}]);
    rollouts
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(invalid).unwrap()),
        )
        .await
        .unwrap();
    let bad = phase(&rollouts, "Degraded").await;
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("SetCanaryScale requires TrafficRouting to be set"),
        "{bad}"
    );
    let names: Vec<String> = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| rs.name_any())
        .collect();
    assert!(names.len() <= 3, "{names:?}");
}
