//! The ingress data plane with real demo pods behind it: host and path routing, the default
//! backend, NGINX canary annotations, ingress-nginx's metrics, and a Service selector switch
//! under load without a failed request. Hosts carry the test's namespace, so tests share the
//! one ingress without meeting.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::{
    apps::v1::Deployment, core::v1::Pod, core::v1::Service, networking::v1::Ingress,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{SHARED, client, demo_deployment, from, namespace, probe, ready_pods, service};

pub(super) fn ingress_address() -> SocketAddr {
    SHARED.cluster.ingress_addresses().unwrap().0
}

pub(super) fn metrics_address() -> SocketAddr {
    SHARED.cluster.ingress_addresses().unwrap().1
}

/// One keep-alive client connection to the ingress.
pub(super) struct Connection(hyper::client::conn::http1::SendRequest<Empty<Bytes>>);

/// Status, the demo's `X-Version` and the body.
pub(super) type Reply = (u16, String, String);

impl Connection {
    pub(super) async fn open(address: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self(sender)
    }

    pub(super) async fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut request = hyper::Request::get(path).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.0.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .0
            .send_request(request.body(Empty::new()).unwrap())
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get("x-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, version, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// One request on a new connection.
async fn get(host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    Connection::open(ingress_address())
        .await
        .get(host, path, headers)
        .await
        .unwrap()
}

/// A Deployment and Service per tag, each Service named after its tag, all ready.
async fn backends(client: &Client, ns: &str, tags: &[&str]) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for tag in tags {
        let probes = json!({"readinessProbe": probe("/readyz", 1)});
        deployments
            .create(
                &PostParams::default(),
                &demo_deployment(tag, 1, tag, probes),
            )
            .await
            .unwrap();
        services
            .create(&PostParams::default(), &service(tag, 80))
            .await
            .unwrap();
    }
    for tag in tags {
        ready_pods(&pods, tag, 1).await;
    }
}

pub(super) fn path(path: &str, kind: &str, service: &str) -> serde_json::Value {
    json!({"path": path, "pathType": kind, "backend": {"service": {"name": service, "port": {"number": 80}}}})
}

pub(super) fn ingress(
    name: &str,
    annotations: serde_json::Value,
    rules: serde_json::Value,
) -> Ingress {
    from(
        json!({"metadata": {"name": name, "annotations": annotations},
        "spec": {"ingressClassName": "nginx", "rules": rules}}),
    )
}

/// Waits until `host` `path` answers with `version`.
async fn answers(host: &str, path: &str, headers: &[(&str, &str)], version: &str) {
    super::eventually(
        &format!("{host}{path} {headers:?} answered by {version}"),
        || async {
            let mut connection = Connection::open(ingress_address()).await;
            connection
                .get(host, path, headers)
                .await
                .is_ok_and(|(_, v, _)| v == version)
        },
    )
    .await;
}

#[tokio::test]
async fn hosts_and_paths_route_to_their_services_and_the_rest_to_the_default_backend() {
    let client = client();
    let ns = namespace(&client, "routes").await;
    backends(&client, &ns, &["blue", "green", "yellow"]).await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let shop = format!("shop-{ns}.example");
    let rules = json!([
        {"host": shop, "http": {"paths": [path("/", "Prefix", "blue"), path("/color", "Exact", "green")]}},
        {"host": format!("*.wild-{ns}.example"), "http": {"paths": [path("/", "Prefix", "green")]}},
    ]);
    ingresses
        .create(&PostParams::default(), &ingress("routes", json!({}), rules))
        .await
        .unwrap();
    let fallback: Ingress = from(json!({"metadata": {"name": "fallback"},
        "spec": {"defaultBackend": {"service": {"name": "yellow", "port": {"number": 80}}}}}));
    ingresses
        .create(&PostParams::default(), &fallback)
        .await
        .unwrap();

    answers(&shop, "/", &[], "blue").await;
    assert_eq!(
        get(&shop, "/color", &[]).await,
        (200, "green".into(), "\"green\"".into()),
        "Exact wins"
    );
    assert_eq!(
        get(&shop, "/healthz", &[]).await.1,
        "blue",
        "the Prefix / takes the rest"
    );
    assert_eq!(
        get(&format!("a.wild-{ns}.example:80"), "/color", &[])
            .await
            .1,
        "green"
    );
    assert_eq!(
        get(&format!("nowhere-{ns}.example"), "/color", &[]).await.1,
        "yellow",
        "default backend"
    );

    let routes = ingresses.get("routes").await.unwrap();
    let status = routes
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .unwrap_or_default();
    assert_eq!(
        status.first().and_then(|i| i.ip.as_deref()),
        Some("127.0.0.1")
    );
}

#[tokio::test]
async fn a_canary_ingress_splits_by_weight_header_and_cookie() {
    let client = client();
    let ns = namespace(&client, "canary").await;
    backends(&client, &ns, &["blue", "green"]).await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let host = format!("canary-{ns}.example");
    let rule =
        |service: &str| json!([{"host": host, "http": {"paths": [path("/", "Prefix", service)]}}]);
    ingresses
        .create(
            &PostParams::default(),
            &ingress("main", json!({}), rule("blue")),
        )
        .await
        .unwrap();
    let annotations = json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "20"});
    ingresses
        .create(
            &PostParams::default(),
            &ingress("main-canary", annotations, rule("green")),
        )
        .await
        .unwrap();
    answers(&host, "/color", &[], "green").await;

    let mut connection = Connection::open(ingress_address()).await;
    let mut green = 0;
    for _ in 0..2000 {
        let (status, version, _) = connection.get(&host, "/color", &[]).await.unwrap();
        assert_eq!(status, 200);
        green += usize::from(version == "green");
    }
    assert!(
        (340..=460).contains(&green),
        "{green} of 2,000 requests went to the 20 % canary"
    );

    let annotate = |pairs: serde_json::Value| {
        let ingresses = ingresses.clone();
        async move {
            let patch = json!({"metadata": {"annotations": pairs}});
            ingresses
                .patch("main-canary", &PatchParams::default(), &Patch::Merge(patch))
                .await
                .unwrap();
        }
    };
    let prefix = "nginx.ingress.kubernetes.io";
    annotate(json!({format!("{prefix}/canary-weight"): "0", format!("{prefix}/canary-by-header"): "X-Canary"})).await;
    answers(&host, "/color", &[("X-Canary", "always")], "green").await;
    answers(&host, "/color", &[], "blue").await;
    assert_eq!(
        get(&host, "/color", &[("X-Canary", "never")]).await.1,
        "blue"
    );
    assert_eq!(
        get(&host, "/color", &[("X-Canary", "maybe")]).await.1,
        "blue"
    );

    annotate(json!({format!("{prefix}/canary-by-header-value"): "yes"})).await;
    answers(&host, "/color", &[("X-Canary", "always")], "blue").await;
    assert_eq!(
        get(&host, "/color", &[("X-Canary", "yes")]).await.1,
        "green"
    );

    annotate(json!({format!("{prefix}/canary-by-header-value"): null, format!("{prefix}/canary-by-header-pattern"): "^v2-"})).await;
    answers(&host, "/color", &[("X-Canary", "v2-beta")], "green").await;
    assert_eq!(get(&host, "/color", &[("X-Canary", "v1")]).await.1, "blue");

    annotate(json!({format!("{prefix}/canary-weight"): "100", format!("{prefix}/canary-by-cookie"): "canary"})).await;
    answers(
        &host,
        "/color",
        &[("Cookie", "session=1; canary=never")],
        "blue",
    )
    .await;
    assert_eq!(
        get(&host, "/color", &[("Cookie", "canary=always")]).await.1,
        "green"
    );
    assert_eq!(
        get(&host, "/color", &[]).await.1,
        "green",
        "no cookie: the weight decides"
    );
    assert_eq!(
        get(
            &host,
            "/color",
            &[("X-Canary", "v2-x"), ("Cookie", "canary=never")]
        )
        .await
        .1,
        "green",
        "the header comes before the cookie"
    );
}

