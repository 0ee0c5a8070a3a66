//! Reading the audit log (admins).

use axum::Json;
use axum::extract::State;
use stepgate_api::Problem;
use stepgate_api::{AuditList, AuditQuery, AuditVerification};

use crate::app::SharedApp;
use crate::audit::AuditSearch;
use crate::error::AppError;
use crate::http::extract::{AdminCaller, ApiQuery};

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
    let search = AuditSearch {
        after_seq: q.after_seq,
        limit: q.limit,
        kind: q.kind,
        user_id: q.user,
        purpose: q.purpose,
        severity: q.severity,
        since: q.since,
        until: q.until,
    };
    let events = crate::audit::search(&app, search).await?;
    Ok(Json(AuditList { events }))
}

/// Checks the hash chain from its first event, against the signed checkpoints: intact
/// with the number of events checked, or the first bad `seq` and why.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", operation_id = "verifyAuditChain",
    responses(
        (status = 200, body = AuditVerification),
    ),
    security(("admin_key" = [])))]
pub async fn verify(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
) -> Result<Json<AuditVerification>, AppError> {
    Ok(Json(crate::audit::verify(&app).await?))
}
