//! The one error type of the product, carrying a stable `code` from the spec.

use std::borrow::Cow;

pub use stepgate_api::ErrorCode;

/// A domain error: a stable code plus a detail meant for the caller (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Error {
    pub code: ErrorCode,
    pub detail: Cow<'static, str>,
}

impl Error {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    pub fn validation(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationFailed, detail)
    }
}
