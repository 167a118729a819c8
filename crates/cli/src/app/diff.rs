//! `sluice app diff NAME [--revision REV]`: what a sync would change, as `argocd app diff`
//! shows it — for every resource out of sync, a `===== GROUP/KIND NAMESPACE/NAME ======`
//! header and a unified diff from the live object to the live object as the sync would leave
//! it (Argo CD's predicted live state), both normalized as the controller compares them and
//! with `ignoreDifferences` left out; a resource only Git has is all `+`, one to prune all `-`.
//!
//! The manifests are rendered here, in the user's shell, by the same library code the
//! controller renders with ([`sluice_gitops::render`]), from a fresh fetch of the repository
//! (with the repository Secrets of the Application's namespace, when the user may read them,
//! and the ssh host keys of its ConfigMap `argocd-ssh-known-hosts-cm`).
//! Secret values are never printed: as Argo CD does, each is shown as `+` signs, the same
//! number on both sides when it did not change. Exit status as argocd's: 0 no difference,
//! 1 differences, 2 an error.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use clap::Args;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, ListParams},
    discovery::{ApiResource, Discovery, Scope as DiscoveredScope},
};
use serde_json::Value;
use similar::TextDiff;
use sluice_api::Application;
use sluice_gitops::{
    apply,
    compare::{self, Scope},
    credentials::{self, Credentials},
    diff, ignore,
    known_hosts::{self, KnownHosts},
    render,
    repository::Repositories,
    tracking::{ResourceKey, group_of},
};

use super::Scope as AppScope;

/// Flags of `sluice app diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The Application.
    name: String,
    /// Compare with this revision instead of the Application's target.
    #[arg(long)]
    revision: Option<String>,
    #[command(flatten)]
    scope: AppScope,
}

/// Runs `app diff`: prints the differences; `Ok(true)` when there are any.
pub async fn run(args: DiffArgs) -> anyhow::Result<bool> {
    let (client, _) = crate::connect::connect(&args.scope.target).await?;
    let namespace = &args.scope.app_namespace;
    let app = Api::<Application>::namespaced(client.clone(), namespace)
        .get_opt(&args.name)
        .await?
        .with_context(|| format!("application {:?} not found", args.name))?;
    if app.sources().len() > 1 {
        bail!(
            "application {:?} has several sources: not supported",
            args.name
        );
    }
    let source = app
        .source()
        .context("spec.source: an Application needs a source")?;
    let revision = args
        .revision
        .as_deref()
        .unwrap_or_else(|| source.target_revision());

    // The repository, fetched afresh into a scratch directory, with the credentials the
    // controller would use.
    let secrets = match Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            eprintln!("sluice: repository Secrets not read ({e}); fetching without credentials");
            Vec::new()
        }
    };
    let known_hosts = match Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(known_hosts::CONFIG_MAP)
        .await
    {
        Ok(map) => map.map(|m| KnownHosts::from_config_map(&m)),
        Err(e) => {
            eprintln!(
                "sluice: ConfigMap {} not read ({e}); no ssh host key is trusted",
                known_hosts::CONFIG_MAP
            );
            None
        }
    };
    let creds = Credentials {
        known_hosts: Arc::new(known_hosts.unwrap_or_default()),
        ..credentials::select(&secrets, &source.repo_url).unwrap_or_default()
    };
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let repos = Repositories::new(scratch.path().join("repositories"));
    let sha = repos
        .resolve_source(source, revision, Duration::ZERO, &creds)
        .await?;
    let (manifests, _) = render::render(&repos, &scratch.path().join("render"), &app, source, &sha)
        .await
        .map_err(anyhow::Error::msg)?;
    let manifests = compare::home_child_applications(&manifests, namespace);

    // The live side: every object the manifests name, and those the controller found to
    // require pruning.
    let kinds = Kinds::discover(client.clone()).await?;
    let destination = app.spec.destination.namespace.clone().unwrap_or_default();
    let mut live = BTreeMap::new();
    let mut predicted = BTreeMap::new();
    let server_side = compare::server_side_diff(&app);
    for manifest in manifests.iter() {
        let object = &manifest.object;
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let scope = kinds.scope(group_of(api_version), kind);
        let (key, target) = compare::prepare(object, &app.name_any(), &destination, scope);
        if key.name.is_empty() {
            continue; // a hook named by generateName: never compared
        }
        if let Some(object) = kinds.get(&key).await? {
            if server_side && let Some(api) = kinds.api(&key) {
                // As the controller: a refused dry run leaves the object to the client side.
                if let Ok(p) = apply::predict_server_side(&api, &key.name, &target).await {
                    predicted.insert(key.clone(), p);
                }
            }
            live.insert(key, object);
        }
    }
    let mut managed = Vec::new();
    let statuses = app.status.as_ref().and_then(|s| s.resources.as_ref());
    for status in statuses.into_iter().flatten() {
        if status.requires_pruning != Some(true) {
            continue;
        }
        let key = ResourceKey {
            group: status.group.clone().unwrap_or_default(),
            kind: status.kind.clone().unwrap_or_default(),
            namespace: status.namespace.clone().unwrap_or_default(),
            name: status.name.clone().unwrap_or_default(),
        };
        if let Some(object) = kinds.get(&key).await? {
            managed.push((key, object));
        }
    }

    let ignore_rules = app.spec.ignore_differences.as_deref().unwrap_or_default();
    let comparison = compare::compare(compare::Inputs {
        app: &app.name_any(),
        namespace: &destination,
        manifests: &manifests,
        skip_missing_kinds: true,
        scope: &|group: &str, kind: &str| kinds.scope(group, kind),
        live: &|key: &ResourceKey| live.get(key).cloned(),
        managed,
        ignore: ignore_rules,
        application_health: false,
        predicted: &|key: &ResourceKey| predicted.get(key).cloned(),
    })?;
    let mut any = false;
    for resource in comparison.resources.iter().filter(|r| r.out_of_sync) {
        let (before, after) = sides(
            resource.live.as_ref(),
            resource.target.as_ref(),
            predicted.get(&resource.key),
            &ignore::rules_for(ignore_rules, &resource.key),
        );
        let (before, after) = (yaml(before.as_ref())?, yaml(after.as_ref())?);
        if before == after {
            continue;
        }
        any = true;
        let key = &resource.key;
        println!(
            "\n===== {}/{} {}/{} ======",
            key.group, key.kind, key.namespace, key.name
        );
        print!(
            "{}",
            TextDiff::from_lines(&before, &after)
                .unified_diff()
                .header("live", "target")
        );
    }
    Ok(any)
}

