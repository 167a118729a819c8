//! `sluice get rollout`'s picture, drawn as `kubectl argo rollouts get rollout` draws it
//! (research §4): a header (name, status, strategy, images with their roles, replica counts)
//! and a tree of revisions, newest first, each with its ReplicaSet and pods, icons for their
//! state and an INFO column (`stable`, `active`, `preview`, `canary`, `delay:29s`,
//! `ready:1/1`); for a canary also its Step, SetWeight and ActualWeight; each revision's
//! AnalysisRuns under it, with their measurements' `✔ n,✖ m` as INFO (and, for a run that
//! failed or erred, the value that decided it).
//! Pure: objects and the time in, text out.

use std::fmt::Write;

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::ResourceExt;
use sluice_api::{
    AnalysisPhase, AnalysisRun, Rollout, RolloutPhase,
    names::{annotation, label},
};

/// The phase `kubectl argo rollouts` shows for a Rollout: the controller's, unless it has not
/// seen the latest spec yet or a resume is pending (Argo's client-side `GetRolloutPhase`).
pub fn phase(rollout: &Rollout) -> (String, String) {
    let status = rollout.status.clone().unwrap_or_default();
    let generation = rollout.metadata.generation.unwrap_or(0).to_string();
    if status.observed_generation.as_deref() != Some(generation.as_str()) {
        return (
            "Progressing".into(),
            "waiting for rollout spec update to be observed".into(),
        );
    }
    let pauses = status
        .pause_conditions
        .as_ref()
        .is_some_and(|p| !p.is_empty());
    if status.controller_pause == Some(true) && !pauses && !rollout.spec.paused() {
        let phase = status.phase.as_ref();
        if phase == Some(&RolloutPhase::Paused) {
            return (
                "Progressing".into(),
                "waiting for rollout to unpause".into(),
            );
        }
    }
    let phase = status
        .phase
        .as_ref()
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|p| p.as_str().map(str::to_owned))
        .unwrap_or_else(|| "Progressing".into());
    (phase, status.message.unwrap_or_default())
}

fn icon(status: &str) -> &'static str {
    match status {
        "Healthy" | "Running" | "Successful" | "Completed" | "Succeeded" => "✔",
        "Degraded" | "Error" | "Failed" | "CrashLoopBackOff" => "✖",
        "Paused" => "॥",
        "ScaledDown" => "•",
        "Progressing" | "Pending" | "ContainerCreating" | "Terminating" | "PodInitializing" => "◌",
        "InvalidSpec"
        | "ImagePullBackOff"
        | "ErrImagePull"
        | "CreateContainerError"
        | "Inconclusive" => "⚠",
        _ => "?",
    }
}

/// kubectl's short age: `45s`, `3m12s`, `5h`, `7d`.
pub fn age(since: Option<Timestamp>, now: Timestamp) -> String {
    let Some(since) = since else {
        return "<unknown>".into();
    };
    let seconds = now.duration_since(since).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 && s % 60 != 0 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(annotation::REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn hash(rs: &ReplicaSet) -> Option<&str> {
    rs.labels()
        .get(label::POD_TEMPLATE_HASH)
        .map(String::as_str)
}

fn replica_set_status(rs: &ReplicaSet) -> &'static str {
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let status = rs.status.as_ref();
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let running = status.map_or(0, |s| s.replicas);
    match () {
        () if desired == 0 && running == 0 => "ScaledDown",
        () if available < desired || running > desired => "Progressing",
        () => "Healthy",
    }
}

/// A pod's status as kubectl prints it: a waiting or terminated reason, Terminating, or the phase.
fn pod_status(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = pod.status.as_ref();
    for container in status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
    {
        let state = container.state.as_ref();
        if let Some(reason) = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
        {
            return reason;
        }
        if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
            return terminated.reason.clone().unwrap_or_else(|| "Error".into());
        }
    }
    status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into())
}

fn pod_info(pod: &Pod) -> String {
    let containers = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let total = pod
        .spec
        .as_ref()
        .map_or(containers.len(), |s| s.containers.len());
    let ready = containers.iter().filter(|c| c.ready).count();
    let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
    let mut info = format!("ready:{ready}/{total}");
    if restarts > 0 {
        let _ = write!(info, ",restarts:{restarts}");
    }
    info
}

