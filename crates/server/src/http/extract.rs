//! Request extractors: who is calling, from where, and the body parsed or refused with a
//! problem+json (never axum's plain-text rejections).

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use stepgate_api::TokenScheme;
use stepgate_core::ErrorCode;
use stepgate_core::api_key::ApiKeyScope;

use crate::api_keys;
use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::dpop::check_possession;
use crate::error::AppError;

/// When a request's body must have arrived, set by the connection that read its head.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

pub use stepgate_api::ELEVATION_HEADER;

/// A JSON body; malformed, mistyped, oversized or non-JSON bodies become 4xx problems.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    /// Parsed with serde_json directly (serde_json's messages name the problem and its
    /// line and column; axum's `Json` adds a path tracker that costs a few percent of a
    /// decision's CPU).
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be sent with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| AppError::validation(format!("the JSON body is not valid: {e}")))
    }
}

/// The request body, read whole by the connection's deadline for it (a client that
/// sends it a byte at a time does not hold the connection for ever) and within the body
/// limit.
pub async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, AppError> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let read = axum::body::Bytes::from_request(req, state);
    let read = match deadline {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| {
            AppError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            )
        })?,
        None => read.await,
    };
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        } else {
            AppError::validation(rejection.body_text())
        }
    })
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters, with a problem on failure.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e: PathRejection| AppError::validation(e.body_text()))
    }
}

/// Query parameters, with a problem on failure.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| AppError::validation(e.body_text()))
    }
}

/// The credential from `Authorization: Bearer <credential>` (API keys, plain tokens).
fn bearer(parts: &Parts) -> Result<&str, AppError> {
    match credential(parts)? {
        (TokenScheme::Bearer, c) => Ok(c),
        (TokenScheme::Dpop, _) => Err(AppError::unauthenticated(
            "the Authorization header must be \"Bearer <credential>\"",
        )),
    }
}

/// The scheme and credential from `Authorization: Bearer|DPoP <credential>`.
fn credential(parts: &Parts) -> Result<(TokenScheme, &str), AppError> {
    authorization(&parts.headers)
}

/// The scheme and credential of an `Authorization: Bearer|DPoP <credential>` header
/// (RFC 6750 / RFC 9449), the credential checked to be a `b64token`.
pub fn authorization(headers: &axum::http::HeaderMap) -> Result<(TokenScheme, &str), AppError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::unauthenticated("an Authorization: Bearer header is required"))?;
    let malformed =
        || AppError::unauthenticated("the Authorization header must be \"Bearer <credential>\"");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, credential) = value.split_once(' ').ok_or_else(malformed)?;
    // RFC 7235: one or more spaces between the scheme and the credential.
    let credential = credential.trim_start_matches(' ');
    // RFC 6750 b64token characters only.
    let b64token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    };
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        TokenScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        TokenScheme::Dpop
    } else {
        return Err(malformed());
    };
    if !b64token(credential) {
        return Err(malformed());
    }
    Ok((scheme, credential))
}

/// The URL a DPoP proof's `htu` must name for this request: the public URL plus the path.
pub fn request_url(app: &SharedApp, parts: &Parts) -> String {
    format!(
        "{}{}",
        app.config.public_url.trim_end_matches('/'),
        parts.uri.path()
    )
}

async fn api_key_scope(parts: &Parts, app: &SharedApp) -> Result<(String, ApiKeyScope), AppError> {
    let credential = bearer(parts)?;
    api_keys::authenticate(&app.store, &app.api_keys, credential)
        .await?
        .ok_or_else(|| AppError::unauthenticated("the API key is not valid"))
}

async fn require_scope(
    parts: &Parts,
    app: &SharedApp,
    required: ApiKeyScope,
) -> Result<String, AppError> {
    let (key_id, scope) = api_key_scope(parts, app).await?;
    if scope.allows(required) {
        Ok(key_id)
    } else {
        Err(AppError::new(
            ErrorCode::Forbidden,
            format!(
                "this route needs an API key with scope {}",
                required.as_str()
            ),
        ))
    }
}

