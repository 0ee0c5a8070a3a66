//! The admin console, `/admin`: a user with the `admin` role signs in (the [`Portal`])
//! and steps up for the built-in `admin:console` purpose (a session-mode elevation
//! that lasts its TTL); then the step-up policy (tighten, never below the minimum), the
//! audit log with filters and paging, users (find, see, reset factors) and every live
//! elevation (revoke). Every request checks all three again: role, session, elevation.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use stepgate_core::ErrorCode;
use stepgate_core::audit::{EventType, Severity};
use stepgate_core::purpose::{FactorClass, Requirement};

use super::portal::{CsrfForm, Portal, SignInForm, see_other, step_up_then};
use super::{PageError, PageForm, PagePath, PageQuery, html};
use crate::app::SharedApp;
use crate::audit::AuditSearch;
use crate::caller::UserCaller;
use crate::config::ADMIN_CONSOLE;
use crate::error::AppError;
use crate::http::error::status_of;
use crate::http::extract::ClientIp;
use crate::policy::PurposeEdit;
use crate::stepup::elevations::Revoker;
use crate::time_format::rfc3339;

/// The admin console as a portal people sign in to.
pub const ADMIN: Portal = Portal {
    path: "/admin",
    cookie: "sg_admin",
    login_cookie: "sg_admin_login",
    csrf_scope: "admin-csrf",
    login_scope: "admin-login",
    heading: "Sign in to the admin console",
    lead: "For users with the admin role. You will be asked to step up before the console opens.",
};

/// The role that may use the console.
const ADMIN_ROLE: &str = "admin";

/// Events per audit page.
const AUDIT_PAGE: i64 = 50;

/// An admin with the console open: the role, a live session, the `admin:console`
/// elevation.
struct Admin {
    caller: UserCaller,
    name: String,
    csrf: String,
}

