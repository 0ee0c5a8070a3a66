//! The append-only audit log. Appends happen inside the transaction of the change they
//! record, serialized so that `seq` runs from 1 without gaps.

use stepgate_core::audit::EventType;

use crate::{Result, Store, with_pool, with_tx};

/// An event to append. `kind` is the event type, e.g. `ACCOUNT_STEPUP_REDEEMED`.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: EventType,
    pub at: i64,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub purpose: Option<String>,
    pub ip: Option<String>,
    pub factor: Option<String>,
    pub policy_version: Option<i64>,
    pub challenge_id: Option<String>,
    pub elevation_id: Option<String>,
    /// Further fields as a JSON object.
    pub data: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at`, about nothing in particular yet: set what it is about
    /// with struct update syntax (`AuditEvent { user_id, ..AuditEvent::new(kind, at) }`).
    pub fn new(kind: EventType, at: i64) -> Self {
        Self {
            kind,
            at,
            user_id: None,
            session_id: None,
            purpose: None,
            ip: None,
            factor: None,
            policy_version: None,
            challenge_id: None,
            elevation_id: None,
            data: None,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub seq: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub at: i64,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub purpose: Option<String>,
    pub ip: Option<String>,
    pub factor: Option<String>,
    pub policy_version: Option<i64>,
    pub challenge_id: Option<String>,
    pub elevation_id: Option<String>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub after_seq: i64,
    pub limit: i64,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub purpose: Option<String>,
    /// Only events of these types (a severity's), when set.
    pub types: Option<Vec<&'static str>>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events before this time.
    pub until: Option<i64>,
}

/// Appends one event on an open transaction (`$audit_lock` from `with_tx!`).
macro_rules! append {
    ($tx:ident, $audit_lock:ident, $event:expr) => {{
        let e: &$crate::AuditEvent = $event;
        if let Some(lock) = $audit_lock {
            sqlx::query(lock).execute(&mut *$tx).await?;
        }
        sqlx::query(
            "INSERT INTO audit_events (seq, type, at, user_id, session_id, purpose, ip, factor, \
             policy_version, challenge_id, elevation_id, data) \
             SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             FROM audit_events",
        )
        .bind(e.kind.as_str())
        .bind(e.at)
        .bind(&e.user_id)
        .bind(&e.session_id)
        .bind(&e.purpose)
        .bind(&e.ip)
        .bind(&e.factor)
        .bind(e.policy_version)
        .bind(&e.challenge_id)
        .bind(&e.elevation_id)
        .bind(&e.data)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use append;

/// Runs one UPDATE/DELETE on an open transaction and, if it changed exactly one row,
/// appends the audit event; evaluates to whether it did. The statement's WHERE decides
/// (single use, "only while pending"), so the event is written only by the winner.
macro_rules! audited_change {
    ($tx:ident, $audit_lock:ident, $query:expr, $event:expr) => {{
        let changed = $query.execute(&mut *$tx).await?.rows_affected() == 1;
        if changed {
            append!($tx, $audit_lock, $event);
        }
        changed
    }};
}
pub(crate) use audited_change;

impl Store {
    /// Appends one event on its own.
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, audit_lock| {
            append!(tx, audit_lock, event);
        });
        Ok(())
    }

    /// Events in `seq` order matching the filter.
    pub async fn audit_events(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        // The type list is the core's own constant names, never caller text.
        let types = match &f.types {
            Some(types) if types.is_empty() => " AND FALSE".to_owned(),
            Some(types) => format!(
                " AND type IN ({})",
                types
                    .iter()
                    .filter(|t| t.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let sql = format!(
            "SELECT seq, type, at, user_id, session_id, purpose, ip, factor, policy_version, \
             challenge_id, elevation_id, data FROM audit_events \
             WHERE seq > $1 AND ($2 IS NULL OR type = $2) AND ($3 IS NULL OR user_id = $3) \
             AND ($4 IS NULL OR purpose = $4) AND ($6 IS NULL OR at >= $6) \
             AND ($7 IS NULL OR at < $7){types} ORDER BY seq LIMIT $5"
        );
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(f.after_seq)
            .bind(&f.kind)
            .bind(&f.user_id)
            .bind(&f.purpose)
            .bind(f.limit)
            .bind(f.since)
            .bind(f.until)
            .fetch_all(p)
            .await)?)
    }
}
