//! Finding the cluster as kubectl does: `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`, then
//! the default `sluice up` data dir's kubeconfig (DESIGN §7), with `--context` and `-n`; in a
//! pod with none of those, the pod's service account.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};

/// Which cluster and namespace (flags may come before or after a Rollout's name).
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Namespace [default: the context's, else `default`]
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// kubeconfig context.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then sluice up's]
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// The kubeconfig to use: as kubectl would find it, else `sluice up`'s.
fn kubeconfig_path(explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.clone());
    }
    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if home
        .as_ref()
        .is_some_and(|h| h.join(".kube/config").is_file())
    {
        return None;
    }
    Some(crate::up::default_data_dir().join("kubeconfig"))
}

/// A client for `target`'s cluster, and the namespace to work in.
pub async fn connect(target: &Target) -> anyhow::Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let in_cluster = target.kubeconfig.is_none()
        && std::env::var_os("KUBECONFIG").is_none()
        && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let config = match kubeconfig_path(target.kubeconfig.as_ref()) {
        // In a pod with no kubeconfig: the service account, as client-go does.
        _ if in_cluster => kube::Config::incluster()?,
        Some(path) => {
            let file = Kubeconfig::read_from(&path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
}