/// What a ReplicaSet is to the Rollout: `stable`, `active`, `preview`, and its scale-down delay.
fn roles(rollout: &Rollout, rs: &ReplicaSet, now: Timestamp) -> Vec<String> {
    let status = rollout.status.clone().unwrap_or_default();
    let blue_green = status.blue_green.unwrap_or_default();
    let hash = hash(rs);
    let mut roles = Vec::new();
    if hash.is_some() && hash == status.stable_rs.as_deref() {
        roles.push("stable".to_owned());
    }
    let canary = rollout
        .spec
        .strategy
        .as_ref()
        .is_some_and(|s| s.canary.is_some());
    if canary
        && hash.is_some()
        && hash == status.current_pod_hash.as_deref()
        && hash != status.stable_rs.as_deref()
    {
        roles.push("canary".to_owned());
    }
    if hash.is_some() && hash == blue_green.active_selector.as_deref() {
        roles.push("active".to_owned());
    }
    if hash.is_some()
        && hash == blue_green.preview_selector.as_deref()
        && hash != blue_green.active_selector.as_deref()
    {
        roles.push("preview".to_owned());
    }
    let deadline = rs
        .annotations()
        .get(annotation::SCALE_DOWN_DEADLINE)
        .and_then(|d| d.parse::<Timestamp>().ok());
    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if let Some(deadline) = deadline.filter(|_| replicas > 0) {
        let left = deadline.duration_since(now).as_secs();
        roles.push(if left > 0 {
            format!("delay:{left}s")
        } else {
            "delay:passed".to_owned()
        });
    }
    roles
}

fn images(rs: &ReplicaSet) -> Vec<String> {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A canary's `Step` (`2/3`; none without steps), `SetWeight` (the weight its current step
/// aims for) and `ActualWeight` (the canary's share of the available pods, or behind a router
/// the weight it was last given), as Argo's `kubectl argo rollouts get rollout` computes them.
fn weights(
    rollout: &Rollout,
    canary: &sluice_api::CanaryStrategy,
    sets: &[&ReplicaSet],
) -> (Option<String>, i32, i32) {
    let status = rollout.status.clone().unwrap_or_default();
    let steps = canary.steps();
    let index = status.current_step_index.unwrap_or(0).max(0);
    let step = (!steps.is_empty()).then(|| format!("{index}/{}", steps.len()));
    let promoted = status.stable_rs.is_some() && status.stable_rs == status.current_pod_hash;
    let set_weight = if promoted || index as usize >= steps.len() {
        100
    } else if status.abort == Some(true) {
        0
    } else {
        steps[..=index as usize]
            .iter()
            .rev()
            .find_map(|s| s.set_weight)
            .unwrap_or(0)
    };
    let available = |rs: &&&ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    };
    let total: i32 = sets.iter().map(|rs| available(&rs)).sum();
    let current: i32 = sets
        .iter()
        .filter(|rs| hash(rs) == status.current_pod_hash.as_deref())
        .map(|rs| available(&rs))
        .sum();
    let actual = if canary.traffic_routing.is_some() {
        // Behind a router: the weight the router was last given (Argo's `ActualWeight`).
        status
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map_or(set_weight, |w| w.canary.weight)
    } else if total == 0 {
        0
    } else {
        current * 100 / total
    };
    (step, set_weight, actual)
}

/// A run's INFO: its measurements, `✔ successful,✖ failed or errored` (Argo's tree).
fn run_info(run: &AnalysisRun) -> String {
    let results = run
        .status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let successful: i32 = results.iter().filter_map(|r| r.successful).sum();
    let failed: i32 = results
        .iter()
        .map(|r| r.failed.unwrap_or(0) + r.error.unwrap_or(0))
        .sum();
    let mut info = Vec::new();
    if successful > 0 {
        info.push(format!("✔ {successful}"));
    }
    if failed > 0 {
        info.push(format!("✖ {failed}"));
    }
    let mut info = info.join(",");
    if let Some((metric, value)) = decisive(run) {
        info.push_str(&format!(" {metric}={value}"));
    }
    info
}

