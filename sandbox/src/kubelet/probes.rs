//! Readiness, liveness and startup probes: httpGet, tcpSocket and exec, with
//! kube's timing (initialDelaySeconds, periodSeconds, timeoutSeconds) and
//! thresholds (successThreshold, failureThreshold).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::process::{self, Spawn};

/// One probe's schedule and running result.
pub struct Prober {
    pub spec: Value,
    pub period: Duration,
    pub initial_delay: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
}

fn secs(v: &Value, default: u64) -> Duration {
    Duration::from_secs(v.as_u64().unwrap_or(default))
}

impl Prober {
    pub fn new(spec: &Value) -> Option<Prober> {
        spec.is_object().then(|| Prober {
            spec: spec.clone(),
            period: secs(&spec["periodSeconds"], 10),
            initial_delay: secs(&spec["initialDelaySeconds"], 0),
            timeout: secs(&spec["timeoutSeconds"], 1),
            success_threshold: spec["successThreshold"].as_u64().unwrap_or(1) as u32,
            failure_threshold: spec["failureThreshold"].as_u64().unwrap_or(3) as u32,
            successes: 0,
            failures: 0,
        })
    }

    /// Record one result; returns Some(new verdict) when a threshold is reached.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= self.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures += 1;
            (self.failures >= self.failure_threshold).then_some(false)
        }
    }

    /// Run the probe once against the container.
    pub async fn check(&self, pod_ip: &str, ports: &[Value], exec: &Spawn) -> bool {
        // A probe that times out failed.
        tokio::time::timeout(self.timeout, self.attempt(pod_ip, ports, exec))
            .await
            .unwrap_or(false)
    }

    async fn attempt(&self, pod_ip: &str, ports: &[Value], exec: &Spawn) -> bool {
        let s = &self.spec;
        if let Some(cmd) = s["exec"]["command"].as_array() {
            let mut spawn = exec.clone();
            spawn.argv = cmd.iter().filter_map(|c| c.as_str().map(String::from)).collect();
            return match process::spawn(&spawn) {
                Ok(mut child) => child.wait().await.is_ok_and(|st| st.success()),
                Err(_) => false,
            };
        }
        let (action, default_host) = if s["httpGet"].is_object() {
            (&s["httpGet"], pod_ip)
        } else if s["tcpSocket"].is_object() {
            (&s["tcpSocket"], pod_ip)
        } else {
            // gRPC probes are not run here: they count as passing (see README).
            return true;
        };
        let Some(port) = resolve_port(&action["port"], ports) else {
            return false;
        };
        let host = action["host"]
            .as_str()
            .filter(|h| !h.is_empty())
            .unwrap_or(default_host);
        let Ok(mut stream) = TcpStream::connect((host, port)).await else {
            return false;
        };
        if s["tcpSocket"].is_object() {
            return true;
        }
        let path = action["path"].as_str().unwrap_or("/");
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.35\r\nAccept: */*\r\nConnection: close\r\n"
        );
        for h in action["httpHeaders"].as_array().into_iter().flatten() {
            req.push_str(&format!(
                "{}: {}\r\n",
                h["name"].as_str().unwrap_or(""),
                h["value"].as_str().unwrap_or("")
            ));
        }
        req.push_str("\r\n");
        if stream.write_all(req.as_bytes()).await.is_err() {
            return false;
        }
        let mut head = [0u8; 32];
        let Ok(n) = stream.read(&mut head).await else {
            return false;
        };
        let line = String::from_utf8_lossy(&head[..n]);
        let code: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (200..400).contains(&code)
    }
}

/// A probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &Value, ports: &[Value]) -> Option<u16> {
    match port {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => match name.parse() {
            Ok(p) => Some(p),
            Err(_) => ports
                .iter()
                .find(|p| p["name"].as_str() == Some(name))
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|p| u16::try_from(p).ok()),
        },
        _ => None,
    }
}
