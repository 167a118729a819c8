//! Standalone AnalysisRuns end to end: created from templates with the CLI, measured by the
//! shared controller (web metrics against a server in this process, Job metrics on the
//! built-in smoke image), judged, terminated, shown by `sluice get analysisrun`; bad input
//! ends a run in Error naming what is missing; secret values never show; a controller
//! restarted mid-run loses no measurement and takes none twice.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Event, Secret},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;
use sluice_api::{AnalysisPhase, AnalysisRun, AnalysisTemplate};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::{client, eventually, from, namespace, rollouts::sluice};

/// A server on 127.0.0.1: `/ok` answers `{"status": "ok"}`, `/bad` a 500; every request is
/// counted and its head kept.
pub struct Server {
    pub address: SocketAddr,
    requests: Arc<AtomicUsize>,
    heads: Arc<std::sync::Mutex<Vec<String>>>,
}

pub async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, kept) = (requests.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (count, kept) = (count.clone(), kept.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&request).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                kept.lock().unwrap().push(head);
                let (status, body) = if path.starts_with("/bad") {
                    (500, "{}")
                } else {
                    (200, "{\"status\": \"ok\"}")
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    Server {
        address,
        requests,
        heads,
    }
}

pub async fn template(ns: &str, name: &str, spec: serde_json::Value) {
    let api: Api<AnalysisTemplate> = Api::namespaced(client(), ns);
    api.create(
        &PostParams::default(),
        &from(
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name}, "spec": spec}),
        ),
    )
    .await
    .unwrap();
}

async fn create_run(ns: &str, spec: serde_json::Value, labels: serde_json::Value) -> String {
    let api: Api<AnalysisRun> = Api::namespaced(client(), ns);
    let run: AnalysisRun = from(json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun", "metadata": {"generateName": "run-", "labels": labels},
        "spec": spec}));
    api.create(&PostParams::default(), &run)
        .await
        .unwrap()
        .name_any()
}

/// Waits (up to `seconds`) for the run to complete; the run.
async fn completed(ns: &str, name: &str, seconds: u64) -> AnalysisRun {
    let api: Api<AnalysisRun> = Api::namespaced(client(), ns);
    for _ in 0..seconds * 10 {
        let run = api.get(name).await.unwrap();
        if run.status.as_ref().is_some_and(|s| s.phase.completed()) {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "run {ns}/{name} did not complete: {:?}",
        api.get(name).await.unwrap().status
    );
}

fn phase(run: &AnalysisRun) -> (AnalysisPhase, String) {
    let status = run.status.as_ref().unwrap();
    (status.phase, status.message.clone().unwrap_or_default())
}

fn measurements(run: &AnalysisRun, metric: &str) -> Vec<sluice_api::Measurement> {
    run.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|r| r.iter().find(|r| r.name == metric))
        .and_then(|r| r.measurements.clone())
        .unwrap_or_default()
}

async fn event_reasons(ns: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client(), ns);
    let list = events.list(&ListParams::default()).await.unwrap().items;
    list.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test]
async fn a_run_from_a_template_measures_on_schedule_and_the_cli_shows_it() {
    let ns = namespace(&client(), "ar-web").await;
    let server = server().await;
    template(
        &ns,
        "health",
        json!({"args": [{"name": "url"}], "metrics": [{"name": "health", "interval": "1s", "count": 3,
            "successCondition": "result == 'ok'",
            "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.status}"}}}]}),
    )
    .await;
    let url = format!("url=http://{}/ok", server.address);
    let out = sluice(
        &["create", "analysisrun", "--from", "health", "-a", &url],
        &ns,
    );
    let name = out
        .trim()
        .strip_prefix("analysisrun.argoproj.io/")
        .and_then(|n| n.strip_suffix(" created"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(name.starts_with("health-"), "{name}");
    let run = completed(&ns, &name, 20).await;
    assert_eq!(phase(&run), (AnalysisPhase::Successful, String::new()));
    let taken = measurements(&run, "health");
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|m| m.phase == AnalysisPhase::Successful
        && m.value.as_deref() == Some("\"ok\"")
        && m.started_at.is_some()
        && m.finished_at.is_some()));
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
    let summary = run.status.as_ref().unwrap().run_summary.clone().unwrap();
    assert_eq!((summary.count, summary.successful), (Some(1), Some(1)));
    let shown = sluice(&["get", "analysisrun", &name], &ns);
    assert!(shown.contains("Status:        ✔ Successful"), "{shown}");
    assert_eq!(shown.matches("value=\"ok\"").count(), 3, "{shown}");
    eventually("the completion events", || async {
        let reasons = event_reasons(&ns).await;
        reasons.iter().any(|r| r == "AnalysisRunSuccessful")
            && reasons.iter().any(|r| r == "MetricSuccessful")
    })
    .await;
}

