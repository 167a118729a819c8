//! Validation of `spec.strategy.canary`: steps, traffic routing, services, ping-pong and
//! experiments, with Argo's messages.

use super::{
    FieldPath, Problems,
    rollout::{
        int_or_percent_value, int_or_string, validate_anti_affinity, validate_arguments,
        validate_int_or_percent, validate_rollout_analysis,
    },
};
use crate::{CanaryStep, CanaryStrategy, StringMatch, duration};

const INVALID_STEP: &str = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause";
const DUPLICATED_SERVICES_CANARY: &str = "This rollout uses the same service for the stable and canary services, but two different services are required.";
const INVALID_TRAFFIC_ROUTING: &str =
    "Canary service and Stable service must to be set to use Traffic Routing";
const SET_CANARY_SCALE_REQUIRES_TRAFFIC_ROUTING: &str =
    "SetCanaryScale requires TrafficRouting to be set";
const SET_HEADER_ROUTE_REQUIRES_TRAFFIC_ROUTING: &str =
    "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix";
const SET_MIRROR_ROUTE_REQUIRES_ISTIO: &str =
    "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins";
const ROUTE_NOT_IN_MANAGED_ROUTES: &str =
    "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes";
const STRING_MATCH_MULTIPLE: &str =
    "StringMatch match value must have exactly one of the following: exact, regex, prefix";
const STRING_MATCH_MISSING: &str =
    "StringMatch value missed, match value must have one of the following: exact, regex, prefix";
const ALB_HEADER_EXACT_ONLY: &str =
    "SetHeaderRoute match value invalid. ALB supports 'exact' value only";
const INVALID_DURATION: &str = "Duration needs to be greater than 0";
const MAX_SURGE_AND_UNAVAILABLE_ZERO: &str = "MaxSurge and MaxUnavailable both can not be zero";
const CANARY_SCALE_DOWN_DELAY: &str =
    "Canary scaleDownDelaySeconds can only be used with traffic routing";
const CANARY_DYNAMIC_STABLE_SCALE: &str =
    "Canary dynamicStableScale can only be used with traffic routing";
const DYNAMIC_STABLE_SCALE_WITH_DELAY: &str =
    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds";
const MAX_WEIGHT_NGINX_AND_PLUGINS: &str =
    "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins";
const PING_PONG_BOTH: &str =
    "Ping service and Pong service must to be set to use Ping-Pong feature";
const PING_PONG_DUPLICATED: &str = "This rollout uses the same service for the ping and pong services, but two different services are required.";
const PING_PONG_ALB_ONLY: &str = "Ping-pong feature works with the ALB traffic routing only";
const PING_PONG_ALB_ROOT: &str =
    "Root service field is required for the configuration with ALB and ping-pong feature enabled";
const EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING: &str =
    "Experiment template weight cannot be set unless TrafficRouting is enabled";
const EXPERIMENT_WEIGHT_ROUTERS: &str = "Experiment template weight is only available for TrafficRouting with SMI, ALB, and Istio at this time";

