//! `POST /v1/decisions` (a relying party's backend asks) and `GET /v1/forward-auth`
//! (a reverse proxy asks, RFC 9470 answers).

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepgate_api::ElevationMode;
use stepgate_api::Problem;
use stepgate_api::TokenScheme;
use stepgate_api::decisions::DecisionQuestion;
use stepgate_api::{Decision, DecisionKind, DecisionRequest, DpopProof};
use stepgate_core::ErrorCode;
use stepgate_core::identity::check_device_field;

use crate::app::SharedApp;
use crate::decisions::{Ask, Credentials, Question, decide};
use crate::error::AppError;
use crate::http::extract::{ApiJson, ClientIp, ELEVATION_HEADER, ServiceCaller, authorization};

const MAX_NAME: usize = 256;

fn name(field: &str, value: String) -> Result<String, AppError> {
    if value.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(AppError::validation(format!(
            "{field} must be 1 to {MAX_NAME} characters, without control characters"
        )));
    }
    Ok(value)
}

fn parse_ip(raw: &str) -> Result<IpAddr, AppError> {
    raw.parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| AppError::validation("context.ip must be an IPv4 or IPv6 address"))
}

/// A decision request's fields, checked.
fn ask_of(
    body: DecisionRequest,
    challenge_mode: ElevationMode,
) -> Result<(Credentials, Ask), AppError> {
    let question = match (body.purpose, body.action, body.resource) {
        (Some(purpose), None, None) if body.resource_attributes.is_none() => {
            Question::Purpose(name("purpose", purpose)?)
        }
        (None, Some(action), Some(resource)) => Question::Action {
            action: name("action", action)?,
            resource: name("resource", resource)?,
            attributes: body.resource_attributes,
        },
        _ => {
            return Err(AppError::validation(
                "give either purpose, or action and resource (with resource_attributes)",
            ));
        }
    };
    let context = body.context.unwrap_or_default();
    if let Some(fingerprint) = &context.device_fingerprint {
        if fingerprint.is_empty() {
            return Err(AppError::validation(
                "context.device_fingerprint must not be empty",
            ));
        }
        check_device_field("context.device_fingerprint", fingerprint)?;
    }
    if let Some(user_agent) = &context.user_agent {
        check_device_field("context.user_agent", user_agent)?;
    }
    if let Some(d) = &body.action_digest
        && !(d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(AppError::validation(
            "action_digest must be 64 hex digits (SHA-256)",
        ));
    }
    let credentials = Credentials {
        scheme: if body.dpop.is_some() {
            TokenScheme::Dpop
        } else {
            TokenScheme::Bearer
        },
        token: body.access_token,
        dpop: body.dpop,
    };
    let ask = Ask {
        question,
        ip: context.ip.as_deref().map(parse_ip).transpose()?,
        device_fingerprint: context.device_fingerprint,
        elevation_token: body.elevation_token,
        action_digest: body.action_digest.map(|d| d.to_ascii_lowercase()),
        challenge_mode,
        action_summary: None,
        elevation_for_question: false,
    };
    Ok((credentials, ask))
}

