//! kubectl's verbs against `sluice up`: apply (client- and server-side), create, replace,
//! patch, scale, label, annotate, get (tables, watches), explain, logs, delete, and the
//! generators that send protobuf.

use std::process::Command;

use sluice_testkit::process::KubectlSession;

use crate::SLUICE;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
";

/// kubectl against `sluice up`: apply (create, then a strategic-merge update), rollout status,
/// get with server-side columns, endpoint slices, explain of a CRD field, delete --wait.
#[test]
fn kubectl_drives_a_deployment_on_sluice_up() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let dir = &session.dir;
    let k = |args: &[&str]| session.run(args);
    let (ok, version) = k(&["version"]);
    eprintln!("kubectl version against sluice up:\n{version}");
    assert!(ok && version.contains("v1.33"), "{version}");

    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(
        ok && out.contains("deployment.apps/web created") && out.contains("service/web created"),
        "{out}"
    );
    let (ok, out) = k(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(ok && out.contains("successfully rolled out"), "{out}");
    let (ok, out) = k(&["get", "pods", "-l", "app=web"]);
    assert!(
        ok && out.contains("READY") && out.matches("Running").count() == 2,
        "{out}"
    );
    // One named object gets kubectl's columns too.
    let (ok, out) = k(&["get", "deploy", "web"]);
    assert!(
        ok && out.contains("UP-TO-DATE") && out.contains("2/2"),
        "{out}"
    );

    // Client-side apply of a change sends a strategic merge patch.
    std::fs::write(&manifest, DEPLOYMENT.replace("nginx:1.25", "nginx:1.26")).unwrap();
    let (ok, out) = k(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(
        ok && out.contains("deployment.apps/web configured")
            && out.contains("service/web unchanged"),
        "{out}"
    );
    let (ok, out) = k(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(ok, "{out}");
    let (ok, images) = k(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        ok && images.split_whitespace().all(|i| i == "nginx:1.26"),
        "{images}"
    );
    let (ok, out) = k(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[0].endpoints[*].conditions.ready}",
    ]);
    assert!(
        ok && out.split_whitespace().filter(|r| *r == "true").count() == 2,
        "{out}"
    );

    let (ok, out) = k(&["explain", "rollout.spec.strategy.blueGreen"]);
    assert!(ok && out.contains("activeService"), "{out}");
    let (ok, out) = k(&["explain", "deployment.spec.strategy"]);
    assert!(ok && out.contains("rollingUpdate"), "{out}");

    let (ok, out) = k(&["delete", "deploy", "web", "--wait", "--timeout=60s"]);
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out) = k(&[
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "app=web",
        "--timeout=60s",
    ]);
    assert!(ok || out.contains("no matching resources"), "{out}");
    drop(session);
}

const ROLLOUT: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
      - name: app
        image: argoproj/rollouts-demo:blue
  strategy:
    blueGreen: {activeService: demo-active, autoPromotionEnabled: false}
";

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
";