#[tokio::test]
async fn a_failing_metric_fails_the_run_at_once_and_terminate_ends_a_run_forever() {
    let ns = namespace(&client(), "ar-fail").await;
    let server = server().await;
    let forever = json!({"name": "forever", "interval": "1s",
        "provider": {"web": {"url": format!("http://{}/ok", server.address)}}});
    let failing = json!({"name": "errors", "consecutiveErrorLimit": 0,
        "provider": {"web": {"url": format!("http://{}/bad", server.address)}}});
    let name = create_run(
        &ns,
        json!({"metrics": [forever.clone(), failing]}),
        json!({}),
    )
    .await;
    let run = completed(&ns, &name, 20).await;
    assert_eq!(
        phase(&run),
        (
            AnalysisPhase::Error,
            "Metric \"errors\" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): \"Error Message: received non 2xx response code: 500\"".into()
        )
    );

    let name = create_run(&ns, json!({"metrics": [forever]}), json!({})).await;
    let api: Api<AnalysisRun> = Api::namespaced(client(), &ns);
    eventually("two measurements", || async {
        measurements(&api.get(&name).await.unwrap(), "forever").len() >= 2
    })
    .await;
    let out = sluice(&["terminate", "analysisrun", &name], &ns);
    assert_eq!(out.trim(), format!("analysisRun '{name}' terminated"));
    let run = completed(&ns, &name, 10).await;
    assert_eq!(
        phase(&run),
        (AnalysisPhase::Successful, "Run Terminated".into())
    );
}

