//! CRD structural schema handling: validation (each kind names the field
//! path and words it like kube-apiserver), defaulting and pruning.

use kube_sandbox::schema::{FieldError, admit, apply_defaults, prune, validate};
use serde_json::{Value, json};

fn plan_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["engine"],
                "properties": {
                    "engine": {"type": "string", "enum": ["postgres", "mysql"]},
                    "objectives": {"type": "object", "properties": {
                        "rpo": {"type": "string", "pattern": "^[0-9]+(s|m|h)$"},
                        "rto": {"type": "string", "default": "15m"}
                    }},
                    "backup": {"type": "object", "default": {}, "properties": {
                        "schedule": {"type": "string", "default": "0 * * * *"},
                        "retention": {"type": "object", "properties": {
                            "keepLast": {"type": "integer", "minimum": 0, "maximum": 1000}
                        }}
                    }},
                    "name": {"type": "string", "minLength": 2, "maxLength": 5},
                    "members": {"type": "array", "maxItems": 3, "minItems": 1,
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer", "default": 5432},
                            "weight": {"type": "number", "exclusiveMaximum": true, "maximum": 1}
                        }}},
                    "target": {"x-kubernetes-int-or-string": true},
                    "enabled": {"type": "boolean"},
                    "note": {"type": "string", "nullable": true},
                    "startAt": {"type": "string", "format": "date-time"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "x-kubernetes-preserve-unknown-fields": true},
                    "pools": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                        "size": {"type": "integer", "default": 1}
                    }}}
                }
            },
            "status": {"type": "object", "nullable": true, "properties": {"phase": {"type": "string"}}}
        }
    })
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "lifeboat.dev/v1alpha1", "kind": "RecoveryPlan", "metadata": {"name": "shop"}, "spec": spec})
}

fn only_error(spec: Value) -> FieldError {
    let errors = validate(&plan_schema(), &obj(spec));
    assert_eq!(errors.len(), 1, "expected exactly one error, got {errors:?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn a_valid_object_has_no_errors() {
    let spec = json!({"engine": "postgres", "objectives": {"rpo": "5m"}, "members": [{"name": "a", "port": 1}],
        "target": "50%", "note": null, "startAt": "2026-01-02T03:04:05Z", "labels": {"app": "db"}});
    assert_eq!(validate(&plan_schema(), &obj(spec)), vec![]);
}

#[test]
fn enum_names_the_field_and_lists_supported_values() {
    let e = only_error(json!({"engine": "oracle"}));
    assert_eq!(e.cause_type(), "FieldValueNotSupported");
    assert_eq!(
        e.to_string(),
        r#"spec.engine: Unsupported value: "oracle": supported values: "postgres", "mysql""#
    );
}

#[test]
fn pattern_mismatch_is_invalid_with_the_regex() {
    let e = only_error(json!({"engine": "mysql", "objectives": {"rpo": "5 minutes"}}));
    assert_eq!(e.cause_type(), "FieldValueInvalid");
    assert_eq!(
        e.to_string(),
        r#"spec.objectives.rpo: Invalid value: "5 minutes": spec.objectives.rpo in body should match '^[0-9]+(s|m|h)$'"#
    );
}

#[test]
fn minimum_and_maximum_print_the_number() {
    let e = only_error(json!({"engine": "mysql", "backup": {"retention": {"keepLast": -1}}}));
    assert_eq!(
        e.to_string(),
        "spec.backup.retention.keepLast: Invalid value: -1: spec.backup.retention.keepLast in body should be greater than or equal to 0"
    );
    let e = only_error(json!({"engine": "mysql", "backup": {"retention": {"keepLast": 1001}}}));
    assert!(e.to_string().ends_with("should be less than or equal to 1000"), "{e}");
    let e = only_error(json!({"engine": "mysql", "members": [{"name": "a", "weight": 1}]}));
    assert_eq!(e.field, "spec.members[0].weight");
    assert!(e.to_string().ends_with("in body should be less than 1"), "{e}");
}

#[test]
fn missing_required_field_is_required_value() {
    let e = only_error(json!({}));
    assert_eq!(e.cause_type(), "FieldValueRequired");
    assert_eq!(e.to_string(), "spec.engine: Required value");
}

#[test]
fn wrong_type_names_list_items_by_index() {
    let e = only_error(json!({"engine": "mysql", "members": [{"name": "a"}, {"name": "b", "port": "x"}]}));
    assert_eq!(e.cause_type(), "FieldValueTypeInvalid");
    assert_eq!(
        e.to_string(),
        r#"spec.members[1].port: Invalid value: "string": spec.members[1].port in body must be of type integer: "string""#
    );
    let e = only_error(json!({"engine": "mysql", "enabled": "yes"}));
    assert_eq!(e.field, "spec.enabled");
}

#[test]
fn string_lengths_are_checked() {
    let e = only_error(json!({"engine": "mysql", "name": "toolong"}));
    assert_eq!(e.cause_type(), "FieldValueTooLong");
    assert_eq!(e.to_string(), "spec.name: Too long: may not be more than 5 bytes");
    let e = only_error(json!({"engine": "mysql", "name": "x"}));
    assert_eq!(
        e.to_string(),
        r#"spec.name: Invalid value: "x": spec.name in body should be at least 2 chars long"#
    );
    let e = only_error(json!({"engine": "mysql", "labels": {"app": "toolong"}}));
    assert_eq!(e.field, "spec.labels.app");
}

#[test]
fn item_counts_are_checked() {
    let four = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]);
    let e = only_error(json!({"engine": "mysql", "members": four}));
    assert_eq!(e.cause_type(), "FieldValueTooMany");
    assert_eq!(e.to_string(), "spec.members: Too many: 4: must have at most 3 items");
    let e = only_error(json!({"engine": "mysql", "members": []}));
    assert!(
        e.to_string()
            .ends_with("spec.members in body should have at least 1 items"),
        "{e}"
    );
}

