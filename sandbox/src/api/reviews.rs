//! The create-only review kinds (not stored): SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview,
//! SelfSubjectReview, TokenReview; and the ServiceAccount `token` subresource.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::write::parse_body;
use super::{AppState, Req, Target, json_response};
use crate::auth::attributes::Attributes;
use crate::auth::{self, UserInfo, rbac, tokens};
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::store::Key;

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or("").to_string()
}

fn review_attributes(user: UserInfo, spec: &Value) -> Attributes {
    let r = &spec["resourceAttributes"];
    if r.is_object() {
        return Attributes {
            user,
            verb: str_of(r, "verb"),
            resource_request: true,
            namespace: str_of(r, "namespace"),
            api_group: str_of(r, "group"),
            api_version: str_of(r, "version"),
            resource: str_of(r, "resource"),
            subresource: str_of(r, "subresource"),
            name: str_of(r, "name"),
            ..Attributes::default()
        };
    }
    let n = &spec["nonResourceAttributes"];
    Attributes {
        user,
        verb: str_of(n, "verb"),
        path: str_of(n, "path"),
        ..Attributes::default()
    }
}

fn user_from_spec(spec: &Value) -> UserInfo {
    let extra: BTreeMap<String, Vec<String>> = spec["extra"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let vs = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(String::from);
                    (k.clone(), vs.collect())
                })
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: str_of(spec, "user"),
        uid: str_of(spec, "uid"),
        groups: spec["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        extra,
    }
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

fn access_status(d: &rbac::Decision) -> Value {
    let mut s = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        s["reason"] = json!(d.reason);
    }
    s
}

fn rules_review(state: &AppState, user: &UserInfo, namespace: &str) -> Value {
    let store = state.store();
    let (sources, errors) = rbac::applicable(&store, user, namespace);
    let (mut resource_rules, mut non_resource_rules) = (vec![], vec![]);
    for (_, rules) in sources {
        for r in rules {
            if r["nonResourceURLs"].is_array() {
                non_resource_rules.push(json!({"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}));
            } else {
                let mut rr = json!({"verbs": r["verbs"], "apiGroups": r["apiGroups"], "resources": r["resources"]});
                if r["resourceNames"].is_array() {
                    rr["resourceNames"] = r["resourceNames"].clone();
                }
                resource_rules.push(rr);
            }
        }
    }
    let mut status =
        json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

/// POST of a review kind: computes its status and answers 201 with the object.
pub fn create(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let mut obj = parse_body(req)?;
    obj["apiVersion"] = json!(t.info.api_version());
    obj["kind"] = json!(t.info.kind);
    let spec = obj["spec"].clone();
    let decide = |a: &Attributes| auth::allowed(&state.store(), a);
    obj["status"] = match t.info.plural.as_str() {
        "selfsubjectaccessreviews" => access_status(&decide(&review_attributes(req.user.clone(), &spec))),
        "subjectaccessreviews" => access_status(&decide(&review_attributes(user_from_spec(&spec), &spec))),
        "localsubjectaccessreviews" => {
            let ns = t.namespace.clone().unwrap_or_default();
            if spec["resourceAttributes"]["namespace"].as_str().unwrap_or("") != ns {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            access_status(&decide(&review_attributes(user_from_spec(&spec), &spec)))
        }
        "selfsubjectrulesreviews" => rules_review(state, &req.user, spec["namespace"].as_str().unwrap_or("")),
        "selfsubjectreviews" => json!({"userInfo": user_json(&req.user)}),
        "tokenreviews" => {
            let token = spec["token"].as_str().unwrap_or("");
            match state.issuer.authenticate(&state.store(), token) {
                Ok(u) => json!({"authenticated": true, "user": user_json(&u), "audiences": [tokens::ISSUER]}),
                Err(why) => json!({"authenticated": false, "user": {}, "error": why}),
            }
        }
        other => return Err(ApiError::method_not_allowed(format!("{other} cannot be created"))),
    };
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(201, &obj))
}

/// POST `serviceaccounts/{name}/token`: a TokenRequest for that ServiceAccount.
pub fn token_request(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let body = parse_body(req)?;
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let store = state.store();
    let sa = store
        .objects
        .get(&Key::new(&t.info, &ns, &name))
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?;
    let mut spec = body["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    let expiration = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &name,
            vec![(
                "FieldValueInvalid".into(),
                "spec.expirationSeconds".into(),
                format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
            )],
        ));
    }
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        _ => vec![tokens::ISSUER.to_string()],
    };
    let bound = match spec["boundObjectRef"].as_object() {
        None => None,
        Some(r) => {
            let kind = r.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
            let bname = r.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let resource = match kind.as_str() {
                "Pod" => "pods",
                "Secret" => "secrets",
                other => {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token to object of type {other}"
                    )));
                }
            };
            let key = Key {
                group: String::new(),
                resource: resource.into(),
                namespace: ns.clone(),
                name: bname.clone(),
            };
            let obj = store
                .objects
                .get(&key)
                .ok_or_else(|| ApiError::not_found("", resource, &bname))?;
            let want_uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            if !want_uid.is_empty() && want_uid != meta::uid(obj) {
                return Err(ApiError::conflict(
                    "",
                    resource,
                    &bname,
                    &format!(
                        "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            Some((kind, bname, meta::uid(obj).to_string()))
        }
    };
    let token_spec = tokens::TokenSpec {
        namespace: &ns,
        service_account: &name,
        service_account_uid: meta::uid(sa),
        audiences: audiences.clone(),
        expiration_seconds: expiration,
        bound,
    };
    let (token, exp) = state.issuer.issue(&token_spec).map_err(ApiError::internal)?;
    drop(store);
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    let expires = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": meta::now()},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires},
        }),
    ))
}
