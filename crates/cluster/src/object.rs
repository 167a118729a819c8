//! What the API server does to an object's metadata on create, update and delete: server-filled
//! fields, generation, the status split, preconditions, finalizers and graceful deletion.
//! Pure functions of (type, old, new, now); the handlers run them inside a store transaction.
//!
//! Layering: the object room (with `admission`, `defaults`, `schema` and the registry): below
//! the API server, above the store; it fails with
//! [`crate::api_error::ApiError`] and never imports the API server.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::{
    api_error::{ApiError, ApiResult, Cause},
    registry::ResourceType,
    store::{ObjectKey, ResourceKey, Txn},
};

/// Finalizer the garbage collector uses for foreground deletion.
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";
/// Finalizer the garbage collector uses for orphaning deletion.
pub const ORPHAN: &str = "orphan";
/// The namespace lifecycle finalizer in `spec.finalizers`.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// A timestamp as Kubernetes writes it (RFC 3339, seconds, UTC).
pub fn timestamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metadata` of an object, created when missing.
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// A string field of `metadata`, empty when missing.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

/// The names in `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

/// Whether the object is being deleted.
pub fn is_deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// Whether a deleting object can go now: no finalizers remain and, for a pod in graceful
/// termination, the kubelet is not still stopping it (it confirms with a grace-0 delete).
pub fn ready_to_remove(rt: &ResourceType, object: &Value) -> bool {
    let graceful_pod = rt.group.is_empty()
        && rt.resource == "pods"
        && object["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            > 0;
    is_deleting(object) && finalizers(object).is_empty() && !graceful_pod
}

/// Server-assigned values for a new object.
pub struct Assigned {
    /// The object's uid.
    pub uid: String,
    /// Random characters for `generateName`.
    pub suffix: String,
    /// When it is created.
    pub now: Timestamp,
}

impl Assigned {
    /// Fresh random values at `now`.
    pub fn random(now: Timestamp) -> Self {
        let uuid = uuid::Uuid::new_v4();
        // Kubernetes' generateName alphabet: no vowels, no ambiguous characters.
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let suffix = uuid.as_bytes()[..5]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let uid = uuid::Uuid::new_v4().to_string();
        Self { uid, suffix, now }
    }
}

/// Checks the body of a write against the URL and the kind: `apiVersion` and `kind` (filled when
/// missing), and the namespace.
///
/// # Errors
/// 400 when the body names another kind or namespace, or is not an object.
pub fn check_body(
    rt: &ResourceType,
    version: &str,
    namespace: Option<&str>,
    object: &mut Value,
) -> ApiResult<()> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let api_version = rt.api_version(version);
    match object["apiVersion"].as_str() {
        None | Some("") => object["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match object["kind"].as_str() {
        None | Some("") => object["kind"] = json!(rt.kind),
        Some(k) if k == rt.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    let meta = meta_mut(object);
    if rt.namespaced {
        let namespace = namespace.unwrap_or_default();
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(namespace));
            }
            Some(ns) if ns == namespace => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Prepares a new object: name (from `generateName`), uid, timestamps, generation, status.
///
/// # Errors
/// 422 for a missing or invalid name, 400 for a resourceVersion on a new object.
pub fn prepare_create(
    rt: &ResourceType,
    mut object: Value,
    assigned: &Assigned,
) -> ApiResult<Value> {
    let meta = meta_mut(&mut object);
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    meta.remove("resourceVersion");
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let prefix: String = prefix.chars().take(58).collect();
                format!("{prefix}{}", assigned.suffix)
            }
            _ => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        field: "metadata.name".into(),
                        message: "Required value: name or generateName is required".into(),
                    }],
                ));
            }
        },
    };
    validate_name(rt, &name)?;
    meta.insert("name".into(), json!(name));
    meta.insert("uid".into(), json!(assigned.uid));
    meta.insert("creationTimestamp".into(), json!(timestamp(assigned.now)));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    if rt.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if rt.status
        && let Some(obj) = object.as_object_mut()
    {
        obj.remove("status");
    }
    Ok(object)
}

/// The outcome of preparing an update.
#[derive(Debug, PartialEq)]
pub enum Update {
    /// Write this object.
    Write(Value),
    /// Nothing changed: keep the stored version (and its resourceVersion).
    Unchanged,
    /// The last finalizer of a deleting object was removed: delete it now.
    Remove(Value),
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main endpoint: everything but status (when status is a subresource).
    Main,
    /// The `/status` subresource: only status.
    Status,
}

