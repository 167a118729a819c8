//! The canary behind the NGINX router, played through the simulator: the canary Ingress's
//! weight at each step, the pods of each ReplicaSet, the stable Service switched only once
//! the canary takes all the traffic, the wait for the data plane, abort and
//! `dynamicStableScale`.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use sluice_api::names::annotation;

use super::*;
use crate::{
    model::{Event, Routed, Routing, Targets},
    router::{
        self,
        nginx::{IngressPair, Nginx, Owner},
    },
};

/// The user's shape: 10 %, pause, 50 %, pause, 100 %.
fn routed_spec(extra: serde_json::Value) -> CanaryStrategy {
    let mut value = json!({
        "canaryService": "canary", "stableService": "stable",
        "trafficRouting": {"nginx": {"stableIngress": "web"}},
        "steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
    });
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    strategy(value)
}

fn stable_ingress() -> Arc<Ingress> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "demo",
                "annotations": {annotation::SERVED_GENERATION: "1"}},
            "spec": {"rules": [{"host": "web.local", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "stable", "port": {"number": 80}}}}]}}]},
        }))
        .unwrap(),
    )
}

/// An update of `spec` with 10 replicas behind the router, the canary Ingress at weight 0.
fn routed_update(spec: &CanaryStrategy) -> Observed<'_> {
    let mut o = update(spec, 10);
    let nginx = spec
        .traffic_routing
        .as_ref()
        .unwrap()
        .nginx
        .as_ref()
        .unwrap();
    let owner = Owner {
        name: "demo".into(),
        namespace: "demo".into(),
        uid: "uid".into(),
    };
    let pair = IngressPair {
        stable: stable_ingress(),
        canary: None,
    };
    let router = Nginx::new(owner, spec, nginx, vec![pair]).unwrap();
    let Strategy::Canary(c) = &mut o.strategy else {
        unreachable!()
    };
    c.routing = Routing::Routed(Box::new(Routed {
        router: router::Observed::Nginx(router),
        weights: None,
        stable_settled: true,
    }));
    o
}

fn served(o: &Observed<'_>) -> Option<String> {
    let Strategy::Canary(c) = &o.strategy else {
        unreachable!()
    };
    let Routing::Routed(routed) = &c.routing else {
        unreachable!()
    };
    let router::Observed::Nginx(nginx) = &routed.router;
    nginx.served_weight()
}

fn routed_of<'o>(o: &'o mut Observed<'_>) -> &'o mut Routed {
    let Strategy::Canary(c) = &mut o.strategy else {
        unreachable!()
    };
    let Routing::Routed(routed) = &mut c.routing else {
        unreachable!()
    };
    routed
}

fn promote(o: &mut Observed<'_>) {
    o.status.pauses.clear();
}

#[test]
fn the_users_canary_shifts_traffic_with_the_stable_at_full_size() {
    let spec = routed_spec(json!({}));
    let mut o = routed_update(&spec);
    let plans = settle(&mut o, NOW);
    assert_eq!(
        plans.last().unwrap().phase,
        Phase::Paused(PauseReason::CanaryPauseStep)
    );
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (1, 10));
    assert_eq!(served(&o).as_deref(), Some("10"));
    assert_eq!(selects(&o), (Some("new".into()), Some("old".into())));
    assert!(
        events(&plans)
            .contains(&"TrafficWeightUpdated: Traffic weight updated from 0 to 10".to_owned())
    );

    promote(&mut o);
    settle(&mut o, NOW);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (5, 10));
    assert_eq!(served(&o).as_deref(), Some("50"));

    // The last pause promoted: 100 %, then the stable Service on the new pods, then the
    // split back to the stable Ingress; the old pods stay for scaleDownDelaySeconds.
    promote(&mut o);
    let plans = settle(&mut o, NOW);
    assert_eq!(o.status.stable.as_deref(), Some("new"));
    assert_eq!(selects(&o), (Some("new".into()), Some("new".into())));
    assert_eq!(served(&o).as_deref(), Some("0"));
    let weights: Vec<String> = events(&plans)
        .into_iter()
        .filter(|e| e.starts_with("TrafficWeightUpdated"))
        .collect();
    assert_eq!(
        weights,
        [
            "TrafficWeightUpdated: Traffic weight updated from 50 to 100",
            "TrafficWeightUpdated: Traffic weight updated from 100 to 0",
        ]
    );
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (10, 10));
    let deadline = o.replica_set("old").unwrap().scale_down_deadline;
    assert_eq!(deadline, Some(t("2026-11-01T10:00:30Z")));
    settle(&mut o, "2026-11-01T10:00:30Z");
    assert_eq!(replicas(&o, "old"), 0);
    assert_eq!(plan(&o, t("2026-11-01T10:00:31Z")).phase, Phase::Healthy);
}

