//! Why a patch was refused, with the HTTP status kube-apiserver answers.

/// A patch body that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The JSON patch document is not a list of RFC 6902 operations.
    #[error("invalid JSON patch: {0}")]
    MalformedJsonPatch(String),
    /// A JSON patch operation failed (missing path, failed `test`...).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A strategic merge patch body or directive is malformed.
    #[error("{0}")]
    BadStrategicPatch(String),
    /// A strategic merge patch that is well formed but cannot apply to this object.
    #[error("{0}")]
    StrategicPatchFailed(String),
}

impl PatchError {
    /// HTTP status for the `Status` object: 400 for malformed bodies, 422 otherwise.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::MalformedJsonPatch(_) | PatchError::BadStrategicPatch(_) => 400,
            PatchError::JsonPatchFailed(_) | PatchError::StrategicPatchFailed(_) => 422,
        }
    }

    /// The `Status.reason` that goes with [`PatchError::code`].
    pub fn reason(&self) -> &'static str {
        if self.code() == 400 { "BadRequest" } else { "Invalid" }
    }
}
