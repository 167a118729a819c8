//! Mirrors of real repositories made with the `git` binary.

use std::{path::Path, time::Duration};

use sluice_testkit::git::git;

use super::*;

fn commit(dir: &Path, file: &str, text: &str) -> String {
    sluice_testkit::git::commit(dir, &[(file, text)], file)
}

fn origin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    dir
}

#[tokio::test]
async fn resolves_head_branches_tags_and_shas_and_reads_a_path() {
    let origin = origin();
    let first = commit(origin.path(), "app/a.yaml", "a: 1\n");
    git(origin.path(), &["tag", "-a", "v1", "-m", "v1"]);
    let second = commit(origin.path(), "app/sub/b.yaml", "b: 2\n");
    git(origin.path(), &["branch", "old", &first]);
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path());
    let url = format!("file://{}", origin.path().display());
    let at = |rev: &'static str| {
        let (repos, url) = (&repos, url.clone());
        async move { repos.resolve(&url, rev, Duration::from_secs(60)).await }
    };
    assert_eq!(at("HEAD").await.unwrap(), second);
    assert_eq!(at("").await.unwrap(), second);
    assert_eq!(at("main").await.unwrap(), second);
    assert_eq!(at("old").await.unwrap(), first);
    assert_eq!(
        at("v1").await.unwrap(),
        first,
        "an annotated tag peels to its commit"
    );
    assert_eq!(at("refs/heads/old").await.unwrap(), first);
    let short = &first[..7];
    assert_eq!(
        repos
            .resolve(&url, short, Duration::from_secs(60))
            .await
            .unwrap(),
        first
    );
    assert!(matches!(at("nope").await, Err(RepoError::Revision { .. })));

    let files = repos.files(&url, &second, "app").await.unwrap();
    let mut paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["a.yaml", "sub/b.yaml"]);
    assert!(matches!(
        repos.files(&url, &second, "nowhere").await,
        Err(RepoError::Path { .. })
    ));
    assert!(matches!(
        repos.files(&url, &second, "app/a.yaml").await,
        Err(RepoError::Path { .. })
    ));
}

#[tokio::test]
async fn follows_new_commits_and_force_pushes_and_keeps_the_mirror_when_the_remote_goes() {
    let origin = origin();
    let first = commit(origin.path(), "a.yaml", "a: 1\n");
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path());
    let url = origin.path().display().to_string();
    assert_eq!(
        repos.resolve(&url, "main", Duration::ZERO).await.unwrap(),
        first
    );
    let second = commit(origin.path(), "a.yaml", "a: 2\n");
    // A fresh mirror is not fetched again within max_age.
    assert_eq!(
        repos
            .resolve(&url, "main", Duration::from_secs(60))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        repos.resolve(&url, "main", Duration::ZERO).await.unwrap(),
        second
    );
    git(origin.path(), &["reset", "-q", "--hard", &first]);
    let rewritten = commit(origin.path(), "c.yaml", "c: 3\n");
    assert_eq!(
        repos.resolve(&url, "main", Duration::ZERO).await.unwrap(),
        rewritten
    );

    drop(origin);
    let gone = repos.resolve(&url, "main", Duration::ZERO).await;
    assert!(matches!(gone, Err(RepoError::Fetch { .. })), "{gone:?}");
    let files = repos.files(&url, &rewritten, "").await.unwrap();
    assert_eq!(files.len(), 2, "the mirror still serves what it fetched");
}

#[test]
fn local_repositories_have_a_git_dir_to_watch() {
    let origin = origin();
    commit(origin.path(), "a.yaml", "a: 1\n");
    let url = format!("file://{}", origin.path().display());
    let dir = Repositories::local_git_dir(&url).unwrap();
    assert!(dir.ends_with(".git/") || dir.ends_with(".git"), "{dir:?}");
    assert_eq!(
        Repositories::local_git_dir("https://example.invalid/x.git"),
        None
    );
}

#[tokio::test]
async fn fetches_over_smart_http() {
    let (root, first) = bare_with_a_commit();
    let server = sluice_testkit::git_http::GitHttp::start(root.path().to_owned())
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path());
    let url = server.url("cd.git");
    let resolved = tokio::time::timeout(
        Duration::from_secs(20),
        repos.resolve(&url, "main", Duration::ZERO),
    )
    .await
    .expect("the fetch ends");
    assert_eq!(resolved.unwrap(), first);
    assert_eq!(repos.files(&url, &first, "").await.unwrap().len(), 1);
}

