//! Git sources: one bare mirror per repository URL under the cache directory, shared by every
//! Application that names the URL, fetched incrementally (libgit2 through `git2`), and read
//! without a work tree.
//!
//! A fetch mirrors every branch and tag with forced refspecs (a force-pushed branch is
//! followed) and keeps the remote's references as its advertisement listed them (as `git
//! ls-remote`, so `HEAD` is the remote's default branch). Credentials ([`Credentials`]) are
//! offered once per connection; a bearer token goes in a header; a TLS client certificate,
//! which libgit2 cannot present, makes the fetch go through the `git` command
//! (`git_command`). Over ssh (`ssh://` and scp-like `user@host:path` URLs, libssh2) the client
//! authenticates with the Secret's `sshPrivateKey` and trusts the server only when its host key
//! is in the known hosts ([`crate::known_hosts`]), as Argo CD does, unless `insecure`.
//! Revisions resolve as Argo CD
//! resolves `targetRevision`: `HEAD` (or empty), a branch, a tag (peeled to its commit), a
//! full `refs/…` name, or a commit SHA (abbreviated or full). `file://` URLs and plain paths
//! are local repositories; their git directory can be watched on disk
//! ([`Repositories::local_git_dir`]).
//!
//! libgit2 blocks, so every operation runs on tokio's blocking pool; fetches of one repository
//! are serialized, reads are not.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use git2::{FetchOptions, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use sluice_reconcile::hash::{OFFSET, fnv1a};

use crate::{
    charts::{ChartError, Charts},
    credentials::{Credentials, redact},
    known_hosts::{self, HostKeyError},
};

/// Why a repository could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// The remote could not be listed or fetched.
    #[error("failed to fetch {url}: {message}")]
    Fetch {
        /// The repository.
        url: String,
        /// libgit2's message.
        message: String,
    },
    /// The revision names nothing in the repository.
    #[error("unable to resolve '{revision}' to a commit SHA in {url}")]
    Revision {
        /// The repository.
        url: String,
        /// The `targetRevision`.
        revision: String,
    },
    /// The source path is not a directory at that revision.
    #[error("{path}: app path does not exist")]
    Path {
        /// The source path.
        path: String,
    },
    /// A symbolic link points outside the repository.
    #[error("repository contains out-of-bounds symlink {path} -> {target}")]
    Symlink {
        /// The link, from the repository root.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A Helm chart repository's chart could not be had.
    #[error(transparent)]
    Chart(crate::charts::ChartError),
    /// The mirror on disk could not be opened or read.
    #[error("repository cache at {dir}: {message}")]
    Cache {
        /// The mirror's directory.
        dir: String,
        /// What failed.
        message: String,
    },
}

/// A file of the source tree: its path relative to the source path, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path below the source path, `/`-separated.
    pub path: String,
    /// The blob.
    pub bytes: Vec<u8>,
}

/// What the last fetch of a mirror saw.
#[derive(Debug, Default)]
struct Mirror {
    /// The remote's references at the last successful listing (`HEAD`, `refs/heads/…`, …).
    refs: HashMap<String, Oid>,
    /// When the last successful fetch started: it saw at least what the remote had then.
    fetched: Option<Instant>,
}

/// One repository's mirror on disk and what its last fetch saw.
#[derive(Debug)]
struct Entry {
    dir: PathBuf,
    mirror: tokio::sync::Mutex<Mirror>,
}

/// Every mirror under one cache directory, and the Helm chart repositories' packages (under
/// its `charts/`).
#[derive(Debug)]
pub struct Repositories {
    root: PathBuf,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    charts: Charts,
}

impl From<ChartError> for RepoError {
    /// An unreachable index is a fetch error (the repository grace period applies); the rest
    /// are the chart's own.
    fn from(error: ChartError) -> Self {
        match error {
            ChartError::Fetch { url, message } => Self::Fetch { url, message },
            other => Self::Chart(other),
        }
    }
}

