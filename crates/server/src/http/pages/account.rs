//! The account page, `/account`: sign in (password, then the step-up the risk engine
//! asks for, on the hosted step-up page), then the person's factors, remembered
//! devices and live step-ups, each with its action.
//!
//! Signing in, the cookie and CSRF tokens are the [`Portal`]'s. Actions that need a step-up (a second factor, removing one) send the person to the
//! step-up page and back; the session-mode elevation they earn there is used when
//! they repeat the action.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use stepgate_core::ErrorCode;
use stepgate_core::factor::FactorKind;

use super::portal::{CsrfForm, Portal, SignInForm, see_other, step_up_then};
use super::{PageError, PageForm, PagePath, PageQuery, html};
use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::factors::{self, email, webauthn};
use crate::http::error::status_of;
use crate::http::extract::ClientIp;
use crate::stepup::elevations::{self, Revoker};

/// The account page as a portal people sign in to.
pub const ACCOUNT: Portal = Portal {
    path: "/account",
    cookie: "sg_account",
    login_cookie: "sg_login",
    csrf_scope: "account-csrf",
    login_scope: "account-login",
    heading: "Sign in to your account",
    lead: "Manage your passkeys, authenticator app, email codes, recovery codes and devices.",
};

// --- rendering ---

struct FactorRow {
    id: String,
    kind: String,
    label: String,
    name: Option<String>,
    created: String,
    last_used: Option<String>,
    pending: bool,
}

struct DeviceRow {
    id: String,
    what: String,
    last_seen: String,
    current: bool,
}

struct ElevationRow {
    id: String,
    title: String,
    expires: String,
    uses_left: String,
}

struct Ceremony {
    id: String,
    options: String,
}

struct TotpPanel {
    id: String,
    secret: String,
    qr_svg: String,
    error: Option<String>,
}

struct EmailPanel {
    id: String,
    sent_to: String,
    error: Option<String>,
}

struct CodesPanel {
    codes: Vec<String>,
    download: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    username: String,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    factors: Vec<FactorRow>,
    devices: Vec<DeviceRow>,
    elevations: Vec<ElevationRow>,
    passkeys: bool,
    has_totp: bool,
    has_email: bool,
    has_codes: bool,
    ceremony: Option<Ceremony>,
    totp: Option<TotpPanel>,
    email_panel: Option<EmailPanel>,
    recovery_codes: Option<CodesPanel>,
}

/// What one render of the account page shows besides the lists.
#[derive(Default)]
struct Extras {
    status: Option<StatusCode>,
    notice: Option<&'static str>,
    error: Option<String>,
    ceremony: Option<Ceremony>,
    totp: Option<TotpPanel>,
    email_panel: Option<EmailPanel>,
    recovery_codes: Option<Vec<String>>,
}

/// `2026-12-03T18:52:35Z` as `2026-12-03 18:52 UTC`.
fn when(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minutes) => format!("{} UTC", minutes.replace('T', " ")),
        None => rfc3339.to_owned(),
    }
}

fn label_of(f: &stepgate_api::Factor) -> String {
    match FactorKind::parse(&f.kind) {
        Ok(FactorKind::Webauthn) if f.hardware_bound == Some(true) => "Security key".into(),
        Ok(FactorKind::Webauthn) => "Passkey".into(),
        Ok(FactorKind::Totp) => "Authenticator app".into(),
        Ok(FactorKind::EmailOtp) => "Email codes".into(),
        Ok(FactorKind::RecoveryCode) => {
            format!("Recovery codes ({} left)", f.codes_left.unwrap_or(0))
        }
        _ => f.kind.clone(),
    }
}