/// A TLS terminator on 127.0.0.1 (a self-signed certificate) in front of `backend`.
async fn tls_proxy(backend: std::net::SocketAddr) -> std::net::SocketAddr {
    tls_proxy_with(backend, None).await
}

/// [`tls_proxy`], accepting only clients whose certificate `client_ca` signed, when given.
async fn tls_proxy_with(
    backend: std::net::SocketAddr,
    client_ca: Option<rustls::pki_types::CertificateDer<'static>>,
) -> std::net::SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = params.self_signed(&key).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    address
}

#[tokio::test]
async fn fetches_over_https_verifying_the_certificate_unless_insecure() {
    let (root, first) = bare_with_a_commit();
    let server = sluice_testkit::git_http::GitHttp::start(root.path().to_owned())
        .await
        .unwrap();
    let address = tls_proxy(server.address).await;
    let url = format!("https://{address}/cd.git");
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path());
    // A self-signed certificate is refused...
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        repos.resolve(&url, "main", Duration::ZERO),
    )
    .await
    .expect("the fetch ends")
    .unwrap_err();
    let message = refused.to_string();
    assert!(!message.contains("unsupported URL protocol"), "{message}");
    assert!(message.contains("certificate"), "{message}");
    // ...unless the repository's Secret says `insecure: "true"`.
    let insecure = Credentials {
        insecure: true,
        ..Credentials::default()
    };
    let resolved = tokio::time::timeout(
        Duration::from_secs(20),
        repos.resolve_with(&url, "main", Duration::ZERO, &insecure),
    )
    .await
    .expect("the fetch ends");
    assert_eq!(resolved.unwrap(), first);
}

/// A CA and a client certificate it signed, as PEM: (CA DER, certificate, key).
fn client_certificate() -> (rustls::pki_types::CertificateDer<'static>, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ci-bot".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.der().clone(), cert.pem(), key.serialize_pem())
}

/// A server that asks for a client certificate: refused without one; with the Secret's
/// `tlsClientCertData`/`tlsClientCertKey`, a Git repository is fetched (through `git`) and a
/// Helm chart repository's index and package are downloaded.
#[tokio::test]
async fn tls_client_certificates_for_git_and_chart_repositories() {
    let (root, first) = bare_with_a_commit();
    // A chart repository beside it: one package, indexed with its digest.
    let charts = root.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    let package = charts.join("demo-1.0.0.tgz");
    crate::charts::tests::write_package(
        &package,
        &[(
            "demo/Chart.yaml",
            "apiVersion: v2\nname: demo\nversion: 1.0.0\n",
        )],
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&package).unwrap());
    let digest: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        charts.join("index.yaml"),
        format!(
            "apiVersion: v1\nentries:\n  demo:\n  - version: 1.0.0\n    digest: {digest}\n    urls: [demo-1.0.0.tgz]\n"
        ),
    )
    .unwrap();
    let server = sluice_testkit::git_http::GitHttp::start(root.path().to_owned())
        .await
        .unwrap();
    let (ca, cert, key) = client_certificate();
    let address = tls_proxy_with(server.address, Some(ca)).await;
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path());
    let insecure = Credentials {
        insecure: true,
        ..Credentials::default()
    };
    let git_url = format!("https://{address}/cd.git");
    let chart_url = format!("https://{address}/charts");
    let refused = within(repos.resolve_with(&git_url, "main", Duration::ZERO, &insecure)).await;
    assert!(
        matches!(refused, Err(RepoError::Fetch { .. })),
        "{refused:?}"
    );
    let refused =
        within(
            repos
                .charts()
                .resolve(&chart_url, "demo", "1.0.0", Duration::ZERO, &insecure),
        )
        .await;
    assert!(
        matches!(refused, Err(ChartError::Fetch { .. })),
        "{refused:?}"
    );

    let with_cert = Credentials {
        tls_client_cert_data: Some(cert),
        tls_client_cert_key: Some(key.clone()),
        ..insecure
    };
    let resolved = within(repos.resolve_with(&git_url, "main", Duration::ZERO, &with_cert)).await;
    assert_eq!(resolved.unwrap(), first);
    assert_eq!(repos.files(&git_url, &first, "").await.unwrap().len(), 1);
    let version =
        within(
            repos
                .charts()
                .resolve(&chart_url, "demo", "^1", Duration::ZERO, &with_cert),
        )
        .await;
    assert_eq!(version.unwrap(), "1.0.0");
    let dest = tempfile::tempdir().unwrap();
    let chart = repos
        .charts()
        .extract(&chart_url, "demo", "1.0.0", dest.path())
        .await
        .unwrap();
    assert!(chart.join("Chart.yaml").is_file());
    // The key is in no error.
    let broken = Credentials {
        tls_client_cert_data: Some("not a certificate".into()),
        ..with_cert
    };
    let err = within(
        repos
            .charts()
            .resolve(&chart_url, "demo", "1.0.0", Duration::ZERO, &broken),
    )
    .await
    .unwrap_err();
    assert!(!err.to_string().contains(&key), "{err}");
}

