//! Unit tests of the pure service-networking computations.

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::backends::{listen_ports, ready_backends};
use super::endpoints_model::{desired_endpoints, endpoints_up_to_date};
use super::slices_model::{desired_slices, slice_up_to_date};

fn from(value: Value) -> serde_json::Result<Pod> {
    serde_json::from_value(value)
}

fn pod(name: &str, role: &str, ip: Option<&str>, ready: bool) -> Pod {
    let mut status = json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}
    ]});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
    }
    from(json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                     "labels": {"app": "db", "role": role}},
        "spec": {"nodeName": "sandbox", "containers": [{"name": "db", "ports": [
            {"name": "sql", "containerPort": 5432},
            {"name": "sql", "containerPort": 9999, "protocol": "UDP"}
        ]}]},
        "status": status,
    }))
    .expect("valid pod")
}

fn service(spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "writer", "namespace": "shop", "uid": "svc-uid", "labels": {"team": "db"}},
        "spec": spec,
    }))
    .expect("valid service")
}

fn writer_service() -> Service {
    service(json!({
        "clusterIP": "127.0.64.7",
        "selector": {"app": "db", "role": "primary"},
        "ports": [{"name": "sql", "port": 5432, "targetPort": "sql"},
                  {"name": "metrics", "port": 9187, "targetPort": 9187}],
    }))
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serialisable")
}

#[test]
fn endpoints_split_ready_and_not_ready_and_skip_others() {
    let mut terminating = pod("c", "primary", Some("127.0.0.13"), true);
    terminating.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).ok();
    let mut other_ns = pod("d", "primary", Some("127.0.0.14"), true);
    other_ns.metadata.namespace = Some("other".into());
    let mut finished = pod("e", "primary", Some("127.0.0.15"), true);
    finished.status.as_mut().expect("status").phase = Some("Succeeded".into());
    let pods = [
        pod("b", "primary", Some("127.0.0.12"), false),
        pod("a", "primary", Some("127.0.0.11"), true),
        pod("r", "replica", Some("127.0.0.20"), true),
        pod("n", "primary", None, true),
        terminating,
        other_ns,
        finished,
    ];
    let endpoints = desired_endpoints(&writer_service(), &pods).expect("selector service");
    assert_eq!(
        to_json(&endpoints),
        json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "writer", "namespace": "shop", "labels": {
                "team": "db", "endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{
                "addresses": [{"ip": "127.0.0.11", "nodeName": "sandbox",
                    "targetRef": {"kind": "Pod", "name": "a", "namespace": "shop", "uid": "uid-a"}}],
                "notReadyAddresses": [{"ip": "127.0.0.12", "nodeName": "sandbox",
                    "targetRef": {"kind": "Pod", "name": "b", "namespace": "shop", "uid": "uid-b"}}],
                "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"},
                          {"name": "metrics", "port": 9187, "protocol": "TCP"}],
            }],
        })
    );
}

#[test]
fn publish_not_ready_addresses_makes_every_selected_pod_ready() {
    let mut svc = writer_service();
    svc.spec.as_mut().expect("spec").publish_not_ready_addresses = Some(true);
    let mut terminating = pod("c", "primary", Some("127.0.0.13"), false);
    terminating.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).ok();
    let pods = [pod("b", "primary", Some("127.0.0.12"), false), terminating];
    let endpoints = desired_endpoints(&svc, &pods).expect("selector service");
    let subset = &endpoints.subsets.expect("subsets")[0];
    let ips: Vec<&str> = subset.addresses.iter().flatten().map(|a| a.ip.as_str()).collect();
    assert_eq!(ips, ["127.0.0.12", "127.0.0.13"]);
    assert!(subset.not_ready_addresses.is_none());
}

#[test]
fn services_without_selector_are_left_alone() {
    let svc = service(json!({"clusterIP": "127.0.64.8", "ports": [{"port": 80}]}));
    let pods = [pod("a", "primary", Some("127.0.0.11"), true)];
    assert!(desired_endpoints(&svc, &pods).is_none());
    assert!(desired_slices(&svc, &pods).is_none());
}

#[test]
fn slices_carry_conditions_labels_owner_and_resolved_ports() {
    let mut terminating = pod("c", "primary", Some("127.0.0.13"), true);
    terminating.metadata.deletion_timestamp = serde_json::from_value(json!("2026-01-01T00:00:00Z")).ok();
    let pods = [
        pod("a", "primary", Some("127.0.0.11"), true),
        pod("b", "primary", Some("127.0.0.12"), false),
        terminating,
    ];
    let slices = desired_slices(&writer_service(), &pods).expect("selector service");
    assert_eq!(slices.len(), 1);
    let slice = to_json(&slices[0]);
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"],
        json!({"team": "db", "kubernetes.io/service-name": "writer",
               "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
    );
    assert_eq!(
        slice["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "writer", "uid": "svc-uid",
                "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "sql", "port": 5432, "protocol": "TCP"},
               {"name": "metrics", "port": 9187, "protocol": "TCP"}])
    );
    let conditions: Vec<(&str, &Value)> = slices[0]
        .endpoints
        .iter()
        .zip(slice["endpoints"].as_array().expect("endpoints"))
        .map(|(e, j)| (e.addresses[0].as_str(), &j["conditions"]))
        .collect();
    assert_eq!(
        conditions,
        [
            (
                "127.0.0.11",
                &json!({"ready": true, "serving": true, "terminating": false})
            ),
            (
                "127.0.0.12",
                &json!({"ready": false, "serving": false, "terminating": false})
            ),
            (
                "127.0.0.13",
                &json!({"ready": false, "serving": true, "terminating": true})
            ),
        ]
    );
    let again = desired_slices(&writer_service(), &pods).expect("selector service");
    assert_eq!(
        again[0].metadata.name, slices[0].metadata.name,
        "names are deterministic"
    );
}