impl Repositories {
    /// Mirrors live under `root` (created when first needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            charts: Charts::new(root.join("charts")),
            root,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The Helm chart repositories.
    pub fn charts(&self) -> &Charts {
        &self.charts
    }

    /// Resolves `revision` of `source`: a chart version for a Helm repository source
    /// (`source.chart` set; the package fetched too), else a commit SHA of its Git repository.
    pub async fn resolve_source(
        &self,
        source: &sluice_api::ApplicationSource,
        revision: &str,
        max_age: Duration,
        credentials: &Credentials,
    ) -> Result<String, RepoError> {
        match source.chart.as_deref().filter(|c| !c.is_empty()) {
            Some(chart) => Ok(self
                .charts
                .resolve(&source.repo_url, chart, revision, max_age, credentials)
                .await?),
            None => {
                self.resolve_with(&source.repo_url, revision, max_age, credentials)
                    .await
            }
        }
    }

    fn entry(&self, url: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .entry(url.to_owned())
            .or_insert_with(|| {
                let tail: String = url
                    .rsplit('/')
                    .find(|s| !s.is_empty())
                    .unwrap_or("repo")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .take(40)
                    .collect();
                let name = format!("{:08x}-{tail}", fnv1a(url.as_bytes(), OFFSET));
                Arc::new(Entry {
                    dir: self.root.join(name),
                    mirror: tokio::sync::Mutex::new(Mirror::default()),
                })
            })
            .clone()
    }

    /// Resolves `revision` of `url` to a commit SHA, fetching first when the mirror's last
    /// fetch is older than `max_age` (`Duration::ZERO` always fetches). When the fetch fails
    /// the error is returned; the mirror keeps what it had.
    pub async fn resolve(
        &self,
        url: &str,
        revision: &str,
        max_age: Duration,
    ) -> Result<String, RepoError> {
        self.resolve_with(url, revision, max_age, &Credentials::default())
            .await
    }

    /// [`Self::resolve`], authenticating a fetch with `credentials`.
    pub async fn resolve_with(
        &self,
        url: &str,
        revision: &str,
        max_age: Duration,
        credentials: &Credentials,
    ) -> Result<String, RepoError> {
        let entry = self.entry(url);
        let mut mirror = entry.mirror.lock().await;
        let stale = mirror.fetched.is_none_or(|at| at.elapsed() >= max_age);
        if stale {
            let (dir, remote) = (entry.dir.clone(), url.to_owned());
            let credentials = credentials.clone();
            let started = Instant::now();
            let refs = blocking(move || fetch(&dir, &remote, &credentials)).await?;
            mirror.refs = refs;
            mirror.fetched = Some(started);
        }
        // Names resolve from the listing alone (an annotated tag's commit is its `^{}` entry);
        // only a SHA needs the mirror opened.
        if let Some(sha) = from_listing(&mirror.refs, revision) {
            return Ok(sha);
        }
        let (dir, refs) = (entry.dir.clone(), mirror.refs.clone());
        drop(mirror);
        let (url, revision) = (url.to_owned(), revision.to_owned());
        blocking(move || resolve(&dir, &refs, &url, &revision)).await
    }

    /// When the last successful fetch of the mirror of `url` started.
    pub async fn fetched_at(&self, url: &str) -> Option<Instant> {
        self.entry(url).mirror.lock().await.fetched
    }

    /// Every file under `path` at commit `sha` (fetched before by [`Self::resolve`]).
    pub async fn files(
        &self,
        url: &str,
        sha: &str,
        path: &str,
    ) -> Result<Vec<SourceFile>, RepoError> {
        let dir = self.entry(url).dir.clone();
        let (sha, path) = (sha.to_owned(), path.to_owned());
        blocking(move || files(&dir, &sha, &path)).await
    }