/// The metric and value of the latest failed or errored measurement of a run that failed or
/// erred: what decided it, which Argo's tree leaves to `get analysisrun`.
fn decisive(run: &AnalysisRun) -> Option<(&str, &str)> {
    let status = run.status.as_ref()?;
    if !matches!(status.phase, AnalysisPhase::Failed | AnalysisPhase::Error) {
        return None;
    }
    let bad = |phase: AnalysisPhase| matches!(phase, AnalysisPhase::Failed | AnalysisPhase::Error);
    status
        .metric_results
        .as_ref()?
        .iter()
        .filter(|r| bad(r.phase))
        .find_map(|r| {
            let last = r
                .measurements
                .as_ref()?
                .iter()
                .rev()
                .find(|m| bad(m.phase))?;
            Some((r.name.as_str(), last.value.as_deref()?))
        })
}

fn run_phase(run: &AnalysisRun) -> &'static str {
    match run.status.as_ref().map(|s| s.phase) {
        Some(AnalysisPhase::Successful) => "Successful",
        Some(AnalysisPhase::Failed) => "Failed",
        Some(AnalysisPhase::Error) => "Error",
        Some(AnalysisPhase::Inconclusive) => "Inconclusive",
        Some(AnalysisPhase::Running) => "Running",
        Some(AnalysisPhase::Pending) | None => "Pending",
    }
}

