//! Applications on the embedded cluster, synced from real git repositories made by the tests
//! (`file://`, watched on disk): create → Synced/Healthy, a commit applied with no poll, a
//! revert going back, the Rollout's injected selectors never OutOfSync, prune on and off,
//! self-heal, the seed's `kubectl patch … operation` sync, CreateNamespace, a CRD in the same
//! commit, a bad manifest, the repository removed.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};
use sluice_api::{Application, Rollout};
use sluice_testkit::git::{commit, git, repository};

use super::*;

pub(super) fn rollout_yaml(tag: &str) -> String {
    format!(
        r#"# the Rollout
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: example.com/web:{tag}
        ports:
        - containerPort: 8080
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 2
"#
    )
}

pub(super) fn service_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )
}

pub(super) fn config_map_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n")
}

/// The user's flow: a Rollout and its two Services.
pub(super) fn flow_files(tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("rollout.yaml", rollout_yaml(tag)),
        ("active-service.yaml", service_yaml("web-active")),
        ("preview-service.yaml", service_yaml("web-preview")),
    ]
}

pub(super) fn as_refs<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(n, t)| (*n, t.as_str())).collect()
}

/// Applications as JSON: the test threads' stacks are too small for decoding the deep
/// `Application` type in a debug build (the controller's workers get larger ones).
pub(super) fn apps() -> Api<DynamicObject> {
    let resource = ApiResource::erase::<Application>(&());
    Api::namespaced_with(client(), "argocd", &resource)
}

/// Registers an Application as `kubectl apply` of its manifest would.
pub(super) async fn application(
    name: &str,
    repo: &Path,
    ns: &str,
    sync_policy: Value,
) -> DynamicObject {
    let source = json!({"repoURL": format!("file://{}", repo.display()), "targetRevision": "HEAD", "path": "."});
    create_application(name, "default", source, ns, sync_policy).await
}

/// Creates an Application in `argocd` (with its namespace and the default project).
pub(super) async fn create_application(
    name: &str,
    project: &str,
    source: Value,
    ns: &str,
    sync_policy: Value,
) -> DynamicObject {
    sluice_gitops::controller::ensure_home(&client(), "argocd")
        .await
        .unwrap();
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": project,
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            "syncPolicy": sync_policy,
        }
    }))
    .unwrap();
    apps().create(&PostParams::default(), &app).await.unwrap()
}

pub(super) async fn app_status(name: &str) -> Value {
    apps().get(name).await.unwrap().data["status"].clone()
}

/// Waits until the Application's status satisfies `check`.
pub(super) async fn until(name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let status = app_status(name).await;
        if check(&status) {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {name}: {what}; status: {}",
        app_status(name).await
    );
}

pub(super) fn sync_is(s: &Value, sync: &str, health: &str) -> bool {
    s["sync"]["status"] == sync && s["health"]["status"] == health
}