#[test]
fn map_lists_refuse_duplicate_keys() {
    let e = only_error(json!({"engine": "mysql", "members": [{"name": "a"}, {"name": "a", "port": 2}]}));
    assert_eq!(e.cause_type(), "FieldValueDuplicate");
    assert_eq!(e.field, "spec.members[1]");
}

#[test]
fn int_or_string_accepts_both_and_nothing_else() {
    for ok in [json!(3), json!("30%")] {
        assert_eq!(
            validate(&plan_schema(), &obj(json!({"engine": "mysql", "target": ok}))),
            vec![]
        );
    }
    let e = only_error(json!({"engine": "mysql", "target": true}));
    assert_eq!(e.field, "spec.target");
    assert_eq!(e.cause_type(), "FieldValueTypeInvalid");
}

#[test]
fn null_is_only_accepted_when_nullable() {
    let e = only_error(json!({"engine": "mysql", "enabled": null}));
    assert_eq!(e.field, "spec.enabled");
    assert!(e.to_string().contains("must be of type boolean"), "{e}");
}

#[test]
fn date_time_format_is_checked() {
    let e = only_error(json!({"engine": "mysql", "startAt": "yesterday"}));
    assert_eq!(
        e.to_string(),
        r#"spec.startAt: Invalid value: "yesterday": spec.startAt in body must be of type date-time: "yesterday""#
    );
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let errors = validate(
        &plan_schema(),
        &obj(json!({"engine": "mysql", "template": {"metadata": {}}})),
    );
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.template.apiVersion", "spec.template.kind"]);
}

#[test]
fn several_errors_are_all_reported() {
    let errors = validate(
        &plan_schema(),
        &obj(json!({"engine": "db2", "name": "x", "members": [{"port": "p"}]})),
    );
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.engine", "spec.members[0].port", "spec.name"]);
}