    /// Writes the whole tree of commit `sha` under `dest` (a kustomize overlay names files
    /// outside its own path). A symbolic link whose target leaves `dest` is an error, as in
    /// Argo CD ("out-of-bounds symlinks").
    pub async fn checkout(&self, url: &str, sha: &str, dest: &Path) -> Result<(), RepoError> {
        let dir = self.entry(url).dir.clone();
        let (sha, dest) = (sha.to_owned(), dest.to_owned());
        blocking(move || checkout(&dir, &sha, &dest)).await
    }

    /// The git directory of a local repository (`file://` URL or plain path), to watch; none
    /// for a remote one (`https://`, `ssh://`, scp-like `user@host:path`).
    pub fn local_git_dir(url: &str) -> Option<PathBuf> {
        let path = local_path(url)?;
        Repository::open(&path).ok().map(|r| r.path().to_path_buf())
    }
}

/// The reference names `revision` may mean, in the order they are tried.
fn candidates(revision: &str) -> Vec<String> {
    let revision = revision.trim();
    if revision.is_empty() || revision == "HEAD" {
        vec!["HEAD".to_owned()]
    } else if revision.starts_with("refs/") {
        vec![revision.to_owned()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}"),
        ]
    }
}

/// The commit a reference name resolves to in the remote's listing, if it names one.
fn from_listing(refs: &HashMap<String, Oid>, revision: &str) -> Option<String> {
    candidates(revision).iter().find_map(|name| {
        let peeled = refs.get(&format!("{name}^{{}}"));
        let is_tag = name.starts_with("refs/tags/");
        match (peeled, refs.get(name)) {
            (Some(commit), _) => Some(commit.to_string()),
            // A tag without a peeled entry may be lightweight or not: open the mirror.
            (None, Some(_)) if is_tag => None,
            (None, found) => found.map(Oid::to_string),
        }
    })
}

/// The local path a `file://` URL or a plain path names.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    (url.starts_with('/') || url.starts_with('.')).then(|| PathBuf::from(url))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<T, RepoError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(RepoError::Cache {
            dir: String::new(),
            message: format!("git task failed: {e}"),
        })
    })
}

fn cache_error(dir: &Path) -> impl Fn(git2::Error) -> RepoError + '_ {
    move |e| RepoError::Cache {
        dir: dir.display().to_string(),
        message: e.message().to_owned(),
    }
}

fn open_or_init(dir: &Path) -> Result<Repository, RepoError> {
    match Repository::open_bare(dir) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| RepoError::Cache {
                dir: dir.display().to_string(),
                message: e.to_string(),
            })?;
            Repository::init_bare(dir).map_err(cache_error(dir))
        }
    }
}