/// `work`, which must end within 20 s.
async fn within<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("the fetch ends")
}

/// A bare repository `cd.git` under a new directory, holding one commit of `a.yaml`; the
/// directory and the commit.
fn bare_with_a_commit() -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let work = origin();
    let first = commit(work.path(), "a.yaml", "a: 1\n");
    let bare = root.path().join("cd.git");
    std::fs::create_dir(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    git(
        work.path(),
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    (root, first)
}

#[tokio::test]
async fn fetches_over_ssh_trusting_only_known_host_keys() {
    let Some(sshd) = sluice_testkit::sshd::Sshd::start() else {
        return;
    };
    let (root, first) = bare_with_a_commit();
    let url = sshd.url(&root.path().join("cd.git"));
    assert_eq!(Repositories::local_git_dir(&url), None);
    let with = |known_hosts: &str, key: Option<&str>, insecure: bool| Credentials {
        ssh_private_key: key.map(str::to_owned),
        insecure,
        known_hosts: std::sync::Arc::new(crate::known_hosts::KnownHosts::parse(known_hosts)),
        ..Credentials::default()
    };
    let key = Some(sshd.client_key.as_str());
    let fetch = |credentials: Credentials| {
        let url = url.clone();
        async move {
            // A mirror of its own each time: every attempt connects.
            let cache = tempfile::tempdir().unwrap();
            let repos = Repositories::new(cache.path());
            tokio::time::timeout(
                Duration::from_secs(30),
                repos.resolve_with(&url, "main", Duration::ZERO, &credentials),
            )
            .await
            .expect("the fetch ends")
        }
    };

    let trusted = with(&sshd.known_hosts_line(), key, false);
    assert_eq!(
        fetch(trusted).await.unwrap(),
        first,
        "sshd said: {}",
        sshd.log()
    );

    // The error of a refused fetch never carries the key.
    let refused = |result: Result<String, RepoError>| {
        let message = result.unwrap_err().to_string();
        assert!(!message.contains(&sshd.client_key), "{message}");
        assert!(!message.contains("PRIVATE KEY"), "{message}");
        message
    };
    let unknown = refused(fetch(with("", key, false)).await);
    assert!(
        unknown.contains("knownhosts: key is unknown")
            && unknown.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{unknown}"
    );
    let other_port = format!("[127.0.0.1]:{} {}", sshd.port + 1, sshd.host_key);
    let unknown = refused(fetch(with(&other_port, key, false)).await);
    assert!(unknown.contains("knownhosts: key is unknown"), "{unknown}");
    let wrong = format!(
        "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        sshd.port
    );
    let mismatch = refused(fetch(with(&wrong, key, false)).await);
    assert!(
        mismatch.contains("ssh: handshake failed: knownhosts: key mismatch"),
        "{mismatch}"
    );

    // `insecure` skips the host key check, as in Argo CD.
    assert_eq!(fetch(with("", key, true)).await.unwrap(), first);

    // No key: the message says where one goes.
    let keyless = refused(fetch(with(&sshd.known_hosts_line(), None, false)).await);
    assert!(keyless.contains("sshPrivateKey"), "{keyless}");
    // A key the server does not know is rejected once, not retried forever.
    let stranger = sluice_testkit::sshd::Sshd::start().expect("a second sshd");
    let rejected = refused(
        fetch(with(
            &sshd.known_hosts_line(),
            Some(&stranger.client_key),
            false,
        ))
        .await,
    );
    assert!(rejected.contains("authentication"), "{rejected}");
    assert!(!rejected.contains(&stranger.client_key), "{rejected}");
}

#[test]
fn ssh_urls_are_not_local() {
    for url in [
        "ssh://git@127.0.0.1:2222/srv/cd.git",
        "git@github.com:org/cd.git",
        "github.com:org/cd.git",
    ] {
        assert_eq!(Repositories::local_git_dir(url), None, "{url}");
    }
}
