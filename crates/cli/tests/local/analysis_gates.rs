//! Analysis gates in Rollouts end to end, on real demo pods with the shared Rollout and
//! AnalysisRun controllers: blue-green pre-promotion analysis that fails (abort, preview back
//! on stable, production untouched) and post-promotion analysis that fails (active switched
//! back); a canary analysis step with a web and a Job metric in one run that passes (and the
//! run history limit prunes older runs), one that fails (abort, back to stable, the reason in
//! `sluice get rollout`), one that is inconclusive (pause, `promote` goes on); background
//! analysis aborting mid-canary; a missing template refused as InvalidSpec until it exists.
//!
//! Every metric asks a server this test starts on 127.0.0.1 for `{"status": "ok"}` and
//! judges it with the template's arguments: `want` (success) and `bad` (failure) decide
//! whether a run passes, fails or is inconclusive.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sluice_api::{AnalysisRun, Rollout};

use super::{
    analysis::{server, template},
    client, from, namespace, probe,
    rollouts::sluice,
    service,
};

/// The template every test uses: one web metric, judged by `want` and `bad`, plus, with
/// `job`, a Job metric on the smoke image against the same URL.
async fn web_check(ns: &str, job: bool) {
    let mut metrics = vec![json!({"name": "web",
        "successCondition": "result == '{{args.want}}'",
        "failureCondition": "result == '{{args.bad}}'",
        "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.status}"}}})];
    if job {
        metrics.push(json!({"name": "smoke", "provider": {"job": {
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "smoke", "image": "sluice/smoke:1", "args": ["{{args.url}}"]}]}}}}}}));
    }
    template(
        ns,
        "web-check",
        json!({"args": [{"name": "url"}, {"name": "want", "value": "ok"}, {"name": "bad", "value": "never"}],
            "metrics": metrics}),
    )
    .await;
}

/// A `RolloutAnalysis` of `web-check` against `url`: `outcome` is `pass`, `fail` or
/// `inconclusive`.
fn analysis(url: &str, outcome: &str) -> Value {
    let (want, bad) = match outcome {
        "pass" => ("ok", "never"),
        "fail" => ("great", "ok"),
        _ => ("great", "never"),
    };
    json!({"templates": [{"templateName": "web-check"}],
        "args": [{"name": "url", "value": url}, {"name": "want", "value": want},
            {"name": "bad", "value": bad}]})
}

