//! The whole loop on real demo pods, real requests and a real Prometheus: a canary through the
//! NGINX ingress whose analysis steps read the canary's error rate by pod-template hash from
//! the pods' own `http_requests_total` and from the ingress's `nginx_ingress_controller_requests`
//! — a good version passes every step and promotes itself, a bad one (`bad-red`, 15 % errors)
//! fails and aborts by itself, every request back on stable; a blue-green pre-promotion
//! analysis on the preview's error rate (a good preview promotes, a bad one aborts); and a
//! Prometheus killed mid-analysis: Error measurements, then the Rollout aborted once
//! `consecutiveErrorLimit` is passed.
//!
//! Each test starts its own Prometheus (the binary on PATH, on a free port, scraping every
//! second) and follows the shared cluster's pods into its targets with the same
//! `targets::run` `sluice up --prometheus` uses, plus the ingress's metrics endpoint: the
//! shared cluster and every other test stay as they are. The templates name that
//! Prometheus' address, since the shared analysis controller has no default. Without the
//! binary these tests say so and return.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sluice_api::{AnalysisPhase, AnalysisRun, AnalysisTemplate, Rollout};
use sluice_cluster::prometheus::targets;
use sluice_testkit::prometheus::TestPrometheus;

use super::{
    client, eventually, from,
    ingress::{Connection, Reply, ingress, ingress_address, metrics_address, path},
    namespace, probe,
    rollout_nginx::{load, settled},
    rollouts::sluice,
    service,
};

/// A Prometheus of the test's own scraping every pod of the shared cluster and the ingress.
struct Scraping {
    server: TestPrometheus,
    follow: tokio::task::JoinHandle<()>,
}

impl Scraping {
    async fn start() -> Option<Self> {
        let server = TestPrometheus::start().await?;
        server.scrape("ingress-nginx", metrics_address());
        let follow = tokio::spawn(targets::run(client(), server.prometheus.dir().to_owned()));
        Some(Self { server, follow })
    }
}

impl Drop for Scraping {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

/// The share of 5xx among the requests of `selector` over the last 10 s: `0` when none
/// failed (`or vector(0)`), an empty vector while there is no traffic at all.
fn error_rate(metric: &str, selector: &str) -> String {
    format!(
        "(sum(rate({metric}{{{selector},status=~\"5..\"}}[10s])) or vector(0)) / sum(rate({metric}{{{selector}}}[10s]))"
    )
}

/// One metric every 2 s, three times after a 4 s delay (a few scrapes of the new pods),
/// failing at the first measurement above 5 %; no data passes (an empty vector: not scraped
/// yet; NaN: series that did not move, as a retried canary's old pod's), so a good version is
/// never aborted for it.
fn metric(name: &str, query: &str) -> Value {
    json!({"name": name, "interval": "2s", "count": 3, "initialDelay": "4s",
        "failureLimit": 0, "consecutiveErrorLimit": 1,
        "successCondition": "len(result) == 0 || isNaN(result[0]) || result[0] <= 0.05",
        "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": query}}})
}

/// `error-rate`: the canary's (`{{args.hash}}`) error rate from its pods' own counter, and,
/// with `ingress`, the canary upstream's in the ingress's metrics of Ingress `demo`.
async fn template(ns: &str, ingress: bool) {
    let pods = "namespace=\"{{args.namespace}}\",rollouts_pod_template_hash=\"{{args.hash}}\"";
    let mut metrics = vec![metric(
        "pods-error-rate",
        &error_rate("http_requests_total", pods),
    )];
    if ingress {
        let canary = "namespace=\"{{args.namespace}}\",ingress=\"demo\",canary!=\"\"";
        metrics.push(metric(
            "ingress-error-rate",
            &error_rate("nginx_ingress_controller_requests", canary),
        ));
    }
    let template: AnalysisTemplate = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate", "metadata": {"name": "error-rate"},
        "spec": {"args": [{"name": "hash"}, {"name": "namespace"}, {"name": "prometheus"}],
            "metrics": metrics}}));
    Api::<AnalysisTemplate>::namespaced(client(), ns)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
}

/// A `RolloutAnalysis` of `error-rate` on the latest pod-template hash.
fn analysis(ns: &str, prometheus: &TestPrometheus) -> Value {
    json!({"templates": [{"templateName": "error-rate"}],
        "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "namespace", "value": ns}, {"name": "prometheus", "value": prometheus.url()}]})
}

fn rollout(replicas: i32, strategy: Value) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "demo",
                    "image": "argoproj/rollouts-demo:blue",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": probe("/readyz", 1)}]}},
            "strategy": strategy}}),
    )
}

