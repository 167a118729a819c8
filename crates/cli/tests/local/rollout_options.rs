//! The blue-green options one by one, on simulated pods (ready 200 ms after start) unless a
//! test needs a failing image: automatic promotion with and without a delay,
//! previewReplicaCount, abortScaleDownDelaySeconds, scaleDownDelayRevisionLimit, undo inside
//! and after the scale-down delay (fast rollback vs. a new pause) and a re-applied template,
//! the progress deadline with and without progressDeadlineAbort, and InvalidSpec cases.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sluice_api::Rollout;

use super::{client, from, namespace};

/// Waits up to `seconds` for `check`.
pub async fn until<F, Fut>(what: &str, seconds: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out after {seconds} s waiting for {what}; in-process requests refused: {:#?}",
        super::refused_in_process()
    );
}

/// One Rollout `demo` with Services `active` and `preview` in a namespace of its own.
pub struct Flow {
    pub ns: String,
    pub rollouts: Api<Rollout>,
    pub sets: Api<ReplicaSet>,
    pub services: Api<Service>,
}

/// A Rollout of `image` with `spec` and `blueGreen` fields added to the defaults.
pub fn rollout(image: &str, spec: Value, blue_green: Value) -> Rollout {
    let mut strategy = json!({"activeService": "active", "previewService": "preview"});
    strategy
        .as_object_mut()
        .unwrap()
        .extend(blue_green.as_object().unwrap().clone());
    let mut value = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image}]}},
            "strategy": {"blueGreen": strategy}}});
    value["spec"]
        .as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    from(value)
}

impl Flow {
    /// The namespace and Services, then `rollout`.
    pub async fn start(prefix: &str, rollout: Rollout) -> Self {
        Self::start_with(client(), prefix, rollout).await
    }

    /// As [`Flow::start`], through `client`.
    pub async fn start_with(client: Client, prefix: &str, rollout: Rollout) -> Self {
        let ns = namespace(&client, prefix).await;
        let flow = Self {
            rollouts: Api::namespaced(client.clone(), &ns),
            sets: Api::namespaced(client.clone(), &ns),
            services: Api::namespaced(client, &ns),
            ns,
        };
        for name in ["active", "preview"] {
            flow.service(name).await;
        }
        flow.rollouts
            .create(&PostParams::default(), &rollout)
            .await
            .unwrap();
        flow
    }

    pub async fn service(&self, name: &str) {
        let service: Service = from(json!({"metadata": {"name": name},
            "spec": {"selector": {"app": "demo"}, "ports": [{"port": 80, "targetPort": 8080}]}}));
        self.services
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }

    pub async fn status(&self) -> Value {
        let rollout = self.rollouts.get("demo").await.unwrap();
        serde_json::to_value(rollout.status).unwrap_or_default()
    }

    /// Waits for `phase` as of the latest spec; the status then.
    pub async fn phase(&self, phase: &str) -> Value {
        until(&format!("phase {phase} in {}", self.ns), 40, || async {
            let rollout = self.rollouts.get("demo").await.unwrap();
            let generation = rollout.metadata.generation.unwrap_or(0).to_string();
            let status = serde_json::to_value(rollout.status).unwrap_or_default();
            status["phase"] == phase && status["observedGeneration"] == generation.as_str()
        })
        .await;
        self.status().await
    }

