//! The Job controller (completions 1, parallelism 1): run a pod until one
//! succeeds; back off and retry failures up to backoffLimit; fail at
//! activeDeadlineSeconds; conditions SuccessCriteriaMet/Complete and
//! FailureTarget/Failed; plus the TTL-after-finished controller.

use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{DeleteParams, PropagationPolicy};
use serde_json::{Value, json};

use super::Snapshot;
use super::pods::{self, Expectations, s, set_condition};

fn time(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn finished_at(job: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| time(&c["lastTransitionTime"]))
}

/// When the last failed pod ended (for the pod re-creation back-off).
fn last_failure(pods: &[&Value]) -> Option<chrono::DateTime<chrono::Utc>> {
    pods.iter()
        .filter(|p| pods::phase(p) == "Failed")
        .flat_map(|p| p["status"]["containerStatuses"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| time(&c["state"]["terminated"]["finishedAt"]))
        .max()
}

pub async fn sync_all(client: &kube::Client, snap: &Snapshot, exp: &mut Expectations) {
    for job in &snap.jobs {
        if !pods::deleting(job) && exp.satisfied(job, &snap.pods) {
            sync(client, job, &snap.pods, exp).await;
        }
    }
}

async fn sync(client: &kube::Client, job: &Value, all_pods: &[Value], exp: &mut Expectations) {
    let ns = s(&job["metadata"]["namespace"]);
    let api: Api<Job> = Api::namespaced(client.clone(), &ns);
    let now = chrono::Utc::now();
    if let Some(done) = finished_at(job) {
        if let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64()
            && now >= done + chrono::Duration::seconds(ttl)
        {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            if let Err(error) = api.delete(&s(&job["metadata"]["name"]), &dp).await {
                tracing::debug!(%error, "deleting a finished job");
            }
        }
        return;
    }
    let owned = pods::owned_by(all_pods, job);
    let active: Vec<&Value> = owned.iter().copied().filter(|p| pods::active(p)).collect();
    let succeeded = owned.iter().filter(|p| pods::phase(p) == "Succeeded").count();
    let restarts: u64 = if job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure" {
        active
            .iter()
            .flat_map(|p| p["status"]["containerStatuses"].as_array().cloned().unwrap_or_default())
            .map(|c| c["restartCount"].as_u64().unwrap_or(0))
            .sum()
    } else {
        0
    };
    let failed = owned.iter().filter(|p| pods::phase(p) == "Failed").count();
    let mut status = job["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    if job["spec"]["suspend"] == true {
        return;
    }
    let start = time(&status["startTime"]).unwrap_or(now);
    if status["startTime"].is_null() {
        status["startTime"] = json!(crate::meta::now());
    }
    let completions = job["spec"]["completions"].as_u64().unwrap_or(1) as usize;
    let backoff_limit = job["spec"]["backoffLimit"].as_u64().unwrap_or(6);
    let deadline = job["spec"]["activeDeadlineSeconds"].as_i64();
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let outcome = if succeeded >= completions {
        Some((true, "CompletionsReached", "Reached expected number of succeeded pods"))
    } else if failed as u64 + restarts > backoff_limit {
        Some((
            false,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline.is_some_and(|d| now >= start + chrono::Duration::seconds(d)) {
        Some((
            false,
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    match outcome {
        Some((success, reason, message)) => {
            for p in &active {
                pods::delete_pod(client, exp, job, p).await;
            }
            let (interim, terminal) = if success {
                ("SuccessCriteriaMet", "Complete")
            } else {
                ("FailureTarget", "Failed")
            };
            set_condition(&mut conditions, interim, true, reason, message, false);
            // The terminal condition waits until no pod of the job is still running.
            if active.is_empty() {
                set_condition(&mut conditions, terminal, true, reason, message, false);
                if success {
                    status["completionTime"] = json!(crate::meta::now());
                }
            }
        }
        None if active.is_empty() => {
            let delay = if failed == 0 {
                chrono::Duration::zero()
            } else {
                chrono::Duration::seconds((10i64 << (failed - 1).min(6)).min(360))
            };
            if last_failure(&owned).is_none_or(|t| now >= t + delay) {
                let owner = pods::owner_ref(job, "batch/v1", "Job");
                pods::create_from_template(client, exp, job, owner, &job["spec"]["template"]).await;
            }
        }
        None => {}
    }
    status["active"] = json!(active.len());
    status["ready"] = json!(active.iter().filter(|p| pods::ready(p)).count());
    status["terminating"] = json!(owned.iter().filter(|p| pods::deleting(p)).count());
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed);
    status["uncountedTerminatedPods"] = json!({});
    for k in ["active", "succeeded", "failed"] {
        if status[k] == 0
            && let Some(m) = status.as_object_mut()
        {
            m.remove(k);
        }
    }
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    pods::write_status(&api, job, status).await;
}
