use serde_json::{Value, json};

use super::*;
use crate::registry::Registry;

fn defaulted(group: &str, resource: &str, mut value: Value) -> Value {
    let registry = Registry::with_builtins();
    let rt = registry.get(group, resource).expect("a built-in kind");
    apply(&rt, &mut value);
    let once = value.clone();
    apply(&rt, &mut value);
    assert_eq!(value, once, "defaulting twice changes nothing");
    value
}

#[test]
fn a_minimal_pod_reads_as_on_a_real_cluster() {
    let pod = defaulted(
        "",
        "pods",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
             "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}, {"name": "A", "value": "1"}],
             "readinessProbe": {"httpGet": {"port": 80}},
             "resources": {"limits": {"cpu": "1"}}},
            {"name": "tool", "image": "busybox"}],
            "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}}]}}),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["enableServiceLinks"], true);
    let web = &spec["containers"][0];
    assert_eq!(web["imagePullPolicy"], "IfNotPresent");
    assert_eq!(web["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(web["terminationMessagePolicy"], "File");
    assert_eq!(web["ports"][0]["protocol"], "TCP");
    assert_eq!(web["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        web["env"][1],
        json!({"name": "A", "value": "1"}),
        "no null added"
    );
    assert_eq!(
        web["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(web["resources"]["requests"], json!({"cpu": "1"}));
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
    assert_eq!(spec["containers"][1]["resources"], json!({}));
    assert_eq!(
        spec["volumes"],
        json!([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}])
    );
}

#[test]
fn pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:abcd", "IfNotPresent"),
        ("nginx:latest@sha256:abcd", "Always"),
    ] {
        assert_eq!(pull_policy(image), policy, "{image}");
    }
}

#[test]
fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
    let deployment = defaulted(
        "apps",
        "deployments",
        json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}),
    );
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert!(pod.get("enableServiceLinks").is_none());

    let recreate = defaulted(
        "apps",
        "deployments",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));

    let cron = defaulted(
        "batch",
        "cronjobs",
        json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    );
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cron["spec"]["successfulJobsHistoryLimit"], 3);
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert!(
        job.get("backoffLimit").is_none(),
        "a job template is no Job"
    );
    assert_eq!(job["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(job["template"]["spec"]["dnsPolicy"], "ClusterFirst");
}

#[test]
fn jobs_stateful_and_daemon_sets() {
    let job = defaulted("batch", "jobs", json!({"spec": {"template": {"spec": {}}}}));
    assert_eq!(
        [
            &job["spec"]["completions"],
            &job["spec"]["parallelism"],
            &job["spec"]["backoffLimit"]
        ],
        [&json!(1), &json!(1), &json!(6)]
    );
    assert_eq!(job["spec"]["completionMode"], "NonIndexed");
    assert_eq!(job["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
    let parallel = defaulted("batch", "jobs", json!({"spec": {"parallelism": 3}}));
    assert!(parallel["spec"].get("completions").is_none());

    let sts = defaulted(
        "apps",
        "statefulsets",
        json!({"spec": {"serviceName": "s",
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
    );
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let ds = defaulted("apps", "daemonsets", json!({"spec": {}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
}

#[test]
fn services_and_networking() {
    let service = defaulted(
        "",
        "services",
        json!({"spec": {"selector": {"a": "b"}, "ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}}),
    );
    let spec = &service["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "http");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert!(spec.get("externalTrafficPolicy").is_none());
    assert_eq!(service["status"], json!({"loadBalancer": {}}));
    let lb = defaulted("", "services", json!({"spec": {"type": "LoadBalancer"}}));
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    let affinity = defaulted(
        "",
        "services",
        json!({"spec": {"sessionAffinity": "ClientIP"}}),
    );
    assert_eq!(
        affinity["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );

    let policy = defaulted(
        "networking.k8s.io",
        "networkpolicies",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");

    let binding = defaulted(
        "rbac.authorization.k8s.io",
        "rolebindings",
        json!({"roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot"}, {"kind": "User", "name": "ada"}]}),
    );
    assert_eq!(binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(binding["subjects"][0]["apiGroup"], "");
    assert_eq!(
        binding["subjects"][1]["apiGroup"],
        "rbac.authorization.k8s.io"
    );

    let hpa = defaulted(
        "autoscaling",
        "horizontalpodautoscalers",
        json!({"spec": {"maxReplicas": 3}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
}

#[test]
fn what_the_user_wrote_stands() {
    let pod = defaulted(
        "",
        "pods",
        json!({"spec": {"dnsPolicy": "Default", "restartPolicy": "Never", "enableServiceLinks": false,
            "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Never",
                "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2}}]}}),
    );
    assert_eq!(pod["spec"]["dnsPolicy"], "Default");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["enableServiceLinks"], false);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Never");
    assert_eq!(c["livenessProbe"]["periodSeconds"], 2);
    assert!(c["livenessProbe"].get("httpGet").is_none());

    let mut rollout = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
    let registry = Registry::with_builtins();
    let deployments = registry.get("apps", "deployments").unwrap();
    let rollouts = crate::registry::ResourceType {
        group: "argoproj.io".into(),
        resource: "rollouts".into(),
        kind: "Rollout".into(),
        custom: true,
        ..(*deployments).clone()
    };
    let before = rollout.clone();
    apply(&rollouts, &mut rollout);
    assert_eq!(rollout, before, "custom resources get no defaults");
}
