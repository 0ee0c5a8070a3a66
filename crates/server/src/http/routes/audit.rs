//! Reading the audit log (admins).

use axum::Json;
use axum::extract::State;
use stepgate_api::Problem;
use stepgate_api::{AuditList, AuditQuery};

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
