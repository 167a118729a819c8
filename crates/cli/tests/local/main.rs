//! Real local pods on the embedded cluster: demo pods are `sluice demo-app` processes on their
//! pod addresses, reached through the service proxy and the ingress; probes run against them;
//! the exec runtime runs Jobs on this host. One cluster (in this process, with the kubelet's
//! process runtime and the ingress) for every test here, a namespace per test. AnalysisRuns
//! run here too: web metrics against servers in this process, Job metrics on the smoke image.

mod analysis;
mod analysis_gates;
mod gitops;
mod gitops_apps;
mod gitops_diff;
mod gitops_helm;
mod gitops_loop;
mod gitops_replace;
mod gitops_seed;
mod gitops_ssh;
mod gitops_waves;
mod ingress;
mod list;
mod prometheus;
mod prometheus_canary;
mod rbac;
mod rollout_canary;
mod rollout_migration;
mod rollout_nginx;
mod rollout_operations;
mod rollout_options;
mod rollout_restarts;
mod rollout_rival;
mod rollouts;
mod streams;
mod up;
use up::alive;

use sluice_testkit::{Shared, eventually, from, namespace};

use std::{net::SocketAddr, sync::LazyLock};

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{Event, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, LogParams, PostParams},
};
use serde_json::json;
use sluice_cluster::{
    ClusterConfig, IngressConfig,
    authn::User,
    kubelet::Rules,
    store::{Durability, StoreConfig},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RULES: &str = r#"
rules:
- image: "example.com/exits:*"
  command: ["sh", "-c", "echo leaving; exit 4"]
- image: "example.com/stubborn:*"
  command: ["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"]
- image: "example.com/unpullable:*"
  pullError: true
- image: "example.com/listener:*"
  command: ["sh", "-c", "echo on {pod_ip}:{port}; sleep 30"]
default:
  readyAfter: 200ms
"#;

fn config(dir: &std::path::Path) -> ClusterConfig {
    let mut rules = Rules::parse(RULES).unwrap();
    rules.demo = Some(vec![env!("CARGO_BIN_EXE_sluice").into(), "demo-app".into()]);
    rules.smoke = Some(vec![env!("CARGO_BIN_EXE_sluice").into(), "smoke".into()]);
    rules.allow_host_exec = true;
    ClusterConfig {
        data_dir: dir.to_owned(),
        ephemeral: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        durability: Durability::Normal,
        store: StoreConfig::default(),
        runtime: Some(rules),
        ingress: Some(IngressConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
        }),
    }
}

static SHARED: LazyLock<Shared> = LazyLock::new(|| {
    Shared::start(config, |cluster, runtime| {
        // As in `sluice up`: the controllers hold exactly deploy/install.yaml's rules.
        cluster
            .grant_roles_of(
                include_str!("../../../../deploy/install.yaml"),
                "deploy/install.yaml",
                &[
                    ("sluice-controller", "sluice:rollouts"),
                    ("sluice-gitops-controller", "sluice:gitops"),
                ],
            )
            .unwrap();
        let as_user = |user: &str| cluster.api().client_as(User::component(user, &[]));
        let rollouts = as_user("sluice:rollouts");
        runtime.spawn(sluice_rollouts::controller::run(
            rollouts.clone(),
            Default::default(),
            Default::default(),
        ));
        let client = as_user("sluice:gitops");
        let cache = std::env::temp_dir().join(format!("sluice-test-repos-{}", std::process::id()));
        runtime.spawn(async move {
            sluice_gitops::controller::ensure_home(&client, "argocd")
                .await
                .unwrap();
            sluice_gitops::controller::run(
                client,
                sluice_gitops::controller::Settings {
                    // Polls every few seconds here, so a push over HTTP is seen in a test.
                    poll: std::time::Duration::from_secs(3),
                    jitter: std::time::Duration::from_secs(1),
                    // Waves a few hundred milliseconds apart, so wave tests stay short.
                    wave_delay: std::time::Duration::from_millis(300),
                    ..sluice_gitops::controller::Settings::new("argocd", cache)
                },
            )
            .await;
        });
        runtime.spawn(sluice_analysis::controller::run(
            rollouts,
            Default::default(),
            Default::default(),
        ));
    })
});

