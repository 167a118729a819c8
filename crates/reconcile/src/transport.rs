//! The HTTP clients the analysis providers and the Helm chart repositories share, Argo's
//! `secureTransport` and `insecureTransport`: two pooled clients over rustls, one verifying
//! certificates against the system's roots and one accepting any certificate (`insecure:
//! true`), both speaking plain HTTP too.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Idle connections kept per host.
const MAX_IDLE_PER_HOST: usize = 16;

/// A pooled HTTP(S) client.
pub type HttpClient = Client<Https, Full<Bytes>>;

/// The two clients; cloning shares their pools.
#[derive(Clone)]
pub struct Transport {
    verified: HttpClient,
    insecure: HttpClient,
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

fn client(tls: rustls::ClientConfig) -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    // Few idle connections per host, as Go's transport keeps: a thousand runs due at once open
    // a connection each, and keeping them all would hold a server's connection limit (512 by
    // default for Prometheus) for good, so the connections past it wait for an accept that
    // never comes until the metric's timeout.
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build(connector)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration verifying servers against the system's roots, or (`insecure`) not.
fn tls_builder(
    insecure: bool,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        builder.with_root_certificates(roots)
    }
}

impl Transport {
    /// The clients: the system's root certificates for verified TLS.
    pub fn new() -> Self {
        Self {
            verified: client(tls_builder(false).with_no_client_auth()),
            insecure: client(tls_builder(true).with_no_client_auth()),
        }
    }

    /// A client of its own presenting a TLS client certificate: `cert_pem` (the certificate,
    /// then its chain) and `key_pem`, verifying servers unless `insecure`.
    ///
    /// # Errors
    /// The PEM texts hold no certificate or no usable key.
    pub fn with_client_certificate(
        cert_pem: &[u8],
        key_pem: &[u8],
        insecure: bool,
    ) -> Result<HttpClient, String> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the client certificate: {e}"))?;
        if chain.is_empty() {
            return Err("the client certificate: no PEM certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("the client certificate's key: {e}"))?;
        let tls = tls_builder(insecure)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate: {e}"))?;
        Ok(client(tls))
    }

    /// The client verifying certificates, or (`insecure`) the one that does not.
    pub fn client(&self, insecure: bool) -> &HttpClient {
        if insecure {
            &self.insecure
        } else {
            &self.verified
        }
    }
}

/// An error and its causes, as one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `insecure: true`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
