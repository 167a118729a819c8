//! Kustomize sources: a path holding a `kustomization.yaml` (or `.yml`, or `Kustomization`) is
//! rendered as Argo CD's repo-server renders it — the repository checked out whole (overlays
//! name `../../base`), the Application's `source.kustomize` overrides written into the
//! kustomization of the path, then `kustomize build` (or `kubectl kustomize`, which embeds
//! kustomize) run on it.
//!
//! Argo CD writes the overrides with `kustomize edit set|add …` in its temporary copy; sluice
//! writes the same fields into the kustomization itself ([`apply_overrides`], pure), because
//! `kubectl` has no `edit`:
//! - `namePrefix`, `nameSuffix`, `namespace`: set (`edit set nameprefix|namesuffix|namespace`);
//! - `images`: merged into `images[]` by name (`edit set image`, `[old=]new[:tag][@digest]`);
//! - `commonLabels` / `commonAnnotations`: added (`edit add label|annotation`), an existing
//!   key an error unless `forceCommonLabels` / `forceCommonAnnotations`; with
//!   `labelWithoutSelector` the labels go to `labels[]` without selectors (templates only with
//!   `labelIncludeTemplates`); `commonAnnotationsEnvsubst` substitutes `${ARGOCD_APP_*}`;
//! - `replicas`: merged into `replicas[]` by name (`edit set replicas`);
//! - `patches`: appended to `patches[]`; `components`: appended to `components[]` (missing
//!   local ones dropped with `ignoreMissingComponents`).
//!
//! `version`, `kubeVersion` and `apiVersions` (which kustomize binary; Helm charts inflated by
//! kustomize) are not honoured: the binary on `PATH` renders.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use serde_json::{Map, Value, json};
use sluice_api::ApplicationSourceKustomize;

use crate::{repository::SourceFile, sources::on_path};

/// The file names that make a directory a kustomization, in kustomize's order.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// How long one `kustomize build` may run (Argo CD's exec timeout).
const BUILD_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a kustomization did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KustomizeError {
    /// Neither `kustomize` nor `kubectl` is on `PATH`.
    #[error(
        "kustomize build needs the `kustomize` or `kubectl` binary on PATH (kubectl embeds kustomize): install kubectl"
    )]
    NoBinary,
    /// The kustomization file is not YAML.
    #[error("failed to parse {file}: {message}")]
    Parse {
        /// The kustomization file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// An override cannot be written.
    #[error("invalid kustomize override: {0}")]
    Override(String),
    /// The build failed.
    #[error("`{command}` failed: {message}")]
    Build {
        /// The command line.
        command: String,
        /// Its standard error (trimmed).
        message: String,
    },
    /// Writing the overlay failed.
    #[error("writing {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Whether the source path's top level holds a kustomization.
pub fn is_kustomization(files: &[SourceFile]) -> bool {
    files
        .iter()
        .any(|f| KUSTOMIZATION_FILES.contains(&f.path.as_str()))
}

/// The values `${ARGOCD_APP_*}` stand for in `commonAnnotations` with envsubst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEnv {
    /// `ARGOCD_APP_NAME`.
    pub name: String,
    /// `ARGOCD_APP_NAMESPACE` (the destination namespace).
    pub namespace: String,
    /// `ARGOCD_APP_REVISION`.
    pub revision: String,
    /// `ARGOCD_APP_SOURCE_REPO_URL`.
    pub repo_url: String,
    /// `ARGOCD_APP_SOURCE_PATH`.
    pub path: String,
    /// `ARGOCD_APP_SOURCE_TARGET_REVISION`.
    pub target_revision: String,
}