fn client() -> Client {
    SHARED.cluster.client()
}

/// What the API server refused the in-process controllers and components so far: a test that
/// times out names them (a missing rule shows as a stall).
fn refused_in_process() -> Vec<String> {
    let (_, refusals) = SHARED.cluster.api().refusals();
    refusals
        .into_iter()
        .filter(|r| {
            r.user.starts_with("sluice:")
                || r.user.starts_with("system:node:")
                || r.user.starts_with("system:kube-")
        })
        .map(|r| r.message)
        .collect()
}

/// One HTTP/1.1 request on a new connection: status and body.
async fn http(address: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn probe(path: &str, failure_threshold: i32) -> serde_json::Value {
    json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": 1, "failureThreshold": failure_threshold})
}

fn demo_deployment(name: &str, replicas: i32, tag: &str, probes: serde_json::Value) -> Deployment {
    let mut container = json!({"name": "demo", "image": format!("argoproj/rollouts-demo:{tag}"),
        "ports": [{"name": "http", "containerPort": 8080}]});
    if let (Some(c), Some(p)) = (container.as_object_mut(), probes.as_object()) {
        c.extend(p.clone());
    }
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]}}}
    }))
}

fn service(name: &str, port: i32) -> Service {
    from(json!({"metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": "http"}]}}))
}

