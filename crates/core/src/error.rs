//! The one error type of the product, carrying a stable `code` from the spec.

use std::borrow::Cow;

/// Stable, documented error codes. Clients branch on these strings, so a variant's
/// wire name never changes once shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    StepupRequired,
    StepupFactorInsufficient,
    StepupTokenExpired,
    StepupTokenReused,
    StepupTokenInvalid,
    StepupIpMismatch,
    StepupScopeMismatch,
    StepupFailed,
    StepupBlocked,
    ChallengeExpired,
    InvalidCredentials,
    /// A high-risk login refused by policy.
    LoginBlocked,
    AccountLocked,
    RateLimited,
    PolicyBelowMinimum,
    ValidationFailed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body did not arrive within `http.body_read_timeout_seconds`.
    RequestTimeout,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// The request conflicts with stored state (e.g. a username already taken).
    Conflict,
    MethodNotAllowed,
    /// A dependency (the database) is not reachable.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log, never to the caller.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 26] = [
        Self::StepupRequired,
        Self::StepupFactorInsufficient,
        Self::StepupTokenExpired,
        Self::StepupTokenReused,
        Self::StepupTokenInvalid,
        Self::StepupIpMismatch,
        Self::StepupScopeMismatch,
        Self::StepupFailed,
        Self::StepupBlocked,
        Self::ChallengeExpired,
        Self::InvalidCredentials,
        Self::LoginBlocked,
        Self::AccountLocked,
        Self::RateLimited,
        Self::PolicyBelowMinimum,
        Self::ValidationFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::MethodNotAllowed,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The wire name, e.g. `STEPUP_TOKEN_REUSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StepupRequired => "STEPUP_REQUIRED",
            Self::StepupFactorInsufficient => "STEPUP_FACTOR_INSUFFICIENT",
            Self::StepupTokenExpired => "STEPUP_TOKEN_EXPIRED",
            Self::StepupTokenReused => "STEPUP_TOKEN_REUSED",
            Self::StepupTokenInvalid => "STEPUP_TOKEN_INVALID",
            Self::StepupIpMismatch => "STEPUP_IP_MISMATCH",
            Self::StepupScopeMismatch => "STEPUP_SCOPE_MISMATCH",
            Self::StepupFailed => "STEPUP_FAILED",
            Self::StepupBlocked => "STEPUP_BLOCKED",
            Self::ChallengeExpired => "CHALLENGE_EXPIRED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::LoginBlocked => "LOGIN_BLOCKED",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::RateLimited => "RATE_LIMITED",
            Self::PolicyBelowMinimum => "POLICY_BELOW_MINIMUM",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// A short human title for the problem document.
    pub fn title(self) -> &'static str {
        match self {
            Self::StepupRequired => "Step-up authentication required",
            Self::StepupFactorInsufficient => "Factor too weak for this purpose",
            Self::StepupTokenExpired => "Elevation token expired",
            Self::StepupTokenReused => "Elevation token already used",
            Self::StepupTokenInvalid => "Elevation token invalid",
            Self::StepupIpMismatch => "Elevation token used from another network",
            Self::StepupScopeMismatch => "Elevation token is for another action",
            Self::StepupFailed => "Step-up verification failed",
            Self::StepupBlocked => "Step-up blocked",
            Self::ChallengeExpired => "Challenge expired",
            Self::InvalidCredentials => "Invalid credentials",
            Self::LoginBlocked => "Sign-in blocked",
            Self::AccountLocked => "Account locked",
            Self::RateLimited => "Too many requests",
            Self::PolicyBelowMinimum => "Policy below platform minimum",
            Self::ValidationFailed => "Invalid request",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::RequestTimeout => "Request body too slow",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wire_names_are_unique_and_screaming_snake_case() {
        let names: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
        }
    }
}