pub(super) fn validate_canary(canary: &CanaryStrategy, path: &FieldPath, problems: &mut Problems) {
    let surge = canary.max_surge();
    let unavailable = canary.max_unavailable();
    validate_int_or_percent(&path.child("maxSurge"), canary.max_surge.as_ref(), problems);
    validate_int_or_percent(
        &path.child("maxUnavailable"),
        canary.max_unavailable.as_ref(),
        problems,
    );
    if int_or_percent_value(&surge) == Some(0) && int_or_percent_value(&unavailable) == Some(0) {
        problems.invalid(
            &path.child("maxSurge"),
            int_or_string(&surge),
            MAX_SURGE_AND_UNAVAILABLE_ZERO,
        );
    }
    let canary_service = canary.canary_service.as_deref().unwrap_or_default();
    let stable_service = canary.stable_service.as_deref().unwrap_or_default();
    if !canary_service.is_empty() && canary_service == stable_service {
        problems.invalid(
            &path.child("stableService"),
            format!("{stable_service:?}"),
            DUPLICATED_SERVICES_CANARY,
        );
    }
    for (name, value) in [
        ("scaleDownDelaySeconds", canary.scale_down_delay_seconds),
        (
            "scaleDownDelayRevisionLimit",
            canary.scale_down_delay_revision_limit,
        ),
        (
            "abortScaleDownDelaySeconds",
            canary.abort_scale_down_delay_seconds,
        ),
        ("minPodsPerReplicaSet", canary.min_pods_per_replica_set),
    ] {
        problems.non_negative(&path.child(name), value);
    }
    let routing = canary.traffic_routing.as_ref();
    let tr_path = path.child("trafficRouting");
    if let Some(ping_pong) = &canary.ping_pong {
        let pp_path = path.child("pingPong");
        if routing.is_some_and(|r| r.alb.is_none()) {
            problems.invalid(&tr_path.child("alb"), "nil", PING_PONG_ALB_ONLY);
        }
        if ping_pong.ping_service.is_empty() {
            problems.invalid(&pp_path.child("pingService"), "\"\"", PING_PONG_BOTH);
        }
        if ping_pong.pong_service.is_empty() {
            problems.invalid(&pp_path.child("pongService"), "\"\"", PING_PONG_BOTH);
        }
        if ping_pong.ping_service == ping_pong.pong_service {
            problems.invalid(
                &pp_path.child("pingService"),
                &ping_pong.ping_service,
                PING_PONG_DUPLICATED,
            );
        }
        if let Some(alb) = routing.and_then(|r| r.alb.as_ref())
            && alb.root_service.as_deref().is_none_or(str::is_empty)
        {
            problems.invalid(
                &tr_path.child("alb").child("rootService"),
                "\"\"",
                PING_PONG_ALB_ROOT,
            );
        }
    }
    match routing {
        None => {
            if let Some(delay) = canary.scale_down_delay_seconds {
                problems.invalid(
                    &path.child("scaleDownDelaySeconds"),
                    delay,
                    CANARY_SCALE_DOWN_DELAY,
                );
            }
            if canary.dynamic_stable_scale() {
                problems.invalid(
                    &path.child("dynamicStableScale"),
                    true,
                    CANARY_DYNAMIC_STABLE_SCALE,
                );
            }
        }
        Some(routing) => {
            let needs_services = (routing.alb.is_some() && canary.ping_pong.is_none())
                || routing
                    .istio
                    .as_ref()
                    .is_some_and(|i| i.destination_rule.is_none())
                || routing.smi.is_some()
                || routing.apisix.is_some()
                || routing.ambassador.is_some()
                || routing.nginx.is_some()
                || routing.app_mesh.is_some()
                || routing.traefik.is_some();
            if needs_services {
                if stable_service.is_empty() {
                    problems.invalid(
                        &path.child("stableService"),
                        "\"\"",
                        INVALID_TRAFFIC_ROUTING,
                    );
                }
                if canary_service.is_empty() {
                    problems.invalid(
                        &path.child("canaryService"),
                        "\"\"",
                        INVALID_TRAFFIC_ROUTING,
                    );
                }
            }
            if canary.scale_down_delay_seconds.is_some() && canary.dynamic_stable_scale() {
                problems.invalid(
                    &path.child("dynamicStableScale"),
                    true,
                    DYNAMIC_STABLE_SCALE_WITH_DELAY,
                );
            }
            if let Some(max) = routing.max_traffic_weight {
                let has_plugins = routing.plugins.as_ref().is_some_and(|p| !p.is_empty());
                if routing.nginx.is_none() && !has_plugins {
                    problems.invalid(
                        &tr_path.child("maxTrafficWeight"),
                        max,
                        MAX_WEIGHT_NGINX_AND_PLUGINS,
                    );
                } else if max <= 0 {
                    problems.invalid(
                        &tr_path.child("maxTrafficWeight"),
                        max,
                        "must be greater than 0",
                    );
                }
            }
        }
    }
    if let Some(analysis) = &canary.analysis {
        let at = path.child("analysis");
        validate_rollout_analysis(&analysis.analysis, &at, problems);
        problems.non_negative(&at.child("startingStep"), analysis.starting_step);
    }
    for (i, step) in canary.steps().iter().enumerate() {
        validate_step(canary, step, &path.child("steps").index(i), problems);
    }
    validate_anti_affinity(
        canary.anti_affinity.as_ref(),
        &path.child("antiAffinity"),
        problems,
    );
}

