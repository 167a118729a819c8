//! Repository credentials as Argo CD keeps them: Secrets in the controller's namespace
//! labelled `argocd.argoproj.io/secret-type`, either `repository` (one repository: its `url`,
//! compared after Argo CD's normalisation) or `repo-creds` (a template for every repository
//! whose normalised URL starts with its `url`; the longest prefix wins). A `repository` Secret
//! without credentials of its own takes those of the matching template, as Argo CD's
//! `enrichCredsToRepo` does.
//!
//! Keys read: `username` and `password` (a token is a password; GitHub takes any username),
//! `bearerToken` (sent as `Authorization: Bearer`), `insecure` (`"true"`: skip TLS server
//! verification, and the ssh host key check), `sshPrivateKey` (a PEM or OpenSSH private key
//! for `ssh://` and scp-like `user@host:path` URLs), `tlsClientCertData` and `tlsClientCertKey`
//! (a PEM certificate and key the client presents). The trusted ssh host keys are not in the
//! Secrets but in the ConfigMap `argocd-ssh-known-hosts-cm` ([`crate::known_hosts`]); whoever
//! reads the Secrets fills [`Credentials::known_hosts`] from it. [`Credentials`] never prints
//! its secrets: its `Debug` says only which kinds it holds, and no error built from a fetch
//! carries them.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::core::v1::Secret;

use crate::known_hosts::KnownHosts;

/// The label that marks a repository Secret, and its values.
pub const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
/// One repository's Secret.
pub const REPOSITORY: &str = "repository";
/// A credential template for URLs under a prefix.
pub const REPO_CREDS: &str = "repo-creds";

/// What a fetch authenticates with.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// HTTP basic user name.
    pub username: Option<String>,
    /// HTTP basic password or token.
    pub password: Option<String>,
    /// An HTTP bearer token.
    pub bearer_token: Option<String>,
    /// An ssh private key (OpenSSH or PEM format, without a passphrase).
    pub ssh_private_key: Option<String>,
    /// A PEM TLS client certificate (and its chain).
    pub tls_client_cert_data: Option<String>,
    /// The PEM private key of the TLS client certificate.
    pub tls_client_cert_key: Option<String>,
    /// Skip TLS (and ssh host key) verification.
    pub insecure: bool,
    /// The ssh host keys trusted (from `argocd-ssh-known-hosts-cm`; none trusts no ssh
    /// server unless `insecure`).
    pub known_hosts: Arc<KnownHosts>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("bearer_token", &set(&self.bearer_token))
            .field("ssh_private_key", &set(&self.ssh_private_key))
            .field("tls_client_cert_data", &set(&self.tls_client_cert_data))
            .field("tls_client_cert_key", &set(&self.tls_client_cert_key))
            .field("insecure", &self.insecure)
            .field("known_hosts", &self.known_hosts.len())
            .finish()
    }
}

impl Credentials {
    /// Holds nothing to authenticate with.
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.password.is_none()
            && self.bearer_token.is_none()
            && self.ssh_private_key.is_none()
            && self.tls_client_cert_data.is_none()
    }

    /// The TLS client certificate and key, when both are set.
    pub fn client_certificate(&self) -> Option<(&str, &str)> {
        Some((
            self.tls_client_cert_data.as_deref()?,
            self.tls_client_cert_key.as_deref()?,
        ))
    }
}

/// A repository Secret's fields (its `data`, decoded; `stringData` too, for objects not yet
/// through an API server).
fn fields(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn credentials_of(fields: &BTreeMap<String, String>) -> Credentials {
    let get = |key: &str| fields.get(key).filter(|v| !v.is_empty()).cloned();
    Credentials {
        username: get("username"),
        password: get("password"),
        bearer_token: get("bearerToken"),
        ssh_private_key: get("sshPrivateKey"),
        tls_client_cert_data: get("tlsClientCertData"),
        tls_client_cert_key: get("tlsClientCertKey"),
        insecure: get("insecure").is_some_and(|v| v == "true"),
        known_hosts: Arc::default(),
    }
}

/// A URL as Argo CD's `NormalizeGitURL` compares it: trimmed, lower-cased, `.git` dropped, an
/// scp-like `user@host:path` written `user@host/path`, the `ssh://` scheme dropped.
pub fn normalize_url(url: &str) -> String {
    let mut url = url.trim().to_ascii_lowercase();
    let scp_like = !url.contains("://")
        && url
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') || !host.contains('/'));
    if scp_like && let Some(i) = url.find(':') {
        url.replace_range(i..=i, "/");
    }
    if let Some(rest) = url.strip_prefix("ssh://") {
        url = rest.to_owned();
    }
    let url = url.trim_end_matches('/');
    url.strip_suffix(".git").unwrap_or(url).to_owned()
}

/// The credentials for `url` among the repository Secrets.
pub fn select(secrets: &[Secret], url: &str) -> Option<Credentials> {
    let wanted = normalize_url(url);
    let of_type = |kind: &'static str| {
        secrets.iter().filter(move |s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SECRET_TYPE))
                .is_some_and(|t| t == kind)
        })
    };
    let template = of_type(REPO_CREDS)
        .map(fields)
        .filter_map(|f| {
            let prefix = normalize_url(f.get("url")?);
            (!prefix.is_empty() && wanted.starts_with(&prefix)).then_some((prefix.len(), f))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, f)| credentials_of(&f));
    let repository = of_type(REPOSITORY)
        .map(fields)
        .find(|f| f.get("url").is_some_and(|u| normalize_url(u) == wanted))
        .map(|f| credentials_of(&f));
    match (repository, template) {
        (Some(own), Some(template)) if own.is_empty() => Some(Credentials {
            insecure: own.insecure || template.insecure,
            ..template
        }),
        (Some(own), _) => Some(own),
        (None, template) => template,
    }
}