/// The two sides shown for one resource: live and live as a sync would leave it (the server's
/// prediction under server-side diff), normalized, without the ignored fields and the
/// last-applied annotation, Secret values masked.
fn sides(
    live: Option<&Value>,
    target: Option<&Value>,
    predicted: Option<&Value>,
    ignored: &ignore::Ignored<'_>,
) -> (Option<Value>, Option<Value>) {
    let (before, after) = match (live, target) {
        (Some(live), Some(_)) if let Some(predicted) = predicted => {
            let (predicted, live) = ignore::normalize(predicted, live, ignored);
            (Some(live), Some(predicted))
        }
        (Some(live), Some(target)) => {
            let (desired, live) = ignore::normalize(target, live, ignored);
            let (_, predicted) = diff::predict(&desired, &live);
            let after = predicted.unwrap_or_else(|| diff::normalize(&desired));
            (Some(diff::normalize(&live)), Some(after))
        }
        (live, target) => (live.map(diff::normalize), target.map(diff::normalize)),
    };
    let (mut before, mut after) = (
        before.as_ref().map(diff::comparable),
        after.as_ref().map(diff::comparable),
    );
    mask_secret_data(before.as_mut(), after.as_mut());
    (before, after)
}

/// Replaces every Secret value by `+` signs, as Argo CD's `HideSecretData`: 8 on the live
/// side, and on the target side 8 when the value is unchanged, 9 when it differs.
fn mask_secret_data(before: Option<&mut Value>, after: Option<&mut Value>) {
    let is_secret = |o: &Option<&mut Value>| o.as_ref().is_some_and(|o| o["kind"] == "Secret");
    if !is_secret(&before) && !is_secret(&after) {
        return;
    }
    let old = before
        .as_ref()
        .and_then(|o| o["data"].as_object())
        .cloned()
        .unwrap_or_default();
    if let Some(data) = after.and_then(|o| o["data"].as_object_mut()) {
        for (key, value) in data.iter_mut() {
            let same = old.get(key) == Some(value);
            *value = Value::from(if same { "++++++++" } else { "+++++++++" });
        }
    }
    if let Some(data) = before.and_then(|o| o["data"].as_object_mut()) {
        for value in data.values_mut() {
            *value = Value::from("++++++++");
        }
    }
}

/// An object as YAML (empty for none).
fn yaml(object: Option<&Value>) -> anyhow::Result<String> {
    Ok(match object {
        Some(object) => serde_saphyr::to_string(object)?,
        None => String::new(),
    })
}

/// The kinds the API server serves, found once through discovery.
struct Kinds {
    client: Client,
    by_kind: BTreeMap<(String, String), (ApiResource, bool)>,
}

impl Kinds {
    async fn discover(client: Client) -> anyhow::Result<Self> {
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut by_kind = BTreeMap::new();
        for group in discovery.groups() {
            for (resource, capabilities) in group.recommended_resources() {
                let namespaced = capabilities.scope == DiscoveredScope::Namespaced;
                by_kind
                    .entry((resource.group.clone(), resource.kind.clone()))
                    .or_insert((resource, namespaced));
            }
        }
        Ok(Self { client, by_kind })
    }

    fn scope(&self, group: &str, kind: &str) -> Scope {
        match self.by_kind.get(&(group.to_owned(), kind.to_owned())) {
            Some((_, true)) => Scope::Namespaced,
            Some((_, false)) => Scope::Cluster,
            None => Scope::Unknown,
        }
    }

    /// The API of `key`'s kind and namespace (none when the kind is not served).
    fn api(&self, key: &ResourceKey) -> Option<Api<DynamicObject>> {
        let (resource, namespaced) = self.by_kind.get(&(key.group.clone(), key.kind.clone()))?;
        Some(if *namespaced {
            Api::namespaced_with(self.client.clone(), &key.namespace, resource)
        } else {
            Api::all_with(self.client.clone(), resource)
        })
    }

    /// The live object of `key` (none when absent or its kind is not served).
    async fn get(&self, key: &ResourceKey) -> anyhow::Result<Option<Value>> {
        let Some(api) = self.api(key) else {
            return Ok(None);
        };
        let object = api
            .get_opt(&key.name)
            .await
            .with_context(|| format!("reading {key}"))?;
        Ok(object.map(serde_json::to_value).transpose()?)
    }
}