fn validate_step(
    canary: &CanaryStrategy,
    step: &CanaryStep,
    path: &FieldPath,
    problems: &mut Problems,
) {
    // As Argo: at most one of setWeight, pause, experiment and analysis (setCanaryScale and
    // the route steps may come beside one, as in Argo's APISIX example), and at least one of
    // all eight.
    let exclusive = [
        step.set_weight.is_some(),
        step.pause.is_some(),
        step.experiment.is_some(),
        step.analysis.is_some(),
    ];
    if exclusive.iter().filter(|s| **s).count() > 1 {
        let described = format!(
            "step.Experiment: {} step.Pause: {} step.SetWeight: {} step.Analysis: {}",
            step.experiment.is_some(),
            step.pause.is_some(),
            step.set_weight.is_some(),
            step.analysis.is_some()
        );
        problems.invalid(path, described, INVALID_STEP);
    }
    let others = [
        step.set_canary_scale.is_some(),
        step.set_header_route.is_some(),
        step.set_mirror_route.is_some(),
        step.plugin.is_some(),
    ];
    if !exclusive.iter().chain(&others).any(|s| *s) {
        // Argo's value says which are unset (`== nil`), so every one reads `true`.
        let described = "step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true step.Plugin: true";
        problems.invalid(path, described, INVALID_STEP);
    }
    let routing = canary.traffic_routing.as_ref();
    let max_weight = canary.max_traffic_weight();
    if let Some(weight) = step.set_weight
        && !(0..=max_weight).contains(&weight)
    {
        let message = format!("SetWeight needs to be between 0 and {max_weight}");
        problems.invalid(&path.child("setWeight"), weight, &message);
    }
    if let Some(duration) = step.pause.as_ref().and_then(|p| p.duration.as_ref()) {
        let at = path.child("pause").child("duration");
        match duration::pause_duration(duration) {
            Ok(_) => {}
            Err(duration::DurationError::Negative(_)) => {
                problems.invalid(&at, int_or_string(duration), INVALID_DURATION)
            }
            Err(err) => problems.invalid(&at, int_or_string(duration), &err.to_string()),
        }
    }
    if let Some(scale) = &step.set_canary_scale {
        if routing.is_none() {
            let tr = FieldPath::new("spec.strategy.canary.trafficRouting");
            problems.required(&tr, SET_CANARY_SCALE_REQUIRES_TRAFFIC_ROUTING);
        }
        let at = path.child("setCanaryScale");
        problems.non_negative(&at.child("replicas"), scale.replicas);
        if let Some(weight) = scale.weight.filter(|w| !(0..=100).contains(w)) {
            problems.invalid(&at.child("weight"), weight, "must be between 0 and 100");
        }
    }
    if let Some(header) = &step.set_header_route {
        let at = path.child("setHeaderRoute");
        // sluice departs from Argo here: its NGINX router expresses a header route as
        // `canary-by-header` (Argo's validation refuses the step with NGINX, and its NGINX
        // router would ignore it).
        let supported = routing.filter(|r| {
            r.istio.is_some()
                || r.nginx.is_some()
                || r.alb.is_some()
                || r.apisix.is_some()
                || r.plugins.as_ref().is_some_and(|p| !p.is_empty())
        });
        match supported {
            None => problems.invalid(
                &at,
                "<setHeaderRoute>",
                SET_HEADER_ROUTE_REQUIRES_TRAFFIC_ROUTING,
            ),
            Some(routing) => {
                for (j, m) in header.match_.iter().flatten().enumerate() {
                    let match_path = at.child("match").index(j);
                    if routing.alb.is_some() {
                        let v = &m.header_value;
                        if v.exact.as_deref().is_none_or(str::is_empty)
                            || v.prefix.is_some()
                            || v.regex.is_some()
                        {
                            problems.invalid(&match_path, "<headerValue>", ALB_HEADER_EXACT_ONLY);
                        }
                    } else {
                        validate_string_match(&m.header_value, &match_path, problems);
                    }
                }
            }
        }
        validate_managed_route(
            canary,
            header.name.as_deref().unwrap_or_default(),
            &at,
            problems,
        );
    }
    if let Some(mirror) = &step.set_mirror_route {
        let at = path.child("setMirrorRoute");
        if routing
            .is_none_or(|r| r.istio.is_none() && r.plugins.as_ref().is_none_or(|p| p.is_empty()))
        {
            problems.invalid(&at, "<setMirrorRoute>", SET_MIRROR_ROUTE_REQUIRES_ISTIO);
        }
        for (j, m) in mirror.match_.iter().flatten().enumerate() {
            let match_path = at.child("match").index(j);
            for string_match in [&m.method, &m.path].into_iter().flatten() {
                validate_string_match(string_match, &match_path, problems);
            }
        }
        if let Some(pct) = mirror.percentage.filter(|p| !(0..=100).contains(p)) {
            problems.invalid(&at.child("percentage"), pct, "must be between 0 and 100");
        }
        validate_managed_route(canary, &mirror.name, &at, problems);
    }
    if let Some(experiment) = &step.experiment {
        let at = path.child("experiment");
        if experiment.templates.is_empty() {
            problems.required(
                &at.child("templates"),
                "an experiment step needs at least one template",
            );
        }
        for (j, template) in experiment.templates.iter().enumerate() {
            let tp = at.child("templates").index(j);
            problems.one_of(
                &tp.child("specRef"),
                Some(&template.spec_ref),
                &["stable", "canary"],
            );
            problems.non_negative(&tp.child("replicas"), template.replicas);
            if let Some(weight) = template.weight {
                match routing {
                    None => problems.invalid(
                        &tp.child("weight"),
                        weight,
                        EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING,
                    ),
                    Some(r) if r.alb.is_none() && r.smi.is_none() && r.istio.is_none() => {
                        problems.invalid(&tp.child("weight"), weight, EXPERIMENT_WEIGHT_ROUTERS)
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(text) = &experiment.duration
            && let Err(err) = duration::parse_duration(text)
        {
            problems.invalid(&at.child("duration"), format!("{text:?}"), &err.to_string());
        }
        for (j, analysis) in experiment.analyses.iter().flatten().enumerate() {
            validate_arguments(
                analysis.args.as_deref(),
                &at.child("analyses").index(j).child("args"),
                problems,
            );
        }
    }
    if let Some(analysis) = &step.analysis {
        validate_rollout_analysis(analysis, &path.child("analysis"), problems);
    }
}

fn validate_managed_route(
    canary: &CanaryStrategy,
    name: &str,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let Some(routing) = &canary.traffic_routing else {
        return;
    };
    match &routing.managed_routes {
        None => problems.required(
            &FieldPath::new("spec.strategy.canary.trafficRouting.managedRoutes"),
            "Rollout has missing field 'spec.strategy.canary.trafficRouting.managedRoutes'",
        ),
        Some(routes) if !routes.iter().any(|r| r.name == name) => {
            problems.invalid(path, format!("{name:?}"), ROUTE_NOT_IN_MANAGED_ROUTES)
        }
        Some(_) => {}
    }
}

fn validate_string_match(value: &StringMatch, path: &FieldPath, problems: &mut Problems) {
    let set = [&value.exact, &value.prefix, &value.regex]
        .into_iter()
        .filter(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
        .count();
    match set {
        0 => problems.invalid(path, "<match>", STRING_MATCH_MISSING),
        1 => {}
        _ => problems.invalid(path, "<match>", STRING_MATCH_MULTIPLE),
    }
}
