//! Git push webhooks, as Argo CD's `POST /api/webhook` takes them: GitHub, GitLab, Bitbucket
//! Cloud, Bitbucket Server and Gogs/Gitea payloads, told apart by their headers in Argo CD's
//! order, verified when `argocd-secret` holds the provider's secret, and turned into the
//! repository web URLs, the pushed revision and whether the default branch moved
//! ([`Push`]). [`Push::refreshes`] says which Application sources the push concerns (the
//! repository URL matched as Argo CD's `GetWebURLRegex` matches it, and the target revision as
//! `sourceRevisionHasChanged` compares it); [`listener`] serves the endpoint and asks those
//! Applications for a refresh at once.
//!
//! Payloads are untrusted: size-capped before parsing ([`MAX_PAYLOAD`]), signatures compared
//! in constant time, and nothing of them is written anywhere but a refresh annotation.

use std::collections::BTreeMap;

use ring::hmac;
use serde_json::Value;

pub mod listener;

/// Argo CD's default `webhook.maxPayloadSizeMB` (50 MiB).
pub const MAX_PAYLOAD: usize = 50 * 1024 * 1024;

/// The provider secrets, from the `argocd-secret` Secret's keys of the same names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `webhook.github.secret`: HMAC-SHA256 key of `X-Hub-Signature-256`.
    pub github: Option<String>,
    /// `webhook.gitlab.secret`: the `X-Gitlab-Token` expected.
    pub gitlab: Option<String>,
    /// `webhook.bitbucket.uuid`: the `X-Hook-UUID` expected.
    pub bitbucket_uuid: Option<String>,
    /// `webhook.bitbucketserver.secret`: HMAC-SHA256 key of `X-Hub-Signature`.
    pub bitbucket_server: Option<String>,
    /// `webhook.gogs.secret`: HMAC-SHA256 key of `X-Gogs-Signature` (Gitea sends it too).
    pub gogs: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.is_some();
        f.debug_struct("Secrets")
            .field("github", &set(&self.github))
            .field("gitlab", &set(&self.gitlab))
            .field("bitbucket_uuid", &set(&self.bitbucket_uuid))
            .field("bitbucket_server", &set(&self.bitbucket_server))
            .field("gogs", &set(&self.gogs))
            .finish()
    }
}

impl Secrets {
    /// The secrets among a Secret's decoded data (empty values count as unset).
    pub fn from_data(data: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| data.get(key).filter(|v| !v.is_empty()).cloned();
        Self {
            github: get("webhook.github.secret"),
            gitlab: get("webhook.gitlab.secret"),
            bitbucket_uuid: get("webhook.bitbucket.uuid"),
            bitbucket_server: get("webhook.bitbucketserver.secret"),
            gogs: get("webhook.gogs.secret"),
        }
    }
}

/// Why a webhook request was refused (answered `400 Bad Request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No provider's event header.
    #[error("Unknown webhook event")]
    UnknownEvent,
    /// A provider's event other than a push (or ping).
    #[error("Webhook processing failed: event not defined to be parsed")]
    EventNotParsed,
    /// A signature or token header is missing while a secret is configured.
    #[error("Webhook processing failed: missing {0} Header")]
    MissingSignature(&'static str),
    /// The signature, token or UUID does not match the configured secret.
    #[error("Webhook processing failed: {0} verification failed")]
    VerificationFailed(&'static str),
    /// The body is not the provider's JSON, or is too large.
    #[error(
        "Webhook processing failed: The payload is either too large or corrupted. Please check the payload size (must be under 50 MB) and ensure it is valid JSON"
    )]
    Payload,
}

/// What a push changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// The repository's web (or clone) URLs.
    pub web_urls: Vec<String>,
    /// The branch or tag pushed (`refs/heads/` or `refs/tags/` dropped).
    pub revision: String,
    /// Whether the push moved the default branch (true when the payload cannot tell).
    pub touched_head: bool,
}

/// A request's headers, by lower-case name.
pub type Headers = BTreeMap<String, String>;

/// `refs/heads/main` → `main` (Argo CD's `ParseRevision`: the part after the second `/`).
pub fn parse_revision(reference: &str) -> &str {
    reference.splitn(3, '/').last().unwrap_or(reference)
}

/// Whether `a` and `b` are equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a hex HMAC-SHA256 of `body` under `secret` (an optional `sha256=` prefix dropped).
fn verify_hmac(
    secret: &Option<String>,
    header: Option<&String>,
    name: &'static str,
    body: &[u8],
) -> Result<(), WebhookError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    let signature = header
        .filter(|h| !h.is_empty())
        .ok_or(WebhookError::MissingSignature(name))?;
    let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hex(signature).ok_or(WebhookError::VerificationFailed("HMAC"))?;
    hmac::verify(&key, body, &tag).map_err(|_| WebhookError::VerificationFailed("HMAC"))
}

fn json(body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body).map_err(|_| WebhookError::Payload)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A push of the `ref`/`default_branch` shape (GitHub, GitLab, Gogs/Gitea).
fn ref_push(web_url: &Value, reference: &Value, default_branch: &Value) -> Push {
    let revision = parse_revision(reference.as_str().unwrap_or_default()).to_owned();
    Push {
        web_urls: vec![text(web_url)]
            .into_iter()
            .filter(|u| !u.is_empty())
            .collect(),
        touched_head: default_branch.as_str() == Some(revision.as_str()),
        revision,
    }
}

