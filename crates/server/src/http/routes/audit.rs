//! Reading the audit log (admins).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use stepgate_store::AuditFilter;
use utoipa::{IntoParams, ToSchema};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{AdminCaller, ApiQuery};
use crate::http::rfc3339;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events after this sequence number.
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    /// Only events of this type, e.g. `ACCOUNT_STEPUP_REUSED`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only events about this user id.
    pub user: Option<String>,
    /// Only events about this purpose.
    pub purpose: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub purpose: Option<String>,
    pub ip: Option<String>,
    pub factor: Option<String>,
    pub policy_version: Option<i64>,
    pub challenge_id: Option<String>,
    pub elevation_id: Option<String>,
    /// Event-specific fields.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEventView>,
}

/// Audit events, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "listAuditEvents",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditList),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
    ),
    security(("admin_key" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, AppError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(AppError::validation("limit must be 1 to 10000"));
    }
    let filter = AuditFilter {
        after_seq: q.after_seq.unwrap_or(0).max(0),
        limit,
        kind: q.kind,
        user_id: q.user,
        purpose: q.purpose,
    };
    let events = app
        .store
        .audit_events(&filter)
        .await?
        .into_iter()
        .map(|e| AuditEventView {
            seq: e.seq,
            kind: e.kind,
            at: rfc3339(e.at),
            user_id: e.user_id,
            session_id: e.session_id,
            purpose: e.purpose,
            ip: e.ip,
            factor: e.factor,
            policy_version: e.policy_version,
            challenge_id: e.challenge_id,
            elevation_id: e.elevation_id,
            data: e.data.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect();
    Ok(Json(AuditList { events }))
}