/// The whole picture of `rollout` with its ReplicaSets, their pods and the Rollout's
/// AnalysisRuns at `now`.
pub fn render(
    rollout: &Rollout,
    sets: &[ReplicaSet],
    pods: &[Pod],
    runs: &[AnalysisRun],
    now: Timestamp,
) -> String {
    let mut sets: Vec<&ReplicaSet> = sets.iter().collect();
    sets.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
    let (phase, message) = phase(rollout);
    let status = rollout.status.clone().unwrap_or_default();
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: &str| {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}:")
        };
        let _ = writeln!(out, "{}", format!("{key:<17}{value}").trim_end());
    };
    line(&mut out, "Name", &rollout.name_any());
    line(
        &mut out,
        "Namespace",
        &rollout.namespace().unwrap_or_default(),
    );
    line(&mut out, "Status", &format!("{} {phase}", icon(&phase)));
    if !message.is_empty() {
        line(&mut out, "Message", &message);
    }
    let canary = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.canary.as_ref());
    line(
        &mut out,
        "Strategy",
        if canary.is_some() {
            "Canary"
        } else {
            "BlueGreen"
        },
    );
    if let Some(canary) = canary {
        let (step, set_weight, actual) = weights(rollout, canary, &sets);
        if let Some(step) = step {
            line(&mut out, "  Step", &step);
        }
        line(&mut out, "  SetWeight", &set_weight.to_string());
        line(&mut out, "  ActualWeight", &actual.to_string());
    }
    let mut image_lines = Vec::new();
    for rs in &sets {
        let roles: Vec<String> = roles(rollout, rs, now)
            .into_iter()
            .filter(|r| !r.starts_with("delay"))
            .collect();
        if roles.is_empty() {
            continue;
        }
        for image in images(rs) {
            image_lines.push(format!("{image} ({})", roles.join(", ")));
        }
    }
    for (i, image) in image_lines.iter().enumerate() {
        line(&mut out, if i == 0 { "Images" } else { "" }, image);
    }
    line(&mut out, "Replicas", "");
    let counts = [
        ("Desired", rollout.spec.replicas()),
        ("Current", status.replicas.unwrap_or(0)),
        ("Updated", status.updated_replicas.unwrap_or(0)),
        ("Ready", status.ready_replicas.unwrap_or(0)),
        ("Available", status.available_replicas.unwrap_or(0)),
    ];
    for (key, value) in counts {
        line(&mut out, &format!("  {key}"), &value.to_string());
    }
    out.push('\n');

    let mut rows: Vec<[String; 5]> = vec![[
        "NAME".into(),
        "KIND".into(),
        "STATUS".into(),
        "AGE".into(),
        "INFO".into(),
    ]];
    let created = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| t.map(|t| t.0);
    rows.push([
        format!("⟳ {}", rollout.name_any()),
        "Rollout".into(),
        format!("{} {phase}", icon(&phase)),
        age(created(rollout.metadata.creation_timestamp.as_ref()), now),
        String::new(),
    ]);
    for (i, rs) in sets.iter().enumerate() {
        let last = i + 1 == sets.len();
        let (branch, indent) = if last {
            ("└──", "   ")
        } else {
            ("├──", "│  ")
        };
        rows.push([
            format!("{branch}# revision:{}", revision(rs)),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        let hash = hash(rs);
        let mut analyses: Vec<&AnalysisRun> = runs
            .iter()
            .filter(|r| r.labels().get(label::POD_TEMPLATE_HASH).map(String::as_str) == hash)
            .collect();
        analyses.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.clone().map(|t| t.0),
                r.name_any(),
            )
        });
        let (rs_branch, pod_indent) = if analyses.is_empty() {
            ("└──", format!("{indent}   "))
        } else {
            ("├──", format!("{indent}│  "))
        };
        let rs_status = replica_set_status(rs);
        rows.push([
            format!("{indent}{rs_branch}⧉ {}", rs.name_any()),
            "ReplicaSet".into(),
            format!("{} {rs_status}", icon(rs_status)),
            age(created(rs.metadata.creation_timestamp.as_ref()), now),
            roles(rollout, rs, now).join(","),
        ]);
        let mut mine: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.labels().get(label::POD_TEMPLATE_HASH).map(String::as_str) == hash)
            .collect();
        mine.sort_by_key(|p| p.name_any());
        for (j, pod) in mine.iter().enumerate() {
            let branch = if j + 1 == mine.len() {
                "└──"
            } else {
                "├──"
            };
            let status = pod_status(pod);
            rows.push([
                format!("{pod_indent}{branch}□ {}", pod.name_any()),
                "Pod".into(),
                format!("{} {status}", icon(&status)),
                age(created(pod.metadata.creation_timestamp.as_ref()), now),
                pod_info(pod),
            ]);
        }
        for (j, run) in analyses.iter().enumerate() {
            let branch = if j + 1 == analyses.len() {
                "└──"
            } else {
                "├──"
            };
            let phase = run_phase(run);
            rows.push([
                format!("{indent}{branch}α {}", run.name_any()),
                "AnalysisRun".into(),
                format!("{} {phase}", icon(phase)),
                age(created(run.metadata.creation_timestamp.as_ref()), now),
                run_info(run),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut text = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 4 {
                text.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count() + 2;
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(hash: &str, revision: i64, replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("demo-{hash}"), "creationTimestamp": "2026-11-22T10:00:00Z",
                "labels": {"rollouts-pod-template-hash": hash},
                "annotations": {"rollout.argoproj.io/revision": revision.to_string()}},
            "spec": {"replicas": replicas, "selector": {},
                "template": {"spec": {"containers": [{"name": "demo", "image": format!("argoproj/rollouts-demo:{hash}")}]}}},
            "status": {"replicas": replicas, "availableReplicas": available},
        }))
        .unwrap()
    }

    fn pod(hash: &str, name: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("demo-{hash}-{name}"), "creationTimestamp": "2026-11-22T10:00:30Z",
                "labels": {"rollouts-pod-template-hash": hash}},
            "spec": {"containers": [{"name": "demo"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "demo", "ready": ready,
                "restartCount": 0, "image": "x", "imageID": "", "state": {"running": {}}}]},
        }))
        .unwrap()
    }

    #[test]
    fn a_paused_canary_shows_its_step_weights_and_roles() {
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop", "generation": 2,
                "creationTimestamp": "2026-11-22T09:00:00Z"},
            "spec": {"replicas": 2, "selector": {}, "template": {},
                "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}}},
            "status": {"observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep",
                "stableRS": "blue", "currentPodHash": "yellow", "currentStepIndex": 1,
                "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2,
                "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-11-22T10:01:00Z"}]},
        }))
        .unwrap();
        let sets = [rs("blue", 1, 1, 1), rs("yellow", 2, 1, 1)];
        let pods = [pod("blue", "a", true), pod("yellow", "b", true)];
        let now: Timestamp = "2026-11-22T10:02:00Z".parse().unwrap();
        let text = render(&rollout, &sets, &pods, &[], now);
        let expected = "\
Name:            demo
Namespace:       shop
Status:          ॥ Paused
Message:         CanaryPauseStep
Strategy:        Canary
  Step:          1/3
  SetWeight:     50
  ActualWeight:  50
Images:          argoproj/rollouts-demo:yellow (canary)
                 argoproj/rollouts-demo:blue (stable)
