//! Request attributes as kube-apiserver's RequestInfoFactory derives them from
//! the method and path: verb, resource request or not, group, namespace,
//! resource, subresource and name.

use std::collections::HashMap;

use super::UserInfo;

#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub path: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl Attributes {
    /// `resource/subresource` as RBAC rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

fn non_resource(user: UserInfo, method: &str, path: &str) -> Attributes {
    Attributes {
        user,
        verb: method.to_lowercase(),
        path: path.to_string(),
        ..Attributes::default()
    }
}

/// The attributes of one HTTP request.
pub fn of_request(user: UserInfo, method: &str, path: &str, query: &HashMap<String, String>) -> Attributes {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, mut rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return non_resource(user, method, path),
    };
    let mut watch = false;
    if let ["watch", r @ ..] = rest {
        watch = true;
        rest = r;
    }
    let mut namespace = String::new();
    if let ["namespaces", ns, r @ ..] = rest {
        namespace = ns.to_string();
        // `/namespaces/{name}` and its subresources address the Namespace itself.
        rest = if r.is_empty() || (group.is_empty() && matches!(r, ["status"] | ["finalize"])) {
            namespace.clear();
            rest
        } else {
            r
        };
    }
    let (resource, name, subresource) = match rest {
        [r] => (*r, "", ""),
        [r, n] => (*r, *n, ""),
        [r, n, s, ..] => (*r, *n, *s),
        [] => ("", "", ""),
    };
    let watch_param = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let mut name = name.to_string();
    let verb = match method {
        "POST" => "create",
        "GET" | "HEAD" if !name.is_empty() => "get",
        "GET" | "HEAD" if watch || watch_param => "watch",
        "GET" | "HEAD" => "list",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if !name.is_empty() => "delete",
        "DELETE" => "deletecollection",
        other => return non_resource(user, other, path),
    };
    if matches!(verb, "list" | "watch")
        && let Some(fs) = query.get("fieldSelector")
    {
        // A list or watch of one object by name is authorized for that name.
        if let Some(n) = fs.split(',').find_map(|t| t.strip_prefix("metadata.name=")) {
            name = n.to_string();
        }
    }
    Attributes {
        user,
        verb: verb.to_string(),
        resource_request: true,
        path: path.to_string(),
        namespace,
        api_group: group.to_string(),
        api_version: version.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, path: &str, q: &[(&str, &str)]) -> Attributes {
        let query = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        of_request(UserInfo::default(), method, path, &query)
    }

    #[test]
    fn paths_become_attributes_like_kube_apiserver() {
        let a = attrs("GET", "/api/v1/namespaces/ns/pods/p/log", &[]);
        assert_eq!(
            (
                a.verb.as_str(),
                a.namespace.as_str(),
                a.combined_resource(),
                a.name.as_str()
            ),
            ("get", "ns", "pods/log".into(), "p")
        );
        let a = attrs("GET", "/apis/apps/v1/deployments", &[("watch", "true")]);
        assert_eq!(
            (a.verb.as_str(), a.api_group.as_str(), a.namespace.as_str()),
            ("watch", "apps", "")
        );
        let a = attrs("GET", "/api/v1/namespaces/kube-system", &[]);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "kube-system", "")
        );
        let a = attrs("PUT", "/api/v1/namespaces/x/finalize", &[]);
        assert_eq!(
            (a.verb.as_str(), a.combined_resource(), a.name.as_str()),
            ("update", "namespaces/finalize".into(), "x")
        );
        let a = attrs("GET", "/apis/apps/v1", &[]);
        assert!(!a.resource_request);
        let a = attrs(
            "GET",
            "/api/v1/namespaces/ns/pods",
            &[("fieldSelector", "metadata.name=p")],
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", "p"));
        let a = attrs("DELETE", "/api/v1/namespaces/ns/pods", &[]);
        assert_eq!(a.verb, "deletecollection");
    }
}
