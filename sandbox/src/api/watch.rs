//! watch: initial state or resume after a resourceVersion, bookmarks,
//! timeoutSeconds, 410 Expired outside the retained window.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::read::{Filter, output};
use super::{AppState, Req, Target, table};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::ResourceInfo;
use crate::store::{Event, EventType};

const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct WatchSpec {
    info: ResourceInfo,
    namespace: Option<String>,
    filter: Filter,
    bookmarks: bool,
    /// `Accept: ...;as=Table` (kubectl get -w): objects travel as one-row Tables.
    table_include: Option<String>,
    /// `Accept: ...;as=PartialObjectMetadata`: objects travel as metadata only.
    metadata_only: bool,
}

impl WatchSpec {
    /// The event type this watch reports for a change, if any (selector enter/leave
    /// turns MODIFIED into ADDED/DELETED like kube-apiserver's watch cache).
    fn translate(&self, e: &Event) -> Option<EventType> {
        if e.key.group != self.info.group || e.key.resource != self.info.plural {
            return None;
        }
        if self.namespace.as_deref().is_some_and(|ns| ns != e.key.namespace) {
            return None;
        }
        let now = self.filter.matches(&e.object);
        let before = e.old.as_ref().is_some_and(|o| self.filter.matches(o));
        match (e.etype, before, now) {
            (EventType::Modified, true, false) => Some(EventType::Deleted),
            (EventType::Modified, false, true) => Some(EventType::Added),
            (EventType::Modified, false, false) => None,
            (_, _, true) => Some(e.etype),
            _ => None,
        }
    }

    fn line(&self, etype: &str, obj: &Value) -> Bytes {
        let obj = match &self.table_include {
            Some(include) if etype != "ERROR" && etype != "BOOKMARK" => {
                let rv = meta::resource_version(obj).parse().unwrap_or(0);
                table::render(&self.info, std::slice::from_ref(obj), include, rv)
            }
            _ if self.metadata_only && etype != "ERROR" && etype != "BOOKMARK" => table::row_object(obj, "Metadata"),
            _ => obj.clone(),
        };
        let mut s = json!({"type": etype, "object": obj}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.line(
            "BOOKMARK",
            &json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": meta}),
        )
    }
}

fn expired(rv: u64) -> Value {
    let mut e = ApiError::gone(format!("too old resource version: {rv}"));
    e.code = 410;
    e.to_status()
}

pub fn watch(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let filter = Filter::from_req(req)?;
    let spec = WatchSpec {
        info: t.info.clone(),
        namespace: t.namespace.clone(),
        filter,
        bookmarks: req.q("allowWatchBookmarks") == Some("true"),
        metadata_only: req.wants_metadata(),
        table_include: req
            .wants_table()
            .then(|| req.q("includeObject").unwrap_or("Metadata").to_string()),
    };
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let send_initial = req.q("sendInitialEvents") == Some("true");
    let rv_param = req.q("resourceVersion").unwrap_or("");
    let resume: Option<u64> = match rv_param {
        "" | "0" => None,
        s => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))?,
        ),
    };
    let cancel = state.watch_token();

    // Snapshot and subscribe under one lock so no event falls in between.
    let mut first: Vec<Bytes> = vec![];
    let (rx, current_rv, gone) = {
        let store = state.store();
        let rx = store.tx.subscribe();
        let mut gone = false;
        match resume {
            Some(rv) if !send_initial => match store.events_since(rv) {
                Some(evs) => {
                    for e in evs {
                        if let Some(et) = spec.translate(&e) {
                            first.push(spec.line(et.as_str(), &output(&spec.info, &e.object)));
                        }
                    }
                }
                None => {
                    first.push(spec.line("ERROR", &expired(rv)));
                    gone = true;
                }
            },
            _ => {
                for (_, o) in store.list(&spec.info, spec.namespace.as_deref()) {
                    if spec.filter.matches(o) {
                        first.push(spec.line("ADDED", &output(&spec.info, o)));
                    }
                }
                if send_initial && spec.bookmarks {
                    first.push(spec.bookmark(store.rv, true));
                }
            }
        }
        (rx, store.rv, gone)
    };

    let (tx, out) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        stream_events(spec, rx, tx, cancel, timeout, current_rv).await;
    });
    let body = Body::from_stream(futures::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|b| (Ok::<_, Infallible>(b), out))
    }));
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(body)
        .map_err(|e| ApiError::internal(format!("building watch response: {e}")))
}

async fn stream_events(
    spec: WatchSpec,
    mut rx: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<Bytes>,
    cancel: tokio_util::sync::CancellationToken,
    timeout: Duration,
    mut last_rv: u64,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = ticker.tick(), if spec.bookmarks => {
                if tx.send(spec.bookmark(last_rv, false)).await.is_err() { return; }
            }
            ev = rx.recv() => match ev {
                Ok(e) => {
                    if e.rv <= last_rv { continue; }
                    last_rv = e.rv;
                    if let Some(et) = spec.translate(&e)
                        && tx.send(spec.line(et.as_str(), &output(&spec.info, &e.object))).await.is_err()
                    {
                        return;
                    }
                }
                // Lagged: the client re-watches from its last RV (or relists on 410).
                Err(_) => return,
            }
        }
    }
}
