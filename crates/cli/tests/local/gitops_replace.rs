//! `Replace=true` and `Force=true` on the embedded cluster: a Job synced from Git whose pod
//! template changes in a new commit is refused by the API server (422, `field is immutable`),
//! by an apply and by a replace alike; with `Force=true,Replace=true` in its sync-options
//! annotation it is deleted and re-created, and the sync succeeds.

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};
use sluice_testkit::git::{commit, repository};

use super::gitops::{application, apps, as_refs};
use super::gitops_waves::{job, sync, wait_for};
use super::*;

/// The operation that ran on `revision` with these sync options has ended.
fn ended(s: &Value, revision: &str, options: &Value) -> bool {
    let state = &s["operationState"];
    matches!(
        state["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Error")
    ) && state["syncResult"]["revision"] == revision
        && state["operation"]["sync"]["syncOptions"] == *options
}

/// Asks for a sync once the previous operation is gone from the Application (a merge patch
/// onto a lingering one would keep its options).
async fn sync_when_idle(name: &str, operation: Value) {
    eventually("the previous operation cleared", || async {
        apps().get(name).await.unwrap().data["operation"].is_null()
    })
    .await;
    sync(name, operation).await;
}

fn job_result(s: &Value) -> Value {
    s["operationState"]["syncResult"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["kind"] == "Job")
        .cloned()
        .unwrap_or_else(|| panic!("no Job in the sync result: {s}"))
}

#[tokio::test]
async fn a_changed_job_template_is_refused_unless_forced_then_the_job_is_re_created() {
    let ns = namespace(&client(), "gitops-force").await;
    let first = job(("name", "migrate"), "example.com/migrate:1", json!({}));
    let repo = repository(&as_refs(&[("job.yaml", first)]));
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    let jobs: Api<Job> = Api::namespaced(client(), &ns);
    let none = json!(null);
    sync_when_idle(&name, json!({})).await;
    let revision = sluice_testkit::git::git(repo.path(), &["rev-parse", "HEAD"]);
    let s = wait_for(&name, "the first sync", 60, |s| ended(s, &revision, &none)).await;
    assert_eq!(s["operationState"]["phase"], "Succeeded", "{s}");
    let created = jobs.get("migrate").await.unwrap();

    // A new image: the template changed, which the server refuses for a Job.
    let second = job(("name", "migrate"), "example.com/migrate:2", json!({}));
    let revision = commit(repo.path(), &[("job.yaml", &second)], "migrate:2");
    wait_for(&name, "the new revision", 30, |s| {
        s["sync"]["revision"] == revision.as_str()
    })
    .await;
    sync_when_idle(&name, json!({})).await;
    let s = wait_for(&name, "the refused sync", 60, |s| {
        ended(s, &revision, &none)
    })
    .await;
    assert_eq!(s["operationState"]["phase"], "Failed", "{s}");
    let refused = job_result(&s);
    assert_eq!(refused["status"], "SyncFailed", "{s}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("Job.batch \"migrate\" is invalid: spec.template: Invalid value: ")
            && message.ends_with("field is immutable"),
        "{message}"
    );
    // `Replace=true` alone: `kubectl replace` is refused too (the manifest has no selector).
    let replace = json!(["Replace=true"]);
    sync_when_idle(&name, json!({"syncOptions": replace})).await;
    let s = wait_for(&name, "the refused replace", 60, |s| {
        ended(s, &revision, &replace)
    })
    .await;
    assert_eq!(s["operationState"]["phase"], "Failed", "{s}");
    assert!(
        job_result(&s)["message"]
            .as_str()
            .unwrap()
            .ends_with("field is immutable"),
        "{s}"
    );
    let kept = jobs.get("migrate").await.unwrap();
    assert_eq!(kept.metadata.uid, created.metadata.uid);

    // Forced: deleted and re-created with the new template.
    let forced = job(
        ("name", "migrate"),
        "example.com/migrate:2",
        json!({"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}),
    );
    let revision = commit(repo.path(), &[("job.yaml", &forced)], "force");
    wait_for(&name, "the forced revision", 30, |s| {
        s["sync"]["revision"] == revision.as_str()
    })
    .await;
    sync_when_idle(&name, json!({})).await;
    let s = wait_for(&name, "the forced sync", 60, |s| ended(s, &revision, &none)).await;
    assert_eq!(s["operationState"]["phase"], "Succeeded", "{s}");
    assert_eq!(
        job_result(&s)["message"],
        "job.batch/migrate re-created",
        "{s}"
    );
    let recreated = jobs.get("migrate").await.unwrap();
    assert_ne!(recreated.metadata.uid, created.metadata.uid);
    let spec = recreated.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some("example.com/migrate:2")
    );
    wait_for(&name, "Synced", 30, |s| s["sync"]["status"] == "Synced").await;
}
