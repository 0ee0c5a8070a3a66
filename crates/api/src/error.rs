//! The stable error codes and the problem document (RFC 9457) every error answer is.

use serde::{Deserialize, Serialize};

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
    /// An email (a one-time code) could not be handed to the mail server; no code was
    /// stored.
    EmailNotSent,
    /// A bug or an unexpected failure; details go to the log, never to the caller.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 27] = [
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
        Self::EmailNotSent,
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
            Self::EmailNotSent => "EMAIL_NOT_SENT",
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
            Self::EmailNotSent => "Email not sent",
            Self::Internal => "Internal error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// The code of a wire name, e.g. `STEPUP_TOKEN_REUSED`; `None` for a code this
    /// version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// The problem document of every error answer (`application/problem+json`). Answers
/// may carry more members, named in the route's documentation (e.g. `attempts_left`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:stepgate:problem:<code>`
    #[serde(rename = "type")]
    pub kind: String,
    /// The code's short human title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The stable error code, e.g. `INVALID_CREDENTIALS`.
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_parses_back_from_its_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("NO_SUCH_CODE"), None);
    }

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
