//! Reading the audit log (admins).

use axum::Json;
use axum::extract::State;
use stepgate_api::Problem;
use stepgate_api::{AuditEvent, AuditList, AuditQuery};
use stepgate_store::AuditFilter;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{AdminCaller, ApiQuery};
use crate::http::rfc3339;

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
        .map(|e| AuditEvent {
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
