//! HTTP routing: turns a request path into a resource target and dispatches
//! to the verb handlers.

mod builtin_schemas;
mod delete;
mod discovery;
mod openapi;
mod patch;
mod pods;
mod read;
mod reviews;
mod table;
mod watch;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Listener, UserInfo, tokens::TokenIssuer};
use crate::error::{ApiError, ApiResult};
use crate::faults::FaultState;
use crate::ipalloc::IpAllocator;
use crate::resources::ResourceInfo;
use crate::store::Store;

/// State shared by all requests of one sandbox (survives restarts).
pub struct Shared {
    pub store: Mutex<Store>,
    pub faults: Arc<FaultState>,
    pub ips: IpAllocator,
    /// Cancelled to drop every open watch; replaced by a fresh token afterwards.
    pub watch_cancel: Mutex<CancellationToken>,
    /// Set by `POST /sandbox/restart`; whoever owns the `Sandbox` acts on it.
    pub restart_requested: tokio::sync::Notify,
    /// Signs and checks ServiceAccount tokens.
    pub issuer: TokenIssuer,
    /// The cluster CA (PEM), published in every namespace's `kube-root-ca.crt`.
    pub ca_pem: String,
    /// Where the kubelet keeps container logs (`pods/{name}/log`), when one runs.
    pub log_root: Option<std::path::PathBuf>,
}

impl Shared {
    pub fn new(mut store: Store, ips: IpAllocator, issuer: TokenIssuer, ca_pem: String) -> Self {
        crate::admission::all_namespace_defaults(&mut store, &ca_pem);
        Shared {
            issuer,
            ca_pem,
            log_root: None,
            store: Mutex::new(store),
            faults: Arc::new(FaultState::default()),
            ips,
            watch_cancel: Mutex::new(CancellationToken::new()),
            restart_requested: tokio::sync::Notify::new(),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves consistent-enough JSON; keep serving.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn watch_token(&self) -> CancellationToken {
        self.watch_cancel.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn drop_watches(&self) {
        let mut t = self.watch_cancel.lock().unwrap_or_else(|e| e.into_inner());
        t.cancel();
        *t = CancellationToken::new();
    }
}

pub type AppState = Arc<Shared>;

/// kube-apiserver accepts request bodies up to 3 MiB; leave headroom for large applies.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One incoming request, parsed.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who is asking (after impersonation).
    pub user: UserInfo,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn header(&self, k: &str) -> &str {
        self.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    /// The field manager: explicit, else derived from the User-Agent like kube-apiserver.
    pub fn manager(&self) -> String {
        if let Some(m) = self.q("fieldManager") {
            return m.to_string();
        }
        let ua = self.header("user-agent");
        let first = ua.split('/').next().unwrap_or("").trim();
        if first.is_empty() {
            "unknown".into()
        } else {
            first.chars().take(128).collect()
        }
    }

    /// The body as JSON: JSON, YAML, or the protobuf envelope of the few kinds typed clients send.
    pub fn body_json(&self) -> ApiResult<serde_json::Value> {
        let ct = self.header("content-type");
        if ct.contains("protobuf") {
            return crate::proto::decode(&self.body).map_err(|e| match e {
                crate::proto::ProtoDecodeError::UnsupportedKind(_) => ApiError::unsupported_media_type(ct),
                e => ApiError::bad_request(format!("the request body could not be decoded: {e}")),
            });
        }
        if ct.contains("cbor") {
            return Err(ApiError::unsupported_media_type(ct));
        }
        serde_json::from_slice(&self.body)
            .or_else(|_| serde_yaml::from_slice(&self.body))
            .map_err(|e| ApiError::bad_request(format!("the request body could not be decoded: {e}")))
    }

    fn first_accept(&self) -> &str {
        self.header("accept").split(',').next().unwrap_or("")
    }

    pub fn wants_table(&self) -> bool {
        self.first_accept().contains("as=Table")
    }

    /// `Accept: ...;as=PartialObjectMetadata` (kube-rs metadata_watcher, list_metadata).
    pub fn wants_metadata(&self) -> bool {
        self.first_accept().contains("as=PartialObjectMetadata")
    }
}

/// What a resource path addresses.
pub struct Target {
    pub info: ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub watch_path: bool,
}

pub fn router(state: AppState, listener: Listener) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::Extension(listener))
        .with_state(state)
}

async fn dispatch(
    State(state): State<AppState>,
    axum::Extension(listener): axum::Extension<Listener>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("request body too large or unreadable: {e}"),
            )
            .into_response();
        }
    };
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded_pairs(q).into_iter().collect())
        .unwrap_or_default();
    let mut req = Req {
        method,
        path: uri.path().trim_end_matches('/').to_string(),
        query,
        headers,
        body,
        user: UserInfo::default(),
    };
    tracing::debug!(method = %req.method, path = %req.path, "request");
    match authorize(&state, &req, listener) {
        Ok(user) => req.user = user,
        Err(e) => return e.into_response(),
    }
    if let Some(resp) = crate::faults::admin(&state, &req).await {
        return resp;
    }
    if let Some(err) = state.faults.take_failure(req.method.as_str(), &req.path) {
        return err.into_response();
    }
    match route(&state, &req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Authenticate, impersonate and authorize; returns the user the request runs as.
fn authorize(state: &AppState, req: &Req, listener: Listener) -> ApiResult<UserInfo> {
    let store = state.store();
    let user = auth::authenticate(&store, &state.issuer, &req.headers, listener)?;
    let user = auth::impersonate(&store, &req.headers, user)?;
    let path = if req.path.is_empty() { "/" } else { req.path.as_str() };
    let attrs = auth::attributes::of_request(user, req.method.as_str(), path, &req.query);
    let decision = auth::allowed(&store, &attrs);
    if !decision.allowed {
        return Err(auth::forbidden(&attrs, &decision.reason));
    }
    Ok(attrs.user)
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

async fn route(state: &AppState, req: &Req) -> ApiResult<Response> {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(r) = discovery::serve(state, req, &segs)? {
        return Ok(r);
    }
    let target = parse_target(state, &segs)?;
    let m = &req.method;
    if target.info.is_review() {
        return match (m.as_str(), target.name.is_some()) {
            ("POST", false) => reviews::create(state, req, &target),
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m} {})",
                req.path
            ))),
        };
    }
    match (m.as_str(), target.sub.as_deref()) {
        ("POST", Some("token")) => return reviews::token_request(state, req, &target),
        ("POST", Some("binding")) => return pods::bind(state, req, &target),
        ("GET", Some("log")) => return pods::logs(state, req, &target),
        (_, Some("token" | "binding" | "log")) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m} {})",
                req.path
            )));
        }
        _ => {}
    }
    match (m.as_str(), target.name.is_some()) {
        ("GET", false) if target.watch_path || req.query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch::watch(state, req, &target)
        }
        ("GET", false) => read::list(state, req, &target),
        ("GET", true) => read::get(state, req, &target),
        ("POST", false) => write::create(state, req, &target),
        ("PUT", true) => write::update(state, req, &target),
        ("PATCH", true) => patch::patch(state, req, &target),
        ("DELETE", true) => delete::delete(state, req, &target),
        ("DELETE", false) => delete::delete_collection(state, req, &target),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m} {})",
            req.path
        ))),
    }
}

