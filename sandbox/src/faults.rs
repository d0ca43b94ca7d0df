//! Fault injection: failing the next N matching requests, dropping watches,
//! forgetting watch history; as library calls and a small admin HTTP API
//! under `/sandbox/` (not part of the Kubernetes API).

use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::{AppState, Req, Shared, json_response};
use crate::error::ApiError;

#[derive(Debug, Clone)]
struct FailRule {
    remaining: u32,
    method: String,
    path_prefix: String,
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Debug, Default)]
pub struct FaultState {
    rules: Mutex<Vec<FailRule>>,
}

impl FaultState {
    pub fn add(&self, n: u32, method: &str, path_prefix: &str, status: u16, retry_after: Option<u64>) {
        let rule = FailRule {
            remaining: n,
            method: method.to_uppercase(),
            path_prefix: path_prefix.into(),
            status,
            retry_after,
        };
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).push(rule);
    }

    /// The injected failure for this request, if a rule matches (consuming one use).
    pub fn take_failure(&self, method: &str, path: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let idx = rules.iter().position(|r| {
            r.remaining > 0 && (r.method == "*" || r.method == method) && path.starts_with(&r.path_prefix)
        })?;
        let rule = rules[idx].clone();
        rules[idx].remaining -= 1;
        if rules[idx].remaining == 0 {
            rules.remove(idx);
        }
        let reason = match rule.status {
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            409 => "Conflict",
            _ => "InternalError",
        };
        let mut e = ApiError::new(
            rule.status,
            reason,
            format!("injected fault: {} {}", rule.method, rule.path_prefix),
        );
        e.retry_after = rule.retry_after;
        Some(e)
    }
}

/// Library handle for fault injection on a running sandbox.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Close every open watch stream (clients see EOF and re-watch).
    pub fn drop_watches(&self) {
        self.shared.drop_watches();
    }

    /// Fail the next `n` requests whose method (or "*") and path prefix match.
    pub fn fail_next(&self, n: u32, method: &str, path_prefix: &str, status_code: u16, retry_after: Option<u64>) {
        self.shared.faults.add(n, method, path_prefix, status_code, retry_after);
    }

    /// Forget watch history, so a watch resuming from any earlier resourceVersion gets 410 Gone.
    pub fn expire_history(&self) {
        self.shared.store().compact();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }
}

/// The admin API: POST /sandbox/faults/{drop-watches,expire-history,fail-next}
/// and /sandbox/restart (acted on by `Sandbox::restart_requested`'s caller, e.g. the binary).
pub async fn admin(state: &AppState, req: &Req) -> Option<Response> {
    let rest = req.path.strip_prefix("/sandbox/")?;
    let faults = Faults { shared: state.clone() };
    if req.method != axum::http::Method::POST {
        return Some(ApiError::method_not_allowed("admin endpoints take POST").into_response());
    }
    match rest {
        "faults/drop-watches" => faults.drop_watches(),
        "restart" => {
            state.restart_requested.notify_one();
            return Some(json_response(202, &json!({"restarting": true})));
        }
        "faults/expire-history" => faults.expire_history(),
        "faults/fail-next" => {
            let body: Value = match serde_json::from_slice(&req.body) {
                Ok(b) => b,
                Err(e) => return Some(ApiError::bad_request(format!("fail-next body: {e}")).into_response()),
            };
            let (Some(n), Some(status)) = (body["count"].as_u64(), body["status"].as_u64()) else {
                return Some(ApiError::bad_request("fail-next needs {\"count\": N, \"status\": CODE, \"method\": \"GET\"|\"*\", \"pathPrefix\": \"/api\", \"retryAfter\": SECONDS?}").into_response());
            };
            faults.fail_next(
                n as u32,
                body["method"].as_str().unwrap_or("*"),
                body["pathPrefix"].as_str().unwrap_or("/"),
                status as u16,
                body["retryAfter"].as_u64(),
            );
        }
        _ => return Some(ApiError::new(404, "NotFound", format!("no admin endpoint {}", req.path)).into_response()),
    }
    Some(json_response(200, &json!({"ok": true})))
}