fn image(tag: &str) -> Patch<()> {
    Patch::Json(
        serde_json::from_value(json!([{"op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": format!("argoproj/rollouts-demo:{tag}")}]))
        .unwrap(),
    )
}

/// Services selecting the demo pods (the controller narrows them by hash).
async fn services(ns: &str, names: &[&str]) {
    let services: Api<Service> = Api::namespaced(client(), ns);
    for name in names {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
}

/// An Ingress `name` routing `host` to `service`.
async fn route(ns: &str, name: &str, host: &str, service: &str) {
    let rules = json!([{"host": host, "http": {"paths": [path("/", "Prefix", service)]}}]);
    Api::<Ingress>::namespaced(client(), ns)
        .create(&PostParams::default(), &ingress(name, json!({}), rules))
        .await
        .unwrap();
}

/// Which version (`X-Version`, the image tag) answered `n` requests for `host`, and how often.
async fn versions(host: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut connection = Connection::open(ingress_address()).await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (_, version, _) = connection.get(host, "/color", &[]).await.unwrap();
        *seen.entry(version).or_default() += 1;
    }
    seen
}

/// Stops the load; its replies, every request answered (with a status, 500 included).
async fn stop(
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Result<Reply, String>>>>,
) -> Vec<Reply> {
    stop.store(true, Ordering::Relaxed);
    let mut replies = Vec::new();
    for worker in workers {
        for reply in worker.await.unwrap() {
            replies.push(reply.expect("every request answered"));
        }
    }
    replies
}

async fn runs(ns: &str) -> Vec<AnalysisRun> {
    let api: Api<AnalysisRun> = Api::namespaced(client(), ns);
    let mut runs = api.list(&ListParams::default()).await.unwrap().items;
    runs.sort_by_key(|r| r.metadata.creation_timestamp.clone().map(|t| t.0));
    runs
}

/// Every measurement of `run`'s metric `name`.
fn measurements(run: &AnalysisRun, name: &str) -> Vec<sluice_api::Measurement> {
    run.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|r| r.iter().find(|r| r.name == name))
        .and_then(|r| r.measurements.clone())
        .unwrap_or_default()
}

/// `[v]` as a number.
fn first(value: Option<&str>) -> f64 {
    let values: Vec<f64> = serde_json::from_str(value.unwrap_or("[]")).unwrap_or_default();
    values.first().copied().unwrap_or(f64::NAN)
}