async fn dashboard(
    app: &SharedApp,
    caller: &UserCaller,
    extras: Extras,
) -> Result<Response, PageError> {
    let user = app
        .store
        .user_by_id(&caller.session.user_id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::internal("a session's user is gone"))?;
    let listed = factors::list(app, caller).await?.factors;
    let kinds: Vec<String> = listed.iter().map(|f| f.kind.clone()).collect();
    let has = |k: FactorKind| kinds.iter().any(|x| x == k.as_str());
    let factors = listed
        .iter()
        .map(|f| FactorRow {
            id: f.factor_id.clone(),
            kind: f.kind.clone(),
            label: label_of(f),
            name: f.name.clone(),
            created: when(&f.created_at),
            last_used: f.last_used_at.as_deref().map(when),
            pending: f.status == "pending",
        })
        .collect();
    let devices = crate::devices::list(app, caller)
        .await?
        .devices
        .into_iter()
        .map(|d| DeviceRow {
            what: d.user_agent.unwrap_or_else(|| "A browser or app".into()),
            last_seen: when(&d.last_seen_at),
            current: d.current,
            id: d.device_id,
        })
        .collect();
    let elevations = elevations::list(app, caller)
        .await?
        .into_iter()
        .map(|live| ElevationRow {
            title: app
                .policy
                .purpose(&live.record.purpose)
                .map_or_else(|| live.record.purpose.clone(), |p| p.title.clone()),
            expires: when(&crate::time_format::rfc3339(live.record.expires_at)),
            uses_left: live
                .uses_left
                .map_or_else(|| "any".into(), |n| n.to_string()),
            id: live.record.id,
        })
        .collect();
    let page = AccountPage {
        username: user.username,
        csrf: ACCOUNT.csrf(app, caller),
        notice: extras.notice,
        error: extras.error,
        factors,
        devices,
        elevations,
        passkeys: app.webauthn.is_some(),
        has_totp: has(FactorKind::Totp),
        has_email: has(FactorKind::EmailOtp),
        has_codes: has(FactorKind::RecoveryCode),
        ceremony: extras.ceremony,
        totp: extras.totp,
        email_panel: extras.email_panel,
        recovery_codes: extras.recovery_codes.map(|codes| {
            let text: String = codes.iter().map(|c| format!("{c}\n")).collect();
            let download = format!(
                "data:text/plain;charset=utf-8,{}",
                url::form_urlencoded::byte_serialize(text.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            );
            CodesPanel { codes, download }
        }),
    };
    Ok(html(extras.status.unwrap_or(StatusCode::OK), &page))
}

/// A refused action: the step-up page if a step-up lifts it, the sign-in page if the
/// session ended, otherwise the account page with the reason.
async fn refused(app: &SharedApp, caller: &UserCaller, e: AppError) -> Result<Response, PageError> {
    if e.code == ErrorCode::StepupRequired
        && let Some(go) = step_up_then(app, &e, "/account?done=stepped-up")
    {
        return Ok(go);
    }
    if e.code == ErrorCode::Internal {
        return Err(e.into());
    }
    let extras = Extras {
        status: Some(status_of(e.code)),
        error: Some(e.detail.into_owned()),
        ..Extras::default()
    };
    dashboard(app, caller, extras).await
}

// --- routes ---

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice_of(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "passkey" => "Passkey added.",
        "totp" => "Authenticator app added.",
        "email" => "Email address added.",
        "removed" => "Factor removed.",
        "forgotten" => "Device forgotten: its next sign-in is a new device.",
        "revoked" => "Step-up revoked.",
        "stepped-up" => "Step-up passed. Do what you were doing again to finish it.",
        _ => return None,
    })
}

