//! Fetching with the `git` command instead of libgit2, for the one thing libgit2 cannot do:
//! present a TLS client certificate (a repository Secret's `tlsClientCertData` and
//! `tlsClientCertKey`), which Argo CD also hands to `git` as `http.sslCert` and `http.sslKey`.
//!
//! The certificate and key are written to a private temporary directory (mode 0700), removed
//! after; every setting, a password or token header included, reaches `git` through
//! `GIT_CONFIG_COUNT` environment variables, never its command line, and the user's and the
//! system's git configuration are not read. The references are listed (`git ls-remote`) before
//! the fetch, so the mirror holds at least the objects the listing names.

use std::{collections::HashMap, path::Path, process::Command};

use base64::Engine;
use git2::Oid;

use super::RepoError;
use crate::credentials::{Credentials, redact};

/// The settings `credentials` make, as (key, value) pairs; `cert` and `key` are the files the
/// certificate and key were written to.
fn settings(credentials: &Credentials, cert: &Path, key: &Path) -> Vec<(String, String)> {
    let mut out = vec![
        ("http.sslCert".to_owned(), cert.display().to_string()),
        ("http.sslKey".to_owned(), key.display().to_string()),
    ];
    if credentials.insecure {
        out.push(("http.sslVerify".into(), "false".into()));
    }
    if let Some(token) = &credentials.bearer_token {
        out.push((
            "http.extraHeader".into(),
            format!("Authorization: Bearer {token}"),
        ));
    } else if let Some(password) = &credentials.password {
        let user = credentials.username.as_deref().unwrap_or("git");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        out.push((
            "http.extraHeader".into(),
            format!("Authorization: Basic {basic}"),
        ));
    }
    out
}

/// `git ARGS` with `settings` in its environment: its standard output.
fn git(args: &[&str], settings: &[(String, String)], url: &str) -> Result<String, RepoError> {
    let mut command = Command::new("git");
    command
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_COUNT", settings.len().to_string());
    for (i, (key, value)) in settings.iter().enumerate() {
        command
            .env(format!("GIT_CONFIG_KEY_{i}"), key)
            .env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    let failed = |message: String| RepoError::Fetch {
        url: redact(url),
        message: message.replace(url, &redact(url)),
    };
    let output = command.output().map_err(|e| {
        failed(format!(
            "running git (needed for TLS client certificates): {e}"
        ))
    })?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `git ls-remote`'s lines as references.
fn listing(text: &str) -> HashMap<String, Oid> {
    text.lines()
        .filter_map(|line| {
            let (oid, name) = line.split_once('\t')?;
            Some((name.trim().to_owned(), Oid::from_str(oid.trim()).ok()?))
        })
        .collect()
}

/// Lists the remote's references, then mirrors its branches and tags into the bare
/// repository at `dir` (which exists), presenting the client certificate of `credentials`.
pub(super) fn fetch(
    dir: &Path,
    url: &str,
    credentials: &Credentials,
) -> Result<HashMap<String, Oid>, RepoError> {
    let (cert, key) = credentials.client_certificate().unwrap_or_default();
    let private = tempfile::tempdir().map_err(|e| RepoError::Cache {
        dir: std::env::temp_dir().display().to_string(),
        message: e.to_string(),
    })?;
    let (cert_file, key_file) = (
        private.path().join("cert.pem"),
        private.path().join("key.pem"),
    );
    for (path, text) in [(&cert_file, cert), (&key_file, key)] {
        write_private(path, text).map_err(|e| RepoError::Cache {
            dir: private.path().display().to_string(),
            message: e.to_string(),
        })?;
    }
    let settings = settings(credentials, &cert_file, &key_file);
    let refs = listing(&git(&["ls-remote", url], &settings, url)?);
    let git_dir = dir.display().to_string();
    git(
        &[
            "--git-dir",
            &git_dir,
            "fetch",
            "--quiet",
            "--no-tags",
            "--force",
            url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ],
        &settings,
        url,
    )?;
    Ok(refs)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_carry_the_certificate_and_the_credentials() {
        let credentials = Credentials {
            username: Some("ci".into()),
            password: Some("pw".into()),
            insecure: true,
            ..Credentials::default()
        };
        let got = settings(&credentials, Path::new("/p/c.pem"), Path::new("/p/k.pem"));
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            got,
            [
                ("http.sslCert", "/p/c.pem"),
                ("http.sslKey", "/p/k.pem"),
                ("http.sslVerify", "false"),
                ("http.extraHeader", "Authorization: Basic Y2k6cHc="),
            ]
        );
    }

    #[test]
    fn ls_remote_lines_are_references() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let refs = listing(&format!(
            "{sha}\tHEAD\n{sha}\trefs/heads/main\nnot a line\n"
        ));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs["refs/heads/main"].to_string(), sha);
    }
}
