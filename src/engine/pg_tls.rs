//! TLS for lifeboat's own PostgreSQL connections (rustls), following libpq's
//! `sslmode` meanings:
//! - `disable`: plain TCP;
//! - `prefer`: TLS if the server offers it, any certificate accepted (as libpq);
//! - `require`: TLS, any certificate accepted (as libpq without a root cert);
//! - `verify-ca`: TLS, chain verified against `ca_file`, host name not checked;
//! - `verify-full`: TLS, chain and host name (or IP address SAN) verified.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::Failure;
use super::types::{SslMode, TlsOptions};

/// The tokio-postgres SSL mode and TLS connector for `tls`.
pub(crate) fn connector(tls: &TlsOptions) -> Result<(tokio_postgres::config::SslMode, MakeRustlsConnect), Failure> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let webpki = match tls.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => Some(webpki_verifier(tls, provider.clone())?),
        SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
    };
    let verifier = PgVerifier {
        webpki,
        check_name: tls.mode == SslMode::VerifyFull,
        algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mode = match tls.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    };
    Ok((mode, MakeRustlsConnect::new(config)))
}

fn webpki_verifier(tls: &TlsOptions, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, Failure> {
    let Some(ca_file) = &tls.ca_file else {
        return Err(Failure::Tls(format!(
            "sslmode={} needs a CA file (ssl-ca) to verify the server against",
            tls.mode.as_libpq()
        )));
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| Failure::Tls(format!("reading CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Failure::Tls(format!("parsing CA file {}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| Failure::Tls(format!("CA file {}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(Failure::Tls(format!(
            "CA file {} holds no certificate",
            ca_file.display()
        )));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Failure::Tls(e.to_string()))
}

/// Verifies per `sslmode`; handshake signatures are always checked.
#[derive(Debug)]
struct PgVerifier {
    /// `None`: any certificate (prefer/require).
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name, so a name error means the chain is fine.
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
