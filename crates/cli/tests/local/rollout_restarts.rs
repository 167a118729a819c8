//! The controller killed again and again through a whole flow — first deploy, update, pause,
//! promote, scale-down, another update, abort, retry, promote — and restarted each time at
//! once: no extra ReplicaSet, no lost pause or abort, no premature or missed switch. The
//! Rollout carries an instance id so this test's controller, not the shared one, owns it.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use sluice_api::Rollout;
use sluice_rollouts::controller::Settings;

use super::{
    client,
    rollout_options::{Flow, rollout, until},
};

/// How long each controller lives before it is killed, in turn (ms).
const LIVES: [u64; 7] = [120, 450, 230, 700, 90, 330, 560];

/// A controller for Rollouts of `instance`, killed after each of [`LIVES`] in turn and
/// started again at once, until the task is aborted.
fn chaos(instance: &str) -> tokio::task::JoinHandle<()> {
    let client = client();
    let settings = Settings {
        instance_id: Some(instance.into()),
        ..Default::default()
    };
    tokio::spawn(async move {
        for life in LIVES.iter().cycle() {
            let controller = tokio::spawn(sluice_rollouts::controller::run(
                client.clone(),
                settings.clone(),
                Arc::default(),
            ));
            tokio::time::sleep(Duration::from_millis(*life)).await;
            controller.abort();
            let _ = controller.await;
        }
    })
}

#[tokio::test]
async fn a_controller_killed_anywhere_in_the_flow_loses_nothing() {
    let chaos = chaos("restarts");
    let blue_green = json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 2,
        "abortScaleDownDelaySeconds": 2});
    let mut labelled =
        serde_json::to_value(rollout("example.com/app:1", json!({}), blue_green)).unwrap();
    labelled["metadata"]["labels"] =
        json!({"argo-rollouts.argoproj.io/controller-instance-id": "restarts"});
    let labelled: Rollout = serde_json::from_value(labelled).unwrap();
    let flow = Flow::start("restarts", labelled).await;
    let v1 = flow.phase("Healthy").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();

    flow.set_image("example.com/app:2").await;
    let v2 = flow.phase("Paused").await["currentPodHash"]
        .as_str()
        .unwrap()
        .to_owned();
    // Held across restarts: still paused, production still on version 1.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(flow.status().await["phase"], "Paused");
    assert_eq!(flow.selects("active").await, Some(v1.clone()));
    assert_eq!(flow.selects("preview").await, Some(v2.clone()));
    assert_eq!(flow.replica_sets().await.len(), 2);

    flow.patch_status(json!({"pauseConditions": null})).await;
    until("version 2 stable", 60, || async {
        let status = flow.status().await;
        status["stableRS"] == v2.as_str() && status["phase"] == "Healthy"
    })
    .await;
    assert_eq!(flow.selects("active").await, Some(v2.clone()));
    until("version 1 scaled down", 60, || async {
        flow.replicas_of(&v1).await == Some(0)
    })
    .await;

    flow.set_image("example.com/app:3").await;
    let v3 = flow.phase("Paused").await["currentPodHash"]
        .as_str()
        .unwrap()
        .to_owned();
    flow.patch_status(json!({"abort": true})).await;
    flow.phase("Degraded").await;
    until("version 3 scaled down after the abort", 60, || async {
        flow.replicas_of(&v3).await == Some(0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let aborted = flow.status().await;
    assert_eq!(aborted["abort"], true, "the abort stands");
    assert_eq!(aborted["phase"], "Degraded");
    assert_eq!(flow.selects("active").await, Some(v2.clone()));
    assert_eq!(flow.selects("preview").await, Some(v2.clone()));

    flow.patch_status(json!({"abort": false})).await;
    flow.phase("Paused").await;
    assert_eq!(
        flow.selects("active").await,
        Some(v2.clone()),
        "no switch before promote"
    );
    flow.patch_status(json!({"pauseConditions": null})).await;
    until("version 3 stable", 60, || async {
        let status = flow.status().await;
        status["stableRS"] == v3.as_str() && status["phase"] == "Healthy"
    })
    .await;
    assert_eq!(flow.selects("active").await, Some(v3));
    let sets = flow.replica_sets().await;
    assert_eq!(sets.len(), 3, "one ReplicaSet per version: {sets:?}");
    let events = flow.events().await;
    let created = events
        .iter()
        .filter(|e| e.starts_with("NewReplicaSetCreated"))
        .count();
    assert!(created <= 3, "{events:#?}");
    chaos.abort();
}

/// The canary strategy of the restart and migration tests: 50 %, a pause, 100 %.
pub fn canary_rollout(instance: &str) -> Rollout {
    let mut value =
        serde_json::to_value(rollout("example.com/app:1", json!({}), json!({}))).unwrap();
    value["spec"]["strategy"] = json!({"canary": {"canaryService": "preview",
        "stableService": "active",
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}});
    value["metadata"]["labels"] =
        json!({"argo-rollouts.argoproj.io/controller-instance-id": instance});
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn a_controller_killed_anywhere_in_a_canary_loses_nothing() {
    let chaos = chaos("canary-restarts");
    let flow = Flow::start("canary-restarts", canary_rollout("canary-restarts")).await;
    let v1 = flow.phase("Healthy").await["stableRS"]
        .as_str()
        .unwrap()
        .to_owned();

    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    let v2 = paused["currentPodHash"].as_str().unwrap().to_owned();
    // Held across restarts: one pod each, still at the pause.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = flow.status().await;
    assert_eq!(status["phase"], "Paused");
    assert_eq!(status["currentStepIndex"], 1);
    assert_eq!(flow.replicas_of(&v1).await, Some(1));
    assert_eq!(flow.replicas_of(&v2).await, Some(1));
    assert_eq!(flow.selects("active").await, Some(v1.clone()));

    flow.patch_status(json!({"abort": true})).await;
    flow.phase("Degraded").await;
    until("back on version 1", 60, || async {
        flow.replicas_of(&v2).await == Some(0) && flow.replicas_of(&v1).await == Some(2)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(flow.status().await["abort"], true, "the abort stands");

    flow.patch_status(json!({"abort": false})).await;
    flow.phase("Paused").await;
    flow.patch_status(json!({"pauseConditions": null})).await;
    until("version 2 stable", 60, || async {
        let status = flow.status().await;
        status["stableRS"] == v2.as_str()
            && status["phase"] == "Healthy"
            && status["currentStepIndex"] == 3
    })
    .await;
    // The stable Service follows the status within a reconcile.
    until("the stable Service on version 2", 30, || async {
        flow.selects("active").await == Some(v2.clone())
    })
    .await;
    assert_eq!(
        flow.replica_sets().await.len(),
        2,
        "one ReplicaSet per version"
    );
    let events = flow.events().await;
    let completed: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("RolloutStepCompleted Rollout step 1/3"))
        .collect();
    assert!(
        completed.len() <= 2,
        "step 1 completed once per try: {events:#?}"
    );
    chaos.abort();
}
