//! `sluice app create` and `sluice app set`: argocd's flags written into an Application's
//! spec. `create` builds the whole object (refusing an existing one unless `--upsert`); `set`
//! writes only the flags given, as a merge patch.

use anyhow::{Context, bail};
use clap::Args;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};

use super::{Scope, applications};

/// The spec flags `create` and `set` share (argocd's names).
#[derive(Debug, Args, Default)]
pub struct SpecFlags {
    /// Repository URL.
    #[arg(long)]
    repo: Option<String>,
    /// Path in the repository.
    #[arg(long)]
    path: Option<String>,
    /// Target revision (branch, tag, SHA; default HEAD).
    #[arg(long)]
    revision: Option<String>,
    /// Destination cluster URL (this cluster: https://kubernetes.default.svc).
    #[arg(long)]
    dest_server: Option<String>,
    /// Destination cluster name (this cluster: in-cluster).
    #[arg(long)]
    dest_name: Option<String>,
    /// Destination namespace.
    #[arg(long)]
    dest_namespace: Option<String>,
    /// AppProject.
    #[arg(long)]
    project: Option<String>,
    /// `automated`, or `none` (manual).
    #[arg(long, value_parser = ["automated", "auto", "none", "manual"])]
    sync_policy: Option<String>,
    /// Auto-sync prunes.
    #[arg(long)]
    auto_prune: bool,
    /// Auto-sync heals drift.
    #[arg(long)]
    self_heal: bool,
    /// Auto-sync may prune everything.
    #[arg(long)]
    allow_empty: bool,
    /// A sync option (`CreateNamespace=true`, …; repeatable).
    #[arg(long)]
    sync_option: Vec<String>,
    /// Scan the path's subdirectories.
    #[arg(long)]
    directory_recurse: bool,
    /// A kustomize image override (`[old=]new[:tag][@digest]`; repeatable).
    #[arg(long)]
    kustomize_image: Vec<String>,
    /// A chart of the Helm chart repository `--repo` (`--revision`: its version or a
    /// constraint).
    #[arg(long)]
    helm_chart: Option<String>,
    /// Helm release name (default: the Application's name).
    #[arg(long)]
    release_name: Option<String>,
    /// A Helm values file, relative to the chart (repeatable).
    #[arg(long)]
    values: Vec<String>,
    /// A Helm parameter `name=value` (repeatable).
    #[arg(long, value_parser = name_value)]
    helm_set: Vec<(String, String)>,
    /// A Helm string parameter `name=value` (repeatable).
    #[arg(long, value_parser = name_value)]
    helm_set_string: Vec<(String, String)>,
    /// Leave the chart's CRDs out.
    #[arg(long)]
    helm_skip_crds: bool,
}

/// A `name=value` flag value.
fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?}: expected name=value")),
    }
}

/// The `source.helm` the Helm flags set (none when no Helm flag is given).
fn helm_of(flags: &SpecFlags) -> Option<Value> {
    let mut helm = Map::new();
    if let Some(name) = &flags.release_name {
        helm.insert("releaseName".into(), json!(name));
    }
    if !flags.values.is_empty() {
        helm.insert("valueFiles".into(), json!(flags.values));
    }
    let parameters: Vec<Value> = flags
        .helm_set
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .chain(
            flags
                .helm_set_string
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value, "forceString": true})),
        )
        .collect();
    if !parameters.is_empty() {
        helm.insert("parameters".into(), Value::Array(parameters));
    }
    if flags.helm_skip_crds {
        helm.insert("skipCrds".into(), json!(true));
    }
    (!helm.is_empty()).then_some(Value::Object(helm))
}

/// Flags of `sluice app create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The Application.
    name: String,
    #[command(flatten)]
    spec: SpecFlags,
    /// Overwrite the spec of an existing Application.
    #[arg(long)]
    upsert: bool,
    #[command(flatten)]
    scope: Scope,
}

/// Flags of `sluice app set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The Application.
    name: String,
    #[command(flatten)]
    spec: SpecFlags,
    #[command(flatten)]
    scope: Scope,
}

/// The spec fields the flags set, as a merge patch of `spec`.
pub fn spec_patch(flags: &SpecFlags) -> Value {
    let mut source = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: &Option<String>| {
        if let Some(value) = value {
            map.insert(key.into(), json!(value));
        }
    };
    put(&mut source, "repoURL", &flags.repo);
    put(&mut source, "path", &flags.path);
    put(&mut source, "targetRevision", &flags.revision);
    if flags.directory_recurse {
        source.insert("directory".into(), json!({"recurse": true}));
    }
    if !flags.kustomize_image.is_empty() {
        source.insert("kustomize".into(), json!({"images": flags.kustomize_image}));
    }
    put(&mut source, "chart", &flags.helm_chart);
    if let Some(helm) = helm_of(flags) {
        source.insert("helm".into(), helm);
    }
    let mut destination = Map::new();
    put(&mut destination, "server", &flags.dest_server);
    put(&mut destination, "name", &flags.dest_name);
    put(&mut destination, "namespace", &flags.dest_namespace);
    let mut spec = Map::new();
    if !source.is_empty() {
        spec.insert("source".into(), Value::Object(source));
    }
    if !destination.is_empty() {
        spec.insert("destination".into(), Value::Object(destination));
    }
    put(&mut spec, "project", &flags.project);
    let mut policy = Map::new();
    match flags.sync_policy.as_deref() {
        Some("automated" | "auto") => {
            policy.insert(
                "automated".into(),
                json!({"prune": flags.auto_prune, "selfHeal": flags.self_heal,
                    "allowEmpty": flags.allow_empty}),
            );
        }
        Some(_) => {
            policy.insert("automated".into(), Value::Null);
        }
        None if flags.auto_prune || flags.self_heal || flags.allow_empty => {
            let mut automated = Map::new();
            for (key, on) in [
                ("prune", flags.auto_prune),
                ("selfHeal", flags.self_heal),
                ("allowEmpty", flags.allow_empty),
            ] {
                if on {
                    automated.insert(key.into(), json!(true));
                }
            }
            policy.insert("automated".into(), Value::Object(automated));
        }
        None => {}
    }
    if !flags.sync_option.is_empty() {
        policy.insert("syncOptions".into(), json!(flags.sync_option));
    }
    if !policy.is_empty() {
        spec.insert("syncPolicy".into(), Value::Object(policy));
    }
    Value::Object(spec)
}

