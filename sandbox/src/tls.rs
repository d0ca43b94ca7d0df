//! The TLS side of the API server: a cluster CA (kept in the sandbox directory,
//! so that restarts keep it) that signs the serving certificate, and the
//! accept loop serving the same router over HTTPS (HTTP/2 and HTTP/1.1), as
//! in-pod clients (kube-rs in-cluster config) expect.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("making the cluster certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The cluster CA (PEM, for kubeconfigs and in-pod `ca.crt`) and the server's TLS config.
pub struct Pki {
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub acceptor: TlsAcceptor,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "kube-sandbox-ca");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, data: &str) -> Result<(), TlsError> {
    std::fs::write(path, data).map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl Pki {
    /// The CA from `dir` (made on first use) and a fresh serving certificate for
    /// `ips` plus the names of the `kubernetes` Service.
    pub fn load_or_create(dir: &Path, ips: &[IpAddr]) -> Result<Pki, TlsError> {
        let (key_path, ca_path) = (dir.join("ca.key"), dir.join("ca.crt"));
        let (ca_key, ca_pem) = match (read(&key_path)?, read(&ca_path)?) {
            (Some(k), Some(c)) => (KeyPair::from_pem(&k)?, c),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                write(&key_path, &key.serialize_pem())?;
                write(&ca_path, &cert.pem())?;
                (key, cert.pem())
            }
        };
        // Same subject and key as the stored CA certificate: what it signs chains to it.
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut leaf = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            "kubernetes.default.svc.cluster.local".into(),
        ])?;
        leaf.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        for ip in ips {
            leaf.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let leaf_key = KeyPair::generate()?;
        let cert = leaf.signed_by(&leaf_key, &issuer)?;
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Pki {
            ca_pem,
            ca_path,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Serve `router` over TLS until `stop` fires (open connections end with it).
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, router: Router, stop: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "accepting a TLS connection failed");
                    continue;
                }
            },
        };
        let (acceptor, router, stop) = (acceptor.clone(), router.clone(), stop.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(error) => {
                    tracing::debug!(%error, %peer, "TLS handshake failed");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(router));
            tokio::select! {
                () = stop.cancelled() => {}
                result = conn => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "TLS connection ended with an error");
                    }
                }
            }
        });
    }
}
