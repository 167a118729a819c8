//! RBAC through the real kubectl against `sluice up`: `auth can-i` and `auth can-i --list` for
//! the administrator, a ServiceAccount with a Role and one bound to nothing; `--as`
//! impersonation; and the exact Forbidden errors kubectl prints for a read-only token.

use sluice_testkit::process::KubectlSession;

use crate::{SLUICE, kubectl_cluster::until};

#[test]
fn can_i_and_forbidden_follow_the_bindings() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let k = |args: &[&str]| session.run(args);
    let ok = |args: &[&str]| session.ok(args);

    // The administrator (system:masters) may do everything, and --list says so.
    assert_eq!(ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    assert_eq!(ok(&["auth", "can-i", "*", "*"]).trim(), "yes");
    assert_eq!(ok(&["auth", "can-i", "get", "/metrics"]).trim(), "yes");
    let list = ok(&["auth", "can-i", "--list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("*.*") && l.contains("[*]")),
        "{list}"
    );

    ok(&["create", "namespace", "shop"]);
    assert!(until(|| k(&[
        "get",
        "serviceaccount",
        "default",
        "-n",
        "shop"
    ])
    .0));
    ok(&["create", "serviceaccount", "ro", "-n", "shop"]);
    ok(&["create", "serviceaccount", "bare", "-n", "shop"]);
    ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods,pods/log",
        "-n",
        "shop",
    ]);
    ok(&[
        "create",
        "rolebinding",
        "ro",
        "--role=pod-reader",
        "--serviceaccount=shop:ro",
        "-n",
        "shop",
    ]);
    let token = |account: &str| {
        ok(&["create", "token", account, "-n", "shop"])
            .trim()
            .to_owned()
    };
    let (ro, bare) = (token("ro"), token("bare"));
    let as_token = |token: &str, args: &[&str]| {
        let mut all = vec!["--token", token];
        all.extend_from_slice(args);
        k(&all)
    };

    // A ServiceAccount with a Role: what the Role says, in its namespace only.
    let can = |token: &str, args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let (yes, out) = as_token(token, &all);
        assert_eq!(
            out.trim(),
            if yes { "yes" } else { "no" },
            "{args:?}: {out}"
        );
        yes
    };
    assert!(can(&ro, &["list", "pods", "-n", "shop"]));
    assert!(can(&ro, &["get", "pods/log", "-n", "shop"]));
    assert!(can(&ro, &["watch", "pods", "-n", "shop"]));
    assert!(!can(&ro, &["delete", "pods", "-n", "shop"]));
    assert!(!can(&ro, &["list", "secrets", "-n", "shop"]));
    assert!(!can(&ro, &["list", "pods", "-n", "default"]));
    assert!(!can(&ro, &["create", "pods/exec", "-n", "shop"]));
    let (_, list) = as_token(&ro, &["auth", "can-i", "--list", "-n", "shop"]);
    let pods = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(pods.contains("[get list watch]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );
    assert!(!list.contains("secrets"), "{list}");

    // A ServiceAccount bound to nothing: only what every authenticated user has.
    assert!(!can(&bare, &["list", "pods", "-n", "shop"]));
    assert!(can(&bare, &["get", "/version"]));
    let (_, list) = as_token(&bare, &["auth", "can-i", "--list", "-n", "shop"]);
    assert!(!list.lines().any(|l| l.starts_with("pods")), "{list}");
    assert!(list.contains("selfsubjectrulesreviews"), "{list}");

    // Impersonation: the administrator may ask as the account; the account may not.
    let as_ro = "--as=system:serviceaccount:shop:ro";
    assert_eq!(
        ok(&["auth", "can-i", "list", "pods", "-n", "shop", as_ro]).trim(),
        "yes"
    );
    let (yes, out) = k(&["auth", "can-i", "list", "secrets", "-n", "shop", as_ro]);
    assert!(!yes && out.trim() == "no", "{out}");
    let (yes, out) = as_token(&ro, &["get", "pods", "-n", "shop", "--as=sluice-admin"]);
    assert!(
        !yes && out.contains("users \"sluice-admin\" is forbidden: User \"system:serviceaccount:shop:ro\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{out}"
    );

    // Forbidden, in Kubernetes' words.
    let (read, out) = as_token(&ro, &["get", "secrets", "-n", "shop"]);
    assert!(!read);
    assert_eq!(
        out.trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:shop:ro\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\""
    );
    let (read, out) = as_token(&ro, &["get", "secret", "x", "-n", "shop"]);
    assert!(!read);
    assert!(
        out.contains("secrets \"x\" is forbidden: User \"system:serviceaccount:shop:ro\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""),
        "{out}"
    );
    let (read, out) = as_token(&ro, &["get", "nodes"]);
    assert!(!read);
    assert!(
        out.contains("nodes is forbidden: User \"system:serviceaccount:shop:ro\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
        "{out}"
    );
    assert!(as_token(&ro, &["get", "pods", "-n", "shop"]).0);
    let (read, out) = as_token(&bare, &["get", "--raw", "/metrics"]);
    assert!(!read);
    assert!(
        out.contains("forbidden: User \\\"system:serviceaccount:shop:bare\\\" cannot get path \\\"/metrics\\\"")
            || out.contains("forbidden: User \"system:serviceaccount:shop:bare\" cannot get path \"/metrics\""),
        "{out}"
    );
}

/// The cluster's components as Kubernetes' (sluice's own controllers, which this `sluice up
/// --no-controllers` does not run, are proven by the local tests, run under the install's rules).
#[test]
fn components_hold_their_own_rights() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let node = "--as=system:node:sluice-local --as-group=system:nodes";
    let kcm = "--as=system:kube-controller-manager";
    let table = [
        // The kubelet: Kubernetes' system:node.
        (format!("get secrets -n default {node}"), "yes"),
        (
            format!("patch pods --subresource=status -n default {node}"),
            "yes",
        ),
        (format!("delete deployments.apps -n default {node}"), "no"),
        (format!("create secrets -n default {node}"), "no"),
        // kube-controller-manager's loops, the scheduler, kube-proxy.
        (format!("create pods -n default {kcm}"), "yes"),
        (format!("list secrets -A {kcm}"), "yes"),
        (
            format!("create rollouts.argoproj.io -n default {kcm}"),
            "no",
        ),
        (
            "create pods --subresource=binding -n default --as=system:kube-scheduler".into(),
            "yes",
        ),
        (
            "get secrets -n default --as=system:kube-scheduler".into(),
            "no",
        ),
        (
            "watch endpointslices.discovery.k8s.io -A --as=system:kube-proxy".into(),
            "yes",
        ),
        ("get secrets -n default --as=system:kube-proxy".into(), "no"),
    ];
    for (args, expected) in table {
        let mut all = vec!["auth", "can-i"];
        all.extend(args.split_whitespace());
        let (_, out) = session.run(&all);
        assert_eq!(out.trim(), expected, "kubectl auth can-i {args}");
    }
}