/// May this session do this now? `allow`, `step_up` (with a ready challenge) or `deny`.
///
/// By `action` and `resource` the Cedar policies decide, with the request's risk in the
/// context; a `forbid` annotated `@step_up("p")` that only the elevation would lift
/// answers `step_up` for `p`. By `purpose`, the session's elevation decides. An allow
/// that relies on a single-use elevation uses it up, atomically.
#[utoipa::path(post, path = "/v1/decisions", tag = "decisions", operation_id = "decide",
    request_body = DecisionQuestion,
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 200, body = Decision),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED: the API key, or the user's access token (`subject: access_token`)"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "a presented elevation token: STEPUP_TOKEN_INVALID, STEPUP_TOKEN_EXPIRED, STEPUP_TOKEN_REUSED, STEPUP_IP_MISMATCH, STEPUP_SCOPE_MISMATCH"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such purpose"),
    ),
    security(("service_key" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    _caller: ServiceCaller,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> Result<Json<Decision>, AppError> {
    let (credentials, ask) = ask_of(body, app.config.decisions.challenge_mode)?;
    Ok(Json(decide(&app, credentials, ask).await?))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The original request's method and URL from the proxy's headers: `X-Original-Method`
/// / `X-Forwarded-Method`, and `X-Original-URL`, or `X-Forwarded-Proto` +
/// `X-Forwarded-Host` + `X-Forwarded-Uri` / `X-Original-URI`.
fn original_request(headers: &HeaderMap) -> Result<(String, String, String), AppError> {
    let method = header_text(headers, "x-original-method")
        .or_else(|| header_text(headers, "x-forwarded-method"))
        .ok_or_else(|| {
            AppError::validation("the proxy must send X-Original-Method or X-Forwarded-Method")
        })?
        .to_ascii_uppercase();
    let (url, path) = if let Some(url) = header_text(headers, "x-original-url") {
        let parsed: axum::http::Uri = url
            .parse()
            .map_err(|_| AppError::validation("X-Original-URL is not a URL"))?;
        let authority = parsed
            .authority()
            .ok_or_else(|| AppError::validation("X-Original-URL must be absolute"))?;
        let scheme = parsed.scheme_str().unwrap_or("http");
        (
            format!("{scheme}://{authority}{}", parsed.path()),
            parsed.path().to_owned(),
        )
    } else {
        let uri = header_text(headers, "x-forwarded-uri")
            .or_else(|| header_text(headers, "x-original-uri"))
            .ok_or_else(|| {
                AppError::validation(
                    "the proxy must send X-Original-URL, X-Forwarded-Uri or X-Original-URI",
                )
            })?;
        let path = uri.split(['?', '#']).next().unwrap_or_default().to_owned();
        let proto = header_text(headers, "x-forwarded-proto").unwrap_or("http");
        let host = header_text(headers, "x-forwarded-host")
            .or_else(|| header_text(headers, "host"))
            .unwrap_or("localhost");
        (format!("{proto}://{host}{path}"), path)
    };
    if !method.bytes().all(|b| b.is_ascii_alphabetic()) || method.len() > 16 {
        return Err(AppError::validation(
            "the original method is not an HTTP method",
        ));
    }
    // Rules see the path as the upstream will act on it.
    let path = crate::forward_auth::normalize(&path)
        .map_err(|e| AppError::validation(format!("the original path: {e}")))?;
    Ok((method, url, path))
}

/// A quoted-string value as RFC 6750 §3 allows in `error_description` (and our other
/// parameters): printable ASCII without `"` and `\`; anything else becomes `?` (a
/// non-ASCII purpose title would otherwise make the header invalid and vanish).
fn quoted(value: &str) -> String {
    let safe: String = value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    format!("\"{safe}\"")
}

/// `WWW-Authenticate` for a missing or bad token (RFC 6750 §3).
fn unauthenticated(scheme: &str, error: Option<&AppError>) -> Response {
    let value = match error {
        None => scheme.to_owned(),
        Some(e) => format!(
            "{scheme} error=\"invalid_token\", error_description={}",
            quoted(&e.detail)
        ),
    };
    let mut response = error.map_or_else(
        || AppError::unauthenticated("an access token is required").into_response(),
        |e| e.clone().into_response(),
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Forward-auth for nginx `auth_request` and Traefik ForwardAuth.
///
/// The proxy forwards the user's `Authorization` (and `DPoP`) headers and names the
/// original request (`X-Original-Method`/`X-Forwarded-Method`, `X-Original-URL` or
/// `X-Forwarded-Proto`/`-Host`/`-Uri`). `allow` → 200 with `X-Stepgate-User`,
/// `X-Stepgate-Session` (and `X-Stepgate-Elevation`, the ids comma-separated, when elevations were used). `step_up` → 401
/// with the RFC 9470 challenge `WWW-Authenticate: Bearer
/// error="insufficient_user_authentication", error_description="…", acr_values="…",
/// max_age=…` (scheme `DPoP` for DPoP-bound tokens), plus `Stepgate-Challenge` and
/// `Stepgate-Purpose` headers. `deny` → 403. A missing or bad token → 401 with RFC 6750's
/// `invalid_token`.
#[utoipa::path(get, path = "/v1/forward-auth", tag = "decisions", operation_id = "forwardAuth",
    params(
        ("X-Forwarded-Method" = String, Header, pattern = r"^[A-Za-z]{1,16}$",
            description = "The original request's method (or send X-Original-Method)"),
        ("X-Forwarded-Uri" = String, Header,
            pattern = r"^/([\x21-\x24\x26-\x3e\x40-\x5b\x5d-\x7e]|%(?!2[fF]|5[cC]|00)[0-9A-Fa-f]{2})*([?#][\x21-\x7e]*)?$",
            description = "The original request's path and query, as the client sent it (nginx: `$request_uri`; or send X-Original-URI or X-Original-URL). \
                Percent-encoded `/`, `\\` and NUL, a raw `\\`, spaces and control characters are refused"),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "The original scheme, for DPoP proofs (default http)"),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original host, for DPoP proofs (default: Host)"),
        ("DPoP" = Option<String>, Header, description = "The user's DPoP proof, for a DPoP-bound token"),
        ("Stepgate-Elevation" = Option<String>, Header, description = "A token-mode elevation to rely on"),
    ),
    responses(
        (status = 429, body = Problem, content_type = "application/problem+json", description = "RATE_LIMITED: challenges opened too fast for this session or user, with Retry-After"),
        (status = 200, description = "allow"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "step_up (RFC 9470 WWW-Authenticate) or no valid token"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "deny"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED: the proxy's headers"),
    ),
    security(("access_token" = [])))]
pub async fn forward_auth(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (method, url, path) = original_request(&headers)?;
    // No credentials at all: a bare challenge (RFC 6750 §3.1 gives no error code).
    if !headers.contains_key(header::AUTHORIZATION) {
        return Ok(unauthenticated("Bearer", None));
    }
    let (scheme, token) = match authorization(&headers) {
        Ok(found) => found,
        Err(e) => return Ok(unauthenticated("Bearer", Some(&e))),
    };
    let dpop = header_text(&headers, "dpop").map(|proof| DpopProof {
        proof: proof.to_owned(),
        method: method.clone(),
        url: url.clone(),
    });
    let credentials = Credentials {
        token: token.to_owned(),
        scheme,
        dpop,
    };
    let ask = Ask {
        question: app.forward_rules.question_for(&method, &path),
        ip: Some(ip),
        device_fingerprint: None,
        elevation_token: header_text(&headers, ELEVATION_HEADER).map(str::to_owned),
        action_digest: None,
        challenge_mode: app.config.decisions.challenge_mode,
        action_summary: None,
        elevation_for_question: false,
    };
    let answer = match decide(&app, credentials, ask).await {
        Ok(a) => a,
        Err(e) if e.code == ErrorCode::Unauthenticated => {
            return Ok(unauthenticated(scheme.as_str(), Some(&e)));
        }
        Err(e) => return Err(e),
    };
    Ok(match answer.decision {
        DecisionKind::Allow => allowed(&answer),
        DecisionKind::StepUp => step_up_required(&answer),
        DecisionKind::Deny => {
            AppError::new(ErrorCode::Forbidden, answer.reasons.join("; ")).into_response()
        }
    })
}

/// Forward-auth's allow: 200 with who, which session and which elevations.
fn allowed(answer: &Decision) -> Response {
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    let elevations = answer.elevation_ids.join(",");
    for (name, value) in [
        ("x-stepgate-user", Some(answer.user_id.as_str())),
        ("x-stepgate-session", Some(answer.session_id.as_str())),
        (
            "x-stepgate-elevation",
            Some(elevations.as_str()).filter(|v| !v.is_empty()),
        ),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    response
}

/// Forward-auth's step-up: 401 `STEPUP_REQUIRED` with the RFC 9470 challenge in
/// `WWW-Authenticate`, and the ready challenge and purpose in headers and the problem.
fn step_up_required(answer: &Decision) -> Response {
    let purpose = answer.purpose.clone().unwrap_or_default();
    let mut detail = format!(
        "{} needs a fresh step-up",
        answer.title.as_deref().unwrap_or(&purpose)
    );
    if answer.enrollment_required {
        detail.push_str("; enroll a second factor first");
    }
    let challenge = format!(
        "{} error=\"insufficient_user_authentication\", error_description={}, acr_values={}, max_age={}",
        answer.token_scheme.as_str(),
        quoted(&detail),
        quoted(answer.acr_values.as_deref().unwrap_or_default()),
        answer.max_age.unwrap_or_default()
    );
    let mut problem = AppError::new(ErrorCode::StepupRequired, detail)
        .with("purpose", purpose.as_str())
        .with("acr_values", answer.acr_values.clone().unwrap_or_default())
        .with("max_age", answer.max_age.unwrap_or_default());
    if let Some(id) = &answer.challenge_id {
        problem = problem.with("challenge_id", id.as_str());
    }
    if let Some(f) = &answer.allowed_factors {
        problem = problem.with("allowed_factors", f.clone());
    }
    if answer.enrollment_required {
        problem = problem.with("enrollment_required", true);
    }
    let mut r = problem.into_response();
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    if let Some(id) = answer
        .challenge_id
        .as_deref()
        .and_then(|i| HeaderValue::from_str(i).ok())
    {
        h.insert("stepgate-challenge", id);
    }
    if let Ok(v) = HeaderValue::from_str(&purpose) {
        h.insert("stepgate-purpose", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_stay_within_rfc_6750s_characters() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a 'b' /c""#);
        assert_eq!(quoted("line\nbreak löschen"), "\"line?break l?schen\"");
    }

    #[test]
    fn the_original_request_comes_from_either_proxy_convention() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-method", "delete".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-host", "app.example".parse().unwrap());
        h.insert("x-forwarded-uri", "/resources/1?x=2".parse().unwrap());
        assert_eq!(
            original_request(&h).unwrap(),
            (
                "DELETE".into(),
                "https://app.example/resources/1".into(),
                "/resources/1".into()
            )
        );
        let mut n = HeaderMap::new();
        n.insert("x-original-method", "GET".parse().unwrap());
        n.insert(
            "x-original-url",
            "http://127.0.0.1:9/a/b?c".parse().unwrap(),
        );
        assert_eq!(
            original_request(&n).unwrap(),
            ("GET".into(), "http://127.0.0.1:9/a/b".into(), "/a/b".into())
        );
        assert!(original_request(&HeaderMap::new()).is_err());
    }
}