/// Whether `caller` may use the console now; otherwise the page that says what to do
/// (sign in, step up, or that the account is no admin's).
async fn admitted(
    app: &SharedApp,
    ip: std::net::IpAddr,
    caller: UserCaller,
) -> Result<Admin, PageError> {
    let Some(user) = app
        .store
        .user_by_id(&caller.session.user_id)
        .await
        .map_err(AppError::from)?
    else {
        return Err(PageError::elsewhere(see_other("/admin")));
    };
    let roles: Vec<String> = serde_json::from_str(&user.roles).unwrap_or_default();
    if !roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This account is not an admin",
            "The admin console is for users with the admin role.",
        ));
    }
    let summary = "Open the admin console".to_owned();
    match crate::factors::require_elevation(app, &caller, ip, None, ADMIN_CONSOLE, summary).await {
        Ok(_) => {}
        Err(e) if e.code == ErrorCode::StepupRequired => {
            return Err(match step_up_then(app, &e, "/admin") {
                Some(go) => PageError::elsewhere(go),
                None => PageError::new(
                    StatusCode::FORBIDDEN,
                    "Add a factor first",
                    "The admin console needs a step-up, and this account has no second factor. Add one on the account page.",
                ),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Admin {
        csrf: ADMIN.csrf(app, &caller),
        name: user.username,
        caller,
    })
}

/// The admin of a page view.
async fn viewing(
    app: &SharedApp,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<Admin, PageError> {
    match ADMIN.signed_in(app, headers).await {
        Some(caller) => admitted(app, ip, caller).await,
        None => Err(PageError::elsewhere(ADMIN.sign_in_page(
            StatusCode::OK,
            "",
            None,
        ))),
    }
}

/// The admin of a form, its CSRF token checked first.
async fn acting(
    app: &SharedApp,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Admin, PageError> {
    let caller = ADMIN.acting(app, headers, csrf).await?;
    admitted(app, ip, caller).await
}

// --- rendering ---

struct PurposeRow {
    name: String,
    slug: String,
    title: String,
    minimum: String,
    phishing_resistant: bool,
    ttl: i64,
    single_use: bool,
    bind_ip: bool,
    min_phishing_resistant: bool,
    min_ttl: i64,
    min_single_use: bool,
    min_bind_ip: bool,
    error: Option<String>,
}

struct EventRow {
    seq: i64,
    at: String,
    kind: String,
    severity: &'static str,
    user: String,
    purpose: String,
    ip: String,
}

#[derive(Default)]
struct Filter {
    kind: String,
    severity: String,
    user: String,
    purpose: String,
    since: String,
    until: String,
}

struct UserRow {
    id: String,
    name: String,
    roles: String,
}

struct UserDetail {
    id: String,
    name: String,
    factors: Vec<String>,
    devices: Vec<String>,
}

struct ElevationRow {
    id: String,
    user: String,
    title: String,
    expires: String,
}

#[derive(Template, Default)]
#[template(path = "admin.html")]
struct AdminPage {
    view: &'static str,
    heading: String,
    admin: String,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    policy_version: i64,
    purposes: Vec<PurposeRow>,
    event_types: Vec<&'static str>,
    severities: Vec<&'static str>,
    filter: Filter,
    events: Vec<EventRow>,
    next_page: Option<String>,
    query: String,
    users: Vec<UserRow>,
    user: Option<UserDetail>,
    elevations: Vec<ElevationRow>,
}

impl AdminPage {
    fn of(admin: &Admin, view: &'static str, heading: &str) -> Self {
        Self {
            view,
            heading: heading.to_owned(),
            admin: admin.name.clone(),
            csrf: admin.csrf.clone(),
            ..Self::default()
        }
    }
}

fn described(r: &Requirement) -> String {
    format!(
        "{}, lives {} s, {}, {}",
        match r.factor {
            FactorClass::PhishingResistant => "phishing-resistant only",
            FactorClass::Any => "any factor",
        },
        r.ttl_seconds,
        if r.single_use {
            "used once"
        } else {
            "reusable"
        },
        if r.bind_ip {
            "bound to its network"
        } else {
            "any network"
        },
    )
}

/// The policy page, with `error` beside purpose `failed`.
async fn policy_page(
    app: &SharedApp,
    admin: &Admin,
    status: StatusCode,
    notice: Option<String>,
    failed: Option<(&str, String)>,
) -> Result<Response, PageError> {
    let (version, in_force) = crate::policy::in_force(app).await?;
    let purposes = in_force
        .into_iter()
        .map(|p| {
            let (m, r) = (p.purpose.minimum, p.requirement);
            let name = p.purpose.name.as_str().to_owned();
            PurposeRow {
                slug: name.replace(':', "-"),
                title: p.purpose.title.clone(),
                minimum: described(&m),
                phishing_resistant: r.factor == FactorClass::PhishingResistant,
                ttl: r.ttl_seconds,
                single_use: r.single_use,
                bind_ip: r.bind_ip,
                min_phishing_resistant: m.factor == FactorClass::PhishingResistant,
                min_ttl: m.ttl_seconds,
                min_single_use: m.single_use,
                min_bind_ip: m.bind_ip,
                error: failed
                    .as_ref()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, e)| e.clone()),
                name,
            }
        })
        .collect();
    let page = AdminPage {
        policy_version: version,
        purposes,
        notice,
        ..AdminPage::of(admin, "policy", "Step-up policy")
    };
    Ok(html(status, &page))
}

// --- routes ---

/// `GET /admin`: the step-up policy.
pub async fn show(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let admin = viewing(&app, ip, &headers).await?;
    policy_page(&app, &admin, StatusCode::OK, None, None).await
}

/// `POST /admin/signin`.
pub async fn sign_in(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<SignInForm>,
) -> Result<Response, PageError> {
    ADMIN.sign_in(&app, ip, &headers, form).await
}

/// `GET /admin/continue`.
pub async fn continue_sign_in(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    ADMIN.continue_sign_in(&app, &headers).await
}

/// `POST /admin/signout`.
pub async fn sign_out(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    ADMIN.sign_out(&app, &headers, form.csrf.as_deref()).await
}

#[derive(Deserialize)]
pub struct PurposeForm {
    csrf: Option<String>,
    purpose: Option<String>,
    factor: Option<String>,
    ttl_seconds: Option<String>,
    single_use: Option<String>,
    bind_ip: Option<String>,
}

fn yes_no(field: &str, raw: Option<&str>) -> Result<Option<bool>, AppError> {
    match raw {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(_) => Err(AppError::validation(format!("{field} must be yes or no"))),
    }
}

/// `POST /admin/policy`: save one purpose's requirement as a new policy version.
pub async fn save_purpose(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<PurposeForm>,
) -> Result<Response, PageError> {
    let admin = acting(&app, ip, &headers, form.csrf.as_deref()).await?;
    let name = form.purpose.unwrap_or_default();
    let edit = (|| {
        let ttl_seconds = form
            .ttl_seconds
            .as_deref()
            .map(|t| {
                t.trim().parse::<i64>().map_err(|_| {
                    AppError::validation("the lifetime must be a whole number of seconds")
                })
            })
            .transpose()?;
        Ok::<_, AppError>((
            ttl_seconds,
            yes_no("single_use", form.single_use.as_deref())?,
            yes_no("bind_ip", form.bind_ip.as_deref())?,
        ))
    })();
    let changed = match edit {
        Ok((ttl_seconds, single_use, bind_ip)) => {
            let edit = PurposeEdit {
                factor: form.factor.as_deref(),
                ttl_seconds,
                single_use,
                bind_ip,
                approvals: None,
            };
            crate::policy::change_purpose(&app, &name, edit).await
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok((version, _)) => {
            let notice = format!("Saved: policy version {version} is in force.");
            policy_page(&app, &admin, StatusCode::OK, Some(notice), None).await
        }
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let text = match e.code {
                ErrorCode::PolicyBelowMinimum => format!(
                    "Not saved: that would loosen it below its platform minimum ({}).",
                    e.detail
                ),
                _ => format!("Not saved: {}", e.detail),
            };
            policy_page(&app, &admin, status_of(e.code), None, Some((&name, text))).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AuditForm {
    #[serde(rename = "type")]
    kind: Option<String>,
    severity: Option<String>,
    user: Option<String>,
    purpose: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
}

/// `GET /admin/audit`: the log, filtered, a page at a time (oldest first; "next" goes
/// on after the page's last `seq`).
pub async fn audit(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageQuery(q): PageQuery<AuditForm>,
) -> Result<Response, PageError> {
    let admin = viewing(&app, ip, &headers).await?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let filter = Filter {
        kind: text(&q.kind),
        severity: text(&q.severity),
        user: text(&q.user),
        purpose: text(&q.purpose),
        since: text(&q.since),
        until: text(&q.until),
    };
    let search = AuditSearch {
        after_seq: q.after,
        limit: Some(AUDIT_PAGE),
        kind: q.kind.clone(),
        user_id: q.user.clone(),
        purpose: q.purpose.clone(),
        severity: q.severity.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
    };
    let mut page = AdminPage {
        event_types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
        severities: Severity::ALL.iter().map(|s| s.as_str()).collect(),
        ..AdminPage::of(&admin, "audit", "Audit log")
    };
    let status = match crate::audit::search(&app, search).await {
        Ok(events) => {
            if events.len() as i64 == AUDIT_PAGE
                && let Some(last) = events.last()
            {
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("type", &filter.kind)
                    .append_pair("severity", &filter.severity)
                    .append_pair("user", &filter.user)
                    .append_pair("purpose", &filter.purpose)
                    .append_pair("since", &filter.since)
                    .append_pair("until", &filter.until)
                    .append_pair("after", &last.seq.to_string())
                    .finish();
                page.next_page = Some(format!("/admin/audit?{query}"));
            }
            page.events = events
                .into_iter()
                .map(|e| EventRow {
                    severity: EventType::ALL
                        .iter()
                        .find(|t| t.as_str() == e.kind)
                        .map_or("info", |t| t.severity().as_str()),
                    seq: e.seq,
                    at: e.at,
                    kind: e.kind,
                    user: e.user_id.unwrap_or_default(),
                    purpose: e.purpose.unwrap_or_default(),
                    ip: e.ip.unwrap_or_default(),
                })
                .collect();
            StatusCode::OK
        }
        Err(e) if e.code == ErrorCode::Internal => return Err(e.into()),
        Err(e) => {
            page.error = Some(e.detail.into_owned());
            status_of(e.code)
        }
    };
    page.filter = filter;
    Ok(html(status, &page))
}

#[derive(Deserialize)]
pub struct UserQuery {
    q: Option<String>,
}

/// `GET /admin/users?q=`: users whose name starts with `q`.
pub async fn users(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageQuery(q): PageQuery<UserQuery>,
) -> Result<Response, PageError> {
    let admin = viewing(&app, ip, &headers).await?;
    let query = q.q.unwrap_or_default();
    let prefix: String = query.chars().take(64).collect();
    let users = app
        .store
        .users_named_like(&prefix, 100)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|u| UserRow {
            roles: serde_json::from_str::<Vec<String>>(&u.roles)
                .unwrap_or_default()
                .join(", "),
            id: u.id,
            name: u.username,
        })
        .collect();
    let page = AdminPage {
        users,
        query,
        ..AdminPage::of(&admin, "users", "Users")
    };
    Ok(html(StatusCode::OK, &page))
}

async fn user_page(
    app: &SharedApp,
    admin: &Admin,
    id: &str,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let user = app
        .store
        .user_by_id(id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(PageError::bad_link)?;
    let factors = app
        .store
        .factors_of_user(id)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|f| {
            let used = f.last_used_at.map_or_else(
                || "never used".to_owned(),
                |t| format!("last used {}", rfc3339(t)),
            );
            let name = f.name.map(|n| format!(" “{n}”")).unwrap_or_default();
            format!("{}{name} ({}), {used}", f.kind.as_str(), f.status.as_str())
        })
        .collect();
    let devices = app
        .store
        .devices_of_user(id)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|d| {
            format!(
                "{}, last seen {}",
                d.user_agent.unwrap_or_else(|| "a browser or app".into()),
                rfc3339(d.last_seen_at)
            )
        })
        .collect();
    let page = AdminPage {
        notice,
        user: Some(UserDetail {
            id: user.id,
            name: user.username.clone(),
            factors,
            devices,
        }),
        ..AdminPage::of(admin, "user", &format!("User {}", user.username))
    };
    Ok(html(StatusCode::OK, &page))
}

/// `GET /admin/users/{id}`.
pub async fn user(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
) -> Result<Response, PageError> {
    let admin = viewing(&app, ip, &headers).await?;
    user_page(&app, &admin, &id, None).await
}

/// `POST /admin/users/{id}/reset`: remove every factor of the user (critical).
pub async fn reset_factors(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let admin = acting(&app, ip, &headers, form.csrf.as_deref()).await?;
    let by = format!("admin user {}", admin.caller.session.user_id);
    let reset = crate::factors::reset(&app, &id, &by).await?;
    let notice = format!(
        "Reset: {} factors removed, {} sessions ended.",
        reset.factors_removed, reset.sessions_ended
    );
    user_page(&app, &admin, &id, Some(notice)).await
}

/// `GET /admin/elevations`: every live elevation.
pub async fn elevations(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let admin = viewing(&app, ip, &headers).await?;
    elevations_page(&app, &admin, None).await
}

async fn elevations_page(
    app: &SharedApp,
    admin: &Admin,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let live = app
        .store
        .live_elevations(app.now(), 500)
        .await
        .map_err(AppError::from)?;
    let mut rows = Vec::with_capacity(live.len());
    for e in live {
        let user = app
            .store
            .user_by_id(&e.user_id)
            .await
            .map_err(AppError::from)?
            .map_or_else(|| e.user_id.clone(), |u| u.username);
        rows.push(ElevationRow {
            title: app
                .policy
                .purpose(&e.purpose)
                .map_or_else(|| e.purpose.clone(), |p| p.title.clone()),
            expires: rfc3339(e.expires_at),
            id: e.id,
            user,
        });
    }
    let page = AdminPage {
        notice,
        elevations: rows,
        ..AdminPage::of(admin, "elevations", "Live step-ups")
    };
    Ok(html(StatusCode::OK, &page))
}

/// `POST /admin/elevations/{id}/revoke`.
pub async fn revoke_elevation(
    State(app): State<SharedApp>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PagePath(id): PagePath,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    let admin = acting(&app, ip, &headers, form.csrf.as_deref()).await?;
    let by = Revoker::Admin(&admin.caller.session.user_id);
    crate::stepup::elevations::revoke(&app, by, ip, &id).await?;
    elevations_page(&app, &admin, Some("Step-up revoked.".into())).await
}
