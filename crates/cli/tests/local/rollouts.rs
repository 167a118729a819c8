//! The blue-green flow on real demo pods: the first deploy, an image change that runs on the
//! preview while production stays on the stable version, a pause until promotion, the switch
//! of the active Service, and the old ReplicaSet scaled down after its delay, kept for rollback.

use std::net::SocketAddr;

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::Rollout;

use super::{SHARED, client, eventually, from, http, namespace, probe, served_at, service};

/// `sluice VERB NAME -n NS --kubeconfig …` against the test cluster: stdout.
pub fn sluice(args: &[&str], ns: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["-n", ns, "--kubeconfig"])
        .arg(SHARED.cluster.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_image(tag: &str) -> json_patch::Patch {
    serde_json::from_value(json!([{"op": "replace",
        "path": "/spec/template/spec/containers/0/image", "value": format!("argoproj/rollouts-demo:{tag}")}]))
    .unwrap()
}

fn rollout(tag: &str) -> Rollout {
    rollout_with(
        tag,
        json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 2}),
    )
}

fn rollout_with(tag: &str, extra: serde_json::Value) -> Rollout {
    let mut blue_green = json!({"activeService": "demo-active", "previewService": "demo-preview"});
    blue_green
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 2, "revisionHistoryLimit": 3, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "demo",
                    "image": format!("argoproj/rollouts-demo:{tag}"),
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": probe("/readyz", 1)}]}},
            "strategy": {"blueGreen": blue_green}}}),
    )
}

fn status_of(rollout: &Rollout) -> serde_json::Value {
    serde_json::to_value(rollout.status.clone()).unwrap_or_default()
}

