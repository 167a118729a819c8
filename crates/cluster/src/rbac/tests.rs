//! RBAC tables: role and binding combinations, aggregation, resourceNames, subresources,
//! non-resource URLs and watch, each row a request and the expected answer.

use serde_json::{Value, json};

use super::*;

fn account(namespace: &str, name: &str) -> User {
    User {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        uid: "u".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
    }
}

fn person(name: &str, groups: &[&str]) -> User {
    let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    groups.push("system:authenticated".into());
    User {
        username: name.into(),
        uid: String::new(),
        groups,
    }
}

fn role(namespace: &str, name: &str, rules: Value) -> (String, String, Vec<PolicyRule>) {
    (
        namespace.into(),
        name.into(),
        rules_of(&json!({"rules": rules})),
    )
}

fn binding(namespace: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Binding {
    Binding::from_json(&json!({
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"kind": kind, "name": role},
        "subjects": subjects,
    }))
}

/// `verb resource[/sub] [name] [in NS]`, or `verb /path`.
fn request(text: &str) -> Attributes {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words[1].starts_with('/') {
        return Attributes::non_resource(words[0], words[1]);
    }
    let (resource, subresource) = words[1].split_once('/').unwrap_or((words[1], ""));
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let mut attributes = ResourceAttributes {
        group: group.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        ..ResourceAttributes::default()
    };
    let mut rest = &words[2..];
    if let [name, tail @ ..] = rest
        && *name != "in"
    {
        attributes.name = (*name).into();
        rest = tail;
    }
    if let ["in", namespace] = rest {
        attributes.namespace = (*namespace).into();
    }
    Attributes::resource(words[0], attributes)
}

fn policy() -> Policy {
    let mut cluster_roles: Vec<ClusterRole> = defaults::cluster_roles()
        .iter()
        .map(ClusterRole::from_json)
        .collect();
    cluster_roles.push(ClusterRole::from_json(&json!({
        "metadata": {"name": "rollouts-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch"]}],
    })));
    cluster_roles.push(ClusterRole::from_json(&json!({
        "metadata": {"name": "node-reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
            {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]},
        ],
    })));
    let roles = vec![
        role(
            "shop",
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]),
        ),
        role(
            "shop",
            "one-config",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "update"]}]),
        ),
        role(
            "shop",
            "any-status",
            json!([{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}]),
        ),
        role(
            "shop",
            "watcher",
            json!([{"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["watch"]}]),
        ),
    ];
    let mut bindings: Vec<Binding> = defaults::cluster_role_bindings()
        .iter()
        .map(Binding::from_json)
        .collect();
    bindings.extend([
        binding(
            "shop",
            "read-pods",
            "Role",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "reader"}]),
        ),
        binding(
            "shop",
            "config",
            "Role",
            "one-config",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        binding(
            "shop",
            "status",
            "Role",
            "any-status",
            json!([{"kind": "Group", "name": "status-writers"}]),
        ),
        binding(
            "shop",
            "watch",
            "Role",
            "watcher",
            json!([{"kind": "ServiceAccount", "name": "watcher", "namespace": "shop"}]),
        ),
        binding(
            "shop",
            "viewers",
            "ClusterRole",
            "view",
            json!([{"kind": "Group", "name": "system:serviceaccounts:shop"}]),
        ),
        binding(
            "shop",
            "editor",
            "ClusterRole",
            "edit",
            json!([{"kind": "User", "name": "ed"}]),
        ),
        binding(
            "shop",
            "boss",
            "ClusterRole",
            "admin",
            json!([{"kind": "User", "name": "boss"}]),
        ),
        binding(
            "shop",
            "dangling",
            "Role",
            "gone",
            json!([{"kind": "User", "name": "carol"}]),
        ),
        binding(
            "",
            "nodes",
            "ClusterRole",
            "node-reader",
            json!([{"kind": "ServiceAccount", "name": "monitor", "namespace": "ops"}]),
        ),
    ]);
    Policy::new(roles, &cluster_roles, bindings)
}

