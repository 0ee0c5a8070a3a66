//! WebAuthn registration ceremonies: the state between the creation options and the
//! browser's credential, finished once, on any node. (Assertion ceremonies ride on
//! their challenge; credentials are factors.)

use crate::audit::append;
use crate::factors::{insert_factor, insert_recovery_codes};
use crate::{AuditEvent, FactorRecord, Result, Store, StoreError, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegistrationRecord {
    pub id: String,
    pub user_id: String,
    /// The session that started it; only it may finish it.
    pub session_id: String,
    /// The name the credential will have.
    pub name: String,
    /// webauthn-rs's registration state, JSON.
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, session_id, name, state, created_at, expires_at, finished_at";

impl Store {
    pub async fn insert_webauthn_registration(&self, r: &RegistrationRecord) -> Result<()> {
        with_pool!(&self.db, write, |p| sqlx::query(&format!(
            "INSERT INTO webauthn_registrations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&r.id)
        .bind(&r.user_id)
        .bind(&r.session_id)
        .bind(&r.name)
        .bind(&r.state)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.finished_at)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn webauthn_registration(&self, id: &str) -> Result<Option<RegistrationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM webauthn_registrations WHERE id = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Finishes registration `id` of `session_id` if it is still open at `now`: marks it
    /// finished and stores its credential as `factor` (with a first set of recovery codes
    /// when given) and `audit`, in one transaction. False when it was finished meanwhile
    /// (of two concurrent finishes, on any nodes, one stores); `StoreError::Conflict`
    /// when the credential is registered already.
    pub async fn finish_webauthn_registration(
        &self,
        id: &str,
        session_id: &str,
        now: i64,
        factor: &FactorRecord,
        recovery: Option<(&FactorRecord, &[Vec<u8>])>,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let won = sqlx::query(
                "UPDATE webauthn_registrations SET finished_at = $3 \
                 WHERE id = $1 AND session_id = $2 AND finished_at IS NULL AND expires_at > $3",
            )
            .bind(id)
            .bind(session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                insert_factor!(&mut *tx, factor).map_err(StoreError::from_insert)?;
                if let Some((codes, hashes)) = recovery {
                    insert_recovery_codes!(tx, codes, hashes);
                }
                for event in audit {
                    append!(tx, event);
                }
            }
            won
        }))
    }
}
