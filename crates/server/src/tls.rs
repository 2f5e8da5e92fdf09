//! TLS of its own (`--cert`): the certificate and key loaded into a rustls acceptor, and the
//! header that tells browsers to keep to HTTPS.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate, then its chain.
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The acceptor of `files`: TLS 1.2 and 1.3, HTTP/1.1 by ALPN. An error names the file and
/// says what is wrong with it.
pub(crate) fn acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            anyhow::anyhow!("cannot read the certificate {}: {e}", files.cert.display())
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate (a PEM `-----BEGIN CERTIFICATE-----` block)",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("cannot read the private key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "the certificate {} and the key {} do not make a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Under TLS, every answer says to come back over HTTPS only for a year
/// (`Strict-Transport-Security`). Not `includeSubDomains`: previews at
/// `{port}-{id}.localhost` or under `--preview-domain` may be another matter.
pub(crate) async fn strict_transport(
    State(app): State<Arc<crate::AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if app.tls {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
