//! The canary behind the NGINX router on real demo pods and real requests through the
//! embedded ingress: the canary's share measured at 10 % and 50 % over 1,000 requests, a
//! header route, a hand edit of the canary Ingress put back, abort sending everything back to
//! stable at once, a retry promoted to the end — with 200 requests/s running throughout and
//! not one failed — and `dynamicStableScale` pod counts through a canary and its abort; a
//! stable Ingress that does not exist is an InvalidSpec until it does.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service, networking::v1::Ingress};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::Rollout;

use super::{
    client, eventually, from,
    ingress::{Connection, Reply, ingress, ingress_address, path},
    namespace, probe,
    rollouts::sluice,
    service,
};

fn rollout(version: &str, replicas: i32, strategy: serde_json::Value) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "demo",
                    "image": "argoproj/rollouts-demo:blue",
                    "env": [{"name": "VERSION", "value": version}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": probe("/readyz", 1)}]}},
            "strategy": {"canary": strategy}}}),
    )
}

fn release(version: &str) -> Patch<()> {
    Patch::Json(
        serde_json::from_value(json!([{"op": "replace",
            "path": "/spec/template/spec/containers/0/env/0/value", "value": version}]))
        .unwrap(),
    )
}

/// The stable and canary Services and the stable Ingress for `host`.
async fn front(ns: &str, host: &str) {
    let services: Api<Service> = Api::namespaced(client(), ns);
    for name in ["demo-stable", "demo-canary"] {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let ingresses: Api<Ingress> = Api::namespaced(client(), ns);
    let rules = json!([{"host": host, "http": {"paths": [path("/", "Prefix", "demo-stable")]}}]);
    ingresses
        .create(&PostParams::default(), &ingress("demo", json!({}), rules))
        .await
        .unwrap();
}

async fn status(rollouts: &Api<Rollout>) -> serde_json::Value {
    serde_json::to_value(rollouts.get("demo").await.unwrap().status).unwrap_or_default()
}

/// Waits for the phase with the latest spec observed and, if `weight` is given, that weight
/// recorded and verified.
pub(super) async fn settled(
    rollouts: &Api<Rollout>,
    phase: &str,
    weight: Option<i64>,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..1200 {
        let rollout = rollouts.get("demo").await.unwrap();
        let generation = rollout.metadata.generation.map(|g| g.to_string());
        last = serde_json::to_value(&rollout.status).unwrap_or_default();
        let weights = &last["canary"]["weights"];
        let routed = weight
            .is_none_or(|w| weights["canary"]["weight"] == w && weights["verified"] == json!(true));
        if last["phase"] == phase
            && last["observedGeneration"].as_str() == generation.as_deref()
            && routed
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {phase} at weight {weight:?}: {last}");
}

/// The share of `n` requests through the ingress the canary version answers, in percent.
async fn share(host: &str, canary: &str, n: usize, headers: &[(&str, &str)]) -> f64 {
    let mut connection = Connection::open(ingress_address()).await;
    let mut hits = 0;
    for _ in 0..n {
        let (status, version, _) = connection.get(host, "/color", headers).await.unwrap();
        assert_eq!(status, 200);
        hits += usize::from(version == canary);
    }
    hits as f64 * 100.0 / n as f64
}

/// 200 requests/s through the ingress (8 keep-alive clients, one request each per 40 ms)
/// until `stop`.
pub(super) fn load(
    host: &str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Result<Reply, String>>>> {
    (0..8)
        .map(|_| {
            let (host, stop) = (host.to_owned(), stop.clone());
            tokio::spawn(async move {
                let mut connection = Connection::open(ingress_address()).await;
                let mut replies = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(40));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    replies.push(connection.get(&host, "/color", &[]).await);
                }
                replies
            })
        })
        .collect()
}

fn within(share: f64, want: f64) {
    assert!(
        (share - want).abs() <= 3.0,
        "canary share {share:.1} %, want {want} ± 3"
    );
}

#[tokio::test]
async fn a_canary_through_the_nginx_ingress_shifts_real_traffic_and_fails_no_request() {
    let client = client();
    let ns = namespace(&client, "nginx").await;
    let host = format!("nginx-{ns}.example");
    front(&ns, &host).await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let strategy = json!({"canaryService": "demo-canary", "stableService": "demo-stable",
        "trafficRouting": {"nginx": {"stableIngress": "demo"}, "managedRoutes": [{"name": "by-header"}]},
        "abortScaleDownDelaySeconds": 2, "scaleDownDelaySeconds": 2,
        "steps": [{"setWeight": 10}, {"pause": {}},
            {"setHeaderRoute": {"name": "by-header", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"setWeight": 50}, {"pause": {}}]});
    rollouts
        .create(&PostParams::default(), &rollout("v1", 2, strategy))
        .await
        .unwrap();
    settled(&rollouts, "Healthy", Some(0)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&host, stop.clone());

    // 10 %: the stable keeps both pods, the canary gets one; the router's weight confirmed.
    rollouts
        .patch("demo", &PatchParams::default(), &release("v2"))
        .await
        .unwrap();
    let paused = settled(&rollouts, "Paused", Some(10)).await;
    assert_eq!(paused["canary"]["weights"]["stable"]["weight"], 90);
    within(share(&host, "v2", 1000, &[]).await, 10.0);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let counts = |hash: String| {
        let sets = sets.clone();
        async move {
            sets.get(&format!("demo-{hash}"))
                .await
                .ok()
                .and_then(|rs| rs.spec.and_then(|s| s.replicas))
                .unwrap_or(0)
        }
    };
    let (canary_hash, stable_hash) = (
        paused["currentPodHash"].as_str().unwrap().to_owned(),
        paused["stableRS"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        (
            counts(canary_hash.clone()).await,
            counts(stable_hash.clone()).await
        ),
        (1, 2)
    );

    // A hand edit of the canary Ingress is put back.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let edit =
        json!({"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "90"}}});
    ingresses
        .patch(
            "demo-demo-canary",
            &PatchParams::default(),
            &Patch::Merge(edit),
        )
        .await
        .unwrap();
    eventually("the canary Ingress back at 10", || async {
        ingresses.get("demo-demo-canary").await.is_ok_and(|i| {
            i.metadata.annotations.unwrap_or_default()["nginx.ingress.kubernetes.io/canary-weight"]
                == "10"
        })
    })
    .await;

    // Promote: the header route, then 50 %.
    sluice(&["promote", "demo"], &ns);
    settled(&rollouts, "Paused", Some(50)).await;
    assert_eq!(share(&host, "v2", 50, &[("X-Canary", "yes")]).await, 100.0);
    within(share(&host, "v2", 1000, &[]).await, 50.0);

    // Abort: every request back on stable at once, the canary's pods after their delay.
    sluice(&["abort", "demo"], &ns);
    settled(&rollouts, "Degraded", Some(0)).await;
    assert_eq!(share(&host, "v2", 200, &[]).await, 0.0);
    assert_eq!(share(&host, "v2", 20, &[("X-Canary", "yes")]).await, 0.0);
    eventually("the aborted canary scaled down after its delay", || {
        let hash = canary_hash.clone();
        async move { counts(hash).await == 0 }
    })
    .await;

    // Retry, then promote to the end: the stable Service moves to the canary's pods under
    // load, and the split goes back to the stable Ingress.
    sluice(&["retry", "rollout", "demo"], &ns);
    settled(&rollouts, "Paused", Some(10)).await;
    sluice(&["promote", "--full", "demo"], &ns);
    let healthy = settled(&rollouts, "Healthy", Some(0)).await;
    assert_eq!(healthy["stableRS"].as_str(), Some(canary_hash.as_str()));
    assert_eq!(share(&host, "v2", 100, &[]).await, 100.0);

    stop.store(true, Ordering::Relaxed);
    let mut replies = Vec::new();
    for worker in workers {
        replies.extend(worker.await.unwrap());
    }
    let failed: Vec<&Result<Reply, String>> = replies
        .iter()
        .filter(|r| !matches!(r, Ok((200, _, _))))
        .collect();
    assert!(replies.len() >= 1000, "{} requests", replies.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        replies.len(),
        &failed[..failed.len().min(3)]
    );
    let _ = status(&rollouts).await;
}

#[tokio::test]
async fn dynamic_stable_scale_trades_pods_and_a_missing_stable_ingress_is_an_invalid_spec() {
    let client = client();
    let ns = namespace(&client, "nginx-dyn").await;
    let host = format!("dyn-{ns}.example");
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    for name in ["demo-stable", "demo-canary"] {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let strategy = json!({"canaryService": "demo-canary", "stableService": "demo-stable",
        "trafficRouting": {"nginx": {"stableIngress": "demo"}}, "dynamicStableScale": true,
        "steps": [{"setWeight": 50}, {"pause": {}}]});
    rollouts
        .create(&PostParams::default(), &rollout("v1", 2, strategy))
        .await
        .unwrap();
    let invalid = settled(&rollouts, "Degraded", None).await;
    let message = invalid["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("InvalidSpec") && message.contains("ingress \"demo\" not found"),
        "{message}"
    );
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let rules = json!([{"host": host, "http": {"paths": [path("/", "Prefix", "demo-stable")]}}]);
    ingresses
        .create(&PostParams::default(), &ingress("demo", json!({}), rules))
        .await
        .unwrap();
    let healthy = settled(&rollouts, "Healthy", Some(0)).await;
    let v1 = healthy["stableRS"].as_str().unwrap().to_owned();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let counts = || async {
        let mut out = std::collections::BTreeMap::new();
        for rs in sets.list(&Default::default()).await.unwrap().items {
            let hash = rs.metadata.labels.unwrap_or_default()["rollouts-pod-template-hash"].clone();
            out.insert(hash, rs.spec.and_then(|s| s.replicas).unwrap_or(0));
        }
        out
    };

    rollouts
        .patch("demo", &PatchParams::default(), &release("v2"))
        .await
        .unwrap();
    let paused = settled(&rollouts, "Paused", Some(50)).await;
    let v2 = paused["currentPodHash"].as_str().unwrap().to_owned();
    let both = counts().await;
    assert_eq!((both[&v2], both[&v1]), (1, 1), "50 %: one pod each");
    within(share(&host, "v2", 200, &[]).await, 50.0);

    sluice(&["abort", "demo"], &ns);
    settled(&rollouts, "Degraded", Some(0)).await;
    eventually(
        "the stable back at two pods and the canary at none",
        || async {
            let c = counts().await;
            (c[&v2], c[&v1]) == (0, 2)
        },
    )
    .await;
    assert_eq!(share(&host, "v2", 100, &[]).await, 0.0);

    sluice(&["retry", "rollout", "demo"], &ns);
    settled(&rollouts, "Paused", Some(50)).await;
    sluice(&["promote", "demo"], &ns);
    settled(&rollouts, "Healthy", Some(0)).await;
    eventually("the old stable at no pods at once", || async {
        let c = counts().await;
        (c[&v2], c[&v1]) == (2, 0)
    })
    .await;
    assert_eq!(share(&host, "v2", 100, &[]).await, 100.0);
}