    pub async fn set_image(&self, image: &str) {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
        self.rollouts
            .patch("demo", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    pub async fn patch_status(&self, status: Value) {
        self.rollouts
            .patch_status(
                "demo",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
    }

    /// What a Service selects (its `rollouts-pod-template-hash`).
    pub async fn selects(&self, service: &str) -> Option<String> {
        let service = self.services.get(service).await.unwrap();
        service
            .spec
            .and_then(|s| s.selector)
            .and_then(|s| s.get("rollouts-pod-template-hash").cloned())
    }

    /// Each ReplicaSet: hash → (revision, replicas).
    pub async fn replica_sets(&self) -> std::collections::BTreeMap<String, (i64, i32)> {
        let list = self.sets.list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .map(|rs| {
                let hash = rs.labels()["rollouts-pod-template-hash"].clone();
                let revision = rs.annotations()["rollout.argoproj.io/revision"]
                    .parse()
                    .unwrap();
                (
                    hash,
                    (revision, rs.spec.as_ref().unwrap().replicas.unwrap()),
                )
            })
            .collect()
    }

    pub async fn replicas_of(&self, hash: &str) -> Option<i32> {
        self.replica_sets().await.get(hash).map(|(_, r)| *r)
    }

    /// Event messages on the Rollout.
    pub async fn events(&self) -> Vec<String> {
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(self.rollouts.clone().into_client(), &self.ns);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.kind.as_deref() == Some("Rollout"))
            .map(|e| {
                format!(
                    "{} {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect()
    }
}

fn hash(status: &Value, field: &str) -> String {
    status[field].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn automatic_promotion_switches_once_the_preview_is_ready() {
    let flow = Flow::start("auto", rollout("example.com/app:1", json!({}), json!({}))).await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    until("stable on the new version", 40, || async {
        let status = flow.status().await;
        status["stableRS"] != v1.as_str() && status["phase"] == "Healthy"
    })
    .await;
    let status = flow.status().await;
    let v2 = hash(&status, "stableRS");
    assert_eq!(flow.selects("active").await, Some(v2.clone()));
    assert_eq!(flow.selects("preview").await, Some(v2));
    let events = flow.events().await;
    assert!(
        !events.iter().any(|e| e.starts_with("RolloutPaused")),
        "no pause: {events:#?}"
    );
}

#[tokio::test]
async fn auto_promotion_seconds_pauses_then_promotes_by_itself() {
    let blue_green = json!({"autoPromotionSeconds": 2});
    let flow = Flow::start(
        "autosecs",
        rollout("example.com/app:1", json!({}), blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    assert_eq!(paused["message"], "BlueGreenPause");
    assert_eq!(flow.selects("active").await, Some(v1.clone()), "not yet");
    let done = flow.phase("Healthy").await;
    assert_ne!(done["stableRS"], v1.as_str(), "promoted without a promote");
    let events = flow.events().await;
    assert!(
        events
            .iter()
            .any(|e| e == "RolloutResumed Rollout is resumed"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn preview_replica_count_runs_a_smaller_preview_until_promoted() {
    let spec = json!({"replicas": 3});
    let blue_green = json!({"previewReplicaCount": 1, "autoPromotionEnabled": false});
    let flow = Flow::start(
        "previewcount",
        rollout("example.com/app:1", spec, blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    let v2 = hash(&paused, "currentPodHash");
    assert_eq!(
        flow.replicas_of(&v2).await,
        Some(1),
        "the preview runs one pod"
    );
    assert_eq!(flow.replicas_of(&v1).await, Some(3));
    flow.patch_status(json!({"pauseConditions": null})).await;
    let done = flow.phase("Healthy").await;
    assert_eq!(done["stableRS"], v2.as_str());
    assert_eq!(
        flow.replicas_of(&v2).await,
        Some(3),
        "scaled up before the switch"
    );
    assert_eq!(flow.selects("active").await, Some(v2));
}

#[tokio::test]
async fn an_abort_scales_the_preview_down_after_its_delay() {
    let blue_green = json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 1});
    let flow = Flow::start(
        "abortdelay",
        rollout("example.com/app:1", json!({}), blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    let v2 = hash(&flow.phase("Paused").await, "currentPodHash");
    flow.patch_status(json!({"abort": true})).await;
    let aborted = flow.phase("Degraded").await;
    assert!(aborted["abortedAt"].is_string(), "{aborted}");
    until("the aborted ReplicaSet at zero", 20, || async {
        flow.replicas_of(&v2).await == Some(0)
    })
    .await;
    assert_eq!(flow.selects("active").await, Some(v1.clone()));
    assert_eq!(flow.selects("preview").await, Some(v1.clone()));
    assert_eq!(flow.replicas_of(&v1).await, Some(2));
    let events = flow.events().await;
    assert!(
        events
            .iter()
            .any(|e| e == "RolloutAborted Rollout aborted update to revision 2"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn the_revision_limit_caps_the_old_versions_kept_up() {
    let blue_green = json!({"scaleDownDelaySeconds": 60, "scaleDownDelayRevisionLimit": 1});
    let flow = Flow::start(
        "revlimit",
        rollout("example.com/app:1", json!({}), blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    let mut stable = v1.clone();
    for version in ["2", "3"] {
        flow.set_image(&format!("example.com/app:{version}")).await;
        let before = stable.clone();
        until(&format!("version {version} stable"), 40, || async {
            let status = flow.status().await;
            status["stableRS"] != before.as_str() && status["phase"] == "Healthy"
        })
        .await;
        stable = hash(&flow.status().await, "stableRS");
    }
    let v2 = flow
        .replica_sets()
        .await
        .into_iter()
        .find(|(_, (revision, _))| *revision == 2)
        .unwrap()
        .0;
    until("version 1 scaled down at once", 20, || async {
        flow.replicas_of(&v1).await == Some(0)
    })
    .await;
    assert_eq!(
        flow.replicas_of(&v2).await,
        Some(2),
        "version 2 waits out its delay"
    );
}

#[tokio::test]
async fn undo_inside_the_delay_switches_back_at_once_and_after_it_pauses() {
    let blue_green = json!({"autoPromotionEnabled": false, "scaleDownDelaySeconds": 3});
    let flow = Flow::start("undo", rollout("example.com/app:1", json!({}), blue_green)).await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    let v2 = hash(&flow.phase("Paused").await, "currentPodHash");
    flow.patch_status(json!({"pauseConditions": null})).await;
    until("version 2 stable", 40, || async {
        flow.status().await["stableRS"] == v2.as_str()
    })
    .await;
    // Inside the delay: back to version 1 at once, no pause; its ReplicaSet becomes revision 3.
    flow.set_image("example.com/app:1").await;
    let back = flow.phase("Healthy").await;
    assert_eq!(back["stableRS"], v1.as_str());
    assert_eq!(flow.selects("active").await, Some(v1.clone()));
    assert_eq!(flow.replica_sets().await[&v1].0, 3, "renumbered");
    let history = flow.sets.get(&format!("demo-{v1}")).await.unwrap();
    assert_eq!(
        history.annotations()["rollout.argoproj.io/revision-history"],
        "1"
    );
    assert!(
        !flow
            .events()
            .await
            .iter()
            .any(|e| e.starts_with("RolloutPaused") && e.contains("revision 3"))
    );
    // After version 2's delay: going back to it is an update like any other, with a pause.
    until("version 2 scaled down", 20, || async {
        flow.replicas_of(&v2).await == Some(0)
    })
    .await;
    flow.set_image("example.com/app:2").await;
    let paused = flow.phase("Paused").await;
    assert_eq!(
        paused["currentPodHash"],
        v2.as_str(),
        "the old ReplicaSet is reused"
    );
    assert_eq!(flow.selects("active").await, Some(v1));
    assert_eq!(flow.replica_sets().await.len(), 2, "no third ReplicaSet");
}

#[tokio::test]
async fn a_version_that_never_becomes_ready_is_degraded_at_its_progress_deadline() {
    let spec = json!({"progressDeadlineSeconds": 2});
    let blue_green = json!({"autoPromotionEnabled": false});
    let flow = Flow::start(
        "deadline",
        rollout("argoproj/rollouts-demo:blue", spec, blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("argoproj/rollouts-demo:does-not-exist")
        .await;
    let degraded = flow.phase("Degraded").await;
    let message = degraded["message"].as_str().unwrap();
    assert!(
        message.starts_with("ProgressDeadlineExceeded: ReplicaSet \"demo-")
            && message.ends_with("\" has timed out progressing."),
        "{message}"
    );
    assert_eq!(
        flow.selects("active").await,
        Some(v1.clone()),
        "production untouched"
    );
    assert_ne!(degraded["abort"], true, "no progressDeadlineAbort");
    let progressing = degraded["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    // A timed-out update stays Degraded until it progresses (it used to read the condition's
    // fresh lastUpdateTime as progress and flap back to Progressing).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(flow.status().await["phase"], "Degraded");

    // With progressDeadlineAbort the update is aborted: both Services back on stable.
    let abort = json!({"spec": {"progressDeadlineAbort": true}});
    flow.rollouts
        .patch("demo", &PatchParams::default(), &Patch::Merge(abort))
        .await
        .unwrap();
    until("aborted", 30, || async {
        let status = flow.status().await;
        status["abort"] == true
            && status["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("RolloutAborted"))
    })
    .await;
    until("the preview back on stable", 20, || async {
        flow.selects("preview").await.as_deref() == Some(v1.as_str())
    })
    .await;
    assert_eq!(flow.selects("active").await, Some(v1));
}

#[tokio::test]
async fn invalid_specs_are_reported_and_nothing_is_scaled_until_fixed() {
    let client = client();
    let ns = namespace(&client, "invalid").await;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let flow = Flow {
        ns: ns.clone(),
        rollouts: rollouts.clone(),
        sets: sets.clone(),
        services: Api::namespaced(client.clone(), &ns),
    };
    // The Services do not exist yet.
    rollouts
        .create(
            &PostParams::default(),
            &rollout("example.com/app:1", json!({}), json!({})),
        )
        .await
        .unwrap();
    let degraded = flow.phase("Degraded").await;
    assert_eq!(
        degraded["message"],
        "InvalidSpec: spec.strategy.blueGreen.activeService: Invalid value: \"active\": service \"active\" not found"
    );
    let invalid = degraded["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "InvalidSpec")
        .cloned()
        .unwrap();
    assert_eq!(invalid["status"], "True");
    assert!(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing scaled"
    );
    flow.service("active").await;
    until("the preview Service reported missing", 20, || async {
        let status = flow.status().await;
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("service \"preview\" not found"))
    })
    .await;
    assert!(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    flow.service("preview").await;
    flow.phase("Healthy").await;

    // A template whose labels the selector does not match: InvalidSpec from validation.
    let bad = json!({"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}});
    flow.rollouts
        .patch("demo", &PatchParams::default(), &Patch::Merge(bad))
        .await
        .unwrap();
    let degraded = flow.phase("Degraded").await;
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("InvalidSpec: "),
        "{degraded}"
    );
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // A second Rollout naming Services the first one manages: InvalidSpec, nothing touched.
    let mut other =
        serde_json::to_value(rollout("example.com/app:1", json!({}), json!({}))).unwrap();
    other["metadata"]["name"] = json!("other");
    other["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    other["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
    rollouts
        .create(&PostParams::default(), &from(other))
        .await
        .unwrap();
    until("the second Rollout refused", 20, || async {
        let status = serde_json::to_value(rollouts.get("other").await.unwrap().status).unwrap_or_default();
        status["message"]
            == "InvalidSpec: spec.strategy.blueGreen.activeService: Invalid value: \"active\": Service \"active\" is managed by another Rollout (demo)"
    })
    .await;
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn a_new_version_after_an_abort_starts_afresh() {
    let blue_green = json!({"autoPromotionEnabled": false});
    let flow = Flow::start(
        "afterabort",
        rollout("example.com/app:1", json!({}), blue_green),
    )
    .await;
    let v1 = hash(&flow.phase("Healthy").await, "stableRS");
    flow.set_image("example.com/app:2").await;
    flow.phase("Paused").await;
    flow.patch_status(json!({"abort": true})).await;
    flow.phase("Degraded").await;
    // The fix is pushed: a new update, paused for promotion like any other.
    flow.set_image("example.com/app:3").await;
    let paused = flow.phase("Paused").await;
    assert_ne!(paused["abort"], true, "the abort is lifted: {paused}");
    let v3 = hash(&paused, "currentPodHash");
    assert_eq!(flow.selects("active").await, Some(v1));
    assert_eq!(flow.selects("preview").await, Some(v3.clone()));
    flow.patch_status(json!({"pauseConditions": null})).await;
    assert_eq!(flow.phase("Healthy").await["stableRS"], v3.as_str());
}
