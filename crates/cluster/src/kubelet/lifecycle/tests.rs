//! Tests of the pod lifecycle planner.

use super::*;

fn pod(spec: Value, status: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
        "status": status,
    }))
    .unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn simple(ready_after_ms: u64) -> impl Fn(&Container) -> Run {
    move |_| {
        Run::Simulated(Behaviour {
            ready_after: Some(Duration::from_millis(ready_after_ms)),
            ..Behaviour::default()
        })
    }
}

fn web() -> Value {
    json!({"nodeName": "sluice-local", "containers": [{"name": "app", "image": "nginx"}]})
}

#[test]
fn a_new_pod_starts_then_becomes_ready_after_its_delay() {
    let now = t("2026-11-01T10:00:00Z");
    let first = plan(
        &pod(web(), json!({"phase": "Pending"})),
        &simple(2000),
        "127.1.0.1",
        now,
    );
    let status = first.status.unwrap();
    assert_eq!(status["startTime"], "2026-11-01T10:00:00Z");
    assert_eq!(status["podIP"], "127.1.0.1");
    assert_eq!(first.events[0].reason, "Scheduled");

    let running = plan(&pod(web(), status.clone()), &simple(2000), "127.1.0.1", now);
    let status = running.status.unwrap();
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["containerStatuses"][0]["ready"], false);
    assert_eq!(running.requeue, Some(Duration::from_secs(2)));
    assert!(running.events.iter().any(|e| e.reason == "Started"));

    let later = t("2026-11-01T10:00:02Z");
    let ready = plan(&pod(web(), status), &simple(2000), "127.1.0.1", later);
    let status = ready.status.unwrap();
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    let condition = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(
        (
            condition["status"].as_str(),
            condition["lastTransitionTime"].as_str()
        ),
        (Some("True"), Some("2026-11-01T10:00:02Z"))
    );
    // Nothing changes afterwards: no write, no requeue.
    let settled = plan(
        &pod(web(), status),
        &simple(2000),
        "127.1.0.1",
        t("2026-11-01T10:05:00Z"),
    );
    assert_eq!(settled, PodPlan::default());
}

#[test]
fn init_containers_complete_at_once() {
    let spec = json!({"nodeName": "sluice-local", "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "app", "image": "nginx"}]});
    let started = json!({"phase": "Pending", "startTime": "2026-11-01T10:00:00Z"});
    let status = plan(
        &pod(spec, started),
        &simple(1000),
        "127.1.0.5",
        t("2026-11-01T10:00:00Z"),
    )
    .status
    .unwrap();
    assert_eq!(
        status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(status["phase"], "Running");
}

#[test]
fn run_to_completion_pods_finish_with_their_exit_code() {
    let spec = json!({"nodeName": "sluice-local", "restartPolicy": "Never", "containers": [{"name": "job", "image": "x"}]});
    let failing = |_: &Container| {
        Run::Simulated(Behaviour {
            exit_code: Some(3),
            run_for: Some(Duration::from_secs(5)),
            ..Behaviour::default()
        })
    };
    let started = json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z"});
    let running = plan(
        &pod(spec.clone(), started.clone()),
        &failing,
        "127.1.0.2",
        t("2026-11-01T10:00:01Z"),
    );
    assert_eq!(running.requeue, Some(Duration::from_secs(4)));
    let done = plan(
        &pod(spec, started),
        &failing,
        "127.1.0.2",
        t("2026-11-01T10:00:05Z"),
    );
    let status = done.status.unwrap();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        3
    );
}

#[test]
fn crashing_containers_back_off_and_restart() {
    let crashing = |_: &Container| {
        Run::Simulated(Behaviour {
            crash_after: Some(Duration::from_secs(1)),
            ..Behaviour::default()
        })
    };
    let started = json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z",
        "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-11-01T10:00:00Z"}}}]});
    let crashed = plan(
        &pod(web(), started),
        &crashing,
        "127.1.0.3",
        t("2026-11-01T10:00:01Z"),
    );
    let status = crashed.status.unwrap();
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    assert_eq!(status["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(crashed.requeue, Some(Duration::from_secs(10)));
    let restarted = plan(
        &pod(web(), status),
        &crashing,
        "127.1.0.3",
        t("2026-11-01T10:00:11Z"),
    );
    let status = restarted.status.unwrap();
    assert_eq!(
        status["containerStatuses"][0]["state"]["running"]["startedAt"],
        "2026-11-01T10:00:11Z"
    );
    assert_eq!(crash_back_off(3), Duration::from_secs(40));
    assert_eq!(crash_back_off(30), Duration::from_secs(300));
}

#[test]
fn deletion_waits_for_the_termination_delay_within_the_grace_period() {
    let slow = |_: &Container| {
        Run::Simulated(Behaviour {
            termination_delay: Some(Duration::from_secs(5)),
            ..Behaviour::default()
        })
    };
    let mut deleting = pod(
        web(),
        json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z"}),
    );
    // Deleted at 10:01:00 with a 3 s grace period: the deadline is 10:01:03.
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t("2026-11-01T10:01:03Z")),
    );
    deleting.metadata.deletion_grace_period_seconds = Some(3);
    let waiting = plan(&deleting, &slow, "127.1.0.4", t("2026-11-01T10:01:01Z"));
    assert!(!waiting.remove);
    assert_eq!(
        waiting.requeue,
        Some(Duration::from_secs(2)),
        "capped by the grace period"
    );
    let gone = plan(&deleting, &slow, "127.1.0.4", t("2026-11-01T10:01:03Z"));
    assert!(gone.remove && gone.events[0].reason == "Killing");
}