#[test]
fn pods_resolving_a_named_port_differently_get_separate_slices() {
    let a = pod("a", "primary", Some("127.0.0.11"), true);
    let mut b = pod("b", "primary", Some("127.0.0.12"), true);
    b.spec.as_mut().expect("spec").containers[0]
        .ports
        .as_mut()
        .expect("ports")[0]
        .container_port = 6432;
    let slices = desired_slices(&writer_service(), &[a, b]).expect("selector service");
    let summary: Vec<(Vec<String>, Option<i32>)> = slices
        .iter()
        .map(|s| {
            let ips = s.endpoints.iter().map(|e| e.addresses[0].clone()).collect();
            (ips, s.ports.as_ref().and_then(|p| p[0].port))
        })
        .collect();
    assert_eq!(summary.len(), 2);
    assert!(summary.contains(&(vec!["127.0.0.11".to_owned()], Some(5432))));
    assert!(summary.contains(&(vec!["127.0.0.12".to_owned()], Some(6432))));
    assert_ne!(slices[0].metadata.name, slices[1].metadata.name);
}

#[test]
fn a_service_without_pods_gets_an_empty_placeholder_slice() {
    let slices = desired_slices(&writer_service(), &[]).expect("selector service");
    assert_eq!(slices.len(), 1);
    assert!(slices[0].endpoints.is_empty());
    let endpoints = desired_endpoints(&writer_service(), &[]).expect("selector service");
    assert_eq!(endpoints.subsets, Some(Vec::new()));
}

#[test]
fn objects_read_back_from_the_server_count_as_up_to_date() {
    let pods = [
        pod("a", "primary", Some("127.0.0.11"), true),
        pod("b", "primary", Some("127.0.0.12"), false),
    ];
    let svc = writer_service();
    let endpoints = desired_endpoints(&svc, &pods).expect("selector service");
    let slice = desired_slices(&svc, &pods).expect("selector service").remove(0);
    // What a server returns: same content plus server-set metadata.
    let mut stored_endpoints = to_json(&endpoints);
    stored_endpoints["metadata"]["resourceVersion"] = json!("42");
    let stored_endpoints: Endpoints = serde_json::from_value(stored_endpoints).expect("endpoints");
    let mut stored_slice = to_json(&slice);
    stored_slice["metadata"]["resourceVersion"] = json!("43");
    let stored_slice: EndpointSlice = serde_json::from_value(stored_slice).expect("slice");
    assert!(endpoints_up_to_date(&stored_endpoints, &endpoints));
    assert!(slice_up_to_date(&stored_slice, &slice));

    let relabelled = [
        pod("a", "replica", Some("127.0.0.11"), true),
        pod("b", "primary", Some("127.0.0.12"), false),
    ];
    let changed = desired_endpoints(&svc, &relabelled).expect("selector service");
    assert!(!endpoints_up_to_date(&stored_endpoints, &changed));
    let changed_slice = desired_slices(&svc, &relabelled).expect("selector service").remove(0);
    assert!(!slice_up_to_date(&stored_slice, &changed_slice));
}

#[test]
fn proxy_listens_on_tcp_ports_of_services_with_a_cluster_ip() {
    let svc = service(json!({"clusterIP": "127.0.64.9", "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "sql", "port": 5432},
    ]}));
    let ports: Vec<String> = listen_ports(&svc)
        .iter()
        .map(|p| format!("{}={}", p.port_name, p.addr))
        .collect();
    assert_eq!(ports, ["sql=127.0.64.9:5432"]);
    for spec in [
        json!({"clusterIP": "None", "ports": [{"port": 5432}]}),
        json!({"ports": [{"port": 5432}]}),
        json!({"type": "ExternalName", "externalName": "db.example", "clusterIP": "127.0.64.9", "ports": [{"port": 5432}]}),
    ] {
        assert!(listen_ports(&service(spec.clone())).is_empty(), "{spec}");
    }
}

#[test]
fn proxy_forwards_only_to_ready_endpoints_of_the_same_service_and_port() {
    let slice = |namespace: &str, service: &str, port_name: &str, endpoints: Value| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-x"), "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": 5432, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .expect("valid slice")
    };
    let endpoints = json!([
        {"addresses": ["127.0.0.11"], "conditions": {"ready": true}},
        {"addresses": ["127.0.0.12"], "conditions": {"ready": false, "serving": true}},
        {"addresses": ["127.0.0.13"]},
    ]);
    let slices = [
        slice("shop", "writer", "sql", endpoints.clone()),
        slice("other", "writer", "sql", endpoints.clone()),
        slice("shop", "reader", "sql", endpoints.clone()),
        slice("shop", "writer", "metrics", endpoints),
    ];
    let ready: Vec<String> = ready_backends("shop", "writer", "sql", &slices)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ready, ["127.0.0.11:5432", "127.0.0.13:5432"]);
}
