//! API machinery semantics through kube-rs and raw HTTP: optimistic
//! concurrency, selectors, paging, Status errors, fault injection.

mod common;

use common::{api_status, raw_http};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube_sandbox::start_default;
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}))
        .expect("ConfigMap")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_writers_with_the_same_resource_version_one_wins_one_gets_409() {
    let sandbox = start_default().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    for round in 0..20 {
        let name = format!("race-{round}");
        api.create(&PostParams::default(), &cm(&name, json!({})))
            .await
            .expect("create");
        let base = api.get(&name).await.expect("get");
        let writers = (0..2).map(|i| {
            let (api, mut obj, name) = (api.clone(), base.clone(), name.clone());
            tokio::spawn(async move {
                obj.data = Some([("writer".to_string(), i.to_string())].into());
                api.replace(&name, &PostParams::default(), &obj).await
            })
        });
        let results = futures::future::join_all(writers).await;
        let (wins, losses): (Vec<_>, Vec<_>) = results.into_iter().map(|r| r.expect("join")).partition(Result::is_ok);
        assert_eq!((wins.len(), losses.len()), (1, 1), "round {round}");
        let status = api_status(losses.into_iter().next().and_then(Result::err).expect("a loser"));
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert!(
            status.message.contains("the object has been modified"),
            "{}",
            status.message
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_label_and_field_selectors_and_pages() {
    let sandbox = start_default().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    for (name, tier) in [("a", "db"), ("b", "web"), ("c", "db"), ("d", "cache"), ("e", "web")] {
        api.create(&PostParams::default(), &cm(name, json!({"tier": tier})))
            .await
            .expect("create");
    }
    let names =
        |l: kube::core::ObjectList<ConfigMap>| l.items.into_iter().filter_map(|o| o.metadata.name).collect::<Vec<_>>();
    assert_eq!(
        names(api.list(&ListParams::default().labels("tier=db")).await.expect("list")),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier in (web,cache)"))
                .await
                .expect("list")
        ),
        ["b", "d", "e"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (web),tier"))
                .await
                .expect("list")
        ),
        ["a", "c", "d"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=d"))
                .await
                .expect("list")
        ),
        ["d"]
    );
    let all: Api<ConfigMap> = Api::all(sandbox.client().await);
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
                .await
                .expect("list")
        ),
        // Only what every namespace has (the cluster CA), none of the test's.
        ["kube-root-ca.crt"]
    );

    let mut seen = vec![];
    let mut params = ListParams::default().limit(2);
    loop {
        let page = api.list(&params).await.expect("page");
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        let n = page.items.len();
        seen.extend(names(page));
        assert!(n <= 2);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    // Pages cover every ConfigMap, including the namespace's kube-root-ca.crt.
    assert_eq!(seen, ["a", "b", "c", "d", "e", "kube-root-ca.crt"]);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_status_objects_with_reason_and_code() {
    let sandbox = start_default().await.expect("start");
    let client = sandbox.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let s = api_status(api.get("missing").await.expect_err("404"));
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );

    api.create(&PostParams::default(), &cm("dup", json!({})))
        .await
        .expect("create");
    let s = api_status(
        api.create(&PostParams::default(), &cm("dup", json!({})))
            .await
            .expect_err("409"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));

    let s = api_status(
        api.create(&PostParams::default(), &cm("Bad_Name", json!({})))
            .await
            .expect_err("422"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(s.message.contains("metadata.name"), "{}", s.message);

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let s = api_status(
        elsewhere
            .create(&PostParams::default(), &cm("x", json!({})))
            .await
            .expect_err("no namespace"),
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "namespaces \"nowhere\" not found")
    );

    let (code, _, body) = raw_http(
        &sandbox.url(),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "{not json",
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status JSON");
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (400, Some("Status"), Some("BadRequest"))
    );

    let (code, _, body) = raw_http(
        &sandbox.url(),
        "POST",
        "/api/v1/namespaces/default/configmaps/dup",
        "application/json",
        "{}",
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status JSON");
    assert_eq!((code, status["reason"].as_str()), (405, Some("MethodNotAllowed")));

    // A watch from a resourceVersion older than the retained history ends with a 410 ERROR event.
    sandbox.faults().expire_history();
    let (_, _, body) = raw_http(
        &sandbox.url(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1",
        "application/json",
        "",
    )
    .await;
    assert!(
        body.contains("\"type\":\"ERROR\"") && body.contains("\"code\":410") && body.contains("Expired"),
        "{body}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_failures_hit_the_next_matching_requests_only() {
    let sandbox = start_default().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    // 500 (kube-rs retries 429/503/504 by itself, so those are checked over raw HTTP below).
    sandbox
        .faults()
        .fail_next(2, "GET", "/api/v1/namespaces/default/configmaps", 500, None);
    for _ in 0..2 {
        assert_eq!(
            api_status(api.list(&ListParams::default()).await.expect_err("500")).code,
            500
        );
    }
    api.list(&ListParams::default()).await.expect("third request passes");

    // The admin API does the same over HTTP; 429 carries Retry-After.
    let body = r#"{"count": 1, "method": "POST", "pathPrefix": "/api/v1/namespaces/default/configmaps", "status": 429, "retryAfter": 3}"#;
    let (code, _, _) = raw_http(
        &sandbox.url(),
        "POST",
        "/sandbox/faults/fail-next",
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 200);
    let (code, head, body) = raw_http(
        &sandbox.url(),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"metadata":{"name":"t"}}"#,
    )
    .await;
    assert_eq!(code, 429);
    assert!(head.to_ascii_lowercase().contains("retry-after: 3"), "{head}");
    assert!(body.contains("TooManyRequests"), "{body}");
    let (code, _, _) = raw_http(
        &sandbox.url(),
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"metadata":{"name":"t"}}"#,
    )
    .await;
    assert_eq!(code, 201);
    sandbox
        .faults()
        .fail_next(1, "*", "/api/v1/namespaces/default/configmaps/t", 503, None);
    let (code, _, body) = raw_http(
        &sandbox.url(),
        "GET",
        "/api/v1/namespaces/default/configmaps/t",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 503);
    assert!(body.contains("ServiceUnavailable"), "{body}");
    sandbox.shutdown().await;
}