/// The colour a Service answers with.
async fn colour(services: &Api<Service>, name: &str) -> Option<String> {
    let address: SocketAddr = served_at(&services.get(name).await.ok()?, 80);
    match http(address, "GET", "/color").await {
        Ok((200, body)) => Some(body.trim_matches('"').to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn blue_green_runs_the_new_version_on_the_preview_until_promoted() {
    let client = client();
    let ns = namespace(&client, "bluegreen").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    for name in ["demo-active", "demo-preview"] {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    rollouts
        .create(&PostParams::default(), &rollout("blue"))
        .await
        .unwrap();
    let phase = |phase: &'static str| {
        let rollouts = rollouts.clone();
        async move {
            eventually(&format!("phase {phase}"), || async {
                status_of(&rollouts.get("demo").await.unwrap())["phase"] == phase
            })
            .await;
            status_of(&rollouts.get("demo").await.unwrap())
        }
    };
    let first = phase("Healthy").await;
    let blue = first["stableRS"].as_str().unwrap().to_owned();
    let condition = |status: &serde_json::Value, type_: &str| {
        let list = status["conditions"].as_array().cloned().unwrap_or_default();
        list.into_iter()
            .find(|c| c["type"] == type_)
            .map(|c| c["status"].clone())
    };
    assert_eq!(condition(&first, "Healthy"), Some(json!("True")));
    assert_eq!(condition(&first, "Completed"), Some(json!("True")));
    assert_eq!(first["blueGreen"]["activeSelector"], blue.as_str());
    eventually("production answers blue", || async {
        colour(&services, "demo-active").await.as_deref() == Some("blue")
    })
    .await;

    // A new image: a second ReplicaSet on the preview; production stays blue.
    let change: json_patch::Patch = serde_json::from_value(json!([{"op": "replace",
        "path": "/spec/template/spec/containers/0/image", "value": "argoproj/rollouts-demo:yellow"}]))
    .unwrap();
    rollouts
        .patch("demo", &PatchParams::default(), &Patch::<()>::Json(change))
        .await
        .unwrap();
    let paused = phase("Paused").await;
    let yellow = paused["currentPodHash"].as_str().unwrap().to_owned();
    assert_ne!(yellow, blue);
    assert_eq!(paused["message"], "BlueGreenPause");
    assert_eq!(condition(&paused, "Paused"), Some(json!("True")));
    assert_eq!(condition(&paused, "Completed"), Some(json!("False")));
    assert_eq!(paused["blueGreen"]["activeSelector"], blue.as_str());
    assert_eq!(paused["blueGreen"]["previewSelector"], yellow.as_str());
    eventually("the preview answers yellow", || async {
        colour(&services, "demo-preview").await.as_deref() == Some("yellow")
    })
    .await;
    assert_eq!(
        colour(&services, "demo-active").await.as_deref(),
        Some("blue")
    );
    let revisions: Vec<String> = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| {
            rs.annotations()
                .get("rollout.argoproj.io/revision")
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(revisions.len(), 2, "{revisions:?}");

    // `promote`: clear the pause condition (what `sluice promote` will send).
    let promote = json!({"status": {"pauseConditions": null}});
    rollouts
        .patch_status("demo", &PatchParams::default(), &Patch::Merge(promote))
        .await
        .unwrap();
    eventually("production answers yellow", || async {
        colour(&services, "demo-active").await.as_deref() == Some("yellow")
    })
    .await;
    let done = phase("Healthy").await;
    assert_eq!(done["stableRS"], yellow.as_str());
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
    let messages: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("Rollout"))
        .filter_map(|e| e.message)
        .collect();
    for expected in [
        format!("Switched selector for service 'demo-preview' from '{blue}' to '{yellow}'"),
        format!("Switched selector for service 'demo-active' from '{blue}' to '{yellow}'"),
        format!("Rollout completed update to revision 2 ({yellow}): Completed blue-green update"),
        "Rollout is paused (BlueGreenPause)".to_owned(),
    ] {
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:#?}"
        );
    }
    // The old ReplicaSet goes to zero after its delay and stays for rollback.
    let old = format!("demo-{blue}");
    eventually("the old ReplicaSet scaled to zero", || async {
        sets.get(&old).await.unwrap().spec.and_then(|s| s.replicas) == Some(0)
    })
    .await;

    // A bad version aborted: production and preview both back on the stable one; then retried.
    rollouts
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::<()>::Json(set_image("green")),
        )
        .await
        .unwrap();
    phase("Paused").await;
    eventually("the preview answers green", || async {
        colour(&services, "demo-preview").await.as_deref() == Some("green")
    })
    .await;
    assert_eq!(sluice(&["abort", "demo"], &ns), "rollout 'demo' aborted\n");
    let aborted = phase("Degraded").await;
    assert!(
        aborted["message"]
            .as_str()
            .unwrap()
            .starts_with("RolloutAborted: Rollout aborted update to revision 3"),
        "{aborted}"
    );
    assert_eq!(
        aborted["blueGreen"]["previewSelector"],
        yellow.as_str(),
        "the preview is back on stable"
    );
    eventually("the preview answers yellow again", || async {
        colour(&services, "demo-preview").await.as_deref() == Some("yellow")
    })
    .await;
    assert_eq!(
        colour(&services, "demo-active").await.as_deref(),
        Some("yellow")
    );
    assert_eq!(
        sluice(&["retry", "rollout", "demo"], &ns),
        "rollout 'demo' retried\n"
    );
    phase("Paused").await;
    eventually("the preview answers green after the retry", || async {
        colour(&services, "demo-preview").await.as_deref() == Some("green")
    })
    .await;
}

/// Requests at a steady pace until `stop`: through the ingress on keep-alive connections and
/// through the active Service with a new connection each (8 clients, 25 requests/s each).
fn load(
    host: String,
    service: SocketAddr,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Vec<Result<String, String>>>> {
    (0..8)
        .map(|i| {
            let (host, mut stop) = (host.clone(), stop.clone());
            tokio::spawn(async move {
                let mut replies = Vec::new();
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(40));
                let mut connection =
                    super::ingress::Connection::open(super::ingress::ingress_address()).await;
                while !*stop.borrow_and_update() {
                    tick.tick().await;
                    let reply = if i % 2 == 0 {
                        connection.get(&host, "/color", &[]).await.and_then(
                            |(status, version, _)| {
                                if status == 200 {
                                    Ok(version)
                                } else {
                                    Err(format!("ingress: status {status}"))
                                }
                            },
                        )
                    } else {
                        match http(service, "GET", "/color").await {
                            Ok((200, body)) => Ok(body.trim_matches('"').to_owned()),
                            other => Err(format!("service: {other:?}")),
                        }
                    };
                    replies.push(reply);
                }
                replies
            })
        })
        .collect()
}

/// Under continuous requests through the ingress and through the active Service, from before
/// `promote` until the old ReplicaSet's pods are gone, no request fails; the same for abort.
#[tokio::test]
async fn promote_and_abort_under_load_fail_no_request() {
    let client = client();
    let ns = namespace(&client, "cutover").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
    for name in ["demo-active", "demo-preview"] {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let host = format!("cutover-{ns}.example");
    let rules = json!([{"host": host, "http": {"paths": [super::ingress::path("/", "Prefix", "demo-active")]}}]);
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(client.clone(), &ns);
    ingresses
        .create(
            &PostParams::default(),
            &super::ingress::ingress("front", json!({}), rules),
        )
        .await
        .unwrap();
    let spec = json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 2, "abortScaleDownDelaySeconds": 2});
    rollouts
        .create(&PostParams::default(), &rollout_with("blue", spec))
        .await
        .unwrap();
    let phase = |phase: &'static str| {
        let rollouts = rollouts.clone();
        async move {
            eventually(&format!("phase {phase}"), || async {
                status_of(&rollouts.get("demo").await.unwrap())["phase"] == phase
            })
            .await;
        }
    };
    phase("Healthy").await;
    let active = served_at(&services.get("demo-active").await.unwrap(), 80);
    eventually("production answers", || async {
        colour(&services, "demo-active").await.as_deref() == Some("blue")
    })
    .await;
    let pod_count = |hash: String| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("rollouts-pod-template-hash={hash}")))
                .await
                .unwrap()
                .items
                .len()
        }
    };

    for (step, next) in [("promote", "yellow"), ("abort", "green")] {
        let before = status_of(&rollouts.get("demo").await.unwrap())["stableRS"]
            .as_str()
            .unwrap()
            .to_owned();
        rollouts
            .patch(
                "demo",
                &PatchParams::default(),
                &Patch::<()>::Json(set_image(next)),
            )
            .await
            .unwrap();
        phase("Paused").await;
        let new = status_of(&rollouts.get("demo").await.unwrap())["currentPodHash"]
            .as_str()
            .unwrap()
            .to_owned();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = load(host.clone(), active, stopped);
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        sluice(&[step, "demo"], &ns);
        // Until the ReplicaSet that leaves production has no pod left.
        let leaving = if step == "promote" {
            before.clone()
        } else {
            new.clone()
        };
        eventually(
            &format!("{step}: the pods of {leaving} are gone"),
            || async { pod_count(leaving.clone()).await == 0 },
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        stop.send(true).unwrap();
        let mut replies = Vec::new();
        for worker in workers {
            replies.extend(worker.await.unwrap());
        }
        let failed: Vec<&String> = replies.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            replies.len() > 100,
            "{step}: only {} requests",
            replies.len()
        );
        assert!(
            failed.is_empty(),
            "{step}: {} of {} requests failed: {:?}",
            failed.len(),
            replies.len(),
            &failed[..failed.len().min(5)]
        );
        let last = replies.last().unwrap().as_ref().unwrap();
        let expected = if step == "promote" { next } else { "yellow" };
        assert_eq!(last, expected, "{step}: production after the cutover");
    }
}