/// The address a Service port is served on (its local port when remapped).
fn served_at(service: &Service, port: u16) -> SocketAddr {
    let ip = service.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    let local: std::collections::BTreeMap<String, u16> = service
        .annotations()
        .get("sluice.dev/local-ports")
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default();
    let port = local.get(&port.to_string()).copied().unwrap_or(port);
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// The first container's status.
fn container(pod: &Pod) -> &k8s_openapi::api::core::v1::ContainerStatus {
    &pod.status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
}

/// How the first container's previous run ended.
fn last_terminated(pod: &Pod) -> &k8s_openapi::api::core::v1::ContainerStateTerminated {
    let last = container(pod).last_state.as_ref().unwrap();
    last.terminated.as_ref().unwrap()
}

/// The pid of the first container's process (its ID is `process://PID`).
fn pid(pod: &Pod) -> u32 {
    let id = container(pod).container_id.as_deref().unwrap();
    id.strip_prefix("process://").unwrap().parse().unwrap()
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn ready_pods(pods: &Api<Pod>, app: &str, count: usize) -> Vec<Pod> {
    let selector = ListParams::default().labels(&format!("app={app}"));
    let ready_now = || async {
        let list = pods.list(&selector).await.unwrap().items;
        list.into_iter().filter(ready).collect::<Vec<_>>()
    };
    eventually(&format!("{count} ready pods of {app}"), || async {
        ready_now().await.len() == count
    })
    .await;
    ready_now().await
}

fn pod_address(pod: &Pod) -> SocketAddr {
    let ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
    SocketAddr::new(ip.parse().unwrap(), 8080)
}

/// Ready addresses in the Service's EndpointSlices.
async fn ready_endpoints(slices: &Api<EndpointSlice>, service: &str) -> Vec<String> {
    let selector = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut ready = Vec::new();
    for slice in slices.list(&selector).await.unwrap().items {
        for endpoint in slice.endpoints {
            if endpoint.conditions.and_then(|c| c.ready).unwrap_or(true) {
                ready.extend(endpoint.addresses);
            }
        }
    }
    ready.sort();
    ready
}

#[tokio::test]
async fn demo_pods_answer_through_their_service_with_their_colour() {
    let client = client();
    let ns = namespace(&client, "svc").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    services
        .create(&PostParams::default(), &service("web", 80))
        .await
        .unwrap();
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment(
                "web",
                2,
                "blue",
                json!({"readinessProbe": probe("/readyz", 1)}),
            ),
        )
        .await
        .unwrap();
    let running = ready_pods(&pods, "web", 2).await;
    // Each pod is a real process on its own address.
    for pod in &running {
        let (status, body) = http(pod_address(pod), "GET", "/color").await.unwrap();
        assert_eq!((status, body.as_str()), (200, "\"blue\""));
    }
    let web = services.get("web").await.unwrap();
    let address = served_at(&web, 80);
    let mut answers = 0;
    eventually("the Service answers through the proxy", || async {
        matches!(http(address, "GET", "/color").await, Ok((200, body)) if body == "\"blue\"")
    })
    .await;
    for _ in 0..20 {
        let (status, body) = http(address, "GET", "/color").await.unwrap();
        assert_eq!((status, body.as_str()), (200, "\"blue\""));
        answers += 1;
    }
    assert_eq!(answers, 20);
    // Round robin: both pods logged requests.
    for pod in &running {
        let log = pods
            .logs(&pod.name_any(), &LogParams::default())
            .await
            .unwrap();
        assert!(
            log.contains("200 GET /color blue"),
            "{}: {log}",
            pod.name_any()
        );
    }
    // The process has its own address, its port and the Service variables in its env.
    let pod = &running[0];
    let pid = pid(pod);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let pod_ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
    let cluster_ip = web.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    for expected in [
        format!("POD_IP={pod_ip}"),
        "PORT=8080".to_owned(),
        format!("WEB_SERVICE_HOST={cluster_ip}"),
    ] {
        assert!(environ.contains(&expected), "{expected} not in {environ:?}");
    }
}

#[tokio::test]
async fn readiness_failures_remove_a_pod_from_endpoints_until_it_recovers() {
    let client = client();
    let ns = namespace(&client, "ready").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment(
                "app",
                2,
                "green",
                json!({"readinessProbe": probe("/readyz", 1)}),
            ),
        )
        .await
        .unwrap();
    services
        .create(&PostParams::default(), &service("app", 8080))
        .await
        .unwrap();
    let running = ready_pods(&pods, "app", 2).await;
    let ips: Vec<String> = running
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
        .collect();
    eventually("both pods in the endpoints", || async {
        ready_endpoints(&slices, "app").await.len() == 2
    })
    .await;
    let (status, _) = http(pod_address(&running[0]), "POST", "/readyz/disable")
        .await
        .unwrap();
    assert_eq!(status, 202);
    eventually("the failing pod leaves the endpoints", || async {
        ready_endpoints(&slices, "app").await == vec![ips[1].clone()]
    })
    .await;
    // Through the Service, only the ready pod answers now.
    let address = served_at(&services.get("app").await.unwrap(), 8080);
    for _ in 0..10 {
        let (status, _) = http(address, "GET", "/color").await.unwrap();
        assert_eq!(status, 200);
    }
    let log = pods
        .logs(&running[0].name_any(), &LogParams::default())
        .await
        .unwrap();
    assert!(!log.contains("GET /color"), "{log}");
    http(pod_address(&running[0]), "POST", "/readyz/enable")
        .await
        .unwrap();
    eventually("the pod returns to the endpoints", || async {
        ready_endpoints(&slices, "app").await.len() == 2
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let unhealthy = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        unhealthy
            .iter()
            .any(|e| e.reason.as_deref() == Some("Unhealthy")
                && e.message.as_deref().is_some_and(|m| m
                    .contains("Readiness probe failed: HTTP probe failed with statuscode: 503")))
    );
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    let client = client();
    let ns = namespace(&client, "live").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let probes = json!({"livenessProbe": probe("/readyz", 2)});
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("live", 1, "yellow", probes),
        )
        .await
        .unwrap();
    let pod = ready_pods(&pods, "live", 1).await.remove(0);
    // Without a readiness probe the pod is Ready once started, maybe before it listens.
    eventually("the liveness endpoint disabled", || async {
        http(pod_address(&pod), "POST", "/readyz/disable")
            .await
            .is_ok()
    })
    .await;
    let name = pod.name_any();
    eventually("the container restarted and is ready again", || async {
        let pod = pods.get(&name).await.unwrap();
        let status = container(&pod);
        status.restart_count == 1 && status.ready
    })
    .await;
    let pod = pods.get(&name).await.unwrap();
    let status = container(&pod);
    assert_ne!(last_terminated(&pod).container_id, status.container_id);
    // The new process serves again; `previous` reads the first one's log.
    eventually("the new process serves", || async {
        matches!(
            http(pod_address(&pod), "GET", "/readyz").await,
            Ok((200, _))
        )
    })
    .await;
    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    let log = pods.logs(&name, &previous).await.unwrap();
    assert!(log.contains("POST /readyz/disable"), "{log}");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let events = events.list(&ListParams::default()).await.unwrap().items;
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("Killing")
        && e.message.as_deref()
            == Some("Container demo failed liveness probe, will be restarted")));
}