#[test]
fn requests_are_allowed_exactly_as_bindings_say() {
    let policy = policy();
    let reader = account("shop", "reader");
    let other_ns_reader = account("elsewhere", "reader");
    let watcher = account("shop", "watcher");
    let monitor = account("ops", "monitor");
    let alice = person("alice", &[]);
    let ed = person("ed", &[]);
    let boss = person("boss", &[]);
    let status = person("sam", &["status-writers"]);
    let admin = person("sluice-admin", &[MASTERS]);
    let nobody = person("nobody", &[]);
    let table: &[(&User, &str, bool)] = &[
        // A Role through a RoleBinding, in its namespace only; subresources listed explicitly.
        (&reader, "get pods web in shop", true),
        (&reader, "list pods in shop", true),
        (&reader, "delete pods web in other", false),
        (&reader, "list pods in other", false),
        (&reader, "list pods", false),
        (&reader, "get pods/log web in shop", true),
        (&reader, "create pods/exec web in shop", false),
        (&reader, "delete pods web in shop", false),
        // A ServiceAccount subject with no namespace is the binding's, not any namespace's.
        (&other_ns_reader, "get pods web in shop", false),
        // The view ClusterRole through a group RoleBinding: no Secrets, no exec, aggregated
        // rules of a CRD's role included.
        (&reader, "list configmaps in shop", true),
        (&reader, "watch pods in shop", true),
        (&reader, "get secrets in shop", false),
        (&reader, "list secrets in shop", false),
        (&reader, "list rollouts.argoproj.io in shop", true),
        (&reader, "patch rollouts.argoproj.io r in shop", false),
        (&reader, "get apps/deployments in shop", false),
        (&reader, "get deployments.apps web in shop", true),
        // watch is its own verb.
        (&watcher, "watch rollouts.argoproj.io in shop", true),
        (&watcher, "watch rollouts.argoproj.io r in shop", true),
        (&watcher, "get rollouts.argoproj.io r in shop", true),
        // resourceNames: only the named object, never a collection.
        (&alice, "get configmaps settings in shop", true),
        (&alice, "update configmaps settings in shop", true),
        (&alice, "get configmaps other in shop", false),
        (&alice, "list configmaps in shop", false),
        (&alice, "delete configmaps settings in shop", false),
        // */status: any resource's status subresource, not the resource.
        (&status, "patch deployments.apps/status web in shop", true),
        (&status, "update pods/status p in shop", true),
        (&status, "patch deployments.apps web in shop", false),
        (&status, "patch deployments.apps/scale web in shop", false),
        // edit and admin by aggregation: edit writes, reads secrets, cannot grant; admin can.
        (&ed, "create secrets in shop", true),
        (&ed, "get secrets s in shop", true),
        (&ed, "create pods/exec p in shop", true),
        (&ed, "create pods/eviction p in shop", true),
        (&ed, "list rollouts.argoproj.io in shop", true),
        (&ed, "create roles.rbac.authorization.k8s.io in shop", false),
        (&ed, "update pods/status p in shop", false),
        (
            &boss,
            "create roles.rbac.authorization.k8s.io in shop",
            true,
        ),
        (
            &boss,
            "create rolebindings.rbac.authorization.k8s.io in shop",
            true,
        ),
        (&boss, "get secrets s in shop", true),
        (&boss, "create namespaces", false),
        // ClusterRoleBindings: cluster scope and every namespace; non-resource URLs with prefixes.
        (&monitor, "list nodes", true),
        (&monitor, "get nodes n", true),
        (&monitor, "get /metrics", true),
        (&monitor, "get /logs/kubelet.log", true),
        (&monitor, "get /logs", false),
        (&monitor, "post /metrics", false),
        // The defaults every authenticated user has: discovery, basic-user, public info.
        (&nobody, "get /apis/apps/v1", true),
        (&nobody, "get /version", true),
        (&nobody, "get /metrics", false),
        (
            &nobody,
            "create selfsubjectaccessreviews.authorization.k8s.io",
            true,
        ),
        (
            &nobody,
            "create selfsubjectreviews.authentication.k8s.io",
            true,
        ),
        (
            &nobody,
            "create subjectaccessreviews.authorization.k8s.io",
            false,
        ),
        (&nobody, "list pods in shop", false),
        // system:masters: everything.
        (&admin, "deletecollection secrets in shop", true),
        (&admin, "get /anything", true),
        (&admin, "impersonate users someone", true),
    ];
    let mut wrong = Vec::new();
    for (user, text, allowed) in table {
        let decision = policy.authorize(user, &request(text));
        if decision.allowed != *allowed {
            wrong.push(format!(
                "{} {text}: {} ({})",
                user.username, decision.allowed, decision.reason
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn reasons_name_the_binding_or_the_missing_role() {
    let policy = policy();
    let decision = policy.authorize(&account("shop", "reader"), &request("get pods p in shop"));
    assert_eq!(
        decision.reason,
        "RBAC: allowed by RoleBinding \"read-pods/shop\" of Role \"pod-reader\" to ServiceAccount \"reader/shop\""
    );
    let decision = policy.authorize(&person("nobody", &[]), &request("get /version"));
    assert_eq!(
        decision.reason,
        "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\""
    );
    let decision = policy.authorize(&person("carol", &[]), &request("get pods p in shop"));
    assert_eq!(
        decision,
        Decision {
            allowed: false,
            reason: "RBAC: role.rbac.authorization.k8s.io \"gone\" not found".into()
        }
    );
}

#[test]
fn forbidden_messages_are_kubernetes_words() {
    let user = "system:serviceaccount:ns:ro";
    let cases = [
        (
            "list secrets in ns",
            r#"User "system:serviceaccount:ns:ro" cannot list resource "secrets" in API group "" in the namespace "ns""#,
        ),
        (
            "get nodes n",
            r#"User "system:serviceaccount:ns:ro" cannot get resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            "create pods/exec web in ns",
            r#"User "system:serviceaccount:ns:ro" cannot create resource "pods/exec" in API group "" in the namespace "ns""#,
        ),
        (
            "patch rollouts.argoproj.io/status r in ns",
            r#"User "system:serviceaccount:ns:ro" cannot patch resource "rollouts/status" in API group "argoproj.io" in the namespace "ns""#,
        ),
        (
            "get /metrics",
            r#"User "system:serviceaccount:ns:ro" cannot get path "/metrics""#,
        ),
    ];
    for (text, message) in cases {
        assert_eq!(request(text).forbidden_message(user), message);
    }
}

#[test]
fn aggregation_follows_labels_transitively_and_settles() {
    let policy = policy();
    let view = policy.cluster_role("view").unwrap();
    let edit = policy.cluster_role("edit").unwrap();
    let admin = policy.cluster_role("admin").unwrap();
    let rollouts = PolicyRule::from_json(
        &json!({"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch"]}),
    );
    assert!(view.contains(&rollouts));
    assert!(view.iter().all(|r| edit.contains(r)));
    assert!(edit.iter().all(|r| admin.contains(r)));
    assert!(admin.len() > edit.len() && edit.len() > view.len());
    // No duplicates, and a role never aggregates itself.
    let roles = vec![
        ClusterRole::from_json(&json!({
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}, {"matchExpressions": [{"key": "y", "operator": "Exists"}]}]},
        })),
        ClusterRole::from_json(&json!({
            "metadata": {"name": "b", "labels": {"x": "1", "y": ""}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        })),
        ClusterRole::from_json(&json!({
            "metadata": {"name": "c", "labels": {"x": "1"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]},
        })),
    ];
    let aggregated = aggregate(&roles);
    assert_eq!(aggregated["a"], roles[1].rules);
    assert_eq!(aggregated["c"], roles[1].rules);
    assert!(!aggregated.contains_key("b"));
}

#[test]
fn rules_for_lists_what_bindings_grant_in_a_namespace() {
    let policy = policy();
    let (rules, errors) = policy.rules_for(&account("shop", "reader"), "shop");
    assert!(errors.is_empty());
    assert!(
        rules
            .iter()
            .any(|r| r.resources.contains(&"pods/log".into()))
    );
    assert!(
        rules
            .iter()
            .any(|r| r.non_resource_urls.contains(&"/api".into()))
    );
    let (rules, _) = policy.rules_for(&account("shop", "reader"), "other");
    assert!(
        !rules
            .iter()
            .any(|r| r.resources.contains(&"pods/log".into()))
    );
    let (_, errors) = policy.rules_for(&person("carol", &[]), "shop");
    assert_eq!(
        errors,
        ["role.rbac.authorization.k8s.io \"gone\" not found"]
    );
}

/// The per-request cost of a decision on a policy of Kubernetes' defaults plus the table's
/// roles (`cargo test -p sluice-cluster --release rbac::tests::cost -- --ignored --nocapture`).
#[test]
#[ignore = "measurement, prints numbers"]
fn cost() {
    let policy = policy();
    let user = account("shop", "reader");
    let requests = [
        request("get pods web in shop"),
        request("list secrets in shop"),
        request("get /apis"),
    ];
    let rounds = 200_000;
    let start = std::time::Instant::now();
    for i in 0..rounds {
        std::hint::black_box(policy.authorize(&user, &requests[i % requests.len()]));
    }
    let per = start.elapsed() / rounds as u32;
    println!("authorize: {per:?} per request over {rounds} requests");

    // The index over a store holding Kubernetes' defaults: a lookup while nothing changed,
    // and a rebuild after a change.
    let store = crate::store::Store::in_memory(crate::store::StoreConfig::default());
    let group = "rbac.authorization.k8s.io";
    store
        .write(|txn| {
            for (resource, objects) in [
                ("clusterroles", defaults::cluster_roles()),
                ("clusterrolebindings", defaults::cluster_role_bindings()),
            ] {
                for object in objects {
                    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
                    txn.put(
                        &crate::store::ResourceKey::new(group, resource),
                        crate::store::ObjectKey::new("", &name),
                        object,
                    );
                }
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .unwrap();
    let index = index::PolicyIndex::default();
    let start = std::time::Instant::now();
    let built = index.policy(&store);
    let rebuild = start.elapsed();
    let start = std::time::Instant::now();
    for i in 0..rounds {
        let policy = index.policy(&store);
        std::hint::black_box(policy.authorize(&user, &requests[i % requests.len()]));
    }
    let per = start.elapsed() / rounds as u32;
    drop(built);
    println!("index: rebuild {rebuild:?}; lookup + authorize {per:?} per request");
}

#[test]
fn components_hold_the_rights_kubernetes_gives_them() {
    let policy = policy();
    let manager = User::controller_manager();
    let scheduler = User::scheduler();
    let kubelet = User::node("sluice-local");
    let proxy = User::proxy();
    let ingress = User::ingress();
    let table: &[(&User, &str, bool)] = &[
        // kube-controller-manager: every loop's role, reads everything, writes what its loops own.
        (&manager, "list secrets", true),
        (&manager, "watch pods", true),
        (&manager, "create pods in shop", true),
        (&manager, "patch replicasets.apps/status web in shop", true),
        (&manager, "update deployments.apps/status web in shop", true),
        (
            &manager,
            "create endpointslices.discovery.k8s.io in shop",
            true,
        ),
        (&manager, "create serviceaccounts in shop", true),
        (&manager, "create configmaps in shop", true),
        (
            &manager,
            "patch clusterroles.rbac.authorization.k8s.io admin",
            true,
        ),
        (&manager, "create events.events.k8s.io in shop", true),
        (&manager, "create rollouts.argoproj.io in shop", false),
        (&manager, "create pods/exec web in shop", false),
        (
            &manager,
            "create clusterrolebindings.rbac.authorization.k8s.io",
            false,
        ),
        // The scheduler binds and reads, nothing more.
        (&scheduler, "patch pods/status web in shop", true),
        (&scheduler, "create pods/binding web in shop", true),
        (&scheduler, "get nodes sluice-local", true),
        (&scheduler, "create pods in shop", false),
        (&scheduler, "get secrets s in shop", false),
        // The kubelet: system:node through the group system:nodes.
        (&kubelet, "get secrets s in shop", true),
        (&kubelet, "list secrets in shop", true),
        (&kubelet, "patch pods/status web in shop", true),
        (&kubelet, "delete pods web in shop", true),
        (
            &kubelet,
            "create serviceaccounts/token default in shop",
            true,
        ),
        (
            &kubelet,
            "update leases.coordination.k8s.io sluice-local in kube-node-lease",
            true,
        ),
        (&kubelet, "create events.events.k8s.io in shop", true),
        (&kubelet, "delete deployments.apps web in shop", false),
        (&kubelet, "create secrets in shop", false),
        (&kubelet, "update pods web in shop", false),
        (&kubelet, "list rollouts.argoproj.io in shop", false),
        // kube-proxy reads Services and their endpoints; it may patch Services (sluice's
        // load-balancer status and remapped ports) but not change what they select.
        (&proxy, "watch endpointslices.discovery.k8s.io", true),
        (&proxy, "list services", true),
        (&proxy, "patch services/status web in shop", true),
        (&proxy, "get secrets s in shop", false),
        (&proxy, "delete services web in shop", false),
        // The ingress: ingress-nginx's rules.
        (&ingress, "watch ingresses.networking.k8s.io", true),
        (
            &ingress,
            "update ingresses.networking.k8s.io/status web in shop",
            true,
        ),
        (&ingress, "list secrets", true),
        (
            &ingress,
            "delete ingresses.networking.k8s.io web in shop",
            false,
        ),
        (&ingress, "create pods in shop", false),
    ];
    for (user, text, expected) in table {
        let decision = policy.authorize(user, &request(text));
        assert_eq!(
            decision.allowed, *expected,
            "{} {text}: {}",
            user.username, decision.reason
        );
    }
}