#[test]
fn any_of_one_of_and_not_are_evaluated() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        "not": {"required": ["c"]}}}});
    let check = |spec: Value| validate(&schema, &json!({"spec": spec}));
    assert_eq!(check(json!({"a": "x"})), vec![]);
    let both = check(json!({"a": "x", "b": "y"}));
    assert_eq!(both.len(), 1);
    assert!(
        both[0]
            .to_string()
            .contains("must validate one and only one schema (oneOf)"),
        "{}",
        both[0]
    );
    assert!(
        check(json!({"a": "x", "c": 1}))
            .iter()
            .any(|e| e.to_string().contains("must not validate the schema"))
    );
}

#[test]
fn defaults_fill_nested_objects_items_and_map_values() {
    let mut o = obj(
        json!({"engine": "mysql", "objectives": {}, "members": [{"name": "a"}, {"name": "b", "port": 1}],
        "pools": {"fast": {}, "slow": {"size": 3}}}),
    );
    apply_defaults(&plan_schema(), &mut o);
    assert_eq!(o["spec"]["objectives"]["rto"], "15m");
    // A defaulted object gets its own properties' defaults too.
    assert_eq!(o["spec"]["backup"], json!({"schedule": "0 * * * *"}));
    assert_eq!(o["spec"]["members"][0]["port"], 5432);
    assert_eq!(o["spec"]["members"][1]["port"], 1);
    assert_eq!(o["spec"]["pools"], json!({"fast": {"size": 1}, "slow": {"size": 3}}));
}

#[test]
fn defaults_replace_non_nullable_nulls_and_drop_the_rest() {
    let mut o = obj(json!({"engine": "mysql", "objectives": {"rto": null}, "enabled": null, "note": null}));
    apply_defaults(&plan_schema(), &mut o);
    assert_eq!(o["spec"]["objectives"]["rto"], "15m");
    assert!(
        o["spec"].get("enabled").is_none(),
        "non-nullable null without default is dropped"
    );
    assert_eq!(o["spec"]["note"], Value::Null, "nullable null is kept");
    assert!(o["spec"].as_object().unwrap().contains_key("note"));
}

#[test]
fn prune_drops_unknown_fields_and_keeps_preserved_ones() {
    let mut o = obj(
        json!({"engine": "mysql", "bogus": 1, "objectives": {"rpo": "1m", "typo": true},
        "members": [{"name": "a", "junk": 1}],
        "extra": {"anything": {"deep": 1}, "known": {"a": "x", "b": "pruned"}},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}},
        "pools": {"fast": {"size": 2, "nope": 1}}}),
    );
    o["status"] = json!({"phase": "Ready", "secret": "x"});
    o["topLevel"] = json!("gone");
    prune(&plan_schema(), &mut o);
    assert_eq!(o["metadata"], json!({"name": "shop"}));
    assert_eq!(o["apiVersion"], "lifeboat.dev/v1alpha1");
    assert!(o.get("topLevel").is_none());
    assert!(o["spec"].get("bogus").is_none());
    assert_eq!(o["spec"]["objectives"], json!({"rpo": "1m"}));
    assert_eq!(o["spec"]["members"], json!([{"name": "a"}]));
    assert_eq!(
        o["spec"]["extra"],
        json!({"anything": {"deep": 1}, "known": {"a": "x"}})
    );
    assert_eq!(o["spec"]["template"]["spec"], json!({"x": 1}));
    assert_eq!(o["spec"]["pools"], json!({"fast": {"size": 2}}));
    assert_eq!(o["status"], json!({"phase": "Ready"}));
}

#[test]
fn admit_prunes_defaults_then_validates() {
    let mut o = obj(json!({"engine": "mysql", "unknown": 1}));
    admit(&plan_schema(), &mut o).unwrap();
    assert!(o["spec"].get("unknown").is_none());
    assert_eq!(o["spec"]["backup"]["schedule"], "0 * * * *");
    let mut bad = obj(json!({"engine": "oracle"}));
    let errors = admit(&plan_schema(), &mut bad).unwrap_err();
    let (cause, field, message) = errors[0].to_cause();
    assert_eq!(
        (cause.as_str(), field.as_str()),
        ("FieldValueNotSupported", "spec.engine")
    );
    assert!(message.starts_with("Unsupported value: \"oracle\""), "{message}");
}
