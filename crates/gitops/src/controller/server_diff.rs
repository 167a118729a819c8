//! Server-side diff's IO (`compare-options: ServerSideDiff=true` on the Application): for
//! every manifest with a live object, live as a server-side apply dry run of the target
//! predicts it — one API call per object, remembered while neither the live object's
//! resourceVersion nor the target changes (Argo CD keeps its diff cache the same way). The
//! comparison itself is pure ([`crate::compare`]). A dry run the server refuses leaves that
//! object to the client-side diff.

use std::collections::HashMap;

use kube::ResourceExt;
use serde_json::Value;
use sluice_api::Application;

use super::{Context, lock};
use crate::{
    apply,
    compare::{self, Scope},
    hooks::{self, Role},
    manifests::Manifest,
    tracking::{ResourceKey, group_of},
};

/// Predicted live objects by key (empty unless the Application asks for server-side diff).
pub(super) async fn predictions(
    context: &Context,
    app: &Application,
    manifests: &[Manifest],
    scopes: &HashMap<(String, String), Scope>,
) -> HashMap<ResourceKey, Value> {
    let mut out = HashMap::new();
    if !compare::server_side_diff(app) {
        return out;
    }
    let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
    let manifests = compare::home_child_applications(manifests, &context.settings.namespace);
    for manifest in manifests.iter() {
        if !matches!(hooks::role(&manifest.object), Role::Resource) {
            continue;
        }
        let api_version = manifest.object["apiVersion"].as_str().unwrap_or_default();
        let kind_name = manifest.object["kind"].as_str().unwrap_or_default();
        let scope = scopes
            .get(&(group_of(api_version).to_owned(), kind_name.to_owned()))
            .copied()
            .unwrap_or(Scope::Unknown);
        if scope == Scope::Unknown {
            continue;
        }
        let (key, target) = compare::prepare(&manifest.object, &app.name_any(), &namespace, scope);
        let Some(live) = context
            .live
            .watched(&key.group, &key.kind)
            .and_then(|k| k.get(&key.namespace, &key.name))
        else {
            continue;
        };
        let version = live["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let target_text = target.to_string();
        let cached = lock(&context.predicted)
            .get(&key)
            .filter(|(v, t, _)| *v == version && *t == target_text)
            .map(|(_, _, p)| p.clone());
        let predicted = match cached {
            Some(p) => p,
            None => {
                let Ok(kind) = context.live.kind(api_version, kind_name).await else {
                    continue;
                };
                let api = apply::api(&kind, &context.live, &key.namespace);
                match apply::predict_server_side(&api, &key.name, &target).await {
                    Ok(p) => {
                        let mut cache = lock(&context.predicted);
                        if cache.len() > 50_000 {
                            cache.clear();
                        }
                        cache.insert(key.clone(), (version, target_text, p.clone()));
                        p
                    }
                    Err(e) => {
                        tracing::debug!("server-side diff of {key}: {e}; diffing client-side");
                        continue;
                    }
                }
            }
        };
        out.insert(key, predicted);
    }
    out
}
