//! sluice's types against Argo's own files (`../shared/compat/argo-rollouts` and
//! `../shared/compat/argo-cd`):
//! - every example manifest (Argo Rollouts) and annotated reference manifest (Argo CD)
//!   round-trips to the same JSON value;
//! - every property path of Argo's CRD schemas exists in sluice's generated CRDs with an
//!   equivalent type, and names, scope, printer columns and subresources match;
//! - `deploy/crds/` matches what the types generate (set `SLUICE_UPDATE_CRDS=1` to rewrite it).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use sluice_api::{
    AnalysisRun, AnalysisTemplate, AppProject, Application, ClusterAnalysisTemplate, Experiment,
    Rollout,
    crd::{self, GeneratedCrd, Upstream},
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/compat/<project>`, beside the repository (or under `SLUICE_SHARED_DIR`).
fn compat_dir(project: &str) -> PathBuf {
    let shared = std::env::var_os("SLUICE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"));
    let dir = shared.join("compat").join(project);
    assert!(
        dir.is_dir(),
        "Argo's compatibility corpus is missing at {} (set SLUICE_SHARED_DIR)",
        dir.display()
    );
    dir
}

/// `../shared/compat/argo-rollouts`.
fn argo_compat_dir() -> PathBuf {
    compat_dir("argo-rollouts")
}

/// `../shared/compat/argo-cd`.
fn argo_cd_compat_dir() -> PathBuf {
    compat_dir("argo-cd")
}

/// Argo's own CRD for a generated one.
fn argo_crd(generated: &GeneratedCrd) -> Value {
    let path = match generated.upstream {
        Upstream::ArgoRollouts => argo_compat_dir().join("crds").join(generated.file_name),
        Upstream::ArgoCd => argo_cd_compat_dir().join(generated.file_name),
    };
    documents(&path).remove(0)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The YAML documents of a file, each parsed on its own (so one bad document does not hide the
/// others), with its index among the file's documents.
fn documents_each(path: &Path) -> Vec<(usize, Result<Value, String>)> {
    let text = fs::read_to_string(path).unwrap();
    let mut chunks = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            chunks.push(String::new());
        } else {
            let chunk = chunks.last_mut().unwrap();
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    chunks
        .iter()
        .map(|chunk| serde_saphyr::from_str::<Value>(chunk).map_err(|e| e.to_string()))
        .filter(|doc| !matches!(doc, Ok(Value::Null)))
        .enumerate()
        .collect()
}

/// Argo example documents that no Kubernetes client can read, so neither can sluice: the
/// unquoted `{{args.linkerd-enabled}}` is a YAML mapping used as a key, which has no JSON form
/// (kubectl rejects the file too).
const UNREADABLE_EXAMPLES: &[(&str, usize)] = &[("traffic-management/rollout-linkerd.yaml", 4)];

/// Deserializes into `T` and serializes back; the JSON must be unchanged.
fn assert_round_trip<T: DeserializeOwned + Serialize>(doc: &Value, origin: &str) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: does not deserialize: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if &back != doc {
        panic!(
            "{origin}: round trip changed the document\nbefore: {}\nafter:  {}",
            serde_json::to_string_pretty(doc).unwrap(),
            serde_json::to_string_pretty(&back).unwrap()
        );
    }
}

/// Round-trips one document if it is one of sluice's kinds; returns its kind.
fn round_trip(doc: &Value, origin: &str) -> Option<String> {
    if doc["apiVersion"] != "argoproj.io/v1alpha1" {
        return None;
    }
    let kind = doc["kind"].as_str()?.to_owned();
    match kind.as_str() {
        "Rollout" => assert_round_trip::<Rollout>(doc, origin),
        "AnalysisTemplate" => assert_round_trip::<AnalysisTemplate>(doc, origin),
        "ClusterAnalysisTemplate" => assert_round_trip::<ClusterAnalysisTemplate>(doc, origin),
        "AnalysisRun" => assert_round_trip::<AnalysisRun>(doc, origin),
        "Experiment" => assert_round_trip::<Experiment>(doc, origin),
        "Application" => assert_round_trip::<Application>(doc, origin),
        "AppProject" => assert_round_trip::<AppProject>(doc, origin),
        _ => return None,
    }
    Some(kind)
}

#[test]
fn every_argo_example_round_trips() {
    let examples = argo_compat_dir().join("examples");
    let mut kinds = BTreeSet::new();
    let mut count = 0;
    for file in yaml_files(&examples) {
        let relative = file
            .strip_prefix(&examples)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for (i, doc) in documents_each(&file) {
            let origin = format!("{relative} document {i}");
            let unreadable = UNREADABLE_EXAMPLES.contains(&(relative.as_str(), i));
            match doc {
                Err(err) if unreadable => eprintln!("{origin}: unreadable as expected: {err}"),
                Err(err) => panic!("{origin}: {err}"),
                Ok(_) if unreadable => panic!("{origin} was expected to be unreadable"),
                Ok(doc) => {
                    if let Some(kind) = round_trip(&doc, &origin) {
                        kinds.insert(kind);
                        count += 1;
                    }
                }
            }
        }
    }
    assert!(count >= 25, "only {count} Argo documents found");
    let expected = [
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "Experiment",
        "Rollout",
    ];
    assert_eq!(kinds, expected.iter().map(|k| k.to_string()).collect());
}

/// A Rollout, an AnalysisRun with a Job metric and an Experiment whose pod templates use
/// Kubernetes 1.34 fields and a status with every kind of value.
#[test]
fn newer_pod_fields_and_status_round_trip() {
    let text = include_str!("fixtures/newer-fields.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
    assert_eq!(docs.len(), 3);
    for (i, doc) in docs.iter().enumerate() {
        assert!(round_trip(doc, &format!("fixture document {i}")).is_some());
    }
}

/// Argo CD's annotated reference manifests (every documented spec field of Application and
/// AppProject).
#[test]
fn argo_cd_reference_manifests_round_trip() {
    let mut kinds = Vec::new();
    for file in ["application-reference.yaml", "appproject-reference.yaml"] {
        for (i, doc) in documents(&argo_cd_compat_dir().join(file))
            .iter()
            .enumerate()
        {
            let kind = round_trip(doc, &format!("{file} document {i}"));
            kinds.push(kind.unwrap_or_else(|| panic!("{file} document {i}: not a sluice kind")));
        }
    }
    assert_eq!(kinds, ["Application", "AppProject"]);
}

/// Applications with a realistic status (a finished sync with per-resource results and hooks,
/// history, conditions, resources with health, hydration) and a running operation.
#[test]
fn application_status_round_trips() {
    let text = include_str!("fixtures/application-status.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
    assert_eq!(docs.len(), 3);
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(
            round_trip(doc, &format!("fixture document {i}")).as_deref(),
            Some(if i < 2 { "Application" } else { "AppProject" })
        );
    }
    let app: Application = serde_json::from_value(docs[0].clone()).unwrap();
    let status = app.status.as_ref().unwrap();
    assert_eq!(status.sync_status(), sluice_api::sync_status::SYNCED);
    assert_eq!(status.health_status(), sluice_api::health_status::HEALTHY);
    assert!(!status.operation_running());
    let state = status.operation_state.as_ref().unwrap();
    let results = state
        .sync_result
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap();
    assert!(
        results
            .iter()
            .any(|r| r.hook_type.as_deref() == Some("PreSync"))
    );
    let running: Application = serde_json::from_value(docs[1].clone()).unwrap();
    assert!(running.operation.is_some());
    assert!(running.status.as_ref().unwrap().operation_running());
}

// ---------------------------------------------------------------------------------------------
// Schema completeness.

/// The property paths of a schema, with the node at each path.
fn schema_paths<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), node));
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            schema_paths(child, format!("{path}.{name}"), out);
        }
    }
    if node["items"].is_object() {
        schema_paths(&node["items"], format!("{path}[]"), out);
    }
    if node["additionalProperties"].is_object() {
        schema_paths(&node["additionalProperties"], format!("{path}{{}}"), out);
    }
}

/// The node at `path` in a schema.
fn schema_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix("[]") {
            node = node.get("items")?;
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("{}") {
            node = node.get("additionalProperties")?;
            rest = tail;
        } else {
            let tail = rest.strip_prefix('.')?;
            let end = tail.find(['.', '[', '{']).unwrap_or(tail.len());
            node = node.get("properties")?.get(&tail[..end])?;
            rest = &tail[end..];
        }
    }
    Some(node)
}

fn flag(node: &Value, key: &str) -> bool {
    node[key] == Value::Bool(true)
}

/// Equivalence of an Argo schema node and sluice's:
/// - int-or-string (`x-kubernetes-int-or-string`, which Argo also spells as `anyOf`) must be
///   int-or-string in sluice too;
/// - otherwise the `type` must be the same, and a `date-time` format must be kept;
/// - a node where Argo preserves unknown fields must preserve them in sluice too;
/// - a node Argo trimmed to an untyped "keep anything" (pod `volumes`, resource `limits`) may
///   be typed in sluice as long as sluice keeps everything under it too.
///
/// Returns the difference, if any. Descriptions, `required`, `nullable` and integer widths are
/// not compared (sluice keeps defaults out of the schema and may be more permissive).
fn difference(argo: &Value, ours: &Value) -> Option<String> {
    let preserve = "x-kubernetes-preserve-unknown-fields";
    if argo["type"].is_null() && flag(argo, preserve) {
        // Argo trimmed this node to "anything, kept whole" (volumes, resource limits).
        return (!keeps_everything(ours))
            .then(|| "Argo keeps anything here, sluice may not".into());
    }
    if flag(argo, "x-kubernetes-int-or-string") {
        return (!flag(ours, "x-kubernetes-int-or-string"))
            .then(|| format!("Argo has int-or-string, sluice has {}", ours["type"]));
    }
    if argo["type"] != ours["type"] {
        return Some(format!(
            "Argo has type {}, sluice has {}",
            argo["type"], ours["type"]
        ));
    }
    if argo["format"] == "date-time" && ours["format"] != "date-time" {
        return Some(format!(
            "Argo has format date-time, sluice has {}",
            ours["format"]
        ));
    }
    if flag(argo, preserve) && !keeps_everything(ours) {
        return Some("Argo preserves unknown fields here, sluice does not".into());
    }
    None
}

/// Whether a node keeps whatever is written under it: it preserves unknown fields, is a map
/// (`additionalProperties`), or is a list whose items do.
fn keeps_everything(node: &Value) -> bool {
    flag(node, "x-kubernetes-preserve-unknown-fields")
        || node["additionalProperties"].is_object()
        || (node["type"] == "array" && keeps_everything(&node["items"]))
}

/// Path fragments allowed to be missing from sluice's CRDs, one per line with its reason after
/// `#`; an entry matches every path that contains it.
fn allowlist() -> Vec<String> {
    include_str!("schema-allowlist.txt")
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn generated_crds_cover_every_argo_property_path() {
    let allowed = allowlist();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for generated in crd::crds() {
        let argo = argo_crd(generated);
        let ours = serde_json::to_value(&generated.crd).unwrap();
        let argo_root = &argo["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let our_root = &ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut paths = Vec::new();
        schema_paths(argo_root, String::new(), &mut paths);
        for (path, argo_node) in paths {
            let qualified = format!("{}:{path}", generated.file_name);
            if let Some(entry) = allowed.iter().find(|entry| path.contains(entry.as_str())) {
                used.insert(entry.clone());
                continue;
            }
            match schema_at(our_root, &path) {
                None => problems.push(format!("{qualified}: missing")),
                Some(our_node) => {
                    if let Some(diff) = difference(argo_node, our_node) {
                        problems.push(format!("{qualified}: {diff}"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let stale: Vec<_> = allowed.iter().filter(|p| !used.contains(*p)).collect();
    assert!(
        stale.is_empty(),
        "allowlist entries no longer needed: {stale:?}"
    );
}

/// sluice's schemas require nothing Argo's do not, so everything Argo accepts a cluster with
/// sluice's CRDs accepts too. Embedded pod templates are left out: there sluice requires what
/// Kubernetes itself requires (`ownerReferences[].uid`, `configMapKeyRef.name`), which Argo's
/// trimmed schemas omit.
#[test]
fn generated_crds_require_nothing_argo_does_not() {
    fn required(node: &Value) -> BTreeSet<&str> {
        node["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }
    let mut problems = Vec::new();
    for generated in crd::crds() {
        let argo = argo_crd(generated);
        let ours = serde_json::to_value(&generated.crd).unwrap();
        let argo_root = &argo["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let our_root = &ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut paths = Vec::new();
        schema_paths(our_root, String::new(), &mut paths);
        for (path, our_node) in paths {
            if path.contains("template.metadata") || path.contains("template.spec") {
                continue;
            }
            let argo_required = schema_at(argo_root, &path)
                .map(required)
                .unwrap_or_default();
            let stricter: Vec<_> = required(our_node)
                .difference(&argo_required)
                .copied()
                .collect();
            if !stricter.is_empty() {
                problems.push(format!(
                    "{}:{path}: requires {stricter:?}",
                    generated.file_name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn crds_match_argo_names_scope_columns_and_subresources() {
    for generated in crd::crds() {
        let argo = argo_crd(generated);
        let ours = serde_json::to_value(&generated.crd).unwrap();
        let file = generated.file_name;
        assert_eq!(ours["metadata"]["name"], argo["metadata"]["name"], "{file}");
        assert_eq!(ours["spec"]["group"], argo["spec"]["group"], "{file}");
        assert_eq!(ours["spec"]["scope"], argo["spec"]["scope"], "{file}");
        for key in ["kind", "plural", "singular", "shortNames", "categories"] {
            assert_eq!(
                ours["spec"]["names"][key], argo["spec"]["names"][key],
                "{file} {key}"
            );
        }
        let (argo_v, our_v) = (&argo["spec"]["versions"][0], &ours["spec"]["versions"][0]);
        for key in ["name", "served", "storage", "subresources"] {
            assert_eq!(our_v[key], argo_v[key], "{file} {key}");
        }
        let columns = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
            v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["name"].clone(),
                        c["type"].clone(),
                        c["jsonPath"].clone(),
                        c["priority"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(columns(our_v), columns(argo_v), "{file} printer columns");
    }
}

/// No `default:` anywhere in the generated schemas: defaults live in code (DESIGN §5).
#[test]
fn generated_schemas_carry_no_defaults() {
    for generated in crd::crds() {
        let ours = serde_json::to_value(&generated.crd).unwrap();
        let mut paths = Vec::new();
        schema_paths(
            &ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            String::new(),
            &mut paths,
        );
        for (path, node) in paths {
            assert!(
                node.get("default").is_none(),
                "{}:{path} has a default",
                generated.file_name
            );
        }
    }
}

/// `crd::names()` (used without generating) lists the generated CRDs, in order.
#[test]
fn crd_names_match_the_generated_crds() {
    let generated: Vec<_> = crd::crds()
        .iter()
        .map(|g| g.crd.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(generated, crd::names());
}

#[test]
fn deploy_crds_are_up_to_date() {
    let dir = workspace_root().join("deploy/crds");
    let update = std::env::var_os("SLUICE_UPDATE_CRDS").is_some();
    let mut stale = Vec::new();
    for generated in crd::crds() {
        let yaml = crd::to_yaml(&generated.crd).unwrap();
        let path = dir.join(generated.file_name);
        if update {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, &yaml).unwrap();
        } else if fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
            stale.push(generated.file_name);
        }
    }
    assert!(
        stale.is_empty(),
        "deploy/crds is stale for {stale:?}: run `SLUICE_UPDATE_CRDS=1 cargo test -p sluice-api --test compat` and commit"
    );
}

/// The rules of a structural schema a Kubernetes API server enforces on CRDs: every node has a
/// type unless it is int-or-string or keeps unknown fields; `properties` and
/// `additionalProperties` never together; no references; `anyOf`/`oneOf`/`allOf` never carry a
/// type of their own.
#[test]
fn generated_crds_are_structural() {
    fn check(node: &Value, path: &str, problems: &mut Vec<String>) {
        let typed = node["type"].is_string();
        let open = flag(node, "x-kubernetes-int-or-string")
            || flag(node, "x-kubernetes-preserve-unknown-fields");
        if !typed && !open {
            problems.push(format!("{path}: no type"));
        }
        if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
            problems.push(format!("{path}: properties with additionalProperties"));
        }
        for key in ["$ref", "definitions", "$defs", "default"] {
            if node.get(key).is_some() {
                problems.push(format!("{path}: has {key}"));
            }
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            for sub in node[key].as_array().into_iter().flatten() {
                if sub.get("description").is_some() || sub.get("properties").is_some() {
                    problems.push(format!("{path}: {key} branch carries a schema of its own"));
                }
            }
        }
        if let Some(props) = node["properties"].as_object() {
            for (name, child) in props {
                check(child, &format!("{path}.{name}"), problems);
            }
        }
        if node["items"].is_object() {
            check(&node["items"], &format!("{path}[]"), problems);
        }
        if node["additionalProperties"].is_object() {
            check(
                &node["additionalProperties"],
                &format!("{path}{{}}"),
                problems,
            );
        }
    }
    let mut problems = Vec::new();
    for generated in crd::crds() {
        let ours = serde_json::to_value(&generated.crd).unwrap();
        let root = &ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        check(root, generated.file_name, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
