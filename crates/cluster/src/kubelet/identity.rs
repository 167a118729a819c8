//! A local process pod's identity: what a real kubelet projects into
//! `/var/run/secrets/kubernetes.io/serviceaccount/` (the ServiceAccount's token, bound to the
//! pod, and the CA), written instead as a kubeconfig in the pod's directory (mode `0600`),
//! because a local process cannot have that fixed path of its own. `KUBECONFIG` points at it,
//! and `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` at the API server, so any kube
//! client the pod runs reaches the API as its ServiceAccount, with exactly its RBAC rights.
//!
//! The token is requested as the kubelet requests projected tokens (`serviceaccounts/token`,
//! 3607 s, bound to the pod), which the API server extends to a year as Kubernetes'
//! `--service-account-extend-token-expiration` does, so a long-running pod keeps working
//! without the kubelet rotating its file. `automountServiceAccountToken: false` on the pod (or,
//! when the pod does not say, on the ServiceAccount) leaves the kubeconfig out.

use std::{io::Write, net::SocketAddr, path::Path};

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::authn::PROJECTED_TOKEN_SECONDS;

/// The file in the pod's directory.
pub const KUBECONFIG: &str = "kubeconfig";

/// Where the API server is and which CA signs it, for the pods' kubeconfigs.
#[derive(Debug, Clone)]
pub struct ApiEndpoint {
    /// The HTTPS address.
    pub address: SocketAddr,
    /// The cluster CA (PEM).
    pub ca_pem: String,
}

/// The service variables every container gets: the API server's address.
pub fn service_variables(api: &ApiEndpoint) -> Vec<(String, String)> {
    let (host, port) = (api.address.ip().to_string(), api.address.port());
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.clone()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), format!("tcp://{host}:{port}")),
    ]
}

/// Whether the pod gets a token: the pod's `automountServiceAccountToken`, else its
/// ServiceAccount's, else yes.
async fn automount(client: &Client, pod: &Pod, account: &str) -> bool {
    if let Some(on) = pod
        .spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
    {
        return on;
    }
    let namespace = pod.namespace().unwrap_or_default();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    match accounts.get_opt(account).await {
        Ok(Some(sa)) => sa.automount_service_account_token.unwrap_or(true),
        _ => true,
    }
}

/// Writes the pod's kubeconfig into `dir` and returns the `KUBECONFIG` variable, or `None` when
/// the pod opts out.
///
/// # Errors
/// A message for the container's failure: the token could not be issued or the file written.
pub async fn prepare(
    client: &Client,
    api: &ApiEndpoint,
    pod: &Pod,
    dir: &Path,
) -> Result<Option<(String, String)>, String> {
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    if !automount(client, pod, &account).await {
        return Ok(None);
    }
    let namespace = pod.namespace().unwrap_or_default();
    let token = issue(client, &namespace, &account, pod)
        .await
        .map_err(|e| format!("issuing a token for ServiceAccount {namespace}/{account}: {e}"))?;
    let url = format!("https://{}", api.address);
    let text = crate::kubeconfig::render_in("sluice", &url, &api.ca_pem, &token, &namespace);
    let path = dir.join(KUBECONFIG);
    write_private(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(Some(("KUBECONFIG".into(), path.display().to_string())))
}

async fn issue(
    client: &Client,
    namespace: &str,
    account: &str,
    pod: &Pod,
) -> Result<String, kube::Error> {
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": PROJECTED_TOKEN_SECONDS,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod.name_any(), "uid": pod.uid()},
        },
    });
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(serde_json::to_vec(&body).unwrap_or_default())
    .map_err(kube::Error::HttpError)?;
    let answer: Value = client.request(request).await?;
    Ok(answer["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Writes `text` to `path` readable by its owner only, created that way (no moment of a
/// looser mode).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())
}