/// Reads a counter of the ingress's metrics for the labels given (all series summed).
async fn requests(labels: &[(&str, &str)]) -> u64 {
    let stream = tokio::net::TcpStream::connect(metrics_address())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/metrics")
        .header("host", "metrics")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = sender
        .send_request(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .filter_map(|line| line.strip_prefix("nginx_ingress_controller_requests{"))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_every_request_by_ingress_service_status_and_canary() {
    let client = client();
    let ns = namespace(&client, "metrics").await;
    backends(&client, &ns, &["bad-red", "green"]).await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let host = format!("metrics-{ns}.example");
    let rule =
        |service: &str| json!([{"host": host, "http": {"paths": [path("/", "Prefix", service)]}}]);
    ingresses
        .create(
            &PostParams::default(),
            &ingress("shop", json!({}), rule("bad-red")),
        )
        .await
        .unwrap();
    let annotations = json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"});
    ingresses
        .create(
            &PostParams::default(),
            &ingress("shop-canary", annotations, rule("green")),
        )
        .await
        .unwrap();
    answers(&host, "/color", &[("X-Canary", "always")], "green").await;
    let stable = [
        ("namespace", ns.as_str()),
        ("ingress", "shop"),
        ("service", "bad-red"),
        ("canary", ""),
    ];
    let upstream = format!("{ns}-green-80");
    let canary = [
        ("namespace", ns.as_str()),
        ("ingress", "shop"),
        ("canary", upstream.as_str()),
    ];
    let count = |extra: (&'static str, &'static str)| {
        let labels: Vec<(&str, &str)> = stable.iter().copied().chain([extra]).collect();
        async move { requests(&labels).await }
    };
    let (ok_before, failed_before, canary_before) = (
        count(("status", "200")).await,
        count(("status", "500")).await,
        requests(&canary).await,
    );

    let mut connection = Connection::open(ingress_address()).await;
    let mut seen: BTreeMap<u16, u64> = BTreeMap::new();
    for _ in 0..300 {
        let (status, _, _) = connection.get(&host, "/color", &[]).await.unwrap();
        *seen.entry(status).or_default() += 1;
    }
    for _ in 0..25 {
        assert_eq!(
            connection
                .get(&host, "/color", &[("X-Canary", "always")])
                .await
                .unwrap()
                .0,
            200
        );
    }
    let ok = count(("status", "200")).await - ok_before;
    let failed = count(("status", "500")).await - failed_before;
    assert!(seen[&500] > 0, "bad-red fails some requests: {seen:?}");
    assert_eq!(
        (ok, failed),
        (seen[&200], seen[&500]),
        "counters match the replies"
    );
    assert_eq!(
        requests(&canary).await - canary_before,
        25,
        "canary requests carry the canary upstream"
    );
}

#[tokio::test]
async fn a_selector_switch_under_load_through_the_ingress_fails_no_request() {
    let client = client();
    let ns = namespace(&client, "switch").await;
    backends(&client, &ns, &["blue", "green"]).await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let active: Service = from(json!({"metadata": {"name": "active"},
        "spec": {"selector": {"app": "blue"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
    services
        .create(&PostParams::default(), &active)
        .await
        .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let host = format!("switch-{ns}.example");
    let rules = json!([{"host": host, "http": {"paths": [path("/", "Prefix", "active")]}}]);
    ingresses
        .create(&PostParams::default(), &ingress("front", json!({}), rules))
        .await
        .unwrap();
    answers(&host, "/color", &[], "blue").await;

    // 8 clients on keep-alive connections, one request each per 40 ms: 200 requests/s.
    let started = tokio::time::Instant::now();
    let length = Duration::from_secs(4);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut connection = Connection::open(ingress_address()).await;
                let mut replies = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(40));
                while started.elapsed() < length {
                    tick.tick().await;
                    replies.push(connection.get(&host, "/color", &[]).await);
                }
                replies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let switch = json!({"spec": {"selector": {"app": "green"}}});
    services
        .patch("active", &PatchParams::default(), &Patch::Merge(switch))
        .await
        .unwrap();
    let mut replies = Vec::new();
    for worker in workers {
        replies.extend(worker.await.unwrap());
    }
    let failed: Vec<&Result<Reply, String>> = replies
        .iter()
        .filter(|r| !matches!(r, Ok((200, _, _))))
        .collect();
    assert!(replies.len() >= 600, "{} requests", replies.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        replies.len(),
        &failed[..failed.len().min(3)]
    );
    let last: Vec<&str> = replies
        .iter()
        .rev()
        .take(8)
        .map(|r| r.as_ref().unwrap().1.as_str())
        .collect();
    assert!(
        last.iter().all(|v| *v == "green"),
        "after the switch: {last:?}"
    );
    assert!(replies.iter().any(|r| r.as_ref().unwrap().1 == "blue"));
}
