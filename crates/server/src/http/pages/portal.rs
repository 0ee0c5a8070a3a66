//! Signing a person in to a hosted page that acts for them (the account page, the
//! admin console): a password, then the step-up the risk engine asks for on the
//! hosted step-up page and back; the sign-in cookie; CSRF tokens.
//!
//! The sign-in cookie holds the session's access token, so it is as short-lived as the
//! token and ends with the server-side session: `HttpOnly`, `SameSite=Strict`, for the
//! portal's path only, `Secure` when `public_url` is https. Every form carries a CSRF
//! token derived from the session id with the secrets key, checked before anything is
//! done. A sign-in that needs a step-up is finished only by the browser that started it
//! (a login cookie bound to the challenge).

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use stepgate_core::ErrorCode;
use stepgate_core::identity::{Password, Username, check_device_field};

use super::{PageError, html};
use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::http::error::status_of;
use crate::login::{self, SignIn};
use crate::stepup::progress::{self, Collector, Yielded};

/// A hosted page people sign in to.
pub struct Portal {
    /// Its path, which its cookies are limited to.
    pub path: &'static str,
    /// The sign-in cookie.
    pub cookie: &'static str,
    /// The cookie that binds a pending login challenge to this browser.
    pub login_cookie: &'static str,
    /// Page-secret scopes of its CSRF tokens and login cookies.
    pub csrf_scope: &'static str,
    pub login_scope: &'static str,
    pub heading: &'static str,
    pub lead: &'static str,
}

