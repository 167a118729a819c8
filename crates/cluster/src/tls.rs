//! HTTPS credentials for the API server: a CA generated once into the data dir, a serving
//! certificate signed by it at every start for the addresses in use, and a bearer token.

use std::{
    fs,
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;

/// Why credentials could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a credential file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Generating a key or certificate failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The API server's credentials.
pub struct Credentials {
    /// The CA certificate (PEM), for kubeconfigs.
    pub ca_pem: String,
    /// The server's TLS configuration.
    pub server_config: Arc<ServerConfig>,
    /// The bearer token clients must send.
    pub token: String,
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::File {
        path: path.to_owned(),
        source,
    }
}

/// Writes a file only the owner can read.
fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(file_error(path))?;
    file.write_all(contents.as_bytes())
        .map_err(file_error(path))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "sluice-ca");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Loads the CA and token from `dir` (creating them the first time) and signs a serving
/// certificate for `ips` plus `localhost`.
///
/// # Errors
/// When files cannot be read or written, or generation fails.
pub fn load_or_create(dir: &Path, ips: &[IpAddr]) -> Result<Credentials, TlsError> {
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let token_path = dir.join("token");
    let params = ca_params();
    let (ca_key, ca_pem) = if ca_cert_path.exists() && ca_key_path.exists() {
        let key_pem = fs::read_to_string(&ca_key_path).map_err(file_error(&ca_key_path))?;
        let ca_pem = fs::read_to_string(&ca_cert_path).map_err(file_error(&ca_cert_path))?;
        (KeyPair::from_pem(&key_pem)?, ca_pem)
    } else {
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        fs::write(&ca_cert_path, cert.pem()).map_err(file_error(&ca_cert_path))?;
        (key, cert.pem())
    };
    let token = match fs::read_to_string(&token_path) {
        Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
        _ => {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            write_private(&token_path, &token)?;
            token
        }
    };
    let issuer = Issuer::from_params(&params, &ca_key);
    let mut names: Vec<SanType> = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    names.push(SanType::DnsName("localhost".try_into()?));
    let mut server = CertificateParams::default();
    server.subject_alt_names = names;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "sluice-apiserver");
    server.distinguished_name = name;
    let server_key = KeyPair::generate()?;
    let cert = server.signed_by(&server_key, &issuer)?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Credentials {
        ca_pem,
        server_config: Arc::new(config),
        token,
    })
}