#[tokio::test]
async fn job_metrics_on_the_smoke_image_pass_fail_and_stop_on_pull_errors() {
    let ns = namespace(&client(), "ar-job").await;
    let server = server().await;
    let job = |name: &str, image: &str, url: String| {
        json!({"name": name, "provider": {"job": {
            "metadata": {"labels": {"team": "shop"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "smoke", "image": image, "args": [url]}]}}}}}})
    };
    let ok = format!("http://{}/ok", server.address);
    let bad = format!("http://{}/bad", server.address);
    let pass = create_run(
        &ns,
        json!({"metrics": [job("smoke", "sluice/smoke:1", ok.clone())]}),
        json!({}),
    )
    .await;
    let fail = create_run(
        &ns,
        json!({"metrics": [job("smoke", "ghcr.io/sluice-dev/smoke:1", bad)]}),
        json!({}),
    )
    .await;
    let stuck = create_run(
        &ns,
        json!({"metrics": [job("smoke", "example.com/unpullable:1", ok)]}),
        json!({}),
    )
    .await;
    let run = completed(&ns, &pass, 30).await;
    assert_eq!(phase(&run).0, AnalysisPhase::Successful, "{:?}", run.status);
    let measured = &measurements(&run, "smoke")[0];
    let job_name = format!("{}.smoke.1", run.uid().unwrap());
    assert_eq!(
        measured.metadata.as_ref().unwrap().get("job-name"),
        Some(&job_name)
    );
    let jobs: Api<Job> = Api::namespaced(client(), &ns);
    let created = jobs.get(&job_name).await.unwrap();
    assert_eq!(created.labels()["team"], "shop");
    assert_eq!(
        created.labels()["analysisrun.argoproj.io/uid"],
        run.uid().unwrap()
    );
    assert_eq!(
        created.annotations()["analysisrun.argoproj.io/name"],
        pass.as_str()
    );
    assert_eq!(created.owner_references()[0].uid, run.uid().unwrap());

    let run = completed(&ns, &fail, 30).await;
    assert_eq!(
        phase(&run),
        (
            AnalysisPhase::Failed,
            "Metric \"smoke\" assessed Failed due to failed (1) > failureLimit (0)".into()
        )
    );
    let run = completed(&ns, &stuck, 30).await;
    assert_eq!(
        phase(&run).0,
        AnalysisPhase::Inconclusive,
        "{:?}",
        run.status
    );
    let message = measurements(&run, "smoke")[0].message.clone().unwrap();
    assert!(
        message.contains("ErrImagePull") || message.contains("ImagePullBackOff"),
        "{message}"
    );

    // The Job goes with its run.
    let runs: Api<AnalysisRun> = Api::namespaced(client(), &ns);
    runs.delete(&pass, &DeleteParams::default()).await.unwrap();
    eventually("the run's Job deleted with it", || async {
        jobs.get_opt(&job_name).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn bad_arguments_end_the_run_in_error_and_secrets_never_show() {
    let ns = namespace(&client(), "ar-args").await;
    let server = server().await;
    let web = |url: &str| {
        json!([{"name": "m", "provider": {"web": {"url": url,
            "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]}}}])
    };
    let url = format!("http://{}/ok", server.address);
    let token =
        json!({"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}});
    let missing_secret = create_run(
        &ns,
        json!({"metrics": web(&url), "args": [token.clone()]}),
        json!({}),
    )
    .await;
    let run = completed(&ns, &missing_secret, 10).await;
    assert_eq!(phase(&run).0, AnalysisPhase::Error);
    assert!(phase(&run).1.contains("creds"), "{:?}", phase(&run));

    let field = json!({"name": "token", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}});
    let missing_field = create_run(
        &ns,
        json!({"metrics": web(&url), "args": [field.clone()]}),
        json!({}),
    )
    .await;
    let run = completed(&ns, &missing_field, 10).await;
    assert_eq!(
        phase(&run),
        (
            AnalysisPhase::Error,
            "Unable to resolve metric arguments: fieldRef \"metadata.labels['tier']\" of argument \"token\" resolves to nothing".into()
        )
    );
    let from_label = create_run(
        &ns,
        json!({"metrics": web(&url), "args": [field]}),
        json!({"tier": "gold"}),
    )
    .await;
    assert_eq!(
        phase(&completed(&ns, &from_label, 10).await).0,
        AnalysisPhase::Successful
    );

    let unsupplied = create_run(
        &ns,
        json!({"metrics": web(&url), "args": [{"name": "token"}]}),
        json!({}),
    )
    .await;
    assert_eq!(
        phase(&completed(&ns, &unsupplied, 10).await).1,
        "Unable to resolve metric arguments: argument \"token\" was not supplied"
    );

    let secrets: Api<Secret> = Api::namespaced(client(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t-value"}})),
        )
        .await
        .unwrap();
    let bad = format!("http://{}/bad/s3cr3t-value", server.address);
    let with_secret = create_run(
        &ns,
        json!({"metrics": [{"name": "m", "consecutiveErrorLimit": 0, "provider": {"web": {"url": bad,
            "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]}}}],
            "args": [token]}),
        json!({}),
    )
    .await;
    let run = completed(&ns, &with_secret, 10).await;
    assert_eq!(phase(&run).0, AnalysisPhase::Error);
    assert!(
        server.heads.lock().unwrap().iter().any(|h| h
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cr3t-value")),
        "the provider sends the secret"
    );
    let status = serde_json::to_string(&run.status).unwrap();
    assert!(!status.contains("s3cr3t-value"), "{status}");
    let shown = sluice(&["get", "analysisrun", &with_secret], &ns);
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    let events: Api<Event> = Api::namespaced(client(), &ns);
    for event in events.list(&ListParams::default()).await.unwrap().items {
        assert!(!event.message.unwrap_or_default().contains("s3cr3t-value"));
    }
}

#[tokio::test]
async fn a_controller_restarted_mid_run_loses_no_measurement_and_takes_none_twice() {
    let ns = namespace(&client(), "ar-restart").await;
    let server = server().await;
    let settings = sluice_analysis::controller::Settings {
        instance_id: Some("ar-restart".into()),
        namespace: Some(ns.clone()),
        ..Default::default()
    };
    let start = || {
        tokio::spawn(sluice_analysis::controller::run(
            client(),
            settings.clone(),
            Arc::default(),
        ))
    };
    let name = create_run(
        &ns,
        json!({"metrics": [{"name": "m", "interval": "2s", "count": 5,
            "provider": {"web": {"url": format!("http://{}/ok", server.address)}}}]}),
        json!({"argo-rollouts.argoproj.io/controller-instance-id": "ar-restart"}),
    )
    .await;
    let api: Api<AnalysisRun> = Api::namespaced(client(), &ns);
    let count = |run: &AnalysisRun| measurements(run, "m").len();
    let mut controller = start();
    for seen in [1, 3] {
        // Killed just after a measurement was recorded, started again at once.
        eventually(&format!("{seen} measurements"), || async {
            count(&api.get(&name).await.unwrap()) >= seen
        })
        .await;
        controller.abort();
        let _ = controller.await;
        controller = start();
    }
    let run = completed(&ns, &name, 30).await;
    controller.abort();
    assert_eq!(phase(&run).0, AnalysisPhase::Successful);
    let taken = measurements(&run, "m");
    assert_eq!(taken.len(), 5);
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        5,
        "no measurement twice"
    );
    let result = &run
        .status
        .as_ref()
        .unwrap()
        .metric_results
        .as_ref()
        .unwrap()[0];
    assert_eq!((result.count, result.successful), (Some(5), Some(5)));
    let starts: Vec<_> = taken
        .iter()
        .map(|m| m.started_at.clone().unwrap().0)
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
}