fn real(observed: Observed) -> impl Fn(&Container) -> Run {
    move |_| Run::Real(observed.clone())
}

fn running(id: &str, ready: bool, unhealthy: Option<&str>) -> Observed {
    Observed::Running {
        id: id.into(),
        started_at: t("2026-11-01T10:00:00Z"),
        started: true,
        ready,
        unhealthy: unhealthy.map(str::to_owned),
        stopping: false,
    }
}

fn started() -> Value {
    json!({"phase": "Pending", "startTime": "2026-11-01T10:00:00Z",
        "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]})
}

#[test]
fn a_real_container_is_started_then_follows_its_process() {
    let now = t("2026-11-01T10:00:01Z");
    let first = plan(
        &pod(web(), started()),
        &real(Observed::Absent),
        "127.1.0.7",
        now,
    );
    assert_eq!(
        first.actions,
        [RuntimeAction::Start {
            container: "app".into(),
            restart: 0
        }]
    );
    let up = plan(
        &pod(web(), started()),
        &real(running("process://42", true, None)),
        "127.1.0.7",
        now,
    );
    let status = up.status.unwrap();
    assert_eq!(
        status["containerStatuses"][0]["containerID"],
        "process://42"
    );
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    assert!(up.events.iter().any(|e| e.reason == "Started"));
    assert!(up.actions.is_empty());
    // A failed liveness probe stops it once, with Kubernetes' event.
    let sick = plan(
        &pod(web(), status),
        &real(running("process://42", true, Some("liveness probe"))),
        "127.1.0.7",
        now,
    );
    assert!(
        matches!(&sick.actions[..], [RuntimeAction::Restart { container, .. }] if container == "app")
    );
    assert_eq!(
        sick.events[0].note,
        "Container app failed liveness probe, will be restarted"
    );
    assert_eq!(sick.status.unwrap()["containerStatuses"][0]["ready"], false);
}

#[test]
fn an_exited_container_restarts_once_per_exit_with_back_off() {
    let exited = |id: &str, at: &str| Observed::Exited {
        id: id.into(),
        started_at: t("2026-11-01T10:00:00Z"),
        finished_at: t(at),
        code: 2,
    };
    let status = plan(
        &pod(web(), started()),
        &real(exited("process://1", "2026-11-01T10:00:05Z")),
        "127.1.0.7",
        t("2026-11-01T10:00:05Z"),
    );
    assert_eq!(status.actions.len(), 1, "the first restart is immediate");
    let status = status.status.unwrap();
    let container = &status["containerStatuses"][0];
    assert_eq!(container["restartCount"], 1);
    assert_eq!(container["lastState"]["terminated"]["exitCode"], 2);
    // Seen again (before the new process runs), the same exit is not counted twice.
    let again = plan(
        &pod(web(), status.clone()),
        &real(exited("process://1", "2026-11-01T10:00:05Z")),
        "127.1.0.7",
        t("2026-11-01T10:00:05Z"),
    );
    let count = again.status.as_ref().map_or(json!(1), |s| {
        s["containerStatuses"][0]["restartCount"].clone()
    });
    assert_eq!(count, 1);
    // The second exit waits 10 s in CrashLoopBackOff.
    let second = plan(
        &pod(web(), status),
        &real(exited("process://2", "2026-11-01T10:00:08Z")),
        "127.1.0.7",
        t("2026-11-01T10:00:08Z"),
    );
    assert!(second.actions.is_empty());
    assert_eq!(second.requeue, Some(Duration::from_secs(10)));
    let status = second.status.unwrap();
    assert_eq!(status["containerStatuses"][0]["restartCount"], 2);
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    // Never: the exit is final and decides the phase.
    let once = json!({"nodeName": "sluice-local", "restartPolicy": "Never", "containers": [{"name": "app", "image": "x"}]});
    let done = plan(
        &pod(once, started()),
        &real(exited("process://3", "2026-11-01T10:00:08Z")),
        "127.1.0.7",
        t("2026-11-01T10:00:09Z"),
    );
    let status = done.status.unwrap();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        2
    );
}

#[test]
fn a_container_running_before_sluice_restarted_is_started_again() {
    let before = json!({"phase": "Running", "startTime": "2026-11-01T10:00:00Z",
        "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "process://9", "state": {"running": {"startedAt": "2026-11-01T10:00:00Z"}}}]});
    let next = plan(
        &pod(web(), before),
        &real(Observed::Absent),
        "127.1.0.7",
        t("2026-11-01T11:00:00Z"),
    );
    assert_eq!(
        next.actions,
        [RuntimeAction::Start {
            container: "app".into(),
            restart: 1
        }]
    );
    let container = next.status.unwrap()["containerStatuses"][0].clone();
    assert_eq!(container["restartCount"], 1);
    assert_eq!(container["lastState"]["terminated"]["reason"], "Unknown");
}

#[test]
fn deleting_a_pod_stops_its_processes_before_removing_it() {
    let mut deleting = pod(web(), started());
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t("2026-11-01T10:01:30Z")),
    );
    deleting.metadata.deletion_grace_period_seconds = Some(30);
    let stopping = plan(
        &deleting,
        &real(running("process://5", true, None)),
        "127.1.0.7",
        t("2026-11-01T10:01:00Z"),
    );
    assert!(!stopping.remove);
    assert_eq!(
        stopping.actions,
        [RuntimeAction::Stop {
            grace: Duration::from_secs(30)
        }]
    );
    let exited = Observed::Exited {
        id: "process://5".into(),
        started_at: t("2026-11-01T10:00:00Z"),
        finished_at: t("2026-11-01T10:01:02Z"),
        code: 0,
    };
    let gone = plan(
        &deleting,
        &real(exited),
        "127.1.0.7",
        t("2026-11-01T10:01:02Z"),
    );
    assert!(gone.remove);
}

#[test]
fn a_container_that_cannot_start_says_why_and_retries() {
    let failed = Observed::Failed {
        reason: "CreateContainerError".into(),
        message: "port 8080 on 127.1.0.7 is not free".into(),
        at: t("2026-11-01T10:00:01Z"),
    };
    let next = plan(
        &pod(web(), started()),
        &real(failed),
        "127.1.0.7",
        t("2026-11-01T10:00:02Z"),
    );
    let status = next.status.unwrap();
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["message"],
        "port 8080 on 127.1.0.7 is not free"
    );
    assert_eq!(next.requeue, Some(Duration::from_secs(9)));
    assert!(
        next.events
            .iter()
            .any(|e| e.warning && e.reason == "Failed")
    );
}

