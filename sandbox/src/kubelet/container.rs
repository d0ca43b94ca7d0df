//! One container's life: start, probes, exit, restart with back-off per the
//! pod's restartPolicy, graceful stop (SIGTERM, grace period, SIGKILL). Every
//! change is reported as the container's `containerStatuses` entry.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::probes::Prober;
use super::process::{self, Spawn};

/// What the pod worker learns from a container.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub status: Value,
    /// The container will not run again (its final state is in `status`).
    pub finished: bool,
}

pub struct Container {
    pub name: String,
    pub spec: Value,
    /// Built by the pod worker (argv, env, mounts, user), or why it cannot be.
    pub spawn: Result<Spawn, String>,
    pub log_dir: PathBuf,
    pub pod_ip: String,
    pub restart_policy: String,
    pub init: bool,
    /// Seconds between SIGTERM and SIGKILL (the pod worker lowers it for a deletion).
    pub grace: Arc<AtomicU64>,
    pub live: process::Live,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

struct State {
    restarts: u64,
    last: Value,
    id: String,
    ready: bool,
    started: bool,
}

impl Container {
    fn grace(&self) -> Duration {
        Duration::from_secs(self.grace.load(Ordering::Relaxed))
    }

    fn status(&self, s: &State, state: Value) -> Value {
        let image_id = self
            .spawn
            .as_ref()
            .ok()
            .and_then(|sp| sp.argv.first().cloned())
            .unwrap_or_default();
        let mut v = json!({
            "name": self.name, "image": self.spec["image"], "imageID": format!("sandbox://{image_id}"),
            "ready": s.ready, "started": s.started, "restartCount": s.restarts,
            "state": state, "lastState": s.last,
        });
        if !s.id.is_empty() {
            v["containerID"] = json!(s.id);
        }
        v
    }

    fn send(&self, tx: &mpsc::UnboundedSender<Report>, s: &State, state: Value, finished: bool) {
        let status = self.status(s, state);
        // The pod worker may be gone already (pod deleted); nothing to tell then.
        let _ = tx.send(Report {
            name: self.name.clone(),
            status,
            finished,
        });
    }