pub(super) async fn rollout_image(ns: &str) -> Option<String> {
    let rollouts: Api<Rollout> = Api::namespaced(client(), ns);
    let r = rollouts.get_opt("web").await.unwrap()?;
    let v = serde_json::to_value(&r).unwrap();
    v["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .map(str::to_owned)
}

pub(super) fn automated() -> Value {
    json!({"automated": {"prune": true, "selfHeal": true}})
}

#[tokio::test]
async fn a_commit_is_applied_from_disk_and_a_revert_goes_back() {
    let ns = namespace(&client(), "gitops-flow").await;
    let files = flow_files("blue");
    let repo = repository(&as_refs(&files));
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, automated()).await;
    // The blue-green Rollout's first version is Healthy; its Services carry the controller's
    // hash in their selectors and the Application stays Synced.
    let s = until(&name, "Synced and Healthy", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    assert_eq!(s["sourceType"], "Directory");
    assert_eq!(s["summary"]["images"], json!(["example.com/web:blue"]));
    assert_eq!(s["resources"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(s["operationState"]["phase"], "Succeeded");
    assert_eq!(s["history"].as_array().unwrap().len(), 1);
    let services: Api<Service> = Api::namespaced(client(), &ns);
    let active = services.get("web-active").await.unwrap();
    let selector = active.spec.unwrap().selector.unwrap();
    assert!(
        selector.contains_key("rollouts-pod-template-hash"),
        "{selector:?}"
    );
    assert_eq!(app_status(&name).await["sync"]["status"], "Synced");

    // A commit of a new tag: the Rollout follows with no poll (the file watch), and waits
    // for promotion, so the Application is Suspended.
    let green = rollout_yaml("green");
    let second = commit(repo.path(), &[("rollout.yaml", &green)], "green");
    eventually("the Rollout on green", || async {
        rollout_image(&ns).await.as_deref() == Some("example.com/web:green")
    })
    .await;
    until(&name, "Suspended at green", |s| {
        s["sync"]["revision"] == second.as_str() && sync_is(s, "Synced", "Suspended")
    })
    .await;
    // The update kept the container's other fields (a custom resource's lists are patched
    // whole), so the Application stays Synced and is not healed again and again.
    let rollouts: Api<Rollout> = Api::namespaced(client(), &ns);
    let live = serde_json::to_value(rollouts.get("web").await.unwrap()).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let s = app_status(&name).await;
    assert_eq!(s["sync"]["status"], "Synced", "{s}");
    assert_eq!(
        s["history"].as_array().unwrap().len(),
        2,
        "no self-heal loop: {s}"
    );
    assert_eq!(s["history"].as_array().unwrap().len(), 2);

    // Rollback by git revert.
    git(repo.path(), &["revert", "--no-edit", "HEAD"]);
    eventually("the Rollout back on blue", || async {
        rollout_image(&ns).await.as_deref() == Some("example.com/web:blue")
    })
    .await;
    until(&name, "Synced after the revert", |s| {
        s["sync"]["status"] == "Synced"
    })
    .await;
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_self_heal_and_a_manual_sync_through_the_operation_field() {
    let ns = namespace(&client(), "gitops-heal").await;
    let (a, b) = (config_map_yaml("a"), config_map_yaml("b"));
    let repo = repository(&[("a.yaml", &a), ("b.yaml", &b)]);
    let name = format!("{ns}-app");
    // Manual: nothing happens until the seed's `kubectl patch … operation`.
    application(
        &name,
        repo.path(),
        &ns,
        json!({"syncOptions": ["ApplyOutOfSyncOnly=true"]}),
    )
    .await;
    let s = until(&name, "OutOfSync and Missing", |s| {
        sync_is(s, "OutOfSync", "Missing")
    })
    .await;
    assert!(s["operationState"].is_null());
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("a").await.unwrap().is_none());
    let operation = json!({"operation": {"initiatedBy": {"username": "admin"}, "sync": {"syncStrategy": {"hook": {}}}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&operation))
        .await
        .unwrap();
    let s = until(&name, "Synced after the sync", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    let results = s["operationState"]["syncResult"]["resources"]
        .as_array()
        .unwrap();
    assert_eq!(results.len(), 2, "{s}");
    assert!(results.iter().all(|r| r["status"] == "Synced"));
    assert!(
        apps().get(&name).await.unwrap().data["operation"].is_null(),
        "the operation is cleared"
    );

    // Git drops b: without prune it stays, requiring pruning.
    git(repo.path(), &["rm", "-q", "b.yaml"]);
    git(repo.path(), &["commit", "-qm", "drop b"]);
    let s = until(&name, "b requires pruning", |s| {
        s["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == "b" && r["requiresPruning"] == true)
    })
    .await;
    assert_eq!(s["sync"]["status"], "OutOfSync");
    let sync = json!({"operation": {"sync": {"prune": false}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&sync))
        .await
        .unwrap();
    let s = until(&name, "the sync without prune", |s| {
        s["operationState"]["syncResult"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["status"] == "PruneSkipped")
    })
    .await;
    assert_eq!(s["operationState"]["phase"], "Succeeded");
    let results = s["operationState"]["syncResult"]["resources"]
        .as_array()
        .unwrap();
    assert!(
        results.iter().all(|r| r["name"] != "a"),
        "ApplyOutOfSyncOnly: a, in sync, is not applied again: {results:?}"
    );
    assert!(
        maps.get_opt("b").await.unwrap().is_some(),
        "not pruned without prune"
    );
    // With automated prune and self-heal: b goes, and edits and deletions are undone.
    let policy = json!({"spec": {"syncPolicy": automated()}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&policy))
        .await
        .unwrap();
    eventually("b pruned", || async {
        maps.get_opt("b").await.unwrap().is_none()
    })
    .await;
    until(&name, "Synced", |s| s["sync"]["status"] == "Synced").await;
    let edit = json!({"data": {"a": "edited"}});
    maps.patch("a", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the edit undone", || async {
        maps.get("a").await.unwrap().data.unwrap()["a"] == "1"
    })
    .await;
    // The second heal of this revision waits 6 s after the first (2 s × 3ⁿ).
    maps.delete("a", &DeleteParams::default()).await.unwrap();
    let mut recreated = false;
    for _ in 0..60 {
        if maps.get_opt("a").await.unwrap().is_some() {
            recreated = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        recreated,
        "a recreated by self-heal: {}",
        app_status(&name).await
    );
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn create_namespace_and_a_crd_in_the_same_commit() {
    let ns = format!("{}-made", namespace(&client(), "gitops-ns").await);
    let crd = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n";
    let cm = config_map_yaml("c");
    let repo = repository(&[("crd.yaml", crd), ("widget.yaml", widget), ("cm.yaml", &cm)]);
    let name = format!("{ns}-app");
    let policy = json!({"automated": {}, "syncOptions": ["CreateNamespace=true"],
        "managedNamespaceMetadata": {"labels": {"team": "web"}}});
    application(&name, repo.path(), &ns, policy).await;
    until(&name, "Synced", |s| s["sync"]["status"] == "Synced").await;
    let namespaces: Api<Namespace> = Api::all(client());
    let made = namespaces.get(&ns).await.unwrap();
    assert_eq!(made.metadata.labels.unwrap()["team"], "web");
    let widgets = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(client(), &ns, &widgets);
    assert_eq!(widgets.get("w").await.unwrap().data["spec"]["size"], 3);
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_manifest_or_a_lost_repository_applies_nothing() {
    let ns = namespace(&client(), "gitops-bad").await;
    let good = config_map_yaml("good");
    let repo = repository(&[("good.yaml", &good)]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, automated()).await;
    until(&name, "Synced", |s| s["sync"]["status"] == "Synced").await;
    // A broken file: ComparisonError naming it, nothing applied, nothing pruned.
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n";
    git(repo.path(), &["rm", "-q", "good.yaml"]);
    commit(repo.path(), &[("broken.yaml", broken)], "broken");
    let s = until(&name, "ComparisonError", |s| {
        s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "ComparisonError")
    })
    .await;
    let condition = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ComparisonError")
        .unwrap();
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains("broken.yaml"),
        "{condition}"
    );
    assert_eq!(s["sync"]["status"], "Unknown");
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(
        maps.get_opt("good").await.unwrap().is_some(),
        "nothing pruned"
    );
    // Fixed, then the repository disappears: the last state stays.
    git(repo.path(), &["rm", "-q", "broken.yaml"]);
    commit(repo.path(), &[("good.yaml", &good)], "fixed");
    until(&name, "Synced again", |s| {
        s["sync"]["status"] == "Synced" && s["conditions"].is_null()
    })
    .await;
    let path = repo.path().to_owned();
    drop(repo);
    assert!(!path.exists());
    let refresh = json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&refresh))
        .await
        .unwrap();
    eventually("the refresh taken", || async {
        apps()
            .get(&name)
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("argocd.argoproj.io/refresh")
            .eq(&false)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let s = app_status(&name).await;
    assert_eq!(
        s["sync"]["status"], "Synced",
        "the last state is kept within the grace period: {s}"
    );
    assert!(maps.get_opt("good").await.unwrap().is_some());
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

/// A bare repository under `root` named `name`, with `files` pushed to `main` from a clone;
/// the clone, to push more.
pub(super) fn served_repository(
    root: &Path,
    name: &str,
    files: &[(&str, &str)],
) -> tempfile::TempDir {
    let bare = root.join(name);
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    let work = repository(files);
    git(
        work.path(),
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    work
}

pub(super) fn push(work: &Path, root: &Path, name: &str) {
    let bare = root.join(name);
    git(
        work,
        &[
            "push",
            "-q",
            "-f",
            bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
    );
}

#[tokio::test]
async fn a_repository_over_smart_http_is_polled() {
    let ns = namespace(&client(), "gitops-http").await;
    let root = tempfile::tempdir().unwrap();
    let server = sluice_testkit::git_http::GitHttp::start(root.path().to_owned())
        .await
        .unwrap();
    let one = config_map_yaml("one");
    let work = served_repository(root.path(), "cd.git", &[("one.yaml", &one)]);
    let name = format!("{ns}-app");
    let source = json!({"repoURL": server.url("cd.git"), "targetRevision": "main", "path": ""});
    create_application(&name, "default", source, &ns, automated()).await;
    until(&name, "Synced over HTTP", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    // A push is seen at the next poll (every few seconds in these tests).
    let two = config_map_yaml("two");
    commit(work.path(), &[("two.yaml", &two)], "two");
    push(work.path(), root.path(), "cd.git");
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    eventually("two applied by the poll", || async {
        maps.get_opt("two").await.unwrap().is_some()
    })
    .await;
    // A force-push that rewrites history is followed.
    git(work.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    let three = config_map_yaml("three");
    commit(work.path(), &[("three.yaml", &three)], "three");
    push(work.path(), root.path(), "cd.git");
    eventually("three applied and two pruned", || async {
        maps.get_opt("three").await.unwrap().is_some()
            && maps.get_opt("two").await.unwrap().is_none()
    })
    .await;
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn two_hundred_applications_on_one_repository() {
    let ns = namespace(&client(), "gitops-many").await;
    let files: Vec<(String, String)> = (0..200)
        .map(|i| {
            (
                format!("app{i}/cm.yaml"),
                config_map_yaml(&format!("cm{i}")),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let repo = repository(&refs);
    for i in 0..200 {
        let source = json!({"repoURL": format!("file://{}", repo.path().display()), "path": format!("app{i}")});
        let automated = json!({"automated": {}});
        create_application(&format!("{ns}-{i}"), "default", source, &ns, automated).await;
    }
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let mut synced = 0;
    for _ in 0..240 {
        let list = apps().list(&Default::default()).await.unwrap();
        synced = list
            .items
            .iter()
            .filter(|a| {
                a.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&format!("{ns}-")))
            })
            .filter(|a| a.data["status"]["sync"]["status"] == "Synced")
            .count();
        if synced == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(synced, 200);
    let made = maps.list(&Default::default()).await.unwrap().items;
    let made = made
        .iter()
        .filter(|m| {
            m.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cm"))
        })
        .count();
    assert_eq!(made, 200);
    for i in 0..200 {
        apps()
            .delete(&format!("{ns}-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_sync_to_an_earlier_revision_applies_that_revision() {
    let ns = namespace(&client(), "gitops-rev").await;
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: \"1\"\n";
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: \"2\"\n";
    let repo = repository(&[("c.yaml", v1)]);
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let second = commit(repo.path(), &[("c.yaml", v2)], "v2");
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, json!({})).await;
    until(&name, "compared", |s| {
        s["sync"]["revision"] == second.as_str()
    })
    .await;
    let sync = json!({"operation": {"sync": {"revision": first}}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&sync))
        .await
        .unwrap();
    let s = until(&name, "synced to the first revision", |s| {
        s["operationState"]["phase"] == "Succeeded"
            && s["operationState"]["syncResult"]["revision"] == first.as_str()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert_eq!(maps.get("c").await.unwrap().data.unwrap()["v"], "1");
    assert_eq!(s["history"][0]["revision"], first.as_str());
    until(&name, "OutOfSync with the target again", |s| {
        s["sync"]["status"] == "OutOfSync"
    })
    .await;
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_project_watching_orphans_warns_of_untracked_objects() {
    let ns = namespace(&client(), "gitops-orphans").await;
    sluice_gitops::controller::ensure_home(&client(), "argocd")
        .await
        .unwrap();
    let projects = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    );
    let projects: Api<DynamicObject> = Api::namespaced_with(client(), "argocd", &projects);
    let project: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": ns, "namespace": "argocd"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
            "orphanedResources": {"warn": true}}}))
    .unwrap();
    projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let stray: ConfigMap = from(json!({"metadata": {"name": "stray"}, "data": {"x": "1"}}));
    maps.create(&PostParams::default(), &stray).await.unwrap();
    let kept = config_map_yaml("kept");
    let repo = repository(&[("kept.yaml", &kept)]);
    let name = format!("{ns}-app");
    let source = json!({"repoURL": format!("file://{}", repo.path().display()), "path": "."});
    create_application(&name, &ns, source, &ns, json!({"automated": {}})).await;
    let s = until(&name, "an orphan warning", |s| {
        s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "OrphanedResourceWarning")
    })
    .await;
    let condition = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "OrphanedResourceWarning")
        .unwrap();
    assert_eq!(condition["message"], "Application has 1 orphaned resources");
    assert!(maps.get_opt("kept").await.unwrap().is_some());
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_namespace_and_its_objects_in_one_commit_sync_together() {
    // The blue-green example's layout: the namespace is a manifest beside what lives in it.
    let ns = format!("{}-git", namespace(&client(), "gitops-nsgit").await);
    let namespace_yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    let cm = config_map_yaml("inside");
    let repo = repository(&[("00-namespace.yaml", &namespace_yaml), ("cm.yaml", &cm)]);
    let name = format!("{ns}-app");
    application(&name, repo.path(), &ns, automated()).await;
    until(&name, "Synced and Healthy", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("inside").await.unwrap().is_some());
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

pub(super) const MANDELBROT_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example.com/mandelbrot:v1
";

pub(super) fn cloud_overlay(cloud: &str) -> String {
    format!(
        "resources:\n- ../../base\nnamePrefix: {cloud}-\nlabels:\n- pairs: {{cloud: {cloud}}}\npatches:\n- target: {{kind: ConfigMap, name: settings}}\n  patch: |-\n    - op: replace\n      path: /data/cloud\n      value: {cloud}\n"
    )
}

/// The seed's layout: one base, one overlay per cloud, each synced by its own Application
/// through `kubectl kustomize`, one of them with the Application's kustomize overrides.
#[tokio::test]
async fn a_kustomize_overlay_per_cloud_is_synced() {
    let aws = namespace(&client(), "gitops-kz-aws").await;
    let gcp = namespace(&client(), "gitops-kz-gcp").await;
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  cloud: none\n  tier: one\n";
    let (aws_overlay, gcp_overlay) = (cloud_overlay("aws"), cloud_overlay("gcp"));
    let repo = repository(&[
        (
            "apps/mandelbrot/base/kustomization.yaml",
            "resources:\n- deployment.yaml\n- settings.yaml\n",
        ),
        (
            "apps/mandelbrot/base/deployment.yaml",
            MANDELBROT_DEPLOYMENT,
        ),
        ("apps/mandelbrot/base/settings.yaml", settings),
        (
            "apps/mandelbrot/overlays/aws/kustomization.yaml",
            &aws_overlay,
        ),
        (
            "apps/mandelbrot/overlays/gcp/kustomization.yaml",
            &gcp_overlay,
        ),
    ]);
    let url = format!("file://{}", repo.path().display());
    let aws_app = format!("{aws}-app");
    let gcp_app = format!("{gcp}-app");
    // aws: the overrides Argo CD would `kustomize edit set` (image, replicas, a label, a suffix).
    let aws_source = json!({"repoURL": url, "targetRevision": "HEAD",
        "path": "apps/mandelbrot/overlays/aws",
        "kustomize": {"images": ["example.com/mandelbrot:v2"], "nameSuffix": "-x",
            "replicas": [{"name": "web", "count": 0}],
            "commonAnnotations": {"owner": "${ARGOCD_APP_NAME}"}, "commonAnnotationsEnvsubst": true}});
    create_application(&aws_app, "default", aws_source, &aws, automated()).await;
    // gcp: discovered as Kustomize from its kustomization.yaml alone.
    let gcp_source =
        json!({"repoURL": url, "targetRevision": "HEAD", "path": "apps/mandelbrot/overlays/gcp/"});
    create_application(
        &gcp_app,
        "default",
        gcp_source,
        &gcp,
        json!({"automated": {"prune": true}}),
    )
    .await;
    let s = until(&aws_app, "aws Synced", |s| s["sync"]["status"] == "Synced").await;
    assert_eq!(s["sourceType"], "Kustomize", "{s}");
    let s = until(&gcp_app, "gcp Synced", |s| s["sync"]["status"] == "Synced").await;
    assert_eq!(s["sourceType"], "Kustomize", "{s}");

    let aws_maps: Api<ConfigMap> = Api::namespaced(client(), &aws);
    let gcp_maps: Api<ConfigMap> = Api::namespaced(client(), &gcp);
    let aws_settings = aws_maps.get("aws-settings-x").await.unwrap();
    assert_eq!(aws_settings.data.unwrap()["cloud"], "aws");
    assert_eq!(
        aws_settings.metadata.annotations.unwrap()["owner"],
        aws_app,
        "commonAnnotations with envsubst"
    );
    let gcp_settings = gcp_maps.get("gcp-settings").await.unwrap();
    assert_eq!(gcp_settings.data.unwrap()["cloud"], "gcp");
    assert_eq!(gcp_settings.metadata.labels.unwrap()["cloud"], "gcp");
    let deployments: Api<Deployment> = Api::namespaced(client(), &aws);
    let web = deployments.get("aws-web-x").await.unwrap();
    let spec = web.spec.unwrap();
    assert_eq!(spec.replicas, Some(0));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("example.com/mandelbrot:v2")
    );
    let gcp_web: Api<Deployment> = Api::namespaced(client(), &gcp);
    let gcp_spec = gcp_web.get("gcp-web").await.unwrap().spec.unwrap();
    assert_eq!(
        gcp_spec.template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("example.com/mandelbrot:v1")
    );

    // A commit to the base reaches both clouds.
    let changed = settings.replace("tier: one", "tier: two");
    commit(
        repo.path(),
        &[("apps/mandelbrot/base/settings.yaml", &changed)],
        "tier two",
    );
    eventually("both clouds on tier two", || async {
        let tier = |m: Option<ConfigMap>| m.and_then(|m| m.data).map(|d| d["tier"].clone());
        tier(aws_maps.get_opt("aws-settings-x").await.unwrap()).as_deref() == Some("two")
            && tier(gcp_maps.get_opt("gcp-settings").await.unwrap()).as_deref() == Some("two")
    })
    .await;

    // A broken overlay is a ComparisonError naming kustomize; nothing is pruned.
    commit(
        repo.path(),
        &[(
            "apps/mandelbrot/overlays/gcp/kustomization.yaml",
            "resources:\n- ../../nowhere\n",
        )],
        "broken",
    );
    let s = until(&gcp_app, "a ComparisonError", |s| {
        s["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ComparisonError"))
    })
    .await;
    assert!(s.to_string().contains("kustomize"), "{s}");
    assert!(gcp_maps.get_opt("gcp-settings").await.unwrap().is_some());
    for name in [&aws_app, &gcp_app] {
        apps().delete(name, &DeleteParams::default()).await.unwrap();
    }
}

/// A private repository: refused without credentials (a ComparisonError), synced once a
/// repository Secret with a password exists; the password is in no status or event.
#[tokio::test]
async fn a_private_repository_with_a_password_secret() {
    let ns = namespace(&client(), "gitops-private").await;
    let root = tempfile::tempdir().unwrap();
    let password = "pw-7c1f-never-shown";
    let server = sluice_testkit::git_http::GitHttp::start_private(
        root.path().to_owned(),
        "ci-bot",
        password,
    )
    .await
    .unwrap();
    let one = config_map_yaml("one");
    let _work = served_repository(root.path(), "private.git", &[("one.yaml", &one)]);
    let name = format!("{ns}-app");
    let url = server.url("private.git");
    let source = json!({"repoURL": url, "targetRevision": "main", "path": ""});
    create_application(&name, "default", source, &ns, automated()).await;
    let s = until(&name, "refused without credentials", |s| {
        s["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ComparisonError"))
    })
    .await;
    assert!(s.to_string().contains("authentication"), "{s}");
    assert!(server.rejected() > 0);

    // Argo CD's repository Secret (the URL written with `.git` dropped and upper case: it
    // matches after normalisation).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client(), "argocd");
    let secret_name = format!("{ns}-repo");
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"type": "git", "url": url.trim_end_matches(".git").to_uppercase().replace("HTTP://", "http://"),
            "username": "ci-bot", "password": password},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    until(&name, "Synced with the Secret", |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    assert!(maps.get_opt("one").await.unwrap().is_some());
    let s = app_status(&name).await;
    assert!(!s.to_string().contains(password), "{s}");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::all(client());
    for event in events.list(&Default::default()).await.unwrap() {
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains(password), "{text}");
    }
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    secrets
        .delete(&secret_name, &DeleteParams::default())
        .await
        .unwrap();
}

/// One HTTP/1.1 POST with `headers` and `body`: status and body.
pub(super) async fn post(
    address: std::net::SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} /api/webhook HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// Push webhooks: with `webhook.github.secret` in argocd-secret, a push signed right refreshes
/// the Application on the pushed branch (and not the one on another branch); one signed wrong
/// or unsigned is refused.
#[tokio::test]
async fn a_signed_push_webhook_refreshes_the_application_on_that_branch() {
    let ns = namespace(&client(), "gitops-hook").await;
    let root = tempfile::tempdir().unwrap();
    let server = sluice_testkit::git_http::GitHttp::start(root.path().to_owned())
        .await
        .unwrap();
    let one = config_map_yaml("one");
    let work = served_repository(root.path(), "hooked.git", &[("one.yaml", &one)]);
    git(
        work.path(),
        &[
            "push",
            "-q",
            root.path().join("hooked.git").to_str().unwrap(),
            "HEAD:refs/heads/release",
        ],
    );
    let hook =
        sluice_gitops::webhook::listener::start("127.0.0.1:0".parse().unwrap(), client(), "argocd")
            .await
            .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client(), "argocd");
    let settings: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "argocd-secret", "namespace": "argocd"},
        "stringData": {"webhook.github.secret": "hook-secret"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &settings)
        .await
        .unwrap();
    let main_app = format!("{ns}-main");
    let release_app = format!("{ns}-release");
    let url = server.url("hooked.git");
    for (name, revision) in [(&main_app, "main"), (&release_app, "release")] {
        let source = json!({"repoURL": url, "targetRevision": revision, "path": ""});
        create_application(name, "default", source, &ns, automated()).await;
    }
    for name in [&main_app, &release_app] {
        until(name, "Synced", |s| sync_is(s, "Synced", "Healthy")).await;
    }
    let two = config_map_yaml("two");
    commit(work.path(), &[("two.yaml", &two)], "two");
    push(work.path(), root.path(), "hooked.git");
    // GitHub's push payload names the repository's web page (no `.git`).
    let payload = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "repository": {"html_url": url.trim_end_matches(".git"), "default_branch": "main"},
    }))
    .unwrap();
    let push_event = ("X-GitHub-Event", "push");
    let (status, body) = post(hook, "POST", &[push_event], &payload).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Webhook processing failed: missing X-Hub-Signature-256 Header"
        )
    );
    let wrong = format!(
        "sha256={}",
        sluice_gitops::webhook::sign("not-the-secret", &payload)
    );
    let (status, body) = post(
        hook,
        "POST",
        &[push_event, ("X-Hub-Signature-256", &wrong)],
        &payload,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Webhook processing failed: HMAC verification failed")
    );
    let (status, _) = post(hook, "GET", &[push_event], &payload).await;
    assert_eq!(status, 405);
    let right = format!(
        "sha256={}",
        sluice_gitops::webhook::sign("hook-secret", &payload)
    );
    let (status, body) = post(
        hook,
        "POST",
        &[push_event, ("X-Hub-Signature-256", &right)],
        &payload,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "refreshed 1 application(s)\n")
    );
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    eventually("two applied after the webhook", || async {
        maps.get_opt("two").await.unwrap().is_some()
    })
    .await;
    for name in [&main_app, &release_app] {
        apps().delete(name, &DeleteParams::default()).await.unwrap();
    }
    secrets
        .delete("argocd-secret", &DeleteParams::default())
        .await
        .unwrap();
}

/// An AppProject that allows one repository, one namespace and no Secrets: another repository
/// or namespace is an InvalidSpecError naming the rule; a Secret in Git fails the sync before
/// anything is applied.
#[tokio::test]
async fn a_project_forbids_a_repository_a_destination_and_a_kind() {
    let ns = namespace(&client(), "gitops-fenced").await;
    sluice_gitops::controller::ensure_home(&client(), "argocd")
        .await
        .unwrap();
    let map = config_map_yaml("allowed");
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: forbidden\nstringData:\n  a: b\n";
    let repo = repository(&[("map.yaml", &map)]);
    let url = format!("file://{}", repo.path().display());
    let projects = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    );
    let projects: Api<DynamicObject> = Api::namespaced_with(client(), "argocd", &projects);
    let project_name = format!("{ns}-team");
    let project: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": project_name, "namespace": "argocd"},
        "spec": {"sourceRepos": [url],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ns}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "Secret"}]}}))
    .unwrap();
    projects
        .create(&PostParams::default(), &project)
        .await
        .unwrap();
    let condition = |s: &Value| {
        s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "InvalidSpecError"))
            .map(|c| c["message"].as_str().unwrap_or_default().to_owned())
    };
    // Another repository.
    let other_repo = format!("{ns}-other-repo");
    let source = json!({"repoURL": "https://git.example.com/elsewhere.git", "path": "."});
    create_application(&other_repo, &project_name, source, &ns, automated()).await;
    let s = until(&other_repo, "InvalidSpecError", |s| condition(s).is_some()).await;
    assert_eq!(
        condition(&s).unwrap(),
        format!(
            "application repo https://git.example.com/elsewhere.git is not permitted in project '{project_name}'"
        )
    );
    // Another namespace.
    let elsewhere = format!("{ns}-elsewhere");
    let source = json!({"repoURL": url, "path": "."});
    create_application(
        &elsewhere,
        &project_name,
        source.clone(),
        "kube-system",
        automated(),
    )
    .await;
    let s = until(&elsewhere, "InvalidSpecError", |s| condition(s).is_some()).await;
    assert_eq!(
        condition(&s).unwrap(),
        format!(
            "application destination server 'https://kubernetes.default.svc' and namespace 'kube-system' do not match any of the allowed destinations in project '{project_name}'"
        )
    );
    // The allowed repository and namespace sync; a Secret committed fails the next sync, and
    // the ConfigMap of the same commit is not applied either.
    let allowed = format!("{ns}-allowed");
    create_application(&allowed, &project_name, source, &ns, automated()).await;
    until(&allowed, "Synced", |s| sync_is(s, "Synced", "Healthy")).await;
    let changed = map.replace("a: \"1\"", "a: \"2\"");
    commit(
        repo.path(),
        &[("map.yaml", &changed), ("secret.yaml", secret)],
        "a secret",
    );
    // (Auto-sync retries it, as Argo CD does: the message says why each attempt failed.)
    let refusal = format!("resource :Secret is not permitted in project {project_name}");
    until(&allowed, "the sync refused", |s| {
        s["operationState"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&refusal))
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let live = maps.get("allowed").await.unwrap();
    assert_eq!(
        live.data.unwrap()["a"],
        "1",
        "nothing of the refused sync applied"
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client(), &ns);
    assert!(secrets.get_opt("forbidden").await.unwrap().is_none());
    for name in [&other_repo, &elsewhere, &allowed] {
        apps().delete(name, &DeleteParams::default()).await.unwrap();
    }
}

