//! Deleting an Application that carries the `resources-finalizer.argocd.argoproj.io`
//! finalizer (what `argocd app delete` and `sluice app delete` set by default): its managed
//! resources are deleted first — foreground, or background with the `/background` variant —
//! hooks losing their hook finalizer, and once none is left the finalizer is removed so the
//! Application goes. Without the finalizer the resources stay (`--cascade=false`).

use std::time::Duration;

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PropagationPolicy},
    runtime::controller::Action,
};
use serde_json::json;
use sluice_api::Application;

use super::{Context, ControllerError, scopes};
use crate::{apply, hooks};

/// The finalizer that deletes an Application's resources before it.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// Its variant deleting them in the background.
pub const RESOURCES_FINALIZER_BACKGROUND: &str =
    "resources-finalizer.argocd.argoproj.io/background";

/// Advances the deletion of an Application being deleted.
pub(super) async fn deleting(
    api: &Api<Application>,
    app: &Application,
    context: &Context,
) -> Result<Action, ControllerError> {
    let finalizers = app.finalizers();
    let propagation = if finalizers
        .iter()
        .any(|f| f == RESOURCES_FINALIZER_BACKGROUND)
    {
        PropagationPolicy::Background
    } else if finalizers.iter().any(|f| f == RESOURCES_FINALIZER) {
        PropagationPolicy::Foreground
    } else {
        return Ok(Action::await_change());
    };
    // Watch every kind the Application had, so its objects are known.
    if let Err(message) = scopes(context, &[], app).await {
        tracing::warn!("application {}: {message}", app.name_any());
    }
    let managed = context.live.managed_by(&app.name_any());
    if !managed.is_empty() {
        for (key, live) in &managed {
            let api_version = live["apiVersion"].as_str().unwrap_or_default();
            if hooks::is_hook(live) {
                let _ = apply::remove_finalizer(&context.live, key, api_version, hooks::FINALIZER)
                    .await;
            }
            if live["metadata"]["deletionTimestamp"].is_null()
                && let Err(message) =
                    apply::delete(&context.live, key, api_version, propagation.clone()).await
            {
                tracing::warn!("application {}: deleting {key}: {message}", app.name_any());
            }
        }
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let kept: Vec<&String> = finalizers
        .iter()
        .filter(|f| *f != RESOURCES_FINALIZER && *f != RESOURCES_FINALIZER_BACKGROUND)
        .collect();
    let patch = json!({"metadata": {"finalizers": kept}});
    match api
        .patch(
            &app.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}