/// The callbacks that authenticate with `credentials` and check an ssh server's host key.
///
/// Credentials are offered once per connection (libgit2 asks again after a 401 or a refused
/// key; a second ask fails the fetch instead of looping); a user name asked for alone (an ssh
/// URL without one) does not count. An ssh host key is checked against
/// [`Credentials::known_hosts`] for the host and `port` unless `insecure`; a refusal is kept
/// in `refused`, as libgit2 replaces the callback's message by its own.
fn callbacks<'a>(
    credentials: &'a Credentials,
    port: u16,
    refused: &'a RefCell<Option<HostKeyError>>,
) -> git2::RemoteCallbacks<'a> {
    let mut callbacks = git2::RemoteCallbacks::new();
    let mut asked = false;
    callbacks.credentials(move |_url, username_from_url, allowed| {
        use git2::CredentialType as Kind;
        if allowed == Kind::USERNAME {
            return git2::Cred::username(credentials.username.as_deref().unwrap_or("git"));
        }
        if asked {
            return Err(git2::Error::from_str(
                "authentication failed: the repository's credentials were rejected",
            ));
        }
        asked = true;
        if allowed.contains(Kind::SSH_KEY) {
            let Some(key) = &credentials.ssh_private_key else {
                return Err(git2::Error::from_str(
                    "authentication required: the repository is reached over ssh and no private key is configured (add sshPrivateKey to a Secret labelled argocd.argoproj.io/secret-type: repository)",
                ));
            };
            let username = username_from_url
                .or(credentials.username.as_deref())
                .unwrap_or("git");
            // libssh2's messages name neither the key nor its text.
            return git2::Cred::ssh_key_from_memory(username, None, key, None);
        }
        if allowed.contains(Kind::USER_PASS_PLAINTEXT)
            && let Some(password) = &credentials.password
        {
            let username = credentials
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git");
            return git2::Cred::userpass_plaintext(username, password);
        }
        Err(git2::Error::from_str(
            "authentication required: no credentials for this repository (add a Secret labelled argocd.argoproj.io/secret-type: repository)",
        ))
    });
    let insecure = credentials.insecure;
    callbacks.certificate_check(move |cert, host| {
        if insecure {
            return Ok(git2::CertificateCheckStatus::CertificateOk);
        }
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: libgit2 verifies the certificate as usual.
            return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
        };
        let (Some(key), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type()) else {
            return Err(git2::Error::from_str(
                "ssh: the server's host key could not be read",
            ));
        };
        match credentials.known_hosts.check(host, port, kind.name(), key) {
            Ok(()) => Ok(git2::CertificateCheckStatus::CertificateOk),
            Err(e) => {
                let message = e.to_string();
                *refused.borrow_mut() = Some(e);
                Err(git2::Error::from_str(&message))
            }
        }
    });
    callbacks
}