    /// Run until the container is done for good or `stop` fires.
    pub async fn run(self, tx: mpsc::UnboundedSender<Report>, stop: CancellationToken) {
        let mut s = State {
            restarts: 0,
            last: json!({}),
            id: String::new(),
            ready: false,
            started: false,
        };
        let mut backoff = Duration::from_secs(10);
        loop {
            if stop.is_cancelled() {
                return;
            }
            let started_at = Instant::now();
            let (code, reason, message, started) = self.once(&tx, &mut s, &stop).await;
            let finished_at = now();
            let mut term = json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished_at});
            if !s.id.is_empty() {
                term["containerID"] = json!(s.id);
            }
            if let Some(m) = message {
                term["message"] = json!(m);
            }
            s.ready = false;
            s.started = false;
            let restart = !stop.is_cancelled()
                && match self.restart_policy.as_str() {
                    "Always" => !self.init || code != 0,
                    "OnFailure" => code != 0,
                    _ => false,
                };
            if !restart {
                self.send(&tx, &s, json!({"terminated": term}), true);
                return;
            }
            s.last = json!({"terminated": term});
            if started_at.elapsed() > Duration::from_secs(600) {
                backoff = Duration::from_secs(10);
            }
            let msg = format!(
                "back-off {}s restarting failed container={}",
                backoff.as_secs(),
                self.name
            );
            self.send(
                &tx,
                &s,
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": msg}}),
                false,
            );
            tokio::select! {
                () = stop.cancelled() => {
                    self.send(&tx, &s, json!({"terminated": term}), true);
                    return;
                }
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(300));
            s.restarts += 1;
        }
    }

    /// Start once and wait for the end; returns (exit code, reason, message, startedAt).
    async fn once(
        &self,
        tx: &mpsc::UnboundedSender<Report>,
        s: &mut State,
        stop: &CancellationToken,
    ) -> (i64, &'static str, Option<String>, String) {
        let started = now();
        let spawn = match &self.spawn {
            Ok(sp) => sp,
            Err(why) => return (128, "ContainerCannotRun", Some(why.clone()), started),
        };
        let log = self.log_dir.join(format!("{}.log", s.restarts));
        let mut child = match process::spawn(spawn) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("failed to start container {:?}: {e}", self.name);
                let _ = std::fs::write(self.log_dir.join(format!("{}.exit", s.restarts)), b"");
                return (128, "StartError", Some(why), started);
            }
        };
        let pid = child.id().unwrap_or(0);
        self.live.add(pid);
        let code = self.supervise(tx, s, stop, &mut child, spawn, pid, &log, started).await;
        self.live.remove(pid);
        code
    }

    #[allow(clippy::too_many_arguments)]
    async fn supervise(
        &self,
        tx: &mpsc::UnboundedSender<Report>,
        s: &mut State,
        stop: &CancellationToken,
        child: &mut tokio::process::Child,
        spawn: &Spawn,
        pid: u32,
        log: &std::path::Path,
        started: String,
    ) -> (i64, &'static str, Option<String>, String) {
        s.id = format!("sandbox://{}", uuid::Uuid::new_v4().simple());
        if let Some(out) = child.stdout.take() {
            tokio::spawn(process::capture(out, "stdout", log.to_path_buf()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(process::capture(err, "stderr", log.to_path_buf()));
        }
        let mut startup = Prober::new(&self.spec["startupProbe"]);
        let mut readiness = Prober::new(&self.spec["readinessProbe"]);
        let mut liveness = Prober::new(&self.spec["livenessProbe"]);
        s.started = startup.is_none();
        s.ready = s.started && readiness.is_none() && !self.init;
        let running = json!({"running": {"startedAt": started}});
        self.send(tx, s, running.clone(), false);
        // Exec probes run inside the container's mount namespace.
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok();
        let mut exec = spawn.clone();
        exec.mounts.clear();
        exec.join_mount_ns = ns.as_ref().map(|f| f.as_raw_fd());
        let ports = self.spec["ports"].as_array().cloned().unwrap_or_default();
        let begin = tokio::time::Instant::now();
        let due = |p: &Option<Prober>| p.as_ref().map(|p| begin + p.initial_delay);
        let (mut next_startup, mut next_ready, mut next_live) = (due(&startup), due(&readiness), due(&liveness));
        let far = begin + Duration::from_secs(86_400 * 365);
        loop {
            let next = [next_startup, next_ready, next_live]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(far);
            tokio::select! {
                status = child.wait() => {
                    let code = status.map(process::exit_code).unwrap_or(1);
                    process::signal_group(pid, libc::SIGKILL);
                    let _ = std::fs::write(self.log_dir.join(format!("{}.exit", s.restarts)), b"");
                    let reason = if code == 0 { "Completed" } else { "Error" };
                    return (code, reason, None, started);
                }
                () = stop.cancelled() => {
                    let code = self.terminate(child, pid, self.grace()).await;
                    let _ = std::fs::write(self.log_dir.join(format!("{}.exit", s.restarts)), b"");
                    return (code, if code == 0 { "Completed" } else { "Error" }, None, started);
                }
                () = tokio::time::sleep_until(next) => {}
            }
            let now_t = tokio::time::Instant::now();
            if !s.started {
                if let (Some(p), Some(at)) = (startup.as_mut(), next_startup)
                    && now_t >= at
                {
                    let ok = p.check(&self.pod_ip, &ports, &exec).await;
                    next_startup = Some(now_t + p.period);
                    match p.record(ok) {
                        Some(true) => {
                            s.started = true;
                            next_startup = None;
                            s.ready = readiness.is_none();
                            self.send(tx, s, running.clone(), false);
                        }
                        Some(false) => {
                            let code = self.terminate(child, pid, self.grace()).await;
                            let _ = std::fs::write(self.log_dir.join(format!("{}.exit", s.restarts)), b"");
                            return (code, "Error", Some("Startup probe failed".into()), started);
                        }
                        None => {}
                    }
                }
                continue;
            }
            if let (Some(p), Some(at)) = (readiness.as_mut(), next_ready)
                && now_t >= at
            {
                let ok = p.check(&self.pod_ip, &ports, &exec).await;
                next_ready = Some(tokio::time::Instant::now() + p.period);
                if let Some(verdict) = p.record(ok)
                    && verdict != s.ready
                {
                    s.ready = verdict;
                    self.send(tx, s, running.clone(), false);
                }
            }
            if let (Some(p), Some(at)) = (liveness.as_mut(), next_live)
                && now_t >= at
            {
                let ok = p.check(&self.pod_ip, &ports, &exec).await;
                next_live = Some(tokio::time::Instant::now() + p.period);
                if p.record(ok) == Some(false) {
                    let grace = p.spec["terminationGracePeriodSeconds"]
                        .as_u64()
                        .map(Duration::from_secs)
                        .unwrap_or(self.grace());
                    let code = self.terminate(child, pid, grace).await;
                    let _ = std::fs::write(self.log_dir.join(format!("{}.exit", s.restarts)), b"");
                    return (code, "Error", Some("Liveness probe failed".into()), started);
                }
            }
        }
    }

    /// SIGTERM to the main process, SIGKILL to everything after `grace`; returns the exit code.
    async fn terminate(&self, child: &mut tokio::process::Child, pid: u32, grace: Duration) -> i64 {
        process::signal(pid, libc::SIGTERM);
        let code = match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status.map(process::exit_code).unwrap_or(137),
            Err(_) => {
                process::signal_group(pid, libc::SIGKILL);
                child.wait().await.map(process::exit_code).unwrap_or(137)
            }
        };
        process::signal_group(pid, libc::SIGKILL);
        code
    }
}
