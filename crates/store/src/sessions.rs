use crate::audit::append;
use crate::risk::{LoginRecord, insert_login};
use crate::{AuditEvent, Result, Store, with_pool, with_tx};

/// Inserts a session on an open transaction.
macro_rules! insert_session {
    ($tx:ident, $s:expr) => {{
        let s: &$crate::SessionRecord = $s;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, auth_time, expires_at, revoked_at, \
             ip, user_agent, device_hash, acr, amr, enrollment_required, risk, jkt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(s.created_at)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(&s.device_hash)
        .bind(&s.acr)
        .bind(&s.amr)
        .bind(s.enrollment_required)
        .bind(&s.risk)
        .bind(&s.jkt)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_session;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub auth_time: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Client IP at login.
    pub ip: String,
    pub user_agent: Option<String>,
    /// SHA-256 (hex) of the device fingerprint the client sent, if any.
    pub device_hash: Option<String>,
    pub acr: String,
    /// Space-separated RFC 8176 method references.
    pub amr: String,
    /// No second factor yet: the session may enroll one, and every purpose asks for it.
    pub enrollment_required: bool,
    /// JSON of the risk assessment made at login.
    pub risk: Option<String>,
    /// Thumbprint of the DPoP key the session's access tokens are bound to (`cnf.jkt`).
    pub jkt: Option<String>,
}

impl SessionRecord {
    pub fn to_domain(&self) -> stepgate_core::session::Session {
        stepgate_core::session::Session {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            created_at: self.created_at,
            auth_time: self.auth_time,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

const COLUMNS: &str = "id, user_id, created_at, auth_time, expires_at, revoked_at, ip, user_agent, \
     device_hash, acr, amr, enrollment_required, risk, jkt";

impl Store {
    /// Creates a session with the records of a successful login, in one transaction.
    pub async fn insert_session(
        &self,
        s: &SessionRecord,
        login: &LoginRecord,
        audit: &[AuditEvent],
    ) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            insert_session!(tx, s);
            insert_login!(tx, login);
            for event in audit {
                append!(tx, event);
            }
        });
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Revokes a live session. Returns false when it was already revoked or unknown.
    pub async fn revoke_session(&self, id: &str, now: i64) -> Result<bool> {
        let affected = with_pool!(&self.db, write, |p| sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }
}
