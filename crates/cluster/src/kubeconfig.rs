//! The kubeconfig `sluice up` writes for kubectl and kube-rs.

use base64::Engine;

/// A kubeconfig for a server at `url` with the CA `ca_pem` and a bearer `token`; its context
/// and cluster are named `name`.
pub fn render(name: &str, url: &str, ca_pem: &str, token: &str) -> String {
    render_in(name, url, ca_pem, token, "default")
}

/// [`render`] with its context in `namespace`.
pub fn render_in(name: &str, url: &str, ca_pem: &str, token: &str, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: {name}
  user:
    token: {token}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: {namespace}
current-context: {name}
"
    )
}
