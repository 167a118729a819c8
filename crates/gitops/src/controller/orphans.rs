//! Argo CD's OrphanedResourceWarning: objects in an Application's destination namespace that
//! no Application tracks, when its AppProject monitors orphaned resources.

use std::time::Duration;

use kube::Api;
use serde_json::Value;
use sluice_api::Application;

use super::{Context, lock};
use crate::compare::Comparison;

/// Argo CD's OrphanedResourceWarning, when the Application's AppProject asks for orphaned
/// resources to be monitored (`spec.orphanedResources`, `warn` not false): root objects in the
/// destination namespace that no Application tracks, among the kinds the controller watches
/// (Argo CD looks at every kind), minus the project's `ignore` list and what Kubernetes
/// itself creates in every namespace.
pub(super) async fn orphaned_warning(
    context: &Context,
    app: &Application,
    comparison: &Comparison,
) -> Option<String> {
    let namespace = app
        .spec
        .destination
        .namespace
        .clone()
        .filter(|n| !n.is_empty())?;
    let project = project(context, app.spec.project()).await?;
    let settings = &project["spec"]["orphanedResources"];
    if !settings.is_object() || settings["warn"] == false {
        return None;
    }
    let ignored = |key: &crate::tracking::ResourceKey| {
        let built_in = (key.kind == "ConfigMap" && key.name == "kube-root-ca.crt")
            || (key.kind == "ServiceAccount" && key.name == "default");
        let listed = settings["ignore"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| {
                let matches = |field: &str, value: &str| {
                    i[field]
                        .as_str()
                        .is_none_or(|p| p.is_empty() || p == "*" || p == value)
                };
                matches("group", &key.group)
                    && matches("kind", &key.kind)
                    && matches("name", &key.name)
            });
        built_in || listed
    };
    let count = context
        .live
        .untracked_in(&namespace)
        .into_iter()
        .filter(|key| !comparison.resources.iter().any(|r| r.key == *key))
        .filter(|key| !ignored(key))
        .count();
    (count > 0).then(|| format!("Application has {count} orphaned resources"))
}

/// An AppProject as JSON (read at most every 10 s).
pub(super) async fn project(context: &Context, name: &str) -> Option<Value> {
    let now = std::time::Instant::now();
    if let Some((at, project)) = lock(&context.projects).get(name)
        && now.duration_since(*at) < Duration::from_secs(10)
    {
        return project.clone();
    }
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    );
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        context.client.clone(),
        &context.settings.namespace,
        &resource,
    );
    let project = api
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|p| serde_json::to_value(p).ok());
    lock(&context.projects).insert(name.to_owned(), (now, project.clone()));
    project
}