fn not_found_path(path: &str) -> ApiError {
    let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource");
    e.details = Some(
        serde_json::json!({"causes": [{"reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}")}]}),
    );
    e
}

fn parse_target(state: &AppState, segs: &[&str]) -> ApiResult<Target> {
    let path = format!("/{}", segs.join("/"));
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found_path(&path)),
    };
    let (watch_path, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    // `/api/v1/namespaces/{name}/status|finalize` address a Namespace, not a resource in it.
    let namespace_subresource = |r: &[&str]| group.is_empty() && matches!(r, ["status"] | ["finalize"]);
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, r @ ..] if !r.is_empty() && !namespace_subresource(r) => (Some(ns.to_string()), r),
        r => (None, r),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found_path(&path)),
    };
    let info = state
        .store()
        .find_resource(group, version, plural)
        .ok_or_else(|| not_found_path(&path))?;
    if namespace.is_some() && !info.namespaced {
        return Err(not_found_path(&path));
    }
    match sub.as_deref() {
        None => {}
        Some("status") if info.status_subresource => {}
        Some("finalize") if info.plural == "namespaces" => {}
        Some("token") if info.plural == "serviceaccounts" && info.group.is_empty() => {}
        Some("binding" | "log") if info.plural == "pods" && info.group.is_empty() => {}
        Some(_) => return Err(not_found_path(&path)),
    }
    Ok(Target {
        info,
        namespace,
        name,
        sub,
        watch_path,
    })
}

pub(crate) fn json_response(code: u16, v: &serde_json::Value) -> Response {
    let code = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    (code, axum::Json(v)).into_response()
}
