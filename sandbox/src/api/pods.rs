//! Pod subresources: `binding` (what the scheduler posts) and `log` (what
//! kube-apiserver proxies to the kubelet; here read from the kubelet's files).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};

use super::read::{key_of, output};
use super::write::parse_body;
use super::{AppState, Req, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::store::EventType;

/// POST `pods/{name}/binding`: assign the pod to a node (spec.nodeName, PodScheduled).
pub fn bind(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let node = body["target"]["name"].as_str().unwrap_or("").to_string();
    let key = key_of(t);
    let mut store = state.store();
    let old = store
        .objects
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found("", "pods", &key.name))?;
    if let Some(current) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::conflict(
            "",
            "pods",
            &key.name,
            &format!("pod {} is already assigned to node {current:?}", key.name),
        ));
    }
    let mut pod = old.clone();
    pod["spec"]["nodeName"] = json!(node);
    let mut conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .collect();
    conditions.push(
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}),
    );
    pod["status"]["conditions"] = json!(conditions);
    store.put(key, pod, EventType::Modified, Some(old));
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// One CRI log line: timestamp, stream, full/partial tag, message.
fn parse_line(line: &str) -> Option<(&str, bool, &str)> {
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    Some((ts, tag == "F", parts.next().unwrap_or("")))
}

#[derive(Clone)]
struct LogQuery {
    timestamps: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    tail: Option<usize>,
    limit: Option<usize>,
}

impl LogQuery {
    fn render(&self, text: &str, skip_tail: bool) -> String {
        let mut lines: Vec<String> = text
            .lines()
            .filter_map(parse_line)
            .filter(|(ts, _, _)| {
                self.since
                    .is_none_or(|since| chrono::DateTime::parse_from_rfc3339(ts).is_ok_and(|t| t >= since))
            })
            .map(|(ts, full, msg)| {
                let nl = if full { "\n" } else { "" };
                if self.timestamps {
                    format!("{ts} {msg}{nl}")
                } else {
                    format!("{msg}{nl}")
                }
            })
            .collect();
        if let (Some(n), false) = (self.tail, skip_tail) {
            let start = lines.len().saturating_sub(n);
            lines.drain(..start);
        }
        lines.concat()
    }
}

/// The log file of a container instance (`<restart>.log`) and whether it has ended.
fn instance_files(dir: &Path) -> Vec<u64> {
    let mut ns: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    ns.sort_unstable();
    ns
}

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(msg)
}

/// GET `pods/{name}/log`: container, follow, previous, timestamps, tailLines,
/// sinceSeconds, sinceTime, limitBytes.
pub fn logs(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let key = key_of(t);
    let pod = state
        .store()
        .objects
        .get(&key)
        .map(|p| output(&t.info, p))
        .ok_or_else(|| ApiError::not_found("", "pods", &key.name))?;
    let name = meta::name(&pod).to_string();
    let root = match (
        &state.log_root,
        pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()),
    ) {
        (Some(root), Some(_)) => root.clone(),
        _ => return Err(bad(format!("pod {name} does not have a host assigned"))),
    };
    let containers: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let main: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let default = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str();
    let container = match (req.q("container"), default, main.as_slice()) {
        (Some(c), _, _) => c.to_string(),
        (None, Some(d), _) => d.to_string(),
        (None, None, [only]) => only.clone(),
        _ => {
            return Err(bad(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            )));
        }
    };
    if !containers.contains(&container) {
        return Err(bad(format!("container {container} is not valid for pod {name}")));
    }
    let dir = root
        .join(format!("{}_{}_{}", meta::namespace(&pod), name, meta::uid(&pod)))
        .join(&container);
    let instances = instance_files(&dir);
    let previous = req.q("previous").is_some_and(|p| p == "true");
    let n = match (previous, instances.as_slice()) {
        (false, [.., last]) => *last,
        (true, [.., prev, _]) => *prev,
        (true, _) => {
            return Err(bad(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            )));
        }
        (false, []) => {
            return Err(bad(format!(
                "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
            )));
        }
    };
    let since = match (req.q("sinceSeconds"), req.q("sinceTime")) {
        (Some(s), _) => s
            .parse::<i64>()
            .ok()
            .map(|s| chrono::Utc::now() - chrono::Duration::seconds(s)),
        (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        _ => None,
    };
    let query = LogQuery {
        timestamps: req.q("timestamps").is_some_and(|v| v == "true"),
        since,
        tail: req.q("tailLines").and_then(|v| v.parse().ok()),
        limit: req.q("limitBytes").and_then(|v| v.parse().ok()),
    };
    let file = dir.join(format!("{n}.log"));
    let ended = dir.join(format!("{n}.exit"));
    let follow = req.q("follow").is_some_and(|v| v == "true") && !previous;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let mut out = query.render(&text, false);
    if let Some(limit) = query.limit {
        out.truncate(limit);
    }
    if !follow {
        return Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Body::from(out))
            .map_err(|e| ApiError::internal(format!("building the log response: {e}")));
    }
    let body = Body::from_stream(follow_stream(out, text.len(), file, ended, query));
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(body)
        .map_err(|e| ApiError::internal(format!("building the log response: {e}")))
}

/// What is there now, then what the container appends until its instance ends.
fn follow_stream(
    first: String,
    offset: usize,
    file: PathBuf,
    ended: PathBuf,
    query: LogQuery,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    let state = (Some(first), offset, false);
    futures::stream::unfold(state, move |(first, mut offset, done)| {
        let (file, ended) = (file.clone(), ended.clone());
        let query = query.clone();
        async move {
            if let Some(f) = first {
                return Some((Ok(Bytes::from(f)), (None, offset, false)));
            }
            if done {
                return None;
            }
            loop {
                let finished = ended.exists();
                let text = tokio::fs::read_to_string(&file).await.ok()?;
                // Only whole lines: a line being written is read next time.
                let complete = text[offset.min(text.len())..].rfind('\n').map(|i| offset + i + 1);
                if let Some(end) = complete {
                    let chunk = query.render(&text[offset..end], true);
                    offset = end;
                    return Some((Ok(Bytes::from(chunk)), (None, offset, false)));
                }
                if finished {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}