/// The whole Application `create` writes.
pub fn new_application(name: &str, namespace: &str, flags: &SpecFlags) -> anyhow::Result<Value> {
    let Some(repo) = &flags.repo else {
        bail!("--repo is required");
    };
    if flags.dest_server.is_none() && flags.dest_name.is_none() {
        bail!("--dest-server or --dest-name is required");
    }
    let mut spec = spec_patch(flags);
    spec["source"]["repoURL"] = json!(repo);
    if spec.get("project").is_none() {
        spec["project"] = json!("default");
    }
    if let Some(policy) = spec.get_mut("syncPolicy").and_then(Value::as_object_mut) {
        policy.retain(|_, v| !v.is_null());
    }
    Ok(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
}

/// `sluice app create`.
pub async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let api = applications(&args.scope).await?;
    let app = new_application(&args.name, &args.scope.app_namespace, &args.spec)?;
    let object: DynamicObject = serde_json::from_value(app.clone())?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            if !args.upsert {
                bail!(
                    "application {:?} already exists: use --upsert to replace its spec",
                    args.name
                );
            }
            let patch = json!({"spec": app["spec"]});
            api.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .context("updating the spec")?;
        }
        Err(e) => return Err(e.into()),
    }
    println!("application '{}' created", args.name);
    Ok(())
}

/// `sluice app set`.
pub async fn set(args: SetArgs) -> anyhow::Result<()> {
    let patch = spec_patch(&args.spec);
    if patch.as_object().is_none_or(Map::is_empty) {
        bail!("nothing to set: give at least one flag (--repo, --path, --revision, …)");
    }
    let api = applications(&args.scope).await?;
    api.get_opt(&args.name)
        .await?
        .with_context(|| format!("application {:?} not found", args.name))?;
    api.patch(
        &args.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": patch})),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_writes_argocds_flags_into_the_spec() {
        let flags = SpecFlags {
            repo: Some("https://git.example.com/cd.git".into()),
            path: Some("apps/web".into()),
            revision: Some("main".into()),
            dest_server: Some("https://kubernetes.default.svc".into()),
            dest_namespace: Some("web".into()),
            sync_policy: Some("automated".into()),
            auto_prune: true,
            sync_option: vec!["CreateNamespace=true".into()],
            ..Default::default()
        };
        let app = new_application("web", "argocd", &flags).unwrap();
        assert_eq!(
            app["spec"],
            json!({"project": "default",
                "source": {"repoURL": "https://git.example.com/cd.git", "path": "apps/web", "targetRevision": "main"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": false, "allowEmpty": false},
                    "syncOptions": ["CreateNamespace=true"]}})
        );
        assert!(new_application("x", "argocd", &SpecFlags::default()).is_err());
    }

    #[test]
    fn set_patches_only_what_is_given() {
        let flags = SpecFlags {
            revision: Some("v2".into()),
            sync_policy: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(
            spec_patch(&flags),
            json!({"source": {"targetRevision": "v2"}, "syncPolicy": {"automated": null}})
        );
        let heal = SpecFlags {
            self_heal: true,
            ..Default::default()
        };
        assert_eq!(
            spec_patch(&heal),
            json!({"syncPolicy": {"automated": {"selfHeal": true}}})
        );
    }

    #[test]
    fn helm_flags_make_a_chart_source() {
        let flags = SpecFlags {
            repo: Some("https://charts.example.com".into()),
            helm_chart: Some("argo-rollouts".into()),
            revision: Some("2.40.9".into()),
            release_name: Some("rollouts".into()),
            values: vec!["values-prod.yaml".into()],
            helm_set: vec![name_value("controller.replicas=2").unwrap()],
            helm_set_string: vec![name_value("image.tag=1.9").unwrap()],
            helm_skip_crds: true,
            ..Default::default()
        };
        assert_eq!(
            spec_patch(&flags)["source"],
            json!({"repoURL": "https://charts.example.com", "chart": "argo-rollouts",
                "targetRevision": "2.40.9", "helm": {"releaseName": "rollouts",
                "valueFiles": ["values-prod.yaml"], "skipCrds": true, "parameters": [
                    {"name": "controller.replicas", "value": "2"},
                    {"name": "image.tag", "value": "1.9", "forceString": true}]}})
        );
        assert!(name_value("no-equals").is_err());
    }
}