/// Prepares an update of `old` to `new`: preconditions, immutable fields, the status split and
/// generation.
///
/// # Errors
/// 409 on a stale resourceVersion, 422 on a changed immutable field, 400 on a name that does not
/// match the URL.
pub fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    part: Part,
) -> ApiResult<Update> {
    let name = meta_str(old, "name").to_owned();
    let new_name = meta_str(&new, "name");
    if !new_name.is_empty() && new_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({name})"
        )));
    }
    let old_rv = meta_str(old, "resourceVersion");
    let new_rv = meta_str(&new, "resourceVersion");
    if !new_rv.is_empty() && new_rv != old_rv {
        return Err(ApiError::stale(rt, &name));
    }
    let new_uid = meta_str(&new, "uid");
    if !new_uid.is_empty() && new_uid != meta_str(old, "uid") {
        return Err(ApiError::invalid_field(
            rt,
            &name,
            "metadata.uid",
            "field is immutable",
        ));
    }
    if part == Part::Status {
        let mut updated = old.clone();
        match new.get("status") {
            Some(status) => updated["status"] = status.clone(),
            None => {
                if let Some(o) = updated.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        new = updated;
    } else {
        let meta = meta_mut(&mut new);
        for field in [
            "name",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old["metadata"].get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if rt.namespaced {
            meta.insert("namespace".into(), old["metadata"]["namespace"].clone());
        }
        if rt.status {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        if rt.generation && spec_changed(old, &new) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
    }
    meta_mut(&mut new).insert("resourceVersion".into(), json!(old_rv));
    if ready_to_remove(rt, &new) {
        return Ok(Update::Remove(new));
    }
    if &new == old {
        return Ok(Update::Unchanged);
    }
    Ok(Update::Write(new))
}

/// Whether anything outside `metadata` and `status` differs.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(old) != strip(new)
}

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the owner now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Delete dependents first; the owner waits with the `foregroundDeletion` finalizer.
    Foreground,
    /// Keep dependents, removing their owner references.
    Orphan,
}

/// Options of a delete request (from its body or query).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// Dependents' fate.
    pub propagation: Option<Propagation>,
    /// Seconds before a pod is killed.
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the uid matches.
    pub precondition_uid: Option<String>,
    /// Delete only if the resourceVersion matches.
    pub precondition_rv: Option<String>,
    /// Validate only; change nothing.
    pub dry_run: bool,
}

/// What a delete does.
#[derive(Debug, PartialEq)]
pub enum Deletion {
    /// Remove the object now.
    Remove,
    /// Keep it, marked as deleting (finalizers or a grace period remain): write this version.
    Mark(Value),
    /// Already marked; nothing more to do.
    AlreadyDeleting,
}

impl Deletion {
    /// Stages this outcome for the object at `key` in a store transaction.
    pub fn stage(&self, txn: &mut Txn<'_>, resource: &ResourceKey, key: ObjectKey) {
        match self {
            Self::Remove => txn.delete(resource, key),
            Self::Mark(marked) => txn.put(resource, key, marked.clone()),
            Self::AlreadyDeleting => {}
        }
    }
}