#[tokio::test]
async fn a_good_canary_promotes_itself_and_a_bad_one_aborts_itself_on_its_error_rate() {
    let Some(scraping) = Scraping::start().await else {
        return;
    };
    let prometheus = &scraping.server;
    let ns = namespace(&client(), "prom-canary").await;
    let host = format!("canary-{ns}.example");
    services(&ns, &["demo-stable", "demo-canary"]).await;
    route(&ns, "demo", &host, "demo-stable").await;
    template(&ns, true).await;
    let step = json!({"analysis": analysis(&ns, prometheus)});
    let strategy = json!({"canary": {"canaryService": "demo-canary", "stableService": "demo-stable",
        "trafficRouting": {"nginx": {"stableIngress": "demo"}},
        "abortScaleDownDelaySeconds": 2, "scaleDownDelaySeconds": 2,
        "steps": [{"setWeight": 10}, step, {"setWeight": 20}, step]}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(2, strategy))
        .await
        .unwrap();
    settled(&rollouts, "Healthy", Some(0)).await;
    let running = Arc::new(AtomicBool::new(false));
    let workers = load(&host, running.clone());

    // Green passes both steps on real traffic and promotes itself.
    rollouts
        .patch("demo", &PatchParams::default(), &image("green"))
        .await
        .unwrap();
    let promoted = settled(&rollouts, "Healthy", Some(0)).await;
    let green = promoted["stableRS"].as_str().unwrap().to_owned();
    assert_eq!(promoted["currentPodHash"], green.as_str());
    let passed = runs(&ns).await;
    let names: Vec<String> = passed.iter().map(|r| r.name_any()).collect();
    assert_eq!(
        names,
        [format!("demo-{green}-2-1"), format!("demo-{green}-2-3")]
    );
    for run in &passed {
        assert_eq!(
            run.status.as_ref().unwrap().phase,
            AnalysisPhase::Successful
        );
        for metric in ["pods-error-rate", "ingress-error-rate"] {
            let taken = measurements(run, metric);
            assert_eq!(taken.len(), 3, "{metric} of {}", run.name_any());
            // The canary was scraped and measured: real numbers, every one 0.
            assert!(
                taken.iter().any(|m| m.value.as_deref() == Some("[0]")),
                "{metric}: {taken:?}"
            );
        }
    }
    assert_eq!(versions(&host, 100).await.get("green"), Some(&100));

    // bad-red fails its first analysis step and aborts: every request back on green.
    rollouts
        .patch("demo", &PatchParams::default(), &image("bad-red"))
        .await
        .unwrap();
    let aborted = settled(&rollouts, "Degraded", Some(0)).await;
    assert_eq!(aborted["stableRS"], green.as_str());
    let bad = aborted["currentPodHash"].as_str().unwrap().to_owned();
    let message = aborted["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "RolloutAborted: Rollout aborted update to revision 3: Step-based analysis phase error/failed: Metric \""
        ) && message.contains("error-rate\" assessed Failed due to failed (1) > failureLimit (0)"),
        "{message}"
    );
    assert_eq!(versions(&host, 200).await.get("green"), Some(&200));
    let replies = stop(running, workers).await;
    assert!(replies.len() >= 1000, "{} requests", replies.len());
    // Only bad-red ever failed a request.
    let failed: Vec<&Reply> = replies.iter().filter(|r| r.0 != 200).collect();
    assert!(
        failed
            .iter()
            .all(|(status, version, _)| *status == 500 && version == "bad-red"),
        "{failed:?}"
    );
    assert!(
        !failed.is_empty(),
        "bad-red served some requests and failed some"
    );

    let run = runs(&ns).await.pop().unwrap();
    assert_eq!(run.name_any(), format!("demo-{bad}-3-1"));
    assert_eq!(run.status.as_ref().unwrap().phase, AnalysisPhase::Failed);
    let failing: Vec<(String, f64)> = ["pods-error-rate", "ingress-error-rate"]
        .iter()
        .flat_map(|metric| {
            measurements(&run, metric)
                .into_iter()
                .filter(|m| m.phase == AnalysisPhase::Failed)
                .map(|m| {
                    (
                        m.value.clone().unwrap_or_default(),
                        first(m.value.as_deref()),
                    )
                })
        })
        .collect();
    assert!(!failing.is_empty(), "{run:?}");
    for (_, rate) in &failing {
        assert!(
            *rate > 0.05 && *rate < 0.4,
            "a 15 % error rate measured as {rate}"
        );
    }
    let shown = sluice(&["get", "rollout", "demo"], &ns);
    assert!(
        shown.contains(
            "Rollout aborted update to revision 3: Step-based analysis phase error/failed"
        ) && shown.contains("assessed Failed due to failed (1) > failureLimit (0)"),
        "{shown}"
    );
    // The value that failed the run, beside Argo's message, in the tree and in the run.
    assert!(
        failing
            .iter()
            .any(|(value, _)| shown.contains(&format!("={value}"))),
        "{failing:?} in {shown}"
    );
    let detail = sluice(&["get", "analysisrun", &run.name_any()], &ns);
    for (value, _) in &failing {
        assert!(detail.contains(&format!("value={value}")), "{detail}");
    }
}

#[tokio::test]
async fn a_pre_promotion_analysis_on_the_previews_error_rate_promotes_good_and_aborts_bad() {
    let Some(scraping) = Scraping::start().await else {
        return;
    };
    let prometheus = &scraping.server;
    let ns = namespace(&client(), "prom-bg").await;
    let (active, preview) = (
        format!("active-{ns}.example"),
        format!("preview-{ns}.example"),
    );
    services(&ns, &["demo-active", "demo-preview"]).await;
    route(&ns, "active", &active, "demo-active").await;
    route(&ns, "preview", &preview, "demo-preview").await;
    template(&ns, false).await;
    let strategy = json!({"blueGreen": {"activeService": "demo-active",
        "previewService": "demo-preview", "scaleDownDelaySeconds": 2,
        "prePromotionAnalysis": analysis(&ns, prometheus)}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(1, strategy))
        .await
        .unwrap();
    settled(&rollouts, "Healthy", None).await;
    // Requests to the preview: what the pre-promotion analysis measures.
    let running = Arc::new(AtomicBool::new(false));
    let workers = load(&preview, running.clone());

    rollouts
        .patch("demo", &PatchParams::default(), &image("green"))
        .await
        .unwrap();
    let promoted = settled(&rollouts, "Healthy", None).await;
    let green = promoted["stableRS"].as_str().unwrap().to_owned();
    assert_eq!(promoted["currentPodHash"], green.as_str());
    let passed = runs(&ns).await;
    assert_eq!(passed.len(), 1, "{passed:?}");
    assert_eq!(passed[0].name_any(), format!("demo-{green}-2-pre"));
    assert_eq!(
        passed[0].status.as_ref().unwrap().phase,
        AnalysisPhase::Successful
    );
    assert!(
        measurements(&passed[0], "pods-error-rate")
            .iter()
            .any(|m| m.value.as_deref() == Some("[0]")),
        "the preview was measured: {:?}",
        passed[0].status
    );
    eventually("the active host answered by green", || async {
        versions(&active, 20).await.get("green") == Some(&20)
    })
    .await;

    rollouts
        .patch("demo", &PatchParams::default(), &image("bad-red"))
        .await
        .unwrap();
    let aborted = settled(&rollouts, "Degraded", None).await;
    let message = aborted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "Blue/green pre-promotion analysis phase error/failed: Metric \"pods-error-rate\" assessed Failed due to failed (1) > failureLimit (0)"
        ),
        "{message}"
    );
    assert_eq!(aborted["stableRS"], green.as_str());
    assert_eq!(aborted["blueGreen"]["activeSelector"], green.as_str());
    assert_eq!(versions(&active, 100).await.get("green"), Some(&100));
    eventually("the preview back on green", || async {
        versions(&preview, 20).await.get("green") == Some(&20)
    })
    .await;
    let replies = stop(running, workers).await;
    assert!(
        replies
            .iter()
            .any(|(status, version, _)| *status == 500 && version == "bad-red"),
        "the bad preview served requests"
    );
    let run = runs(&ns).await.pop().unwrap();
    assert_eq!(run.status.as_ref().unwrap().phase, AnalysisPhase::Failed);
    let failed: Vec<f64> = measurements(&run, "pods-error-rate")
        .iter()
        .filter(|m| m.phase == AnalysisPhase::Failed)
        .map(|m| first(m.value.as_deref()))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", run.status);
    assert!(failed[0] > 0.05, "{failed:?}");
}

