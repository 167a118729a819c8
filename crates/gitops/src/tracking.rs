//! Which Application an object belongs to, as Argo CD records it: the default
//! `argocd.argoproj.io/tracking-id: <app>:<group>/<kind>:<namespace>/<name>` annotation, and the
//! `app.kubernetes.io/instance` label of the `label` and `annotation+label` methods.
//!
//! The annotation carries the object's full identity, so a copy of it made by another
//! controller (a Secret unsealed from a SealedSecret, an operator's child) names an object
//! that is not itself and is not managed — never pruned. Only root objects (no owner
//! references) are managed.

use std::fmt;

use serde_json::Value;

/// The annotation Argo CD tracks objects with by default.
pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// The label of the `label` tracking method.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// An object's identity across API versions: group, kind, namespace (empty for cluster
/// scope) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, " {}/{}", self.namespace, self.name)
        } else {
            write!(f, " {}", self.name)
        }
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

impl ResourceKey {
    /// The key of a JSON object; `namespace` when it names none (cluster-scoped kinds get
    /// theirs cleared by the caller, who knows the scope).
    pub fn of(object: &Value, default_namespace: &str) -> Self {
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let namespace = meta["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(default_namespace)
            .to_owned();
        Self {
            group: group_of(object["apiVersion"].as_str().unwrap_or_default()).to_owned(),
            kind: text(&object["kind"]),
            namespace,
            name: text(&meta["name"]),
        }
    }

    /// The tracking id of this object for `app`.
    pub fn tracking_id(&self, app: &str) -> String {
        format!(
            "{app}:{}/{}:{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

/// A parsed tracking id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingId {
    /// The Application instance name.
    pub app: String,
    /// The identity the annotation claims.
    pub key: ResourceKey,
}

/// Parses `<app>:<group>/<kind>:<namespace>/<name>`.
pub fn parse(id: &str) -> Option<TrackingId> {
    let (app, rest) = id.split_once(':')?;
    let (group_kind, namespaced) = rest.split_once(':')?;
    let (group, kind) = group_kind.split_once('/')?;
    let (namespace, name) = namespaced.split_once('/')?;
    Some(TrackingId {
        app: app.to_owned(),
        key: ResourceKey {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
    })
}

/// The Application managing a live object, if any: a root object whose tracking annotation
/// names the object itself, or (without the annotation) whose instance label names the app.
pub fn owning_app(object: &Value) -> Option<String> {
    let meta = &object["metadata"];
    let owned = meta["ownerReferences"]
        .as_array()
        .is_some_and(|o| !o.is_empty());
    if owned {
        return None;
    }
    if let Some(id) = meta["annotations"][TRACKING_ID].as_str() {
        let parsed = parse(id)?;
        let mut me = ResourceKey::of(object, "");
        if parsed.key.namespace.is_empty() {
            me.namespace.clear();
        }
        let same = parsed.key.group == me.group
            && parsed.key.kind == me.kind
            && parsed.key.name == me.name
            && parsed.key.namespace == me.namespace;
        return same.then_some(parsed.app);
    }
    meta["labels"][INSTANCE_LABEL].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_round_trip_in_argo_cds_format() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}});
        let key = ResourceKey::of(&svc, "default");
        assert_eq!(
            key.tracking_id("guestbook"),
            "guestbook:/Service:default/svc"
        );
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ui", "namespace": "prod"}});
        let id = ResourceKey::of(&deploy, "default").tracking_id("guestbook");
        assert_eq!(id, "guestbook:apps/Deployment:prod/ui");
        assert_eq!(parse(&id).unwrap().key, ResourceKey::of(&deploy, "x"));
    }

    #[test]
    fn only_self_referencing_root_objects_are_managed() {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "svc", "namespace": "default",
            "annotations": {TRACKING_ID: "guestbook:/Service:default/svc"}}});
        assert_eq!(owning_app(&svc).as_deref(), Some("guestbook"));
        // A copy carrying another object's id is not managed.
        svc["metadata"]["name"] = json!("copy");
        assert_eq!(owning_app(&svc), None);
        svc["metadata"]["name"] = json!("svc");
        svc["metadata"]["ownerReferences"] = json!([{"kind": "X", "name": "y", "uid": "1"}]);
        assert_eq!(owning_app(&svc), None);
        let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "c", "labels": {INSTANCE_LABEL: "legacy"}}});
        assert_eq!(owning_app(&labelled).as_deref(), Some("legacy"));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "prod", "annotations": {TRACKING_ID: "a:/Namespace:/prod"}}});
        assert_eq!(owning_app(&ns).as_deref(), Some("a"));
    }
}
