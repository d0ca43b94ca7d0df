//! One failed S3 call, reduced to what callers act on: what kind of failure, the S3
//! error code, and a message with the whole cause chain.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What went wrong, coarsely: enough to tell a person where to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3FailureKind {
    /// The request could not be signed or built (e.g. no credentials found).
    Construction,
    /// TCP connection refused or reset, DNS failure, connect timeout.
    Unreachable,
    /// The TLS handshake failed (unknown CA, wrong name, not a TLS server).
    Tls,
    /// The request timed out after connecting.
    Timeout,
    /// S3 answered with an error code.
    Service,
    /// The response could not be read or parsed.
    Response,
}

/// A failed S3 call.
#[derive(Clone, Debug)]
pub struct S3CallError {
    pub kind: S3FailureKind,
    /// S3 error code, e.g. `NoSuchBucket`, `InvalidAccessKeyId`, `AccessDenied`.
    pub code: Option<String>,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub message: String,
}

impl fmt::Display for S3CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl StdError for S3CallError {}

impl S3CallError {
    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A local failure (not from S3), e.g. a broken stream.
    pub fn local(message: impl Into<String>) -> Self {
        S3CallError {
            kind: S3FailureKind::Response,
            code: None,
            status: None,
            message: message.into(),
        }
    }
}

/// An error and its sources, `: `-separated, each once.
fn causes(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

fn chain_mentions_tls(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string().to_ascii_lowercase();
        // rustls errors surface as io::Error(InvalidData) whose text names the TLS problem.
        if text.contains("certificate")
            || text.contains("tls")
            || text.contains("handshake")
            || text.contains("corrupt message")
            || text.contains("invalidcontenttype")
        {
            return true;
        }
        current = e.source();
    }
    false
}

impl<E> From<SdkError<E, HttpResponse>> for S3CallError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        // S3's own message when it sent one; else the causes, without the Debug dump of
        // the raw response that DisplayErrorContext appends (it fills conditions and logs).
        let message = match &err {
            SdkError::ServiceError(e) => e.err().message().map(str::to_string),
            _ => None,
        }
        .unwrap_or_else(|| causes(&err));
        let (kind, code, status) = match &err {
            SdkError::ConstructionFailure(_) => (S3FailureKind::Construction, None, None),
            SdkError::TimeoutError(_) => (S3FailureKind::Timeout, None, None),
            SdkError::DispatchFailure(failure) => {
                let tls = failure
                    .as_connector_error()
                    .map(|c| chain_mentions_tls(c))
                    .unwrap_or(false);
                let kind = if tls {
                    S3FailureKind::Tls
                } else if failure.is_timeout() {
                    S3FailureKind::Timeout
                } else {
                    S3FailureKind::Unreachable
                };
                (kind, None, None)
            }
            SdkError::ResponseError(e) => (S3FailureKind::Response, None, Some(e.raw().status().as_u16())),
            SdkError::ServiceError(e) => (
                S3FailureKind::Service,
                e.err().code().map(str::to_string),
                Some(e.raw().status().as_u16()),
            ),
            _ => (S3FailureKind::Response, None, None),
        };
        S3CallError {
            kind,
            code,
            status,
            message,
        }
    }
}