/// `GET /account`.
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    PageQuery(done): PageQuery<Done>,
) -> Result<Response, PageError> {
    match ACCOUNT.signed_in(&app, &headers).await {
        Some(caller) => {
            let extras = Extras {
                notice: notice_of(done.done.as_deref()),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        None => Ok(ACCOUNT.sign_in_page(StatusCode::OK, "", None)),
    }
}

/// `POST /account/signin`.
pub async fn sign_in(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Result<Response, PageError> {
    ACCOUNT.sign_in(&app, ip, &headers, form).await
}

/// `GET /account/continue`.
pub async fn continue_sign_in(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    ACCOUNT.continue_sign_in(&app, &headers).await
}

/// `POST /account/signout`.
pub async fn sign_out(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    ACCOUNT.sign_out(&app, &headers, form.csrf.as_deref()).await
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: Option<String>,
    name: Option<String>,
}

/// `POST /account/passkeys`: start a registration.
pub async fn start_passkey(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<PasskeyForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    let name = form.name.filter(|n| !n.trim().is_empty());
    match webauthn::start_registration(&app, &caller, ip, None, name).await {
        Ok(started) => {
            let extras = Extras {
                ceremony: Some(Ceremony {
                    id: started.registration_id,
                    options: started.options.to_string(),
                }),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

#[derive(Deserialize)]
pub struct CredentialForm {
    csrf: Option<String>,
    credential: Option<String>,
}

/// `POST /account/passkeys/{id}`: finish it with the browser's credential.
pub async fn finish_passkey(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CredentialForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    let credential = match form.credential.as_deref().map(serde_json::from_str) {
        Some(Ok(value)) => value,
        _ => {
            let e = AppError::validation(
                "the passkey did not answer: this page needs JavaScript for passkeys",
            );
            return refused(&app, &caller, e).await;
        }
    };
    match webauthn::finish_registration(&app, &caller, ip, &id, credential).await {
        Ok(factor) => {
            added(
                &app,
                &caller,
                factor.recovery_codes,
                "passkey",
                "Passkey added.",
            )
            .await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// After a factor was added: the first one comes with recovery codes, shown at once.
async fn added(
    app: &SharedApp,
    caller: &UserCaller,
    codes: Option<Vec<String>>,
    done: &str,
    notice: &'static str,
) -> Result<Response, PageError> {
    match codes {
        Some(codes) => {
            let extras = Extras {
                notice: Some(notice),
                recovery_codes: Some(codes),
                ..Extras::default()
            };
            dashboard(app, caller, extras).await
        }
        None => Ok(see_other(&format!("/account?done={done}"))),
    }
}

/// `POST /account/totp`: start enrolling an authenticator app (its QR code).
pub async fn start_totp(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    match factors::enroll_totp(&app, &caller, ip, None).await {
        Ok(enrollment) => {
            let extras = Extras {
                totp: Some(TotpPanel {
                    id: enrollment.factor_id,
                    secret: enrollment.secret,
                    qr_svg: enrollment.qr_svg,
                    error: None,
                }),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: Option<String>,
    code: Option<String>,
}

/// `POST /account/totp/{id}`: confirm it with a code.
pub async fn confirm_totp(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    let code = form.code.unwrap_or_default();
    match factors::confirm_totp(&app, &caller, ip, &id, code.trim()).await {
        Ok(factor) => {
            added(
                &app,
                &caller,
                factor.recovery_codes,
                "totp",
                "Authenticator app added.",
            )
            .await
        }
        Err(e) if e.code == ErrorCode::ValidationFailed || e.code == ErrorCode::StepupFailed => {
            // The QR code is not shown again: the secret is only shown once.
            let extras = Extras {
                status: Some(status_of(e.code)),
                error: Some(format!(
                    "The code did not confirm the authenticator app ({}). Enter the code it shows now, or remove the unconfirmed factor and start again.",
                    e.detail
                )),
                totp: None,
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf: Option<String>,
    email: Option<String>,
}

/// `POST /account/email`: add an address (a code is sent to confirm it).
pub async fn start_email(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<EmailForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    let address = form.email.unwrap_or_default();
    match email::enroll(&app, &caller, ip, None, address.trim()).await {
        Ok(enrollment) => {
            let extras = Extras {
                email_panel: Some(EmailPanel {
                    id: enrollment.factor_id,
                    sent_to: enrollment.sent_to,
                    error: None,
                }),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// `POST /account/email/{id}`: confirm it with the code from the mail.
pub async fn confirm_email(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    let code = form.code.unwrap_or_default();
    match email::confirm(&app, &caller, ip, &id, code.trim()).await {
        Ok(factor) => {
            added(
                &app,
                &caller,
                factor.recovery_codes,
                "email",
                "Email address added.",
            )
            .await
        }
        Err(e) if e.code == ErrorCode::ValidationFailed => {
            let extras = Extras {
                status: Some(status_of(e.code)),
                email_panel: Some(EmailPanel {
                    id,
                    sent_to: "your address".into(),
                    error: Some(e.detail.into_owned()),
                }),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// `POST /account/recovery-codes`: a new set, shown once (the old set stops working).
pub async fn new_recovery_codes(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    match factors::create_recovery_codes(&app, &caller, ip, None).await {
        Ok(codes) => {
            let extras = Extras {
                notice: Some("New recovery codes made."),
                recovery_codes: Some(codes.codes),
                ..Extras::default()
            };
            dashboard(&app, &caller, extras).await
        }
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// `POST /account/factors/{id}/remove`: its own step-up (`factors:delete`) first.
pub async fn remove_factor(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    match factors::delete(&app, &caller, ip, None, &id).await {
        Ok(()) => Ok(see_other("/account?done=removed")),
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// `POST /account/devices/{id}/forget`.
pub async fn forget_device(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    match crate::devices::forget(&app, &caller, &id).await {
        Ok(()) => Ok(see_other("/account?done=forgotten")),
        Err(e) => refused(&app, &caller, e).await,
    }
}

/// `POST /account/elevations/{id}/revoke`.
pub async fn revoke_elevation(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let caller = ACCOUNT.acting(&app, &headers, form.csrf.as_deref()).await?;
    match elevations::revoke(&app, Revoker::User(&caller), ip, &id).await {
        Ok(()) => Ok(see_other("/account?done=revoked")),
        Err(e) => refused(&app, &caller, e).await,
    }
}
