//! The hosted pages a person uses: server-rendered HTML from compile-time templates
//! (`web/templates`, askama), one embedded stylesheet and one embedded script (the
//! WebAuthn ceremonies, `web/assets`). Nothing is loaded from elsewhere: every page is
//! sent with `Content-Security-Policy: default-src 'self'` and may not be framed.
//!
//! Like the JSON routes, a page handler extracts, calls one service and renders; its
//! errors are pages ([`PageError`]), never problem documents.

use std::borrow::Cow;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use stepgate_core::ErrorCode;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::error::status_of;
use crate::http::extract::read_body;

pub mod account;
pub mod admin;
pub mod portal;
pub mod stepup;

/// The pages' routes, with their security headers.
pub fn router(app: SharedApp) -> axum::Router<SharedApp> {
    axum::Router::new()
        .route("/stepup/{id}", get(stepup::show).post(stepup::answer))
        .route("/stepup/{id}/send", post(stepup::send_code))
        .route("/account", get(account::show))
        .route("/account/signin", post(account::sign_in))
        .route("/account/continue", get(account::continue_sign_in))
        .route("/account/signout", post(account::sign_out))
        .route("/account/passkeys", post(account::start_passkey))
        .route("/account/passkeys/{id}", post(account::finish_passkey))
        .route("/account/totp", post(account::start_totp))
        .route("/account/totp/{id}", post(account::confirm_totp))
        .route("/account/email", post(account::start_email))
        .route("/account/email/{id}", post(account::confirm_email))
        .route("/account/recovery-codes", post(account::new_recovery_codes))
        .route("/account/factors/{id}/remove", post(account::remove_factor))
        .route("/account/devices/{id}/forget", post(account::forget_device))
        .route(
            "/account/elevations/{id}/revoke",
            post(account::revoke_elevation),
        )
        .route("/admin", get(admin::show))
        .route("/admin/signin", post(admin::sign_in))
        .route("/admin/continue", get(admin::continue_sign_in))
        .route("/admin/signout", post(admin::sign_out))
        .route("/admin/policy", post(admin::save_purpose))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{id}", get(admin::user))
        .route("/admin/users/{id}/reset", post(admin::reset_factors))
        .route("/admin/elevations", get(admin::elevations))
        .route(
            "/admin/elevations/{id}/revoke",
            post(admin::revoke_elevation),
        )
        .route("/assets/stepgate.css", get(stylesheet))
        .route("/assets/stepgate.js", get(script))
        .layer(middleware::from_fn_with_state(app, secure_headers))
}

const STYLESHEET: &str = include_str!("../../../../../web/assets/stepgate.css");
const SCRIPT: &str = include_str!("../../../../../web/assets/stepgate.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Every page and asset: only this origin's scripts, styles and images; no framing; no
/// referrer (a page's URL may carry its secret); HTML is never cached. Forms post to
/// this origin, and the step-up page may send the person on to an allow-listed
/// `return_to` (a redirect after a form is held to `form-action` too).
async fn secure_headers(State(app): State<SharedApp>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let mut form_action = String::from("'self'");
    for entry in &app.config.pages.return_to {
        if let Ok(url) = url::Url::parse(entry) {
            form_action.push(' ');
            form_action.push_str(&url.origin().ascii_serialization());
        }
    }
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action {form_action}"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A rendered page with its status.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            PageError::from(AppError::internal(format!("rendering a page: {e}"))).into_response()
        }
    }
}

/// A page that only says something: errors, and links that cannot be used.
#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    heading: &'a str,
    text: &'a str,
}

/// Why a page handler did not render its own page: an error page with its status, a
/// heading and a sentence for a person, or another page to go to first (the sign-in
/// page, the step-up page).
#[derive(Debug)]
pub enum PageError {
    Message {
        status: StatusCode,
        heading: Cow<'static, str>,
        text: Cow<'static, str>,
    },
    /// Somewhere else to go (a redirect to sign in, or to step up).
    Elsewhere(Box<Response>),
}

impl PageError {
    pub fn elsewhere(response: Response) -> Self {
        Self::Elsewhere(Box::new(response))
    }

    pub fn new(
        status: StatusCode,
        heading: impl Into<Cow<'static, str>>,
        text: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Message {
            status,
            heading: heading.into(),
            text: text.into(),
        }
    }

    /// A link that is unknown, or whose secret is wrong: the two look the same.
    pub fn bad_link() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that you opened the whole link the app gave you, or start the action again.",
        )
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        let status = status_of(e.code);
        match e.code {
            ErrorCode::NotFound => Self::bad_link(),
            ErrorCode::Internal => Self::new(
                status,
                "Something went wrong",
                "The server could not finish this. Try again in a moment.",
            ),
            _ => Self::new(status, e.code.title(), e.detail),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Message {
                status,
                heading,
                text,
            } => html(
                status,
                &Message {
                    heading: &heading,
                    text: &text,
                },
            ),
            Self::Elsewhere(response) => *response,
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`); anything else is a 4xx page.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "this page takes an HTML form",
            )
            .into());
        }
        let bytes = read_body(req, state).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| AppError::validation("the form was not sent as this page sends it").into())
    }
}

/// Query parameters; malformed ones are a 400 page.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Self)
            .map_err(|_| AppError::validation("this link's parameters are malformed").into())
    }
}

/// The one path parameter of a page (an id); a malformed one is an unknown link.
pub struct PagePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PagePath {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Self(id))
            .map_err(|_| PageError::bad_link())
    }
}