/// The kubectl verbs users type, against `sluice up`.
#[test]
fn kubectl_verbs_behave_as_on_a_real_cluster() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let (kubectl, kubeconfig) = (&session.kubectl, &session.kubeconfig);
    let k = |args: &[&str]| session.run(args);
    let file = |name: &str, text: &str| session.file(name, text);

    // Argo's own CRDs, server-side (too big for client-side apply), then a Rollout.
    let crds = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/compat/argo-rollouts/crds"
    );
    if std::path::Path::new(crds).is_dir() {
        let (ok, out) = k(&["apply", "--server-side", "-f", crds]);
        assert!(
            ok && out.matches("serverside-applied").count() == 5,
            "{out}"
        );
    }
    let rollout = file("rollout.yaml", ROLLOUT);
    let (ok, out) = k(&["apply", "-f", &rollout]);
    assert!(
        ok && out.contains("rollout.argoproj.io/demo created"),
        "{out}"
    );
    // Client-side apply of a custom resource update is a merge patch.
    let changed = file(
        "rollout2.yaml",
        &ROLLOUT.replace("replicas: 2", "replicas: 3"),
    );
    let (ok, out) = k(&["apply", "-f", &changed]);
    assert!(ok && out.contains("configured"), "{out}");
    let (ok, out) = k(&["get", "rollout", "demo", "-o", "jsonpath={.spec.replicas}"]);
    assert!(ok && out == "3", "{out}");
    let (ok, out) = k(&["get", "ro"]);
    assert!(
        ok && out.contains("DESIRED") && out.contains("demo"),
        "printer columns: {out}"
    );
    let (ok, out) = k(&["scale", "rollout", "demo", "--replicas=4"]);
    assert!(ok && out.contains("scaled"), "{out}");
    let (ok, out) = k(&[
        "patch",
        "rollout",
        "demo",
        "--type",
        "merge",
        "--subresource=status",
        "-p",
        r#"{"status":{"phase":"Paused"}}"#,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = k(&[
        "get",
        "rollout",
        "demo",
        "-o",
        "jsonpath={.spec.replicas} {.status.phase}",
    ]);
    assert!(ok && out == "4 Paused", "{out}");
    let (ok, out) = k(&[
        "patch",
        "rollout",
        "demo",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    assert!(
        !ok && out.contains("UnsupportedMediaType") || out.contains("unknown format"),
        "strategic merge on a CR is 415: {out}"
    );

    // Built-ins: create, label, annotate, JSON and strategic patches, replace, -o yaml.
    let (ok, out) = k(&[
        "create",
        "-f",
        &file(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"1\"}\n",
        ),
    ]);
    assert!(ok && out.contains("configmap/settings created"), "{out}");
    let (ok, _) = k(&["label", "configmap", "settings", "team=web"]);
    assert!(ok);
    let (ok, _) = k(&["annotate", "configmap", "settings", "note=hi"]);
    assert!(ok);
    let (ok, out) = k(&[
        "patch",
        "configmap",
        "settings",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/b","value":"2"}]"#,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = k(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"c":"3"}}"#,
    ]);
    assert!(ok, "{out}");
    let (ok, yaml) = k(&["get", "configmap", "settings", "-o", "yaml"]);
    assert!(
        ok && yaml.contains("team: web")
            && yaml.contains("note: hi")
            && yaml.contains("b: \"2\"")
            && yaml.contains("c: \"3\""),
        "{yaml}"
    );
    let (ok, out) = k(&[
        "replace",
        "-f",
        &file(
            "cm2.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {z: \"9\"}\n",
        ),
    ]);
    assert!(ok && out.contains("replaced"), "{out}");

    // Server-side apply of a built-in, and its conflict with another manager.
    let deployment = file("web.yaml", DEPLOYMENT);
    let (ok, out) = k(&["apply", "--server-side", "-f", &deployment]);
    assert!(ok && out.contains("serverside-applied"), "{out}");
    let (ok, out) = k(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        &file(
            "web3.yaml",
            &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
        ),
    ]);
    assert!(!ok && out.contains("conflict"), "{out}");
    // Client-side apply update that removes a container (strategic merge `$patch: delete`).
    let two = DEPLOYMENT.replace(
        "        ports: [{containerPort: 80, name: http}]\n",
        "        ports: [{containerPort: 80, name: http}]\n      - name: sidecar\n        image: envoy:1.30\n",
    );
    let (ok, out) = k(&["apply", "-f", &file("two.yaml", &two)]);
    assert!(ok, "{out}");
    let (ok, out) = k(&[
        "apply",
        "-f",
        &file("one.yaml", &DEPLOYMENT.replace("nginx:1.25", "nginx:1.27")),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image}",
    ]);
    assert!(ok && out == "nginx:1.27", "{out}");

    // A third-party CRD, then an object of it with its printer column.
    let (ok, out) = k(&["apply", "-f", &file("crd.yaml", WIDGET_CRD)]);
    assert!(ok && out.contains("created"), "{out}");
    let (ok, out) = k(&[
        "apply",
        "-f",
        &file(
            "widget.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n",
        ),
    ]);
    assert!(ok && out.contains("widget.example.com/w created"), "{out}");
    let (ok, out) = k(&["get", "wd"]);
    assert!(ok && out.contains("SIZE") && out.contains('3'), "{out}");
    // Strict validation names unknown fields; types are checked.
    let (ok, out) = k(&[
        "apply",
        "-f",
        &file(
            "bad.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 3, colour: red}\n",
        ),
    ]);
    assert!(
        !ok && out.contains("unknown field \"spec.colour\""),
        "{out}"
    );
    let (ok, out) = k(&[
        "apply",
        "-f",
        &file(
            "bad2.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: big}\n",
        ),
    ]);
    assert!(!ok && out.contains("spec.size"), "{out}");

    // get -w prints a row as the object changes; logs of a simulated container are empty.
    let mut watch = Command::new(kubectl)
        .args(["get", "configmap", "-w", "--request-timeout=8s"])
        .env("KUBECONFIG", kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (ok, _) = k(&[
        "create",
        "-f",
        &file(
            "cm3.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\n",
        ),
    ]);
    assert!(ok);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let watched = String::from_utf8_lossy(&output.stdout);
    assert!(
        watched.contains("NAME") && watched.contains("watched"),
        "{watched}"
    );
    let (ok, out) = k(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(ok, "{out}");
    let (ok, pod) = k(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    assert!(ok && !pod.is_empty());
    let (ok, out) = k(&["logs", &pod]);
    assert!(ok && out.is_empty(), "{out}");
    drop(session);
}

/// kubectl's generators send protobuf: each object arrives whole, as the JSON kubectl meant.
#[test]
fn kubectl_generators_send_protobuf_and_it_is_read() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let k = |args: &[&str]| session.run(args);
    let create = |args: &[&str]| {
        let (ok, out) = k(args);
        assert!(
            ok && out.contains("created") || out.contains("exposed"),
            "{args:?}: {out}"
        );
    };
    create(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ]);
    create(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
        "--from-literal=b=two",
    ]);
    create(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=p=secret",
    ]);
    create(&["create", "service", "clusterip", "svc", "--tcp=80:8080"]);
    create(&[
        "expose",
        "deployment",
        "web",
        "--port=8081",
        "--target-port=80",
        "--name=web-svc",
    ]);
    create(&["create", "job", "j", "--image=busybox", "--", "echo", "hi"]);
    create(&[
        "create",
        "cronjob",
        "cj",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    create(&["create", "serviceaccount", "robot"]);
    create(&["create", "role", "r", "--verb=get", "--resource=pods"]);
    create(&[
        "create",
        "rolebinding",
        "rb",
        "--role=r",
        "--serviceaccount=default:robot",
    ]);
    create(&["create", "ingress", "ing", "--rule=a.example.com/=svc:80"]);
    create(&[
        "create",
        "pdb",
        "pdb",
        "--selector=app=web",
        "--min-available=1",
    ]);
    create(&["create", "quota", "q", "--hard=pods=10"]);
    create(&["create", "priorityclass", "pc", "--value=100"]);
    let get = |args: &[&str]| {
        let (ok, out) = k(args);
        assert!(ok, "{args:?}: {out}");
        out
    };
    let jsonpath = |kind: &str, name: &str, path: &str| {
        get(&["get", kind, name, "-o", &format!("jsonpath={path}")])
    };
    assert_eq!(
        jsonpath(
            "deploy",
            "web",
            "{.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.selector.matchLabels.app}"
        ),
        "2 nginx:1.25 80 web"
    );
    assert_eq!(jsonpath("cm", "cfg", "{.data.a} {.data.b}"), "1 two");
    assert_eq!(
        jsonpath("secret", "s", "{.data.p} {.type}"),
        "c2VjcmV0 Opaque"
    );
    assert_eq!(
        jsonpath(
            "svc",
            "svc",
            "{.spec.ports[0].port}:{.spec.ports[0].targetPort}"
        ),
        "80:8080"
    );
    assert_eq!(
        jsonpath(
            "svc",
            "web-svc",
            "{.spec.ports[0].port}:{.spec.ports[0].targetPort} {.spec.selector.app}"
        ),
        "8081:80 web"
    );
    assert_eq!(
        jsonpath("job", "j", "{.spec.template.spec.containers[0].command}"),
        r#"["echo","hi"]"#
    );
    assert_eq!(jsonpath("cronjob", "cj", "{.spec.schedule}"), "*/5 * * * *");
    assert_eq!(
        jsonpath("rolebinding", "rb", "{.subjects[0].name} {.roleRef.name}"),
        "robot r"
    );
    assert_eq!(
        jsonpath(
            "ingress",
            "ing",
            "{.spec.rules[0].host} {.spec.rules[0].http.paths[0].backend.service.port.number}"
        ),
        "a.example.com 80"
    );
    assert_eq!(jsonpath("pdb", "pdb", "{.spec.minAvailable}"), "1");
    assert_eq!(jsonpath("quota", "q", "{.spec.hard.pods}"), "10");
    assert_eq!(jsonpath("priorityclass", "pc", "{.value}"), "100");
    // A Go zero time is an unset one.
    let (_, yaml) = k(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(!yaml.contains("0001-01-01"), "{yaml}");
}

/// Field ownership follows every write: after `kubectl scale`, a server-side apply of another
/// replica count conflicts with kubectl's field, and `--force-conflicts` takes it back.
#[test]
fn server_side_apply_conflicts_with_fields_a_plain_write_set() {
    let Some(session) = KubectlSession::start(SLUICE, &[]) else {
        return;
    };
    let dir = &session.dir;
    let k = |args: &[&str]| session.run(args);
    let manifest = dir.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let file = manifest.to_str().unwrap();
    let (ok, out) = k(&["apply", "--server-side", "-f", file]);
    assert!(ok, "{out}");
    let (ok, out) = k(&["scale", "deploy", "web", "--replicas=5"]);
    assert!(ok, "{out}");
    let (ok, out) = k(&["apply", "--server-side", "-f", file]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("conflict with \"kubectl\"") && out.contains(".spec.replicas"),
        "{out}"
    );
    let (ok, out) = k(&["apply", "--server-side", "--force-conflicts", "-f", file]);
    assert!(ok, "{out}");
    let (_, replicas) = k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2");
    let (_, managers) = k(&[
        "get",
        "deploy",
        "web",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("kubectl"), "{managers}");
}
