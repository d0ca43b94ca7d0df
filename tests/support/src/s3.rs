//! S3 servers for storage tests: garage (a real object store, single node) and moto
//! (only for what garage lacks: Object Lock and SSE).
//!
//! Each server binds its own loopback address from [`crate::net`] with fixed ports on
//! it, keeps its files in a tempdir, and is killed when its handle drops. Garage can
//! be stopped and started again on the same address with its data intact, for outage
//! tests.
//!
//! ```no_run
//! let garage = lifeboat_testkit::s3::Garage::start().unwrap();
//! println!("{} bucket {} key {}", garage.endpoint(), garage.bucket(), garage.access_key());
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::net::{self, LoopbackAddr};
use crate::tools::tool;

/// How long a server may take to answer before the harness gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

const GARAGE_S3_PORT: u16 = 3900;
const GARAGE_RPC_PORT: u16 = 3901;
const GARAGE_ADMIN_PORT: u16 = 3903;
const MOTO_PORT: u16 = 5000;

/// A single-node garage with one bucket and one key that may also create buckets.
pub struct Garage {
    addr: LoopbackAddr,
    dir: TempDir,
    child: Option<Child>,
    access_key: String,
    secret_key: String,
    bucket: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if filled.is_err() {
        // Uniqueness, not secrecy, is what tests need.
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 % 64) >> (i % 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `check` every 20 ms until true, or fails naming `what` after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Status code of `GET path` on `host:port`, if anything answered.
fn http_status(host: &str, port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&format!("{host}:{port}").parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut start = text.len().saturating_sub(4000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

impl Garage {
    /// Starts garage with bucket `lifeboat` and a key allowed to create more buckets.
    pub fn start() -> anyhow::Result<Garage> {
        let addr = net::allocate(GARAGE_S3_PORT)?;
        let dir = tempfile::Builder::new().prefix("lifeboat-garage-").tempdir()?;
        let host = addr.host();
        let config = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"{host}:{GARAGE_RPC_PORT}\"\n\
             rpc_public_addr = \"{host}:{GARAGE_RPC_PORT}\"\n\
             rpc_secret = \"{secret}\"\n\
             [s3_api]\n\
             api_bind_addr = \"{host}:{GARAGE_S3_PORT}\"\n\
             s3_region = \"garage\"\n\
             [admin]\n\
             api_bind_addr = \"{host}:{GARAGE_ADMIN_PORT}\"\n\
             admin_token = \"{token}\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
            secret = random_hex(32),
            token = random_hex(16),
        );
        std::fs::write(dir.path().join("garage.toml"), config)?;
        let mut garage = Garage {
            addr,
            dir,
            child: None,
            access_key: format!("GK{}", random_hex(12)),
            secret_key: random_hex(32),
            bucket: "lifeboat".into(),
        };
        garage.start_process()?;
        let allow = garage.cli(&["key", "allow", "--create-bucket", &garage.access_key.clone()])?;
        if !allow.status.success() {
            bail!("garage key allow: {}", String::from_utf8_lossy(&allow.stderr));
        }
        Ok(garage)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("garage.log")
    }

    fn start_process(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(tool("garage"))
            .arg("-c")
            .arg(self.config_path())
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &self.bucket)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting garage")?;
        self.child = Some(child);
        let host = self.addr.host();
        let ready = wait_for("garage admin /health and S3 API", READY_TIMEOUT, || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return true; // exited: reported below
            }
            http_status(&host, GARAGE_ADMIN_PORT, "/health") == Some(200)
                && http_status(&host, GARAGE_S3_PORT, "/").is_some()
        });
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!("garage exited ({status}): {}", log_tail(&self.log_path()));
        }
        ready.with_context(|| log_tail(&self.log_path()))
    }

    /// Kills garage abruptly (SIGKILL), as a crashed or unplugged server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts garage again on the same address, with the same data and key.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.start_process()
    }

    /// Runs the garage CLI against this node.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(tool("garage"))
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .output()
            .context("running garage CLI")
    }

    /// `http://ip:3900`.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{GARAGE_S3_PORT}", self.addr.host())
    }

    pub fn host(&self) -> String {
        self.addr.host()
    }

    pub fn port(&self) -> u16 {
        GARAGE_S3_PORT
    }

    /// Region garage answers to.
    pub fn region(&self) -> &str {
        "garage"
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A moto S3 server (state in memory; accepts any credentials).
pub struct Moto {
    addr: LoopbackAddr,
    dir: TempDir,
    child: Option<Child>,
}

impl Moto {
    pub fn start() -> anyhow::Result<Moto> {
        let addr = net::allocate(MOTO_PORT)?;
        let dir = tempfile::Builder::new().prefix("lifeboat-moto-").tempdir()?;
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(tool("moto_server"))
            .args(["-H", &addr.host(), "-p", &MOTO_PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting moto_server")?;
        let mut moto = Moto {
            addr,
            dir,
            child: Some(child),
        };
        let host = moto.addr.host();
        let mut exited = None;
        let ready = wait_for("moto_server", READY_TIMEOUT, || {
            if let Some(Ok(Some(status))) = moto.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            http_status(&host, MOTO_PORT, "/").is_some()
        });
        if let Some(status) = exited {
            bail!("moto_server exited ({status}): {}", log_tail(&log_path));
        }
        ready.with_context(|| log_tail(&moto.dir.path().join("moto.log")))?;
        Ok(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{MOTO_PORT}", self.addr.host())
    }

    pub fn region(&self) -> &str {
        "us-east-1"
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Python TLS terminator: accepts TLS on one address and forwards plain TCP upstream.
const TLS_PROXY: &str = r#"
import socket, ssl, sys, threading
host, port, cert, key, up_host, up_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except Exception:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
def handle(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except Exception:
        conn.close()
        return
    up = socket.create_connection((up_host, up_port))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// HTTPS in front of a plain-HTTP server, with a certificate from a private CA (for
/// testing custom CA bundles). Uses `openssl` and `python3`.
pub struct TlsProxy {
    addr: LoopbackAddr,
    dir: TempDir,
    child: Option<Child>,
}

const TLS_PROXY_PORT: u16 = 3443;

impl TlsProxy {
    /// Terminates TLS for `upstream_host:upstream_port`.
    pub fn start(upstream_host: &str, upstream_port: u16) -> anyhow::Result<TlsProxy> {
        let addr = net::allocate(TLS_PROXY_PORT)?;
        let dir = tempfile::Builder::new().prefix("lifeboat-tls-").tempdir()?;
        let d = dir.path();
        let ip = addr.host();
        std::fs::write(
            d.join("leaf.ext"),
            format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n"),
        )?;
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("openssl").args(args).current_dir(d).output()?;
            if !out.status.success() {
                bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=lifeboat test CA",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            &format!("/CN={ip}"),
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ])?;
        let log = std::fs::File::create(d.join("proxy.log"))?;
        let child = Command::new("python3")
            .args([
                "-c",
                TLS_PROXY,
                &ip,
                &TLS_PROXY_PORT.to_string(),
                "leaf.pem",
                "leaf.key",
            ])
            .args([upstream_host, &upstream_port.to_string()])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting python3 TLS proxy")?;
        let mut proxy = TlsProxy {
            addr,
            dir,
            child: Some(child),
        };
        let target = format!("{ip}:{TLS_PROXY_PORT}");
        let mut exited = None;
        let ready = wait_for("TLS proxy", READY_TIMEOUT, || {
            if let Some(Ok(Some(status))) = proxy.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            target
                .parse()
                .ok()
                .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
                .is_some()
        });
        if let Some(status) = exited {
            bail!(
                "TLS proxy exited ({status}): {}",
                log_tail(&proxy.dir.path().join("proxy.log"))
            );
        }
        ready?;
        Ok(proxy)
    }

    /// `https://ip:3443`.
    pub fn endpoint(&self) -> String {
        format!("https://{}:{TLS_PROXY_PORT}", self.addr.host())
    }

    /// PEM of the CA that signed the proxy's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.pem")).unwrap_or_default()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Python proxy answering the first N connections' request with `503 SlowDown`, then
/// forwarding plain TCP upstream.
const THROTTLE_PROXY: &str = r#"
import socket, sys, threading
host, port, up_host, up_port, throttled = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lock = threading.Lock()
seen = [0]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except Exception:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
def slow_down(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    remaining = length - len(rest)
    while remaining > 0:
        chunk = conn.recv(min(65536, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
    body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    conn.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    conn.close()
def handle(conn):
    with lock:
        seen[0] += 1
        throttle = seen[0] <= throttled
    if throttle:
        slow_down(conn)
        return
    up = socket.create_connection((up_host, up_port))
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    pipe(up, conn)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// Plain-HTTP proxy in front of an S3 server that throttles (503 SlowDown) the first
/// `throttled` connections, for retry tests. Uses `python3`.
pub struct ThrottlingProxy {
    addr: LoopbackAddr,
    _dir: TempDir,
    child: Option<Child>,
}

const THROTTLE_PROXY_PORT: u16 = 3980;

impl ThrottlingProxy {
    pub fn start(upstream_host: &str, upstream_port: u16, throttled: u32) -> anyhow::Result<ThrottlingProxy> {
        let addr = net::allocate(THROTTLE_PROXY_PORT)?;
        let dir = tempfile::Builder::new().prefix("lifeboat-throttle-").tempdir()?;
        let log_path = dir.path().join("proxy.log");
        let log = std::fs::File::create(&log_path)?;
        let ip = addr.host();
        let child = Command::new("python3")
            .args(["-c", THROTTLE_PROXY, &ip, &THROTTLE_PROXY_PORT.to_string()])
            .args([upstream_host, &upstream_port.to_string(), &throttled.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting python3 throttling proxy")?;
        let mut proxy = ThrottlingProxy {
            addr,
            _dir: dir,
            child: Some(child),
        };
        // Readiness: the listening socket exists (probing would use up a throttled slot).
        let mut exited = None;
        let ready = wait_for("throttling proxy", READY_TIMEOUT, || {
            if let Some(Ok(Some(status))) = proxy.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            listening(&ip, THROTTLE_PROXY_PORT)
        });
        if let Some(status) = exited {
            bail!("throttling proxy exited ({status}): {}", log_tail(&log_path));
        }
        ready?;
        Ok(proxy)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{THROTTLE_PROXY_PORT}", self.addr.host())
    }
}

/// Whether a TCP socket listens on `ip:port` (from /proc/net/tcp, without connecting).
fn listening(ip: &str, port: u16) -> bool {
    let Ok(parsed) = ip.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    // /proc/net/tcp shows the address as little-endian hex.
    let hex_ip = format!("{:08X}", u32::from_le_bytes(parsed.octets()));
    let wanted = format!("{hex_ip}:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(1) == Some(&wanted.as_str()) && cols.get(3) == Some(&"0A")
            })
        })
        .unwrap_or(false)
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
