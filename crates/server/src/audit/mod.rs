//! The audit log: the one search behind `GET /v1/audit` and the admin console, and
//! the hash chain (`chain`: appending, checkpoints, verification).

pub mod chain;

use stepgate_api::AuditEvent;
use stepgate_core::audit::Severity;
use stepgate_core::audit::chain::hex;
use stepgate_store::{AuditFilter, AuditRecord};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::time_format::{parse_time, rfc3339};

/// A search as the caller gave it.
#[derive(Default)]
pub struct AuditSearch {
    pub after_seq: Option<i64>,
    /// 1 to 10,000; 1,000 unless set.
    pub limit: Option<i64>,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub purpose: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
    /// RFC 3339 times (or dates): from `since`, before `until`.
    pub since: Option<String>,
    pub until: Option<String>,
}

fn time_of(field: &str, raw: Option<&str>) -> Result<Option<i64>, AppError> {
    raw.filter(|r| !r.is_empty())
        .map(|r| {
            parse_time(r).ok_or_else(|| {
                AppError::validation(format!("{field} must be an RFC 3339 time or a date"))
            })
        })
        .transpose()
}

/// Events matching `q`, oldest first.
pub async fn search(app: &SharedApp, q: AuditSearch) -> Result<Vec<AuditEvent>, AppError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(AppError::validation("limit must be 1 to 10000"));
    }
    let types = match q.severity.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            Severity::parse(raw)
                .ok_or_else(|| AppError::validation("severity must be info, warning or critical"))?
                .types()
                .map(|t| t.as_str())
                .collect(),
        ),
    };
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = AuditFilter {
        after_seq: q.after_seq.unwrap_or(0).max(0),
        limit,
        kind: nonempty(q.kind),
        user_id: nonempty(q.user_id),
        purpose: nonempty(q.purpose),
        types,
        since: time_of("since", q.since.as_deref())?,
        until: time_of("until", q.until.as_deref())?,
    };
    chain::append_pending(&app.store).await?;
    Ok(app
        .store
        .audit_events(&filter)
        .await?
        .into_iter()
        .map(to_wire)
        .collect())
}

/// A stored event as the API shows it, which is also what its hash covers.
pub fn to_wire(e: AuditRecord) -> AuditEvent {
    AuditEvent {
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
        // Stored data is JSON text the server wrote; text that no longer parses is
        // shown as a string, so the verifier sees the change instead of a missing field.
        data: e
            .data
            .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        prev_hash: hex(&e.prev_hash),
        hash: hex(&e.hash),
    }
}

/// Verifies the whole stored chain (after chaining what waits in the inbox).
pub async fn verify(app: &SharedApp) -> Result<stepgate_api::AuditVerification, AppError> {
    Ok(chain::verify_store(&app.store, &app.tokens.keys()).await?)
}