/// A relying party's backend: an API key with scope `service` (or `admin`).
pub struct ServiceCaller {
    /// The key's public id (what the audit names as the actor).
    pub key_id: String,
}

impl FromRequestParts<SharedApp> for ServiceCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        require_scope(parts, app, ApiKeyScope::Service)
            .await
            .map(|key_id| Self { key_id })
    }
}

/// An operator: an API key with scope `admin`.
pub struct AdminCaller {
    /// The key's public id (what the audit names as the actor).
    pub key_id: String,
}

impl FromRequestParts<SharedApp> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        require_scope(parts, app, ApiKeyScope::Admin)
            .await
            .map(|key_id| Self { key_id })
    }
}

impl FromRequestParts<SharedApp> for UserCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        let (scheme, credential) = credential(parts)?;
        if api_keys::looks_like_api_key(credential) {
            return Err(AppError::unauthenticated(
                "this route needs a user's access token, not an API key",
            ));
        }
        let claims = app.tokens.verify(credential).map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            AppError::unauthenticated("the access token is invalid or expired")
        })?;
        let proof = parts
            .headers
            .get("dpop")
            .map(|v| {
                v.to_str()
                    .map_err(|_| AppError::unauthenticated("invalid DPoP proof: not text"))
            })
            .transpose()?;
        check_possession(
            app,
            &claims,
            credential,
            scheme,
            proof,
            parts.method.as_str(),
            &request_url(app, parts),
        )
        .await?;
        // Revocation is server-side: the token is only as good as its session.
        let session = app
            .store
            .session(&claims.sid)
            .await?
            .filter(|s| s.user_id == claims.sub && s.to_domain().is_live(app.now()))
            .ok_or_else(|| AppError::unauthenticated("the session has ended"))?;
        Ok(Self { claims, session })
    }
}

/// An end user if the request carries an `Authorization` header (which must then be
/// valid), or nobody.
pub struct MaybeUser(pub Option<UserCaller>);

impl FromRequestParts<SharedApp> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Ok(Self(Some(
                UserCaller::from_request_parts(parts, app).await?,
            )))
        } else {
            Ok(Self(None))
        }
    }
}

/// Either an end user (access token) or a relying party's backend (service key).
pub enum UserOrService {
    User(Box<UserCaller>),
    Service,
}

impl FromRequestParts<SharedApp> for UserOrService {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        if api_keys::looks_like_api_key(credential(parts)?.1) {
            require_scope(parts, app, ApiKeyScope::Service).await?;
            Ok(Self::Service)
        } else {
            Ok(Self::User(Box::new(
                UserCaller::from_request_parts(parts, app).await?,
            )))
        }
    }
}

/// The client's address: the socket peer, or the `X-Forwarded-For` hop just before the
/// first trusted proxy when the peer is a trusted proxy.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<SharedApp> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &SharedApp,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| AppError::internal("no peer address on the request"))?;
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        // Canonical form: a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d, and an
        // IP-bound elevation must compare equal to the IPv4 text an RP sends.
        let ip = client_ip(peer.to_canonical(), &forwarded, &app.config.trusted_proxies);
        Ok(Self(ip.to_canonical()))
    }
}

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy. A malformed
/// entry stops the walk at the last address we could trust to have reported it.
pub fn client_ip(peer: IpAddr, forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if forwarded_for.trim().is_empty() {
        return client;
    }
    for hop in forwarded_for.rsplit(',') {
        if !is_trusted(&client) {
            break;
        }
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => client = ip,
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("192.0.2.1"), "203.0.113.9", &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), "203.0.113.9", &trusted),
            ip("203.0.113.9")
        );
        // A client-supplied left part cannot hide the real client behind our proxies.
        assert_eq!(
            client_ip(ip("10.0.0.1"), "1.1.1.1, 203.0.113.9, 10.0.0.2", &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), "garbage", &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), "", &trusted), ip("10.0.0.1"));
    }
}
