//! The one place where errors become HTTP: status codes and RFC 9457 problem+json.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepgate_core::ErrorCode;

use crate::error::AppError;

/// HTTP status for each stable code: the only such mapping in the product.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        StepupRequired => StatusCode::UNAUTHORIZED,
        StepupFactorInsufficient => StatusCode::FORBIDDEN,
        StepupTokenExpired | StepupTokenReused | StepupTokenInvalid => StatusCode::FORBIDDEN,
        StepupIpMismatch | StepupScopeMismatch => StatusCode::FORBIDDEN,
        StepupFailed => StatusCode::UNAUTHORIZED,
        StepupBlocked => StatusCode::FORBIDDEN,
        ChallengeExpired => StatusCode::GONE,
        InvalidCredentials => StatusCode::UNAUTHORIZED,
        LoginBlocked => StatusCode::FORBIDDEN,
        AccountLocked => StatusCode::LOCKED,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        PolicyBelowMinimum => StatusCode::CONFLICT,
        ValidationFailed => StatusCode::BAD_REQUEST,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        Conflict => StatusCode::CONFLICT,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        EmailNotSent => StatusCode::BAD_GATEWAY,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let mut body = serde_json::Map::new();
        body.insert(
            "type".into(),
            format!("urn:stepgate:problem:{}", self.code.as_str()).into(),
        );
        body.insert("title".into(), self.code.title().into());
        body.insert("status".into(), status.as_u16().into());
        body.insert("detail".into(), self.detail.into_owned().into());
        body.insert("code".into(), self.code.as_str().into());
        for (k, v) in self.extensions {
            body.entry(k).or_insert(v);
        }
        let mut response = (status, serde_json::Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.code == ErrorCode::Unauthenticated {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stepgate\""),
            );
        }
        response
    }
}
