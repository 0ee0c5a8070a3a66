//! The hosted step-up page, `GET /stepup/{id}?secret=…[&return_to=…]`: what is being
//! authorized, the factors that may answer, and the challenge's state. Its forms post
//! back here with the page secret in the body (there is no cookie, so there is nothing
//! a cross-site form could ride on). A passed challenge hands out no token here: the
//! asking side collects it with `GET /v1/stepup/challenges/{id}`; with an allow-listed
//! `return_to` the page sends the person there.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stepgate_api::ChallengeProgress;
use stepgate_core::ErrorCode;
use stepgate_core::factor::FactorKind;

use super::{PageError, PageForm, PagePath, PageQuery, html};
use crate::app::SharedApp;
use crate::error::AppError;
use crate::factors::email;
use crate::http::error::status_of;
use crate::http::extract::ClientIp;
use crate::stepup::answers::{self, AnswerRequest, Answerer};
use crate::stepup::challenges::PAGE_SCOPE;
use crate::stepup::prompt::{self, Prompt};

/// The link's parameters, as the page's link and its forms carry them.
#[derive(Deserialize)]
pub struct Link {
    secret: Option<String>,
    return_to: Option<String>,
}

/// A link whose secret is this challenge's, and whose `return_to` (if any) the
/// allow-list admits, normalised.
struct CheckedLink {
    secret: String,
    return_to: Option<String>,
}

fn checked(app: &SharedApp, id: &str, link: Link) -> Result<CheckedLink, PageError> {
    let secret = link
        .secret
        .filter(|s| app.secrets.page_secret_matches(PAGE_SCOPE, id, s))
        .ok_or_else(PageError::bad_link)?;
    let return_to = match link.return_to.filter(|r| !r.is_empty()) {
        None => None,
        Some(raw) => Some(
            app.config
                .pages
                .return_target(&app.config.public_url, &raw)
                .map_err(|why| {
                    PageError::new(
                        StatusCode::BAD_REQUEST,
                        "This link's return address is not allowed",
                        format!("{why}. Nothing was done; go back to the app."),
                    )
                })?
                .to_string(),
        ),
    };
    Ok(CheckedLink { secret, return_to })
}

/// The page.
#[derive(Template)]
#[template(path = "stepup.html")]
struct StepupPage<'a> {
    id: &'a str,
    secret: &'a str,
    return_to: Option<&'a str>,
    title: &'a str,
    consequence: Option<&'a str>,
    summary: Option<&'a str>,
    /// `pending`, `passed`, `expired` or `blocked`.
    state: &'static str,
    login: bool,
    attempts_left: u32,
    /// The passkey ceremony's options (JSON), when a passkey may answer.
    passkey: Option<String>,
    totp: bool,
    email: bool,
    recovery: bool,
    needs_passkey: bool,
    /// Where a code was emailed (masked), when the page just sent one or is asked
    /// for it again.
    sent_to: Option<String>,
    /// An error and the form it belongs to (a factor's name, or `form`).
    error: Option<(&'static str, String)>,
}

impl StepupPage<'_> {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, text)| text.as_str())
    }
}

/// What one render shows besides the challenge.
#[derive(Default)]
struct Shown {
    sent_to: Option<String>,
    error: Option<(&'static str, String)>,
}

fn render(
    status: StatusCode,
    id: &str,
    link: &CheckedLink,
    prompt: &Prompt,
    shown: Shown,
) -> Response {
    let has = |k: FactorKind| prompt.offered.contains(&k);
    let page = StepupPage {
        id,
        secret: &link.secret,
        return_to: link.return_to.as_deref(),
        title: &prompt.title,
        consequence: prompt.consequence.as_deref(),
        summary: prompt.record.action_summary.as_deref(),
        state: match prompt.progress {
            ChallengeProgress::Pending => "pending",
            ChallengeProgress::Passed => "passed",
            ChallengeProgress::Expired => "expired",
            ChallengeProgress::Blocked => "blocked",
        },
        login: prompt.login,
        attempts_left: prompt.attempts_left,
        passkey: prompt
            .webauthn_options
            .as_ref()
            .filter(|_| has(FactorKind::Webauthn))
            .map(|o| o.to_string()),
        totp: has(FactorKind::Totp),
        email: has(FactorKind::EmailOtp),
        recovery: has(FactorKind::RecoveryCode),
        needs_passkey: prompt.needs_passkey(),
        sent_to: shown.sent_to,
        error: shown.error,
    };
    html(status, &page)
}

/// `GET /stepup/{id}`.
pub async fn show(
    State(app): State<SharedApp>,
    PagePath(id): PagePath,
    PageQuery(link): PageQuery<Link>,
) -> Result<Response, PageError> {
    let link = checked(&app, &id, link)?;
    let prompt = prompt::prompt(&app, &id).await?;
    Ok(render(
        StatusCode::OK,
        &id,
        &link,
        &prompt,
        Shown::default(),
    ))
}

/// An answer form.
#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(flatten)]
    link: Link,
    factor: Option<String>,
    code: Option<String>,
    /// `webauthn`: the credential JSON the page's script put there.
    credential: Option<String>,
}

