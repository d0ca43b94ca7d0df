//! The decoder against hand-encoded messages (the kubectl tests cover real bodies).

use serde_json::json;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes(n: u64, b: &[u8], out: &mut Vec<u8>) {
    varint(n << 3 | 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn int(n: u64, v: u64, out: &mut Vec<u8>) {
    varint(n << 3, out);
    varint(v, out);
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = vec![];
    bytes(1, api_version.as_bytes(), &mut tm);
    bytes(2, kind.as_bytes(), &mut tm);
    let mut unknown = vec![];
    bytes(1, &tm, &mut unknown);
    bytes(2, raw, &mut unknown);
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown);
    out
}

#[test]
fn deployment_keeps_set_zero_pointers_and_drops_unset_zero_scalars() {
    let mut meta = vec![];
    bytes(1, b"web", &mut meta);
    bytes(2, b"", &mut meta);
    let mut label = vec![];
    bytes(1, b"app", &mut label);
    bytes(2, b"web", &mut label);
    bytes(11, &label, &mut meta);
    let mut container = vec![];
    bytes(1, b"c", &mut container);
    bytes(2, b"nginx", &mut container);
    bytes(8, &[], &mut container); // resources {}
    let mut pod_spec = vec![];
    bytes(2, &container, &mut pod_spec);
    let mut template = vec![];
    bytes(2, &pod_spec, &mut template);
    let mut spec = vec![];
    int(1, 0, &mut spec); // replicas: 0 (a pointer: kept)
    int(5, 0, &mut spec); // minReadySeconds: 0 (not a pointer: dropped)
    bytes(3, &template, &mut spec);
    let mut raw = vec![];
    bytes(1, &meta, &mut raw);
    bytes(2, &spec, &mut raw);
    let obj = super::decode(&envelope("apps/v1", "Deployment", &raw)).expect("decode");
    assert_eq!(
        obj,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}}},
        })
    );
}

#[test]
fn inline_fields_int_or_string_and_time() {
    let mut http = vec![];
    bytes(1, b"/healthz", &mut http);
    let mut port = vec![];
    int(1, 1, &mut port);
    bytes(3, b"http", &mut port);
    bytes(2, &port, &mut http);
    let mut handler = vec![];
    bytes(2, &http, &mut handler);
    let mut probe = vec![];
    bytes(1, &handler, &mut probe);
    int(4, 5, &mut probe);
    let mut container = vec![];
    bytes(1, b"c", &mut container);
    bytes(11, &probe, &mut container); // readinessProbe
    let mut spec = vec![];
    bytes(2, &container, &mut spec);
    let mut ts = vec![];
    int(1, 1_700_000_000, &mut ts);
    let mut meta = vec![];
    bytes(1, b"p", &mut meta);
    bytes(8, &ts, &mut meta);
    let mut raw = vec![];
    bytes(1, &meta, &mut raw);
    bytes(2, &spec, &mut raw);
    let obj = super::decode(&envelope("v1", "Pod", &raw)).expect("decode");
    assert_eq!(obj["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(
        obj["spec"]["containers"][0]["readinessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5})
    );
}

#[test]
fn unknown_kinds_are_refused() {
    let err = super::decode(&envelope("example.com/v1", "Widget", &[])).expect_err("unknown");
    assert!(matches!(err, super::ProtoDecodeError::UnsupportedKind(_)));
}