impl AppEnv {
    fn substitute(&self, text: &str) -> String {
        let short: String = self.revision.chars().take(7).collect();
        [
            ("ARGOCD_APP_NAME", self.name.as_str()),
            ("ARGOCD_APP_NAMESPACE", self.namespace.as_str()),
            ("ARGOCD_APP_REVISION_SHORT", short.as_str()),
            ("ARGOCD_APP_REVISION", self.revision.as_str()),
            ("ARGOCD_APP_SOURCE_REPO_URL", self.repo_url.as_str()),
            ("ARGOCD_APP_SOURCE_PATH", self.path.as_str()),
            (
                "ARGOCD_APP_SOURCE_TARGET_REVISION",
                self.target_revision.as_str(),
            ),
        ]
        .iter()
        .fold(text.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value)
        })
    }
}

/// An image override as `kustomize edit set image` parses it: `[old=]new[:tag][@digest]`.
fn image(arg: &str) -> Result<Value, KustomizeError> {
    let (old, new) = match arg.split_once('=') {
        Some((old, new)) => (Some(old), new),
        None => (None, arg),
    };
    let (rest, digest) = match new.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (new, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if name.is_empty() || old.is_some_and(str::is_empty) {
        return Err(KustomizeError::Override(format!(
            "image {arg:?}: expected [old=]new[:tag][@digest]"
        )));
    }
    let mut entry = Map::new();
    match old {
        Some(old) => {
            entry.insert("name".into(), json!(old));
            entry.insert("newName".into(), json!(name));
        }
        None => {
            entry.insert("name".into(), json!(name));
        }
    }
    if let Some(tag) = tag {
        entry.insert("newTag".into(), json!(tag));
    }
    if let Some(digest) = digest {
        entry.insert("digest".into(), json!(digest));
    }
    Ok(Value::Object(entry))
}

/// Merges `entry` into the list `field` by its `name`, replacing the fields it sets.
fn merge_by_name(kustomization: &mut Map<String, Value>, field: &str, entry: Value) {
    let list = kustomization
        .entry(field)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().expect("an array");
    match list.iter_mut().find(|e| e["name"] == entry["name"]) {
        Some(existing) => {
            if let (Some(existing), Some(entry)) = (existing.as_object_mut(), entry.as_object()) {
                for (key, value) in entry {
                    existing.insert(key.clone(), value.clone());
                }
            }
        }
        None => list.push(entry),
    }
}

/// Adds `pairs` to the map `field`; an existing key is an error unless `force`.
fn add_pairs(
    kustomization: &mut Map<String, Value>,
    field: &str,
    what: &str,
    pairs: &BTreeMap<String, String>,
    force: bool,
) -> Result<(), KustomizeError> {
    let map = kustomization
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    let map = map.as_object_mut().expect("an object");
    for (key, value) in pairs {
        if map.contains_key(key) && !force {
            return Err(KustomizeError::Override(format!(
                "{what} {key} already in kustomization file"
            )));
        }
        map.insert(key.clone(), json!(value));
    }
    Ok(())
}

fn append(kustomization: &mut Map<String, Value>, field: &str, items: Vec<Value>) {
    let list = kustomization
        .entry(field)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().expect("an array");
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The kustomization with the Application's overrides written in. `exists` says whether a
/// component path exists locally (for `ignoreMissingComponents`).
pub fn apply_overrides(
    kustomization: Value,
    overrides: &ApplicationSourceKustomize,
    env: &AppEnv,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Value, KustomizeError> {
    let mut k = match kustomization {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => {
            return Err(KustomizeError::Override(
                "the kustomization is not a YAML mapping".into(),
            ));
        }
    };
    let o = overrides;
    for (field, value) in [
        ("namePrefix", &o.name_prefix),
        ("nameSuffix", &o.name_suffix),
        ("namespace", &o.namespace),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            k.insert(field.into(), json!(value));
        }
    }
    for arg in o.images.iter().flatten() {
        merge_by_name(&mut k, "images", image(arg)?);
    }
    if let Some(labels) = o.common_labels.as_ref().filter(|l| !l.is_empty()) {
        let force = o.force_common_labels.unwrap_or(false);
        if o.label_without_selector.unwrap_or(false) {
            let mut entry = json!({"pairs": labels, "includeSelectors": false});
            if o.label_include_templates.unwrap_or(false) {
                entry["includeTemplates"] = json!(true);
            }
            append(&mut k, "labels", vec![entry]);
        } else {
            add_pairs(&mut k, "commonLabels", "label", labels, force)?;
        }
    }
    if let Some(annotations) = o.common_annotations.as_ref().filter(|a| !a.is_empty()) {
        let annotations: BTreeMap<String, String> = if o.common_annotations_envsubst == Some(true) {
            annotations
                .iter()
                .map(|(key, value)| (key.clone(), env.substitute(value)))
                .collect()
        } else {
            annotations.clone()
        };
        let force = o.force_common_annotations.unwrap_or(false);
        add_pairs(
            &mut k,
            "commonAnnotations",
            "annotation",
            &annotations,
            force,
        )?;
    }
    for replica in o.replicas.iter().flatten() {
        let count: i64 = match &replica.count {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => (*n).into(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                s.trim().parse().map_err(|_| {
                    KustomizeError::Override(format!(
                        "replicas of {}: {s:?} is not a number",
                        replica.name
                    ))
                })?
            }
        };
        merge_by_name(
            &mut k,
            "replicas",
            json!({"name": replica.name, "count": count}),
        );
    }
    if let Some(patches) = o.patches.as_ref().filter(|p| !p.is_empty()) {
        let patches = patches
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| KustomizeError::Override(e.to_string()))?;
        append(&mut k, "patches", patches);
    }
    let ignore_missing = o.ignore_missing_components.unwrap_or(false);
    let components: Vec<Value> = o
        .components
        .iter()
        .flatten()
        .filter(|c| !ignore_missing || c.contains("://") || exists(c))
        .map(|c| json!(c))
        .collect();
    if !components.is_empty() {
        append(&mut k, "components", components);
    }
    Ok(Value::Object(k))
}

/// Writes the overrides into the kustomization of `dir` (a checkout the caller owns).
pub fn write_overrides(
    dir: &Path,
    overrides: &ApplicationSourceKustomize,
    env: &AppEnv,
) -> Result<(), KustomizeError> {
    let Some(file) = KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
    else {
        return Err(KustomizeError::Io {
            path: dir.display().to_string(),
            message: "no kustomization.yaml".into(),
        });
    };
    let io = |e: std::io::Error| KustomizeError::Io {
        path: file.display().to_string(),
        message: e.to_string(),
    };
    let text = std::fs::read_to_string(&file).map_err(io)?;
    let kustomization: Value =
        serde_saphyr::from_str(&text).map_err(|e| KustomizeError::Parse {
            file: file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            message: e.to_string().lines().next().unwrap_or_default().to_owned(),
        })?;
    let exists = |component: &str| dir.join(component).exists();
    let kustomization = apply_overrides(kustomization, overrides, env, &exists)?;
    // JSON is YAML: kustomize reads it back.
    let text = serde_json::to_string_pretty(&kustomization)
        .map_err(|e| KustomizeError::Override(e.to_string()))?;
    std::fs::write(&file, text).map_err(io)
}

/// Runs `kustomize build DIR` (or `kubectl kustomize DIR`): the rendered YAML stream.
pub async fn build(dir: &Path) -> Result<Vec<u8>, KustomizeError> {
    let (program, args): (&str, Vec<&str>) = if on_path("kustomize") {
        ("kustomize", vec!["build"])
    } else if on_path("kubectl") {
        ("kubectl", vec!["kustomize"])
    } else {
        return Err(KustomizeError::NoBinary);
    };
    let command = format!("{program} {} .", args.join(" "));
    let child = tokio::process::Command::new(program)
        .args(&args)
        .arg(".")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| KustomizeError::Build {
            command: command.clone(),
            message: e.to_string(),
        })?;
    let output = tokio::time::timeout(BUILD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| KustomizeError::Build {
            command: command.clone(),
            message: format!("timed out after {}s", BUILD_TIMEOUT.as_secs()),
        })?
        .map_err(|e| KustomizeError::Build {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(KustomizeError::Build {
            command,
            message: stderr.trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests;