#[test]
fn an_ephemeral_container_runs_once_beside_the_pod() {
    let now = t("2026-11-01T10:00:00Z");
    let spec = json!({"nodeName": "sluice-local", "restartPolicy": "Always",
        "containers": [{"name": "app", "image": "nginx"}],
        "ephemeralContainers": [{"name": "debugger", "image": "busybox", "command": ["sh"],
            "targetContainerName": "app"}]});
    let runs = |observed: Observed| {
        move |c: &Container| {
            if c.name == "debugger" {
                Run::Real(observed.clone())
            } else {
                Run::Simulated(Behaviour::default())
            }
        }
    };
    let running_pod = started();
    // It appears: started, the pod's own status unchanged in kind.
    let first = plan(
        &pod(spec.clone(), running_pod.clone()),
        &runs(Observed::Absent),
        "127.1.0.1",
        now,
    );
    assert!(first.actions.contains(&RuntimeAction::Start {
        container: "debugger".into(),
        restart: 0
    }));
    let status = first.status.unwrap();
    assert_eq!(
        status["ephemeralContainerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    // It exits with 4: terminated for good, never restarted; the pod runs on.
    let exited = Observed::Exited {
        id: "process://7".into(),
        started_at: now,
        finished_at: now,
        code: 4,
    };
    let done = plan(&pod(spec.clone(), status), &runs(exited), "127.1.0.1", now);
    assert!(done.actions.is_empty(), "{:?}", done.actions);
    let status = done.status.unwrap();
    let debugger = &status["ephemeralContainerStatuses"][0];
    assert_eq!(debugger["state"]["terminated"]["exitCode"], 4);
    assert_eq!(status["phase"], "Running");
    // After a restart of sluice the terminated one stays as it was.
    let after = plan(
        &pod(spec.clone(), status.clone()),
        &runs(Observed::Absent),
        "127.1.0.1",
        now,
    );
    assert!(after.actions.is_empty());
    // One that was running when sluice stopped is over, not started again.
    let mut was_running = status;
    was_running["ephemeralContainerStatuses"][0]["state"] =
        json!({"running": {"startedAt": "2026-11-01T09:59:00Z"}});
    let over = plan(
        &pod(spec, was_running),
        &runs(Observed::Absent),
        "127.1.0.1",
        now,
    );
    assert!(over.actions.is_empty());
    let status = over.status.unwrap();
    assert_eq!(
        status["ephemeralContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Unknown"
    );
}