/// Lists the remote's references, then mirrors its branches and tags.
fn fetch(
    dir: &Path,
    url: &str,
    credentials: &Credentials,
) -> Result<HashMap<String, Oid>, RepoError> {
    let repo = open_or_init(dir)?;
    if credentials.client_certificate().is_some() && url.starts_with("https://") {
        return git_command::fetch(dir, url, credentials);
    }
    let refused: RefCell<Option<HostKeyError>> = RefCell::new(None);
    let failed = |e: git2::Error| RepoError::Fetch {
        url: redact(url),
        message: match refused.borrow().as_ref() {
            Some(refusal) => refusal.to_string(),
            None => e.message().to_owned(),
        },
    };
    let bearer = credentials
        .bearer_token
        .as_ref()
        .map(|token| format!("Authorization: Bearer {token}"));
    let headers: Vec<&str> = bearer.iter().map(String::as_str).collect();
    let remote_url = match local_path(url) {
        Some(path) if !url.starts_with("file://") => format!("file://{}", absolute(&path)),
        _ => url.to_owned(),
    };
    let mut remote = repo.remote_anonymous(&remote_url).map_err(&failed)?;
    let mut options = FetchOptions::new();
    options.download_tags(git2::AutotagOption::None);
    let port = known_hosts::ssh_port(url).unwrap_or(22);
    options.remote_callbacks(callbacks(credentials, port, &refused));
    options.custom_headers(&headers);
    remote
        .fetch(
            &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            Some(&mut options),
            None,
        )
        .map_err(&failed)?;
    // The advertisement the fetch was made from stays listed after it disconnects: the
    // references and the objects fetched are of one moment (`HEAD` is the default branch).
    let refs: HashMap<String, Oid> = remote
        .list()
        .map_err(&failed)?
        .iter()
        .map(|head| (head.name().to_owned(), head.oid()))
        .collect();
    Ok(refs)
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `revision` of the mirror at `dir` as a commit SHA.
fn resolve(
    dir: &Path,
    refs: &HashMap<String, Oid>,
    url: &str,
    revision: &str,
) -> Result<String, RepoError> {
    let repo = open_or_init(dir)?;
    let missing = || RepoError::Revision {
        url: url.to_owned(),
        revision: revision.to_owned(),
    };
    let peel = |oid: Oid| -> Option<String> {
        let object = repo.find_object(oid, None).ok()?;
        Some(object.peel_to_commit().ok()?.id().to_string())
    };
    let revision = revision.trim();
    for name in &candidates(revision) {
        if let Some(sha) = refs.get(name).copied().and_then(peel) {
            return Ok(sha);
        }
    }
    let looks_like_sha =
        (4..=40).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if looks_like_sha
        && let Ok(object) = repo.revparse_single(revision)
        && let Ok(commit) = object.peel_to_commit()
    {
        return Ok(commit.id().to_string());
    }
    Err(missing())
}

fn checkout(dir: &Path, sha: &str, dest: &Path) -> Result<(), RepoError> {
    let repo = open_or_init(dir)?;
    let bad = cache_error(dir);
    let commit = Oid::from_str(sha)
        .and_then(|oid| repo.find_commit(oid))
        .map_err(&bad)?;
    let tree = commit.tree().map_err(&bad)?;
    let io = |path: &Path, e: std::io::Error| RepoError::Cache {
        dir: path.display().to_string(),
        message: e.to_string(),
    };
    let mut failure: Option<RepoError> = None;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        let relative = format!("{parent}{name}");
        let path = dest.join(&relative);
        let result = match entry.kind() {
            Some(ObjectType::Tree) => std::fs::create_dir_all(&path).map_err(|e| io(&path, e)),
            Some(ObjectType::Blob) => repo.find_blob(entry.id()).map_err(&bad).and_then(|blob| {
                if entry.filemode() == 0o120000 {
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    symlink_within(&relative, &target, &path)
                } else {
                    std::fs::write(&path, blob.content()).map_err(|e| io(&path, e))
                }
            }),
            // Submodules are not checked out.
            _ => Ok(()),
        };
        match result {
            Ok(()) => TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                TreeWalkResult::Abort
            }
        }
    })
    .map_err(&bad)
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Creates the symbolic link `relative` → `target` if the target stays within the checkout.
fn symlink_within(relative: &str, target: &str, path: &Path) -> Result<(), RepoError> {
    let mut depth: Vec<&str> = relative.split('/').collect();
    depth.pop();
    let escapes = target.starts_with('/')
        || target.split('/').any(|part| match part {
            ".." => depth.pop().is_none(),
            "" | "." => false,
            part => {
                depth.push(part);
                false
            }
        });
    if escapes {
        return Err(RepoError::Symlink {
            path: relative.to_owned(),
            target: target.to_owned(),
        });
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, path).map_err(|e| RepoError::Cache {
            dir: path.display().to_string(),
            message: e.to_string(),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Every blob under `path` in the tree of commit `sha`.
fn files(dir: &Path, sha: &str, path: &str) -> Result<Vec<SourceFile>, RepoError> {
    let repo = open_or_init(dir)?;
    let bad = cache_error(dir);
    let commit = Oid::from_str(sha)
        .and_then(|oid| repo.find_commit(oid))
        .map_err(&bad)?;
    let root = commit.tree().map_err(&bad)?;
    let trimmed = path.trim_matches('/');
    let tree = if trimmed.is_empty() || trimmed == "." {
        root
    } else {
        let entry = root
            .get_path(Path::new(trimmed))
            .map_err(|_| RepoError::Path {
                path: path.to_owned(),
            })?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(RepoError::Path {
                path: path.to_owned(),
            });
        }
        repo.find_tree(entry.id()).map_err(&bad)?
    };
    let mut out = Vec::new();
    let mut failure = None;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let name = entry.name().unwrap_or_default();
        match repo.find_blob(entry.id()) {
            Ok(blob) => out.push(SourceFile {
                path: format!("{parent}{name}"),
                bytes: blob.content().to_vec(),
            }),
            Err(e) => {
                failure = Some(e);
                return TreeWalkResult::Abort;
            }
        }
        TreeWalkResult::Ok
    })
    .map_err(&bad)?;
    if let Some(e) = failure {
        return Err(bad(e));
    }
    Ok(out)
}

mod git_command;

#[cfg(test)]
mod tests;
