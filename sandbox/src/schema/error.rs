//! One validation failure, worded like k8s.io/apimachinery's `field.Error`.

use std::fmt;

use serde_json::Value;

/// Why a field was refused (`field.ErrorType`). Values are already rendered
/// the way `field.Error.ErrorBody` prints them (`"text"`, `-1`, `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrorReason {
    /// `Invalid value`: the value breaks a constraint (pattern, minimum...).
    Invalid { value: String, detail: String },
    /// `Required value`: a required property is missing.
    Required,
    /// `Unsupported value`: not one of the enum values (already quoted).
    NotSupported { value: String, supported: Vec<String> },
    /// `Invalid value`: a value of the wrong type (or format).
    TypeInvalid { value: String, detail: String },
    /// `Too long`: a string longer than `maxLength`.
    TooLong { max: u64 },
    /// `Too many`: more items or properties than allowed.
    TooMany { actual: u64, max: u64 },
    /// `Forbidden`: the field may not be set.
    Forbidden { detail: String },
    /// `Duplicate value`: a second item with the same set value or map keys.
    Duplicate { value: String },
}

/// A refused field: `field` is the path as kube prints it
/// (`spec.objectives.rpo`, `spec.members[0].port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: FieldErrorReason,
    /// The text after `<field>: ` (`field.Error.ErrorBody`).
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: FieldErrorReason) -> Self {
        let message = body(&reason);
        FieldError {
            field: field.into(),
            reason,
            message,
        }
    }

    /// The `causes[].reason` kube-apiserver puts in a 422 Status.
    pub fn cause_type(&self) -> &'static str {
        match self.reason {
            FieldErrorReason::Invalid { .. } => "FieldValueInvalid",
            FieldErrorReason::Required => "FieldValueRequired",
            FieldErrorReason::NotSupported { .. } => "FieldValueNotSupported",
            FieldErrorReason::TypeInvalid { .. } => "FieldValueTypeInvalid",
            FieldErrorReason::TooLong { .. } => "FieldValueTooLong",
            FieldErrorReason::TooMany { .. } => "FieldValueTooMany",
            FieldErrorReason::Forbidden { .. } => "FieldValueForbidden",
            FieldErrorReason::Duplicate { .. } => "FieldValueDuplicate",
        }
    }

    /// `(causeType, field, message)`: the shape `ApiError::invalid` takes.
    /// The cause message is the body without the field, as in kube's `NewInvalid`.
    pub fn to_cause(&self) -> (String, String, String) {
        (self.cause_type().to_string(), self.field.clone(), self.message.clone())
    }
}

fn body(reason: &FieldErrorReason) -> String {
    match reason {
        FieldErrorReason::Invalid { value, detail } | FieldErrorReason::TypeInvalid { value, detail } => {
            format!("Invalid value: {value}: {detail}")
        }
        FieldErrorReason::Required => "Required value".to_string(),
        FieldErrorReason::NotSupported { value, supported } => {
            format!("Unsupported value: {value}: supported values: {}", supported.join(", "))
        }
        FieldErrorReason::TooLong { max } => {
            format!(
                "Too long: may not be more than {max} {}",
                if *max == 1 { "byte" } else { "bytes" }
            )
        }
        FieldErrorReason::TooMany { actual, max } => {
            format!(
                "Too many: {actual}: must have at most {max} {}",
                if *max == 1 { "item" } else { "items" }
            )
        }
        FieldErrorReason::Forbidden { detail } => format!("Forbidden: {detail}"),
        FieldErrorReason::Duplicate { value } => format!("Duplicate value: {value}"),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// A JSON value as `field.Error` prints a bad value: strings quoted, numbers
/// and booleans bare, `null` as `"null"`, composites as compact JSON.
pub(crate) fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => quote(s),
        Value::Number(n) => render_number(n),
        other => other.to_string(),
    }
}

/// Go's `%v` of a JSON number: integers bare, floats without a trailing `.0`.
pub(crate) fn render_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