";
        assert!(text.starts_with(expected), "{text}");
        let yellow = text.lines().find(|l| l.contains("⧉ demo-yellow")).unwrap();
        assert!(yellow.ends_with("canary"), "{yellow}");
        let blue = text.lines().find(|l| l.contains("⧉ demo-blue")).unwrap();
        assert!(blue.ends_with("stable"), "{blue}");
    }

    #[test]
    fn a_paused_blue_green_rollout_shows_its_revisions_roles_and_pods() {
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop", "generation": 2,
                "creationTimestamp": "2026-11-22T09:00:00Z"},
            "spec": {"replicas": 1, "selector": {}, "template": {},
                "strategy": {"blueGreen": {"activeService": "a", "previewService": "p"}}},
            "status": {"observedGeneration": "2", "phase": "Paused", "message": "BlueGreenPause",
                "stableRS": "blue", "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2,
                "availableReplicas": 1, "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2026-11-22T10:01:00Z"}],
                "blueGreen": {"activeSelector": "blue", "previewSelector": "yellow"}},
        }))
        .unwrap();
        let sets = [
            rs("blue", 1, 1, 1),
            rs("yellow", 2, 1, 1),
            rs("green", 0, 0, 0),
        ];
        let pods = [pod("blue", "a", true), pod("yellow", "b", true)];
        let now: Timestamp = "2026-11-22T10:02:00Z".parse().unwrap();
        let text = render(&rollout, &sets, &pods, &[], now);
        let expected = "\
Name:            demo
Namespace:       shop
Status:          ॥ Paused
Message:         BlueGreenPause
Strategy:        BlueGreen
Images:          argoproj/rollouts-demo:yellow (preview)
                 argoproj/rollouts-demo:blue (stable, active)
Replicas:
  Desired:       1
  Current:       2
  Updated:       1
  Ready:         2
  Available:     1

NAME ";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("├──# revision:2\n"), "{text}");
        assert!(text.contains("└──# revision:0\n"), "{text}");
        let yellow = text.lines().find(|l| l.contains("⧉ demo-yellow")).unwrap();
        assert!(
            yellow.contains("ReplicaSet")
                && yellow.contains("✔ Healthy")
                && yellow.ends_with("preview"),
            "{yellow}"
        );
        let blue = text.lines().find(|l| l.contains("⧉ demo-blue")).unwrap();
        assert!(blue.ends_with("stable,active"), "{blue}");
        let green = text.lines().find(|l| l.contains("⧉ demo-green")).unwrap();
        assert!(green.contains("• ScaledDown"), "{green}");
        let pod = text
            .lines()
            .find(|l| l.contains("□ demo-yellow-b"))
            .unwrap();
        assert!(
            pod.starts_with("│     └──□") && pod.ends_with("ready:1/1"),
            "{pod}"
        );
        assert_eq!(
            age(Some("2026-11-22T09:00:00Z".parse().unwrap()), now),
            "62m"
        );
    }

    #[test]
    fn a_resume_not_yet_seen_reads_as_progressing() {
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "demo", "generation": 3},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": "2", "phase": "Healthy"},
        }))
        .unwrap();
        assert_eq!(
            phase(&rollout),
            (
                "Progressing".into(),
                "waiting for rollout spec update to be observed".into()
            )
        );
    }

    #[test]
    fn a_failed_runs_info_shows_the_value_that_failed_it() {
        let run = |phase: &str| -> AnalysisRun {
            serde_json::from_value(json!({
                "metadata": {"name": "demo-abc-2-1"},
                "spec": {"metrics": []},
                "status": {"phase": phase, "metricResults": [
                    {"name": "latency", "phase": "Successful", "successful": 2, "measurements": [
                        {"phase": "Successful", "value": "[0.1]"}]},
                    {"name": "error-rate", "phase": phase, "successful": 1, "failed": 1,
                        "measurements": [{"phase": "Successful", "value": "[0]"},
                            {"phase": "Failed", "value": "[0.153]"}]}]},
            }))
            .unwrap()
        };
        assert_eq!(run_info(&run("Failed")), "✔ 3,✖ 1 error-rate=[0.153]");
        assert_eq!(run_info(&run("Running")), "✔ 3,✖ 1");
    }
}
