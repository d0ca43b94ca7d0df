//! Authentication and authorization, as kube-apiserver does them: bearer
//! ServiceAccount tokens, the admin identity of the plain-HTTP port,
//! anonymous requests on the TLS port, impersonation, then the
//! system:masters shortcut and the RBAC authorizer.

pub mod attributes;
pub mod bootstrap;
pub mod rbac;
pub mod tokens;

use std::collections::BTreeMap;

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::store::Store;
use attributes::Attributes;

pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The identity of requests without credentials on the plain-HTTP port.
pub const ADMIN_USER: &str = "kubernetes-admin";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn admin() -> UserInfo {
        UserInfo {
            name: ADMIN_USER.into(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }

    fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }
}

pub fn service_account_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        AUTHENTICATED.into(),
    ]
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Plain HTTP on loopback (the kubeconfig's URL): no credentials means the admin,
    /// like kube-apiserver's former insecure port.
    Insecure,
    /// TLS (in-pod clients): no credentials means system:anonymous.
    Secure,
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Who is asking: a bearer token is always checked; without one, the listener decides.
pub fn authenticate(
    store: &Store,
    issuer: &tokens::TokenIssuer,
    headers: &HeaderMap,
    listener: Listener,
) -> Result<UserInfo, ApiError> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(token) = auth.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) {
        return issuer.authenticate(store, token).map_err(|why| {
            tracing::debug!(%why, "bearer token refused");
            unauthorized()
        });
    }
    Ok(match listener {
        Listener::Insecure => UserInfo::admin(),
        Listener::Secure => UserInfo::anonymous(),
    })
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// `Impersonate-User`/`-Group`/`-Uid`/`-Extra-*`: the requester must be allowed to
/// `impersonate` each; the request then runs as the impersonated user.
pub fn impersonate(store: &Store, headers: &HeaderMap, user: UserInfo) -> Result<UserInfo, ApiError> {
    let Some(name) = header_values(headers, "impersonate-user")
        .first()
        .map(|s| s.to_string())
    else {
        if headers.contains_key("impersonate-group") {
            return Err(ApiError::bad_request(
                "requested [{Group ...}] without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let mut checks: Vec<Attributes> = vec![];
    let check = |resource: &str, namespace: &str, name: &str| Attributes {
        user: user.clone(),
        verb: "impersonate".into(),
        resource_request: true,
        namespace: namespace.into(),
        api_group: if resource == "serviceaccounts" {
            ""
        } else {
            "authentication.k8s.io"
        }
        .into(),
        api_version: "v1".into(),
        resource: resource.into(),
        name: name.into(),
        ..Attributes::default()
    };
    let sa = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    let mut groups: Vec<String> = header_values(headers, "impersonate-group")
        .into_iter()
        .map(String::from)
        .collect();
    match sa {
        Some((ns, sa_name)) => {
            let mut c = check("serviceaccounts", ns, sa_name);
            c.api_group = String::new();
            checks.push(c);
            if groups.is_empty() {
                groups = service_account_groups(ns);
            }
        }
        None => checks.push(check("users", "", &name)),
    }
    for g in header_values(headers, "impersonate-group") {
        checks.push(check("groups", "", g));
    }
    let mut extra = BTreeMap::new();
    for (k, v) in headers.iter() {
        if let Some(key) = k.as_str().strip_prefix("impersonate-extra-")
            && let Ok(v) = v.to_str()
        {
            let mut c = check("userextras", "", v);
            c.subresource = key.to_string();
            checks.push(c);
            extra
                .entry(key.to_string())
                .or_insert_with(Vec::new)
                .push(v.to_string());
        }
    }
    for c in &checks {
        if !allowed(store, c).allowed {
            return Err(forbidden(c, ""));
        }
    }
    if name != "system:anonymous" && !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name,
        uid: header_values(headers, "impersonate-uid")
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        groups,
        extra,
    })
}

/// The decision of the authorizer chain: system:masters, then RBAC.
pub fn allowed(store: &Store, a: &Attributes) -> rbac::Decision {
    if a.user.groups.iter().any(|g| g == MASTERS) {
        return rbac::Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    rbac::authorize(store, a)
}

/// kube-apiserver's 403 for a denied request.
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let who = &a.user.name;
    let msg = if !a.resource_request {
        format!("User {who:?} cannot {} path {:?}", a.verb, a.path)
    } else if !a.namespace.is_empty() {
        format!(
            "User {who:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            a.verb,
            a.combined_resource(),
            a.api_group,
            a.namespace
        )
    } else {
        format!(
            "User {who:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            a.verb,
            a.combined_resource(),
            a.api_group
        )
    };
    let msg = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let qualified = match (a.resource.as_str(), a.api_group.as_str()) {
        ("", _) => String::new(),
        (r, "") => r.to_string(),
        (r, g) => format!("{r}.{g}"),
    };
    let message = match (qualified.is_empty(), a.name.is_empty()) {
        (true, _) => format!("forbidden: {msg}"),
        (false, true) => format!("{qualified} is forbidden: {msg}"),
        (false, false) => format!("{qualified} {:?} is forbidden: {msg}", a.name),
    };
    let mut e = ApiError::new(403, "Forbidden", message);
    let mut details = serde_json::json!({"kind": a.resource});
    if !a.name.is_empty() {
        details["name"] = serde_json::json!(a.name);
    }
    if !a.api_group.is_empty() {
        details["group"] = serde_json::json!(a.api_group);
    }
    if !a.resource.is_empty() {
        e.details = Some(details);
    }
    e
}