fn rollout(strategy: Value, extra: Value) -> Rollout {
    let mut spec = json!({"replicas": 1, "revisionHistoryLimit": 3,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {"metadata": {"labels": {"app": "demo"}},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "demo",
                "image": "argoproj/rollouts-demo:blue",
                "env": [{"name": "VERSION", "value": "v1"}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": probe("/readyz", 1)}]}},
        "strategy": strategy});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"}, "spec": spec}),
    )
}

/// A new VERSION in the pod env: a new template.
fn release(version: &str) -> Patch<()> {
    Patch::Json(
        serde_json::from_value(json!([{"op": "replace",
            "path": "/spec/template/spec/containers/0/env/0/value", "value": version}]))
        .unwrap(),
    )
}

async fn services(ns: &str, names: &[&str]) {
    let services: Api<Service> = Api::namespaced(client(), ns);
    for name in names {
        let mut svc = service(name, 80);
        svc.spec.as_mut().unwrap().selector = Some([("app".to_owned(), "demo".to_owned())].into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
}

/// Waits (up to 90 s) for the Rollout's phase with its spec observed and a message holding
/// `says`; its status.
async fn phase(ns: &str, want: &str, says: &str) -> Value {
    let rollouts: Api<Rollout> = Api::namespaced(client(), ns);
    let mut last = Value::Null;
    for _ in 0..900 {
        let rollout = rollouts.get("demo").await.unwrap();
        let generation = rollout.metadata.generation.map(|g| g.to_string());
        last = serde_json::to_value(rollout.status.clone()).unwrap_or_default();
        if last["phase"] == want
            && last["observedGeneration"].as_str() == generation.as_deref()
            && last["message"].as_str().unwrap_or_default().contains(says)
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {want} ({says}): {last}");
}

async fn runs(ns: &str) -> Vec<AnalysisRun> {
    let api: Api<AnalysisRun> = Api::namespaced(client(), ns);
    let mut runs = api.list(&ListParams::default()).await.unwrap().items;
    runs.sort_by_key(|r| r.name_any());
    runs
}

fn run_phase(run: &AnalysisRun) -> String {
    run.status
        .as_ref()
        .map(|s| format!("{:?}", s.phase))
        .unwrap_or_default()
}

async fn patch(ns: &str, patch: &Patch<()>) {
    let rollouts: Api<Rollout> = Api::namespaced(client(), ns);
    rollouts
        .patch("demo", &PatchParams::default(), patch)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_pre_promotion_run_aborts_with_preview_on_stable_and_active_untouched() {
    let ns = namespace(&client(), "gate-pre").await;
    let server = server().await;
    web_check(&ns, false).await;
    services(&ns, &["demo-active", "demo-preview"]).await;
    let url = format!("http://{}/ok", server.address);
    let strategy = json!({"blueGreen": {"activeService": "demo-active",
        "previewService": "demo-preview", "prePromotionAnalysis": analysis(&url, "fail")}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(strategy, json!({})))
        .await
        .unwrap();
    let first = phase(&ns, "Healthy", "").await;
    let blue = first["stableRS"].as_str().unwrap().to_owned();
    assert!(
        runs(&ns).await.is_empty(),
        "no analysis on the first deploy"
    );
    patch(&ns, &release("v2")).await;
    let aborted = phase(
        &ns,
        "Degraded",
        "Blue/green pre-promotion analysis phase error/failed: Metric \"web\" assessed Failed",
    )
    .await;
    // The preview goes back to stable within a reconcile of the abort.
    let mut aborted = aborted;
    for _ in 0..100 {
        if aborted["blueGreen"]["previewSelector"] == blue.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        aborted = phase(&ns, "Degraded", "").await;
    }
    assert_eq!(aborted["blueGreen"]["activeSelector"], blue.as_str());
    assert_eq!(aborted["blueGreen"]["previewSelector"], blue.as_str());
    let green = aborted["currentPodHash"].as_str().unwrap().to_owned();
    let all = runs(&ns).await;
    assert_eq!(all.len(), 1, "one run: {all:?}");
    let run = &all[0];
    assert_eq!(run.name_any(), format!("demo-{green}-2-pre"));
    assert_eq!(run.labels()["rollout-type"], "PrePromotion");
    assert_eq!(run.labels()["rollouts-pod-template-hash"], green.as_str());
    assert_eq!(run.annotations()["rollout.argoproj.io/revision"], "2");
    assert_eq!(run.owner_references()[0].kind, "Rollout");
    assert_eq!(run_phase(run), "Failed");
    assert_eq!(
        aborted["blueGreen"]["prePromotionAnalysisRunStatus"]["status"],
        "Failed"
    );
    let services: Api<Service> = Api::namespaced(client(), &ns);
    for name in ["demo-active", "demo-preview"] {
        let selector = services
            .get(name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .selector
            .unwrap();
        assert_eq!(selector["rollouts-pod-template-hash"], blue, "{name}");
    }
    let shown = sluice(&["get", "rollout", "demo"], &ns);
    assert!(
        shown.contains("Blue/green pre-promotion analysis phase error/failed"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("α demo-{green}-2-pre")) && shown.contains("✖ Failed"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_failed_post_promotion_run_switches_active_back_and_aborts() {
    let ns = namespace(&client(), "gate-post").await;
    let server = server().await;
    web_check(&ns, false).await;
    services(&ns, &["demo-active", "demo-preview"]).await;
    let url = format!("http://{}/ok", server.address);
    let strategy = json!({"blueGreen": {"activeService": "demo-active",
        "previewService": "demo-preview", "postPromotionAnalysis": analysis(&url, "fail")}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(strategy, json!({})))
        .await
        .unwrap();
    let blue = phase(&ns, "Healthy", "").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(&ns, &release("v2")).await;
    let aborted = phase(
        &ns,
        "Degraded",
        "Blue/green post-promotion analysis phase error/failed",
    )
    .await;
    assert_eq!(aborted["stableRS"], blue.as_str(), "never became stable");
    assert_eq!(aborted["blueGreen"]["activeSelector"], blue.as_str());
    let green = aborted["currentPodHash"].as_str().unwrap().to_owned();
    let all = runs(&ns).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].name_any(), format!("demo-{green}-2-post"));
    assert_eq!(all[0].labels()["rollout-type"], "PostPromotion");
    let services: Api<Service> = Api::namespaced(client(), &ns);
    let selector = services
        .get("demo-active")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert_eq!(
        selector["rollouts-pod-template-hash"], blue,
        "switched back"
    );
}

fn canary_steps(step: Value) -> Value {
    json!({"canary": {"steps": [{"setWeight": 50}, {"analysis": step}, {"setWeight": 100}]}})
}

#[tokio::test]
async fn a_passing_analysis_step_with_web_and_job_metrics_promotes_and_old_runs_are_pruned() {
    let ns = namespace(&client(), "gate-pass").await;
    let server = server().await;
    web_check(&ns, true).await;
    let url = format!("http://{}/ok", server.address);
    // `url` comes from a field of the Rollout.
    let mut step = analysis(&url, "pass");
    step["args"][0] = json!({"name": "url", "valueFrom": {"fieldRef":
        {"fieldPath": "metadata.annotations['check-url']"}}});
    let strategy = canary_steps(step);
    let mut demo = rollout(
        strategy,
        json!({"analysis": {"successfulRunHistoryLimit": 1}}),
    );
    demo.metadata.annotations = Some([("check-url".to_owned(), url.clone())].into());
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &demo)
        .await
        .unwrap();
    phase(&ns, "Healthy", "").await;
    patch(&ns, &release("v2")).await;
    let promoted = phase(&ns, "Healthy", "").await;
    let v2 = promoted["stableRS"].as_str().unwrap().to_owned();
    assert_eq!(promoted["currentPodHash"], v2.as_str());
    let all = runs(&ns).await;
    assert_eq!(all.len(), 1, "one run, no duplicate: {all:?}");
    let run = &all[0];
    assert_eq!(run.name_any(), format!("demo-{v2}-2-1"));
    assert_eq!(run.labels()["step-index"], "1");
    assert_eq!(run_phase(run), "Successful");
    let results = run.status.as_ref().unwrap().metric_results.clone().unwrap();
    let mut names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["smoke", "web"]);
    let shown = sluice(&["get", "rollout", "demo"], &ns);
    assert!(
        shown.contains(&format!("α demo-{v2}-2-1")) && shown.contains("✔ 2"),
        "{shown}"
    );
    // Another release: its run passes too, and only the newest successful run is kept.
    patch(&ns, &release("v3")).await;
    let v3 = loop {
        let status = phase(&ns, "Healthy", "").await;
        if status["stableRS"] != v2.as_str() {
            break status["stableRS"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    super::eventually("the older run pruned", || async {
        let names: Vec<String> = runs(&ns).await.iter().map(|r| r.name_any()).collect();
        names == [format!("demo-{v3}-3-1")]
    })
    .await;
}

#[tokio::test]
async fn a_failing_analysis_step_aborts_back_to_stable_with_the_reason_shown() {
    let ns = namespace(&client(), "gate-fail").await;
    let server = server().await;
    web_check(&ns, false).await;
    let url = format!("http://{}/ok", server.address);
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(
            &PostParams::default(),
            &rollout(canary_steps(analysis(&url, "fail")), json!({})),
        )
        .await
        .unwrap();
    let v1 = phase(&ns, "Healthy", "").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(&ns, &release("v2")).await;
    let aborted = phase(
        &ns,
        "Degraded",
        "Step-based analysis phase error/failed: Metric \"web\" assessed Failed",
    )
    .await;
    assert_eq!(aborted["stableRS"], v1.as_str());
    let shown = sluice(&["get", "rollout", "demo"], &ns);
    assert!(
        shown.contains(
            "Rollout aborted update to revision 2: Step-based analysis phase error/failed"
        ),
        "{shown}"
    );
    super::eventually("the canary scaled away", || async {
        let sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client(), &ns);
        let canary = format!("demo-{}", aborted["currentPodHash"].as_str().unwrap());
        sets.get(&canary).await.unwrap().spec.unwrap().replicas == Some(0)
    })
    .await;
    // `retry` runs the analysis afresh (and it fails again).
    sluice(&["retry", "rollout", "demo"], &ns);
    super::eventually("a second run", || async { runs(&ns).await.len() == 2 }).await;
    let names: Vec<String> = runs(&ns).await.iter().map(|r| r.name_any()).collect();
    assert!(names[1].ends_with("-2-1.1"), "{names:?}");
}

#[tokio::test]
async fn an_inconclusive_run_pauses_and_promote_continues() {
    let ns = namespace(&client(), "gate-inc").await;
    let server = server().await;
    web_check(&ns, false).await;
    let url = format!("http://{}/ok", server.address);
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(
            &PostParams::default(),
            &rollout(canary_steps(analysis(&url, "inconclusive")), json!({})),
        )
        .await
        .unwrap();
    phase(&ns, "Healthy", "").await;
    patch(&ns, &release("v2")).await;
    let paused = phase(&ns, "Paused", "InconclusiveAnalysisRun").await;
    assert_eq!(paused["currentStepIndex"], 1);
    assert_eq!(
        paused["canary"]["currentStepAnalysisRunStatus"]["status"],
        "Inconclusive"
    );
    sluice(&["promote", "demo"], &ns);
    let promoted = phase(&ns, "Healthy", "").await;
    assert_eq!(promoted["stableRS"], promoted["currentPodHash"]);
    assert_eq!(runs(&ns).await.len(), 1, "no second run for a step");
}

#[tokio::test]
async fn background_analysis_aborts_mid_canary() {
    let ns = namespace(&client(), "gate-bg").await;
    let server = server().await;
    web_check(&ns, false).await;
    let url = format!("http://{}/ok", server.address);
    let mut background = analysis(&url, "fail");
    background["startingStep"] = json!(1);
    let strategy = json!({"canary": {"analysis": background,
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}});
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &rollout(strategy, json!({})))
        .await
        .unwrap();
    let v1 = phase(&ns, "Healthy", "").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(&ns, &release("v2")).await;
    let aborted = phase(&ns, "Degraded", "Background analysis phase error/failed").await;
    assert_eq!(aborted["stableRS"], v1.as_str());
    let all = runs(&ns).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].labels()["rollout-type"], "Background");
    assert!(!all[0].labels().contains_key("step-index"));
}

#[tokio::test]
async fn a_missing_template_is_invalid_spec_until_it_exists() {
    let ns = namespace(&client(), "gate-missing").await;
    let server = server().await;
    let url = format!("http://{}/ok", server.address);
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(
            &PostParams::default(),
            &rollout(canary_steps(analysis(&url, "pass")), json!({})),
        )
        .await
        .unwrap();
    let invalid = phase(&ns, "Degraded", "InvalidSpec").await;
    assert_eq!(
        invalid["message"],
        "InvalidSpec: spec.strategy.canary.steps[1].analysis: analysistemplates.argoproj.io \"web-check\" not found"
    );
    web_check(&ns, false).await;
    phase(&ns, "Healthy", "").await;
}

/// The Rollout and AnalysisRun controllers of `instance`, both killed after each of a few
/// short lives and started again at once, until the task is aborted.
fn restarted_controllers(instance: &str) -> tokio::task::JoinHandle<()> {
    let client = client();
    let rollouts = sluice_rollouts::controller::Settings {
        instance_id: Some(instance.into()),
        ..Default::default()
    };
    let analysis = sluice_analysis::controller::Settings {
        instance_id: Some(instance.into()),
        namespace: None,
        ..Default::default()
    };
    tokio::spawn(async move {
        for life in [150u64, 420, 260, 610, 90, 350].iter().cycle() {
            let r = tokio::spawn(sluice_rollouts::controller::run(
                client.clone(),
                rollouts.clone(),
                Default::default(),
            ));
            let a = tokio::spawn(sluice_analysis::controller::run(
                client.clone(),
                analysis.clone(),
                Default::default(),
            ));
            tokio::time::sleep(Duration::from_millis(*life)).await;
            r.abort();
            a.abort();
            let _ = (r.await, a.await);
        }
    })
}

#[tokio::test]
async fn controllers_restarted_mid_analysis_make_no_duplicate_run() {
    let ns = namespace(&client(), "gate-restart").await;
    let server = server().await;
    let instance = "gate-restarts";
    // Three measurements a second apart: the run outlives several controller lives.
    template(
        &ns,
        "slow-check",
        json!({"args": [{"name": "url"}], "metrics": [{"name": "web", "count": 3, "interval": "1s",
            "successCondition": "result == 'ok'",
            "provider": {"web": {"url": "{{args.url}}", "jsonPath": "{$.status}"}}}]}),
    )
    .await;
    services(&ns, &["demo-active", "demo-preview"]).await;
    let url = format!("http://{}/ok", server.address);
    let strategy = json!({"blueGreen": {"activeService": "demo-active",
        "previewService": "demo-preview", "prePromotionAnalysis": {
            "templates": [{"templateName": "slow-check"}], "args": [{"name": "url", "value": url}]}}});
    let mut labelled = serde_json::to_value(rollout(strategy, json!({}))).unwrap();
    labelled["metadata"]["labels"] =
        json!({"argo-rollouts.argoproj.io/controller-instance-id": instance});
    let labelled: Rollout = from(labelled);
    let chaos = restarted_controllers(instance);
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    rollouts
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    let first = phase(&ns, "Healthy", "").await;
    patch(&ns, &release("v2")).await;
    let mut promoted = Value::Null;
    for _ in 0..900 {
        let status = phase(&ns, "Healthy", "").await;
        if status["stableRS"] != first["stableRS"] {
            promoted = status;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chaos.abort();
    assert!(promoted.is_object(), "v2 never promoted");
    let all = runs(&ns).await;
    assert_eq!(
        all.len(),
        1,
        "one pre-promotion run, whatever the restarts: {all:?}"
    );
    assert_eq!(run_phase(&all[0]), "Successful");
    let measured =
        serde_json::to_value(&all[0].status).unwrap()["metricResults"][0]["measurements"]
            .as_array()
            .map(Vec::len);
    assert_eq!(measured, Some(3), "no measurement lost or taken twice");
}
