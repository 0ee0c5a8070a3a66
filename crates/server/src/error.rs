//! The error every application service returns: a stable code, a detail safe to show
//! the caller, optional extra members, and how long to wait before retrying. It knows
//! nothing of HTTP; `http::error` turns it into a status and a problem document.

use std::borrow::Cow;

use stepgate_core::ErrorCode;

/// An error on its way to the caller: a stable code, a detail safe to show, and
/// optional extra members of the problem document.
#[derive(Debug, Clone)]
pub struct AppError {
    pub code: ErrorCode,
    pub detail: Cow<'static, str>,
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Seconds for a `Retry-After` header (lockout, rate limits).
    pub retry_after: Option<i64>,
}

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            extensions: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    pub fn unauthenticated(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    pub fn validation(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationFailed, detail)
    }

    /// Logs the cause and answers with a bare 500 that reveals nothing.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "an internal error occurred")
    }
}

impl From<stepgate_core::Error> for AppError {
    fn from(e: stepgate_core::Error) -> Self {
        Self::new(e.code, e.detail)
    }
}

impl From<stepgate_store::StoreError> for AppError {
    fn from(e: stepgate_store::StoreError) -> Self {
        match e {
            stepgate_store::StoreError::Conflict => {
                Self::new(ErrorCode::Conflict, "a record with this key already exists")
            }
            other => Self::internal(other),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}