#[tokio::test]
async fn bad_red_fails_fifteen_percent_of_requests_through_its_service() {
    let client = client();
    let ns = namespace(&client, "bad").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("bad", 1, "bad-red", json!({})),
        )
        .await
        .unwrap();
    services
        .create(&PostParams::default(), &service("bad", 8081))
        .await
        .unwrap();
    ready_pods(&pods, "bad", 1).await;
    let address = served_at(&services.get("bad").await.unwrap(), 8081);
    eventually("the Service answers", || async {
        http(address, "GET", "/color").await.is_ok()
    })
    .await;
    let mut errors = 0;
    for _ in 0..1000 {
        let (status, body) = http(address, "GET", "/color").await.unwrap();
        if status == 500 {
            errors += 1;
        } else {
            assert_eq!((status, body.as_str()), (200, "\"red\""));
        }
    }
    assert!(
        (110..=190).contains(&errors),
        "{errors} errors in 1,000 requests"
    );
}

#[tokio::test]
async fn jobs_run_on_the_host_and_succeed_or_fail_by_exit_code() {
    let client = client();
    let ns = namespace(&client, "jobs").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let job = |name: &str, script: &str| -> Job {
        from(json!({"metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "run", "image": "busybox", "command": ["sh", "-c", script],
                    "env": [{"name": "WHO", "value": "analysis"}]}]}}}}))
    };
    jobs.create(
        &PostParams::default(),
        &job("passes", "echo hello $WHO; exit 0"),
    )
    .await
    .unwrap();
    jobs.create(
        &PostParams::default(),
        &job("fails", "echo failing >&2; exit 3"),
    )
    .await
    .unwrap();
    let finished = |name: &'static str, condition: &'static str| {
        let jobs = jobs.clone();
        async move {
            eventually(&format!("job {name} {condition}"), || async {
                jobs.get(name)
                    .await
                    .unwrap()
                    .status
                    .and_then(|s| s.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == condition && c.status == "True"))
            })
            .await;
        }
    };
    finished("passes", "Complete").await;
    finished("fails", "Failed").await;
    let of = |job: &str| ListParams::default().labels(&format!("job-name={job}"));
    let passed = pods.list(&of("passes")).await.unwrap().items.remove(0);
    assert_eq!(
        passed.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    let log = pods
        .logs(&passed.name_any(), &LogParams::default())
        .await
        .unwrap();
    assert_eq!(log, "hello analysis\n");
    let failed = pods.list(&of("fails")).await.unwrap().items.remove(0);
    let status = container(&failed);
    let terminated = status.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(terminated.exit_code, 3);
    let log = pods
        .logs(&failed.name_any(), &LogParams::default())
        .await
        .unwrap();
    assert_eq!(log, "failing\n");
}

#[tokio::test]
async fn an_exiting_process_shows_its_exit_code_and_is_restarted() {
    let client = client();
    let ns = namespace(&client, "exits").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = from(json!({"metadata": {"name": "quitter"},
        "spec": {"containers": [{"name": "app", "image": "example.com/exits:1"}]}}));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("a restart after exit code 4", || async {
        let pod = pods.get("quitter").await.unwrap();
        let status = pod
            .status
            .and_then(|s| s.container_statuses)
            .map(|mut s| s.remove(0));
        status.is_some_and(|s| {
            s.restart_count >= 1
                && s.last_state
                    .and_then(|l| l.terminated)
                    .is_some_and(|t| t.exit_code == 4)
        })
    })
    .await;
}