/// `url` with any user information (`user:password@`, or a token as user name) replaced, for
/// messages. An ssh URL's bare user name (`ssh://git@host/…`) is no secret and stays.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let ssh = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "ssh" | "ssh+git" | "git+ssh"
    );
    match authority.rsplit_once('@') {
        Some((user, _)) if ssh && !user.contains(':') => url.to_owned(),
        Some((_, host)) => format!("{scheme}://***@{host}/{path}")
            .trim_end_matches('/')
            .to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(kind: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                labels: Some([(SECRET_TYPE.to_owned(), kind.to_owned())].into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn urls_normalise_as_argo_cd_compares_them() {
        assert_eq!(
            normalize_url(" https://GitHub.com/Org/Repo.git "),
            "https://github.com/org/repo"
        );
        assert_eq!(
            normalize_url("git@github.com:org/repo.git"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize_url("ssh://git@github.com/org/repo"),
            "git@github.com/org/repo"
        );
    }

    #[test]
    fn a_repository_secret_wins_and_templates_match_the_longest_prefix() {
        let secrets = [
            secret(
                REPO_CREDS,
                &[("url", "https://git.example.com"), ("password", "wide")],
            ),
            secret(
                REPO_CREDS,
                &[
                    ("url", "https://git.example.com/team"),
                    ("username", "bot"),
                    ("password", "narrow"),
                ],
            ),
            secret(
                REPOSITORY,
                &[
                    ("url", "https://git.example.com/team/own.git"),
                    ("username", "me"),
                    ("password", "mine"),
                ],
            ),
            secret(
                REPOSITORY,
                &[
                    ("url", "https://git.example.com/team/bare"),
                    ("insecure", "true"),
                ],
            ),
        ];
        let own = select(&secrets, "https://git.example.com/team/own").unwrap();
        assert_eq!(own.password.as_deref(), Some("mine"));
        let templated = select(&secrets, "https://git.example.com/team/other.git").unwrap();
        assert_eq!(templated.username.as_deref(), Some("bot"));
        let wide = select(&secrets, "https://git.example.com/else").unwrap();
        assert_eq!(wide.password.as_deref(), Some("wide"));
        // A repository Secret without credentials inherits the template's.
        let bare = select(&secrets, "https://git.example.com/team/bare.git").unwrap();
        assert_eq!(bare.password.as_deref(), Some("narrow"));
        assert!(bare.insecure);
        assert_eq!(select(&secrets, "https://elsewhere.example.com/x"), None);
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            username: Some("me".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(
            redact("https://me:hunter2@git.example.com/cd.git"),
            "https://***@git.example.com/cd.git"
        );
        assert_eq!(
            redact("https://git.example.com/cd"),
            "https://git.example.com/cd"
        );
        assert_eq!(
            redact("https://ghp_token@github.com/org/cd"),
            "https://***@github.com/org/cd"
        );
        assert_eq!(
            redact("ssh://git@127.0.0.1:2222/srv/cd.git"),
            "ssh://git@127.0.0.1:2222/srv/cd.git"
        );
        assert_eq!(
            redact("ssh://git:hunter2@127.0.0.1:2222/srv/cd.git"),
            "ssh://***@127.0.0.1:2222/srv/cd.git"
        );
        assert_eq!(
            redact("git@github.com:org/cd.git"),
            "git@github.com:org/cd.git"
        );
        let c = Credentials {
            ssh_private_key: Some("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret".into()),
            ..Default::default()
        };
        let printed = format!("{c:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