/// Decides what a delete of `object` does.
///
/// # Errors
/// 409 when a precondition fails.
pub fn plan_delete(
    rt: &ResourceType,
    object: &Value,
    options: &DeleteOptions,
    now: Timestamp,
) -> ApiResult<Deletion> {
    let name = meta_str(object, "name");
    if let Some(uid) = &options.precondition_uid
        && uid != meta_str(object, "uid")
    {
        let why = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta_str(object, "uid")
        );
        return Err(ApiError::conflict(rt, name, &why));
    }
    if let Some(rv) = &options.precondition_rv
        && rv != meta_str(object, "resourceVersion")
    {
        let why = format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            meta_str(object, "resourceVersion")
        );
        return Err(ApiError::conflict(rt, name, &why));
    }
    let mut marked = object.clone();
    let mut finalizers = finalizers(object);
    let add = |finalizers: &mut Vec<String>, f: &str| {
        if !finalizers.iter().any(|x| x == f) {
            finalizers.push(f.to_owned());
        }
    };
    match options.propagation {
        Some(Propagation::Foreground) => add(&mut finalizers, FOREGROUND_DELETION),
        Some(Propagation::Orphan) => add(&mut finalizers, ORPHAN),
        Some(Propagation::Background) | None => {}
    }
    let namespace_finalizing = rt.group.is_empty()
        && rt.resource == "namespaces"
        && object["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
    let grace = pod_grace_seconds(rt, object, options);
    if is_deleting(object) {
        // A second delete may only add finalizers or shorten a pod's grace period.
        let shorter = grace.is_some_and(|g| {
            object["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .is_some_and(|current| g < current)
        });
        if grace == Some(0) && finalizers.is_empty() {
            return Ok(Deletion::Remove);
        }
        if finalizers != self::finalizers(object) || shorter {
            let meta = meta_mut(&mut marked);
            meta.insert("finalizers".into(), json!(finalizers));
            if let Some(g) = grace.filter(|_| shorter) {
                meta.insert("deletionGracePeriodSeconds".into(), json!(g));
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(timestamp(now + jiff::SignedDuration::from_secs(g))),
                );
            }
            return Ok(Deletion::Mark(marked));
        }
        return Ok(Deletion::AlreadyDeleting);
    }
    let waiting_grace = grace.filter(|g| *g > 0);
    if finalizers.is_empty() && waiting_grace.is_none() && !namespace_finalizing {
        return Ok(Deletion::Remove);
    }
    let meta = meta_mut(&mut marked);
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    let grace = waiting_grace.unwrap_or(0);
    meta.insert(
        "deletionTimestamp".into(),
        json!(timestamp(now + jiff::SignedDuration::from_secs(grace))),
    );
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if namespace_finalizing {
        marked["status"]["phase"] = json!("Terminating");
    }
    Ok(Deletion::Mark(marked))
}

/// A pod's grace period: pods on a node terminate gracefully (the kubelet removes them); pods
/// never scheduled go at once.
fn pod_grace_seconds(rt: &ResourceType, object: &Value, options: &DeleteOptions) -> Option<i64> {
    if !(rt.group.is_empty() && rt.resource == "pods") {
        return None;
    }
    if object["spec"]["nodeName"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Some(0);
    }
    Some(
        options
            .grace_period_seconds
            .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0),
    )
}

/// Checks an object name against the rules of its kind.
///
/// # Errors
/// 422 naming the rule.
pub fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let label_only =
        rt.group.is_empty() && matches!(rt.resource.as_str(), "namespaces" | "services");
    // RBAC objects need only be path segments (`system:discovery`), as Kubernetes'
    // ValidateRBACName.
    let rbac = rt.group == "rbac.authorization.k8s.io";
    let problem = if rbac {
        path_segment_problem(name)
    } else if label_only {
        dns_label_problem(name, rt.resource == "services")
    } else {
        dns_subdomain_problem(name)
    };
    match problem {
        None => Ok(()),
        Some(message) => Err(ApiError::invalid(
            rt,
            name,
            vec![Cause {
                reason: "FieldValueInvalid",
                field: "metadata.name".into(),
                message: format!("Invalid value: {name:?}: {message}"),
            }],
        )),
    }
}

fn path_segment_problem(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ['/', '%']
        .into_iter()
        .find(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
}

fn dns_subdomain_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|part| dns_label_problem(part, false).is_none());
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()
    })
}

fn dns_label_problem(name: &str, must_start_with_letter: bool) -> Option<String> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && (!must_start_with_letter || bytes[0].is_ascii_lowercase());
    (!ok).then(|| {
        if must_start_with_letter {
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into()
        } else {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into()
        }
    })
}

/// The container of `pod` a request names — any of its containers, init containers or
/// ephemeral containers — or, when it names none, its only container; otherwise the API
/// server's message saying what is wrong.
pub fn pod_container(pod: &Value, asked: Option<&str>) -> Result<String, String> {
    let names = |lists: &[&str]| -> Vec<String> {
        lists
            .iter()
            .flat_map(|list| pod["spec"][*list].as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let name = meta_str(pod, "name");
    let containers = names(&["containers"]);
    match asked.filter(|c| !c.is_empty()) {
        Some(c)
            if names(&["containers", "initContainers", "ephemeralContainers"])
                .iter()
                .any(|n| n == c) =>
        {
            Ok(c.to_owned())
        }
        Some(c) => Err(format!("container {c} is not valid for pod {name}")),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            containers.join(" ")
        )),
    }
}
