//! What a cluster does around kubectl's verbs, against `sluice up`: who you are (`auth can-i`,
//! `auth whoami`, `create token` and using it), the server's defaults and tables, scheduling
//! (`cordon`, `uncordon`), node ports and `rollout undo` of a Deployment. Reaching into pods is
//! [`super::kubectl_pods`].

use std::time::{Duration, Instant};

use sluice_testkit::process::KubectlSession;

use crate::SLUICE;

/// Polls `check` until it holds or 60 s pass; the last answer.
pub(crate) fn until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

#[test]
fn identities_defaults_scheduling_and_undo_behave_as_on_a_real_cluster() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let k = |args: &[&str]| session.run(args);
    let ok = |args: &[&str]| session.ok(args);

    // Who you are, and tokens for service accounts.
    assert_eq!(ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    assert!(ok(&["auth", "whoami"]).contains("sluice-admin"));
    ok(&["create", "namespace", "shop"]);
    assert!(until(|| k(&[
        "get",
        "serviceaccount",
        "default",
        "-n",
        "shop"
    ])
    .0));
    assert!(
        ok(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.ca\\.crt}"
        ])
        .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let token = ok(&["create", "token", "default", "-n", "shop"])
        .trim()
        .to_owned();
    // What the account may do is its bindings': here `view` in its namespace.
    ok(&[
        "create",
        "rolebinding",
        "default-view",
        "--clusterrole=view",
        "--serviceaccount=shop:default",
        "-n",
        "shop",
    ]);
    let as_account = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str()];
        all.extend_from_slice(args);
        k(&all)
    };
    let (ok_as, out) = as_account(&["auth", "whoami"]);
    assert!(
        ok_as && out.contains("system:serviceaccount:shop:default"),
        "{out}"
    );
    assert!(as_account(&["get", "pods", "-n", "shop"]).0);
    let (_, out) = k(&["--token", "not-a-token", "get", "pods"]);
    assert!(out.contains("Unauthorized"), "{out}");
    let (refused, out) = k(&["create", "token", "default", "-n", "shop", "--duration=1m"]);
    assert!(
        !refused && out.contains("may not specify a duration less than 10 minutes"),
        "{out}"
    );
    ok(&["delete", "serviceaccount", "default", "-n", "shop"]);
    let (_, out) = as_account(&["get", "pods", "-n", "shop"]);
    assert!(
        out.contains("Unauthorized"),
        "a deleted account's token: {out}"
    );

    // The server's defaults, and its tables.
    ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--port=80",
    ]);
    ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--type=NodePort",
    ]);
    let template = ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.dnsPolicy} {.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.containers[0].ports[0].protocol}",
    ]);
    assert_eq!(template, "ClusterFirst IfNotPresent TCP");
    let node_port: u16 = ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ])
    .parse()
    .unwrap();
    assert!((30000..=32767).contains(&node_port));
    assert!(ok(&["get", "svc", "web"]).contains(&format!("80:{node_port}/TCP")));
    ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let wide = ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains("IP") && wide.contains("127.1."), "{wide}");
    let qos = ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].status.qosClass}",
    ]);
    assert_eq!(qos, "BestEffort");
    let sorted = ok(&["get", "events", "--sort-by=.lastTimestamp"]);
    assert!(sorted.contains("ScalingReplicaSet"), "{sorted}");
    ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let maps = ok(&["get", "configmap", "settings"]);
    let row: Vec<&str> = maps
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        maps.starts_with("NAME") && maps.contains("DATA") && row[..2] == ["settings", "2"],
        "{maps}"
    );

    // A cordoned node takes no new pods: they wait, and run once it is uncordoned.
    ok(&["cordon", "sluice-local"]);
    assert!(ok(&["get", "nodes"]).contains("Ready,SchedulingDisabled"));
    ok(&["scale", "deploy", "web", "--replicas=2"]);
    assert!(until(|| {
        k(&["get", "events", "--field-selector=reason=FailedScheduling"])
            .1
            .contains("were unschedulable")
    }));
    let phases = ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.phase}",
    ]);
    assert!(phases.contains("Pending"), "{phases}");
    ok(&["uncordon", "sluice-local"]);
    ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);

    // Undo goes back to the first ReplicaSet, renumbered, as Kubernetes does.
    ok(&["set", "image", "deploy/web", "nginx=nginx:1.26"]);
    ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    ok(&["rollout", "undo", "deploy/web"]);
    ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let history = ok(&["rollout", "history", "deploy/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    let sets = ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(sets.lines().count(), 2, "{sets}");

    // Jobs select their pods by the labels the server generates.
    ok(&[
        "create",
        "job",
        "hello",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ]);
    assert!(until(|| k(&[
        "get",
        "pods",
        "-l",
        "job-name=hello",
        "-o",
        "name"
    ])
    .1
    .contains("pod/hello-")));
}