/// `POST /stepup/{id}`: one answer.
pub async fn answer(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    PagePath(id): PagePath,
    PageForm(form): PageForm<AnswerForm>,
) -> Result<Response, PageError> {
    let link = checked(&app, &id, form.link)?;
    let factor = form
        .factor
        .ok_or_else(|| AppError::validation("the form names no factor"))?;
    let field = field_of(&factor);
    let credential = match (field, form.credential.as_deref()) {
        ("webauthn", None | Some("")) => {
            let e = AppError::validation(
                "the passkey did not answer: this page needs JavaScript for passkeys",
            );
            return again(&app, &id, &link, field, e).await;
        }
        ("webauthn", Some(json)) => match serde_json::from_str(json) {
            Ok(value) => Some(value),
            Err(_) => {
                let e = AppError::validation("the passkey's answer was not readable");
                return again(&app, &id, &link, field, e).await;
            }
        },
        _ => None,
    };
    let request = AnswerRequest {
        factor,
        code: form.code,
        credential,
    };
    match answers::answer(&app, Answerer::Page, ip, &id, request).await {
        Ok(_) => match &link.return_to {
            Some(target) => Ok(see_other(target)),
            None => {
                let prompt = prompt::prompt(&app, &id).await?;
                Ok(render(
                    StatusCode::OK,
                    &id,
                    &link,
                    &prompt,
                    Shown::default(),
                ))
            }
        },
        Err(e) => again(&app, &id, &link, field, e).await,
    }
}

/// `POST /stepup/{id}/send`: email a code.
pub async fn send_code(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    PagePath(id): PagePath,
    PageForm(link): PageForm<Link>,
) -> Result<Response, PageError> {
    let link = checked(&app, &id, link)?;
    let kind = FactorKind::EmailOtp.as_str();
    match email::send_for_challenge(&app, Answerer::Page, ip, &id, kind).await {
        Ok(sent) => {
            let prompt = prompt::prompt(&app, &id).await?;
            let shown = Shown {
                sent_to: Some(sent.sent_to),
                error: None,
            };
            Ok(render(StatusCode::OK, &id, &link, &prompt, shown))
        }
        Err(e) => again(&app, &id, &link, "email_otp", e).await,
    }
}

/// The form a factor's errors are shown beside.
fn field_of(factor: &str) -> &'static str {
    match FactorKind::parse(factor) {
        Ok(FactorKind::Totp) => "totp",
        Ok(FactorKind::EmailOtp) => "email_otp",
        Ok(FactorKind::RecoveryCode) => "recovery_code",
        Ok(FactorKind::Webauthn) => "webauthn",
        Ok(FactorKind::Password) | Err(_) => "form",
    }
}

/// The page again after a refused answer: the challenge as it is now (expired or
/// blocked shows as such) with the error beside the form it belongs to.
async fn again(
    app: &SharedApp,
    id: &str,
    link: &CheckedLink,
    field: &'static str,
    e: AppError,
) -> Result<Response, PageError> {
    if matches!(e.code, ErrorCode::NotFound | ErrorCode::Internal) {
        return Err(e.into());
    }
    let status = status_of(e.code);
    let prompt = prompt::prompt(app, id).await?;
    let text = match e.code {
        ErrorCode::StepupFailed => "That is not the right code.".to_owned(),
        ErrorCode::RateLimited => {
            "Too many tries from this network. Wait a minute, then try again.".to_owned()
        }
        _ => sentence(&e.detail),
    };
    let shown = Shown {
        // A wrong emailed code keeps its field on the page.
        sent_to: (field == "email_otp" && e.code == ErrorCode::StepupFailed)
            .then(|| "your email address".to_owned()),
        error: Some((field, text)),
    };
    Ok(render(status, id, link, &prompt, shown))
}

/// A service's detail as a sentence: capitalised, with a full stop.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A 303 to where the person goes next. Only an allow-listed `return_to` gets here,
/// and it never carries a token.
fn see_other(target: &str) -> Response {
    match HeaderValue::from_str(target) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => PageError::from(AppError::internal("an unsendable return_to")).into_response(),
    }
}
