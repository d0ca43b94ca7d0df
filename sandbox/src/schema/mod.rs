//! CRD structural schemas (`openAPIV3Schema` as JSON): validation, defaulting
//! and pruning, in the order kube-apiserver runs them on a write.

mod defaults;
mod error;
mod prune;
mod validate;

pub use defaults::apply_defaults;
pub use error::{FieldError, FieldErrorReason};
pub use prune::prune;
pub use validate::validate;

use serde_json::Value;

/// Everything kube-apiserver does to a custom object body before storing it:
/// prune unknown fields, apply defaults, then validate. The errors name
/// every offending field; an empty `Err` never happens.
pub fn admit(schema: &Value, obj: &mut Value) -> Result<(), Vec<FieldError>> {
    prune(schema, obj);
    apply_defaults(schema, obj);
    let errors = validate(schema, obj);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}