#[test]
fn nothing_moves_on_until_the_data_plane_serves_the_weight() {
    let spec = routed_spec(json!({"progressDeadlineAbort": true}));
    let mut o = routed_update(&spec);
    o.deadline.seconds = 60;
    // Scale up the canary (not played through the router: nothing is served).
    for _ in 0..3 {
        let next = plan(&o, t(NOW));
        let scaled: Vec<_> = next
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Scale { .. } | Action::CreateReplicaSet { .. }))
            .cloned()
            .collect();
        play(
            &mut o,
            &Plan {
                actions: scaled,
                ..next
            },
        );
    }
    assert_eq!(replicas(&o, "new"), 1);
    let waiting = plan(&o, t(NOW));
    assert!(
        waiting
            .actions
            .iter()
            .any(|a| matches!(a, Action::Route(_)))
    );
    assert_eq!(
        waiting.phase.message(),
        "waiting for the ingress to serve canary weight 10"
    );
    assert_eq!(waiting.progress.step, Some(0), "the step is not complete");
    assert!(waiting.progress.pauses.is_empty());
    let Targets::Canary { weights, .. } = &waiting.targets else {
        unreachable!()
    };
    assert_eq!(weights.as_ref().unwrap().verified, Some(false));
    // The wait counts toward the progress deadline.
    let late = plan(&o, t("2026-11-01T10:01:00Z"));
    assert_eq!(late.phase.rollout_phase(), RolloutPhase::Degraded);
    // Served: the step completes.
    play(&mut o, &waiting);
    let next = plan(&o, t(NOW));
    assert_eq!(next.progress.step, Some(1));
}

#[test]
fn abort_returns_all_traffic_to_stable_at_once_and_the_canary_goes_after_its_delay() {
    let spec = routed_spec(json!({}));
    let mut o = routed_update(&spec);
    settle(&mut o, NOW);
    promote(&mut o);
    settle(&mut o, NOW);
    assert_eq!(served(&o).as_deref(), Some("50"));
    o.status.abort = true;
    let first = plan(&o, t(NOW));
    let Targets::Canary { weights, .. } = &first.targets else {
        unreachable!()
    };
    assert_eq!(weights.as_ref().unwrap().canary, 0, "at once");
    settle(&mut o, NOW);
    assert_eq!(served(&o).as_deref(), Some("0"));
    assert_eq!(selects(&o), (Some("old".into()), Some("old".into())));
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (5, 10));
    assert_eq!(
        o.replica_set("new").unwrap().scale_down_deadline,
        Some(t("2026-11-01T10:00:30Z"))
    );
    settle(&mut o, "2026-11-01T10:00:30Z");
    assert_eq!(replicas(&o, "new"), 0);
}

#[test]
fn dynamic_stable_scale_trades_pods_as_weight_moves_and_back_on_abort() {
    let spec = routed_spec(json!({"dynamicStableScale": true}));
    let mut o = routed_update(&spec);
    settle(&mut o, NOW);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (1, 9));
    promote(&mut o);
    settle(&mut o, NOW);
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (5, 5));
    o.status.abort = true;
    settle(&mut o, NOW);
    assert_eq!(served(&o).as_deref(), Some("0"));
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (0, 10));
    assert_eq!(selects(&o), (Some("old".into()), Some("old".into())));

    // Through to the end: the old stable goes at once after promotion.
    let mut o = routed_update(&spec);
    for _ in 0..3 {
        settle(&mut o, NOW);
        promote(&mut o);
    }
    settle(&mut o, NOW);
    assert_eq!(o.status.stable.as_deref(), Some("new"));
    assert_eq!((replicas(&o, "new"), replicas(&o, "old")), (10, 0));
    assert!(
        routed_of(&mut o)
            .weights
            .as_ref()
            .is_some_and(|w| w.canary == 0)
    );
}

#[test]
fn a_header_route_step_completes_and_what_nginx_cannot_express_is_a_warning() {
    let spec = routed_spec(json!({
        "trafficRouting": {"nginx": {"stableIngress": "web"},
            "managedRoutes": [{"name": "h"}, {"name": "m"}]},
        "steps": [{"setWeight": 10},
            {"setHeaderRoute": {"name": "h", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"setMirrorRoute": {"name": "m", "match": [{"method": {"exact": "GET"}}]}},
            {"pause": {}}],
    }));
    let mut o = routed_update(&spec);
    let plans = settle(&mut o, NOW);
    assert_eq!(
        plans.last().unwrap().phase,
        Phase::Paused(PauseReason::CanaryPauseStep)
    );
    let warnings: Vec<&Event> = plans
        .iter()
        .flat_map(|p| &p.events)
        .filter(|e| e.warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("cannot mirror"));
    let router::Observed::Nginx(nginx) = &routed_of(&mut o).router;
    let mut check = nginx.clone();
    use crate::router::Router;
    check.set_weight(10);
    let route = spec.steps()[1].set_header_route.clone().unwrap();
    check.set_header_route(&route);
    assert!(
        check.writes().is_empty(),
        "the canary Ingress holds the header route"
    );
}