/// `ignoreDifferences` by JSON pointer: a field changed in the cluster is no drift (no
/// self-heal), a sync with `RespectIgnoreDifferences=true` keeps it; an object Git dropped and
/// marked `compare-options: IgnoreExtraneous` leaves the Application Synced.
#[tokio::test]
async fn ignore_differences_by_pointer_and_ignore_extraneous() {
    let ns = namespace(&client(), "gitops-ignore").await;
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n  b: \"1\"\n";
    let extra = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  annotations:\n    argocd.argoproj.io/compare-options: IgnoreExtraneous\ndata:\n  x: \"1\"\n";
    let repo = repository(&[("settings.yaml", settings), ("extra.yaml", extra)]);
    let name = format!("{ns}-app");
    application(
        &name,
        repo.path(),
        &ns,
        json!({"automated": {"selfHeal": true}, "syncOptions": ["RespectIgnoreDifferences=true"]}),
    )
    .await;
    let patch = json!({"spec": {"ignoreDifferences": [
        {"group": "", "kind": "ConfigMap", "name": "settings", "jsonPointers": ["/data/a"]}]}});
    apps()
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    until(&name, "Synced", |s| sync_is(s, "Synced", "Healthy")).await;
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let data = |m: ConfigMap| m.data.unwrap_or_default();
    let edit = json!({"data": {"a": "9"}});
    maps.patch("settings", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(app_status(&name).await["sync"]["status"], "Synced");
    assert_eq!(
        data(maps.get("settings").await.unwrap())["a"],
        "9",
        "not healed"
    );

    // A commit changing b and dropping extra: b applied, a kept as live has it; extra is
    // left (no prune) and the Application is Synced all the same.
    commit(
        repo.path(),
        &[("settings.yaml", &settings.replace("b: \"1\"", "b: \"2\""))],
        "b",
    );
    git(repo.path(), &["rm", "-q", "extra.yaml"]);
    git(repo.path(), &["commit", "-qm", "drop extra"]);
    eventually("b applied", || async {
        data(maps.get("settings").await.unwrap())["b"] == "2"
    })
    .await;
    assert_eq!(data(maps.get("settings").await.unwrap())["a"], "9");
    let s = until(&name, "Synced with extra requiring pruning", |s| {
        s["sync"]["status"] == "Synced"
            && s["resources"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["name"] == "extra" && r["requiresPruning"] == true)
            })
    })
    .await;
    assert!(maps.get_opt("extra").await.unwrap().is_some(), "{s}");
    apps()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}