/// Verifies and reads a webhook request; `None` for an event that refreshes nothing (a ping).
pub fn parse(
    headers: &Headers,
    body: &[u8],
    secrets: &Secrets,
) -> Result<Option<Push>, WebhookError> {
    let header = |name: &str| headers.get(name).filter(|v| !v.is_empty());
    // Gogs (and Gitea, which sends the Gogs headers too) before GitHub: it carries both.
    if let Some(event) = header("x-gogs-event").or(header("x-gitea-event")) {
        let signature = header("x-gogs-signature").or(header("x-gitea-signature"));
        verify_hmac(&secrets.gogs, signature, "X-Gogs-Signature", body)?;
        if event != "push" {
            return Err(WebhookError::EventNotParsed);
        }
        let p = json(body)?;
        let repo = &p["repository"];
        return Ok(Some(ref_push(
            &repo["html_url"],
            &p["ref"],
            &repo["default_branch"],
        )));
    }
    if let Some(event) = header("x-github-event") {
        let signature = header("x-hub-signature-256");
        verify_hmac(&secrets.github, signature, "X-Hub-Signature-256", body)?;
        return match event.as_str() {
            "ping" => Ok(None),
            "push" => {
                let p = json(body)?;
                let repo = &p["repository"];
                Ok(Some(ref_push(
                    &repo["html_url"],
                    &p["ref"],
                    &repo["default_branch"],
                )))
            }
            _ => Err(WebhookError::EventNotParsed),
        };
    }
    if let Some(event) = header("x-gitlab-event") {
        if let Some(secret) = &secrets.gitlab {
            let token = header("x-gitlab-token").map(String::as_bytes);
            if !token.is_some_and(|t| same(t, secret.as_bytes())) {
                return Err(WebhookError::VerificationFailed("token"));
            }
        }
        if !matches!(
            event.as_str(),
            "Push Hook" | "Tag Push Hook" | "System Hook"
        ) {
            return Err(WebhookError::EventNotParsed);
        }
        let p = json(body)?;
        let project = &p["project"];
        return Ok(Some(ref_push(
            &project["web_url"],
            &p["ref"],
            &project["default_branch"],
        )));
    }
    if let Some(uuid) = headers.get("x-hook-uuid") {
        if let Some(wanted) = &secrets.bitbucket_uuid
            && !same(uuid.as_bytes(), wanted.as_bytes())
        {
            return Err(WebhookError::VerificationFailed("UUID"));
        }
        if header("x-event-key").map(String::as_str) != Some("repo:push") {
            return Err(WebhookError::EventNotParsed);
        }
        let p = json(body)?;
        let revision = p["push"]["changes"]
            .as_array()
            .and_then(|c| c.first())
            .map(|c| text(&c["new"]["name"]))
            .unwrap_or_default();
        return Ok(Some(Push {
            web_urls: vec![text(&p["repository"]["links"]["html"]["href"])],
            revision,
            // The payload does not say which branch is the default: let the refresh tell.
            touched_head: true,
        }));
    }
    if let Some(event) = header("x-event-key") {
        verify_hmac(
            &secrets.bitbucket_server,
            header("x-hub-signature"),
            "X-Hub-Signature",
            body,
        )?;
        return match event.as_str() {
            "diagnostics:ping" => Ok(None),
            "repo:refs_changed" => {
                let p = json(body)?;
                let web_urls = p["repository"]["links"]["clone"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|l| l["name"] == "http" || l["name"] == "ssh")
                    .map(|l| text(&l["href"]))
                    .collect();
                let revision = p["changes"]
                    .as_array()
                    .and_then(|c| c.first())
                    .map(|c| parse_revision(c["ref"]["id"].as_str().unwrap_or_default()).to_owned())
                    .unwrap_or_default();
                Ok(Some(Push {
                    web_urls,
                    revision,
                    touched_head: true,
                }))
            }
            _ => Err(WebhookError::EventNotParsed),
        };
    }
    Err(WebhookError::UnknownEvent)
}

/// A URL's host (no user, no port) and path (no leading `/`, no `.git`), as `GetWebURLRegex`
/// matches them: `https://host/p`, `ssh://git@host:22/p.git`, `git@host:p.git` are one.
fn host_and_path(url: &str) -> Option<(String, String)> {
    let url = url.trim();
    let (rest, scp_like) = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !["http", "https", "ssh"].contains(&scheme.to_ascii_lowercase().as_str()) {
                return None;
            }
            (rest, false)
        }
        None => (url, true),
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, path) = if scp_like {
        rest.split_once(':')?
    } else {
        let (authority, path) = rest.split_once('/')?;
        (authority.split(':').next().unwrap_or(authority), path)
    };
    let host = host.to_ascii_lowercase();
    let host = host
        .strip_prefix("altssh.")
        .or_else(|| host.strip_prefix("ssh."))
        .unwrap_or(&host)
        .to_owned();
    // An scp-like `host:port/path` is not how ssh names a port; `host:path` keeps the path.
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .to_ascii_lowercase();
    (!host.is_empty() && !path.is_empty()).then_some((host, path))
}

impl Push {
    /// Whether this push concerns a source on `repo_url` at `target_revision`.
    pub fn refreshes(&self, repo_url: &str, target_revision: &str) -> bool {
        let Some(repo) = host_and_path(repo_url) else {
            return false;
        };
        let same_repo = self
            .web_urls
            .iter()
            .any(|web| host_and_path(web).is_some_and(|web| web == repo));
        same_repo && self.revision_changed(target_revision)
    }

    /// Argo CD's `sourceRevisionHasChanged`.
    fn revision_changed(&self, target_revision: &str) -> bool {
        let target = parse_revision(target_revision);
        if target.is_empty() || target == "HEAD" {
            return self.touched_head;
        }
        if target_revision.starts_with("refs/heads/") || target_revision.starts_with("refs/tags/") {
            return self.revision == target;
        }
        target_revision == self.revision
    }
}

/// The hex HMAC-SHA256 of `body` under `secret` (as providers sign; for tests and tools).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