#[tokio::test]
async fn prometheus_killed_mid_analysis_errs_the_run_and_aborts_the_rollout() {
    let Some(scraping) = Scraping::start().await else {
        return;
    };
    let ns = namespace(&client(), "prom-killed").await;
    services(&ns, &["demo-stable", "demo-canary"]).await;
    let url = scraping.server.url();
    let template: AnalysisTemplate = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate", "metadata": {"name": "up"},
        "spec": {"args": [{"name": "namespace"}],
            "metrics": [{"name": "scraped", "interval": "2s", "count": 30,
                "consecutiveErrorLimit": 2,
                "successCondition": "len(result) == 0 || result[0] >= 1",
                "provider": {"prometheus": {"address": url,
                    "query": "count(up{namespace=\"{{args.namespace}}\"} == 1)"}}}]}}));
    Api::<AnalysisTemplate>::namespaced(client(), &ns)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let strategy = json!({"canary": {"canaryService": "demo-canary", "stableService": "demo-stable",
        "steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "up"}],
            "args": [{"name": "namespace", "value": ns}]}}]}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(2, strategy))
        .await
        .unwrap();
    settled(&rollouts, "Healthy", None).await;
    rollouts
        .patch("demo", &PatchParams::default(), &image("green"))
        .await
        .unwrap();
    let api: Api<AnalysisRun> = Api::namespaced(client(), &ns);
    let counted = |phase: AnalysisPhase| {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.unwrap().items;
            list.first()
                .map(|run| {
                    measurements(run, "scraped")
                        .iter()
                        .filter(|m| m.phase == phase)
                        .count()
                })
                .unwrap_or(0)
        }
    };
    for _ in 0..300 {
        if counted(AnalysisPhase::Successful).await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counted(AnalysisPhase::Successful).await >= 2,
        "two measurements before the kill"
    );
    drop(scraping);

    let aborted = settled(&rollouts, "Degraded", None).await;
    let message = aborted["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "Step-based analysis phase error/failed: Metric \"scraped\" assessed Error due to consecutiveErrors (3) > consecutiveErrorLimit (2)"
        ),
        "{message}"
    );
    let run = runs(&ns).await.pop().unwrap();
    assert_eq!(run.status.as_ref().unwrap().phase, AnalysisPhase::Error);
    let taken = measurements(&run, "scraped");
    let errors: Vec<_> = taken
        .iter()
        .filter(|m| m.phase == AnalysisPhase::Error)
        .collect();
    assert_eq!(errors.len(), 3, "{taken:?}");
    assert!(
        errors
            .iter()
            .all(|m| m.message.as_deref().is_some_and(|m| m.contains(&url))),
        "{errors:?}"
    );
    // Nothing but errors after the first: no measurement lost between them.
    let first_error = taken
        .iter()
        .position(|m| m.phase == AnalysisPhase::Error)
        .unwrap();
    assert!(
        taken[first_error..]
            .iter()
            .all(|m| m.phase == AnalysisPhase::Error)
    );
}