/// This browser's own id (a random cookie, for every portal), which names its device to
/// the risk engine.
const DEVICE_COOKIE: &str = "sg_device";

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Portal {
    /// A `Set-Cookie` for this portal's path; `max_age` 0 clears it.
    fn set_cookie(&self, app: &SharedApp, name: &str, value: &str, max_age: i64) -> HeaderValue {
        cookie_header(app, name, value, self.path, max_age)
    }

    /// The person the sign-in cookie names: its token verifies, is not bound to a key
    /// a browser form cannot prove, and its session is live.
    pub async fn signed_in(&self, app: &SharedApp, headers: &HeaderMap) -> Option<UserCaller> {
        let token = cookie_value(headers, self.cookie)?;
        let claims = app.tokens.verify(token).ok()?;
        if claims.cnf.is_some() {
            return None;
        }
        let session = app
            .store
            .session(&claims.sid)
            .await
            .ok()
            .flatten()
            .filter(|s| s.user_id == claims.sub && s.to_domain().is_live(app.now()))?;
        Some(UserCaller { claims, session })
    }

    /// The CSRF token of the caller's forms.
    pub fn csrf(&self, app: &SharedApp, caller: &UserCaller) -> String {
        app.secrets.page_secret(self.csrf_scope, &caller.session.id)
    }

    /// The signed-in caller of a form, its CSRF token checked: otherwise the sign-in
    /// page (no cookie) or a 403 page, and nothing is done.
    pub async fn acting(
        &self,
        app: &SharedApp,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<UserCaller, PageError> {
        let Some(caller) = self.signed_in(app, headers).await else {
            return Err(PageError::elsewhere(see_other(self.path)));
        };
        let valid = csrf.is_some_and(|c| {
            app.secrets
                .page_secret_matches(self.csrf_scope, &caller.session.id, c)
        });
        if !valid {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form cannot be used",
                "It did not come from this page. Nothing was changed; open the page again and retry.",
            ));
        }
        Ok(caller)
    }

    pub fn sign_in_page(
        &self,
        status: StatusCode,
        username: &str,
        error: Option<String>,
    ) -> Response {
        html(
            status,
            &SignInPage {
                heading: self.heading,
                lead: self.lead,
                action: &format!("{}/signin", self.path),
                username,
                error,
            },
        )
    }

    /// `POST {path}/signin`: a password; then a session, or the step-up page for the
    /// login challenge the risk engine asked for (coming back to `{path}/continue`).
    pub async fn sign_in(
        &self,
        app: &SharedApp,
        ip: std::net::IpAddr,
        headers: &HeaderMap,
        form: SignInForm,
    ) -> Result<Response, PageError> {
        let raw_name = form.username.unwrap_or_default();
        let password = form.password.unwrap_or_default();
        let username = match Username::parse(&raw_name) {
            Ok(u) => u,
            Err(e) => {
                let text = Some(e.detail.into_owned());
                return Ok(self.sign_in_page(StatusCode::BAD_REQUEST, &raw_name, text));
            }
        };
        if password.is_empty() || password.chars().count() > Password::MAX_CHARS {
            let text = Some("The password must be 1 to 256 characters.".to_owned());
            return Ok(self.sign_in_page(StatusCode::BAD_REQUEST, &raw_name, text));
        }
        let (device, new_device) = match cookie_value(headers, DEVICE_COOKIE)
            .filter(|d| d.len() == 43 && check_device_field("device", d).is_ok())
        {
            Some(d) => (d.to_owned(), false),
            None => {
                let mut bytes = [0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| AppError::internal("random source failed"))?;
                (URL_SAFE_NO_PAD.encode(bytes), true)
            }
        };
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .filter(|v| check_device_field("User-Agent", v).is_ok())
            .map(str::to_owned);
        let request = SignIn {
            username,
            password,
            fingerprint: Some(device.clone()),
            user_agent,
            dpop_proof: None,
        };
        let mut response = match login::sign_in(app, ip, request).await {
            Ok(granted) => self.signed_in_as(app, &granted.access_token, granted.expires_in),
            Err(e) if e.code == ErrorCode::StepupRequired => {
                let Some(id) = e.extensions.get("challenge_id").and_then(|v| v.as_str()) else {
                    return Err(AppError::internal("a login challenge without its id").into());
                };
                // Only this browser may collect the session the challenge makes.
                let pass = format!("{id}.{}", app.secrets.page_secret(self.login_scope, id));
                let back = format!("{}/continue", self.path);
                let mut r = step_up_then(app, &e, &back)
                    .ok_or_else(|| AppError::internal("a login challenge without its page"))?;
                let cookie = self.set_cookie(
                    app,
                    self.login_cookie,
                    &pass,
                    app.limits.challenge_ttl_seconds,
                );
                r.headers_mut().append(header::SET_COOKIE, cookie);
                r
            }
            Err(e) if e.code == ErrorCode::Internal => return Err(e.into()),
            Err(e) => {
                let text = match e.code {
                    ErrorCode::InvalidCredentials => {
                        "The username or password is not right.".to_owned()
                    }
                    _ => e.detail.into_owned(),
                };
                self.sign_in_page(status_of(e.code), &raw_name, Some(text))
            }
        };
        if new_device {
            let cookie = cookie_header(app, DEVICE_COOKIE, &device, "/", 400 * 24 * 3600);
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok(response)
    }

    /// A 303 to the portal with the sign-in cookie set.
    fn signed_in_as(&self, app: &SharedApp, access_token: &str, expires_in: i64) -> Response {
        let mut r = see_other(self.path);
        let cookie = self.set_cookie(app, self.cookie, access_token, expires_in);
        r.headers_mut().append(header::SET_COOKIE, cookie);
        r
    }

    /// `GET {path}/continue`: back from the step-up page with a passed login challenge,
    /// this browser (its login cookie) collects the session, once.
    pub async fn continue_sign_in(
        &self,
        app: &SharedApp,
        headers: &HeaderMap,
    ) -> Result<Response, PageError> {
        let id = cookie_value(headers, self.login_cookie)
            .and_then(|v| v.split_once('.'))
            .filter(|(id, mac)| app.secrets.page_secret_matches(self.login_scope, id, mac))
            .map(|(id, _)| id.to_owned());
        let Some(id) = id else {
            return Ok(see_other(self.path));
        };
        let view = progress::collect(app, Collector::Service, &id).await?;
        let mut response = match view.yielded {
            Some(Yielded::Login(granted)) => {
                self.signed_in_as(app, &granted.access_token, granted.expires_in)
            }
            _ => self.sign_in_page(
                StatusCode::OK,
                "",
                Some("That sign-in was not completed. Sign in again.".into()),
            ),
        };
        let cleared = self.set_cookie(app, self.login_cookie, "", 0);
        response.headers_mut().append(header::SET_COOKIE, cleared);
        Ok(response)
    }

    /// `POST {path}/signout`: the session ends, the cookie goes.
    pub async fn sign_out(
        &self,
        app: &SharedApp,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<Response, PageError> {
        let caller = self.acting(app, headers, csrf).await?;
        login::sign_out(app, &caller).await?;
        let mut r = see_other(self.path);
        r.headers_mut()
            .append(header::SET_COOKIE, self.set_cookie(app, self.cookie, "", 0));
        Ok(r)
    }
}

fn cookie_header(
    app: &SharedApp,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: Option<String>,
    password: Option<String>,
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    heading: &'a str,
    lead: &'a str,
    action: &'a str,
    username: &'a str,
    error: Option<String>,
}

pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(l) => (StatusCode::SEE_OTHER, [(header::LOCATION, l)]).into_response(),
        Err(_) => PageError::from(AppError::internal("an unsendable location")).into_response(),
    }
}

/// The step-up page for a refused action (its problem's `stepup_url`), coming back to
/// `back` (a path on this server).
pub fn step_up_then(app: &SharedApp, e: &AppError, back: &str) -> Option<Response> {
    let url = e.extensions.get("stepup_url")?.as_str()?;
    let own = format!("{}{back}", app.config.public_url.trim_end_matches('/'));
    let return_to: String = url::form_urlencoded::byte_serialize(own.as_bytes()).collect();
    Some(see_other(&format!("{url}&return_to={return_to}")))
}