#[tokio::test]
async fn a_port_already_taken_fails_the_container_with_that_reason() {
    let client = client();
    let ns = namespace(&client, "taken").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Taken on every address, so also on the pod's.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let pod: Pod = from(json!({"metadata": {"name": "blocked"},
        "spec": {"containers": [{"name": "app", "image": "example.com/listener:1",
            "ports": [{"containerPort": port}]}]}}));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("CreateContainerError naming the port", || async {
        let pod = pods.get("blocked").await.unwrap();
        let status = pod
            .status
            .and_then(|s| s.container_statuses)
            .map(|mut s| s.remove(0));
        status
            .and_then(|s| s.state)
            .and_then(|s| s.waiting)
            .is_some_and(|w| {
                w.reason.as_deref() == Some("CreateContainerError")
                    && w.message
                        .as_deref()
                        .is_some_and(|m| m.contains(&format!("port {port}")))
            })
    })
    .await;
    drop(holder);
}

#[tokio::test]
async fn a_privileged_port_that_cannot_be_bound_is_remapped_and_recorded() {
    let client = client();
    let ns = namespace(&client, "remap").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Port 80 of this address is held, as it is for anyone but root.
    let holder = std::net::TcpListener::bind("127.2.250.1:80");
    let mut web = service("lowport", 80);
    web.spec.as_mut().unwrap().cluster_ip = Some("127.2.250.1".into());
    web.spec.as_mut().unwrap().type_ = Some("LoadBalancer".into());
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("lowport", 1, "purple", json!({})),
        )
        .await
        .unwrap();
    services.create(&PostParams::default(), &web).await.unwrap();
    if holder.is_err() {
        eprintln!("port 80 cannot be bound here (not root): the proxy must remap it itself");
    }
    let annotation = || async {
        let service = services.get("lowport").await.unwrap();
        service.annotations().get("sluice.dev/local-ports").cloned()
    };
    eventually("the local-ports annotation", || async {
        annotation().await.is_some()
    })
    .await;
    assert_eq!(annotation().await.as_deref(), Some("{\"80\":8080}"));
    ready_pods(&pods, "lowport", 1).await;
    let address = served_at(&services.get("lowport").await.unwrap(), 80);
    assert_eq!(address.port(), 8080);
    eventually("the remapped port answers", || async {
        matches!(http(address, "GET", "/color").await, Ok((200, body)) if body == "\"purple\"")
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let events = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("PortRemapped"))
    );
    let lb = services.get("lowport").await.unwrap();
    let ingress = lb
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .unwrap_or_default();
    assert_eq!(
        ingress.first().and_then(|i| i.ip.as_deref()),
        Some("127.2.250.1")
    );
    drop(holder);
}

/// Deleting pods stops their processes (SIGTERM, then SIGKILL after the grace period) before
/// the pods go; a process ignoring SIGTERM is killed at the end of the grace period.
#[tokio::test]
async fn deleted_pods_stop_their_processes_first() {
    let client = client();
    let ns = namespace(&client, "delete").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("gone", 3, "orange", json!({})),
        )
        .await
        .unwrap();
    let running = ready_pods(&pods, "gone", 3).await;
    let pids: Vec<u32> = running.iter().map(pid).collect();
    assert!(pids.iter().all(|p| alive(*p)));
    let stubborn: Pod = from(json!({"metadata": {"name": "stubborn"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "example.com/stubborn:1"}]}}));
    pods.create(&PostParams::default(), &stubborn)
        .await
        .unwrap();
    eventually("the stubborn pod runs", || async {
        pods.get("stubborn")
            .await
            .unwrap()
            .status
            .and_then(|s| s.container_statuses)
            .is_some_and(|c| c[0].container_id.is_some())
    })
    .await;
    let stubborn = pods.get("stubborn").await.unwrap();
    let stubborn_pid = pid(&stubborn);
    deployments
        .delete("gone", &Default::default())
        .await
        .unwrap();
    pods.delete("stubborn", &Default::default()).await.unwrap();
    eventually("every pod is gone", || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    assert!(pids.iter().chain([&stubborn_pid]).all(|p| !alive(*p)));
}
