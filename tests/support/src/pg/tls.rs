//! Throw-away TLS material made with the `openssl` CLI: a CA and a server
//! certificate for one IP address (SAN), for TLS tests of both engines.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::run;

/// Files written by [`make_certs`].
#[derive(Debug, Clone)]
pub struct Certs {
    /// CA certificate (PEM): what clients verify against.
    pub ca: PathBuf,
    /// Server certificate (PEM) signed by the CA, SAN = the IP address.
    pub cert: PathBuf,
    /// Server private key (PEM, 0600).
    pub key: PathBuf,
}

/// Makes a CA named `name` and a server certificate for `ip` in `dir`.
pub async fn make_certs(dir: &Path, name: &str, ip: &str) -> anyhow::Result<Certs> {
    let path = |f: &str| dir.join(format!("{name}-{f}"));
    let (ca, ca_key) = (path("ca.crt"), path("ca.key"));
    let (cert, key, csr, ext) = (
        path("server.crt"),
        path("server.key"),
        path("server.csr"),
        path("san.ext"),
    );
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-days", "2"])
        .args(ec)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca)
        .args(["-subj", &format!("/CN={name} test CA")]);
    run(cmd).await?;
    let mut cmd = Command::new("openssl");
    cmd.arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", &format!("/CN={ip}")]);
    run(cmd).await?;
    std::fs::write(&ext, format!("subjectAltName=IP:{ip}\n"))?;
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-CAcreateserial")
        .arg("-out")
        .arg(&cert)
        .arg("-extfile")
        .arg(&ext);
    run(cmd).await?;
    Ok(Certs { ca, cert, key })
}
