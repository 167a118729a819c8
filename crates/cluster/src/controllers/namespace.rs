//! What every active namespace holds on a real cluster, kept there as kube-controller-manager's
//! service-account and root-CA publisher controllers keep it: the ServiceAccount `default` and
//! the ConfigMap `kube-root-ca.crt` with the cluster's CA (`ca.crt`). Deleted or changed, they
//! come back. Observe (namespace, account, config map) → [`plan`] → apply.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};

use super::ControllerError;

/// The ServiceAccount every namespace has.
pub const DEFAULT_ACCOUNT: &str = "default";
/// The ConfigMap with the cluster's CA in every namespace.
pub const ROOT_CA: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// A change to make in one namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create the ServiceAccount `default`.
    CreateAccount,
    /// Create `kube-root-ca.crt` with this body.
    CreateRootCa(Value),
    /// Put the CA back into `kube-root-ca.crt`.
    RestoreRootCa(Value),
}

fn root_ca(namespace: &str, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA, "namespace": namespace,
            "annotations": {"kubernetes.io/description": DESCRIPTION}},
        "data": {"ca.crt": ca_pem},
    })
}

/// The steps for a namespace that is `active` (not being deleted), whose account exists or not,
/// and whose root-CA ConfigMap holds `ca` (`None` when it does not exist).
pub fn plan(
    namespace: &str,
    active: bool,
    has_account: bool,
    ca: Option<Option<&str>>,
    ca_pem: &str,
) -> Vec<Step> {
    if !active {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if !has_account {
        steps.push(Step::CreateAccount);
    }
    match ca {
        None => steps.push(Step::CreateRootCa(root_ca(namespace, ca_pem))),
        Some(held) if held != Some(ca_pem) => {
            steps.push(Step::RestoreRootCa(json!({"data": {"ca.crt": ca_pem}})));
        }
        Some(_) => {}
    }
    steps
}

struct Context {
    client: Client,
    ca_pem: String,
}

async fn reconcile(
    namespace: Arc<Namespace>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let name = namespace.name_any();
    let active = namespace.metadata.deletion_timestamp.is_none()
        && namespace.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let has_account = accounts.get_opt(DEFAULT_ACCOUNT).await?.is_some();
    let map = maps.get_opt(ROOT_CA).await?;
    let held = map.as_ref().map(|m| {
        m.data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .map(String::as_str)
    });
    for step in plan(&name, active, has_account, held, &ctx.ca_pem) {
        let created = match step {
            Step::CreateAccount => {
                let account: ServiceAccount = serde_json::from_value(json!({
                    "metadata": {"name": DEFAULT_ACCOUNT, "namespace": name}}))
                .map_err(ControllerError::Encode)?;
                accounts
                    .create(&PostParams::default(), &account)
                    .await
                    .map(drop)
            }
            Step::CreateRootCa(body) => {
                let map: ConfigMap =
                    serde_json::from_value(body).map_err(ControllerError::Encode)?;
                maps.create(&PostParams::default(), &map).await.map(drop)
            }
            Step::RestoreRootCa(patch) => maps
                .patch(ROOT_CA, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop),
        };
        match created {
            // Created meanwhile, or the namespace began terminating: the next event decides.
            Err(kube::Error::Api(status)) if matches!(status.code, 409 | 403) => {}
            other => other?,
        }
    }
    Ok(Action::await_change())
}

/// Runs the controller until the client's server goes away.
pub async fn run(client: Client, ca_pem: String) {
    let accounts = Api::<ServiceAccount>::all(client.clone());
    let maps = Api::<ConfigMap>::all(client.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        ca_pem,
    });
    Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches(
            accounts,
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_ACCOUNT}")),
            |a| a.namespace().map(|ns| ObjectRef::new(&ns)),
        )
        .watches(
            maps,
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA}")),
            |m| m.namespace().map(|ns| ObjectRef::new(&ns)),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(_: Arc<Namespace>, err: &ControllerError, _: Arc<Context>) -> Action {
    tracing::debug!("namespace controller: {err}");
    Action::requeue(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_namespace_gets_its_account_and_ca() {
        assert_eq!(
            plan("shop", true, false, None, "PEM"),
            vec![
                Step::CreateAccount,
                Step::CreateRootCa(root_ca("shop", "PEM"))
            ]
        );
        assert_eq!(plan("shop", true, true, Some(Some("PEM")), "PEM"), vec![]);
        assert_eq!(
            plan("shop", true, true, Some(None), "PEM"),
            vec![Step::RestoreRootCa(json!({"data": {"ca.crt": "PEM"}}))]
        );
        assert_eq!(
            plan("shop", true, true, Some(Some("OLD")), "PEM"),
            vec![Step::RestoreRootCa(json!({"data": {"ca.crt": "PEM"}}))]
        );
        assert_eq!(plan("shop", false, false, None, "PEM"), vec![]);
    }
}
