//! One-time codes sent by email: to confirm an email factor's address, or to answer a
//! challenge. Stored as keyed hashes, one live code per owner (a challenge, or a
//! pending factor), spent once.

use crate::audit::append;
use crate::factors::{insert_factor, insert_recovery_codes};
use crate::{AuditEvent, FactorRecord, Result, Store, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailCodeRecord {
    /// The challenge id, or the pending factor's id for its confirmation.
    pub owner: String,
    /// The email factor the code was sent to.
    pub factor_id: String,
    /// The code's keyed hash.
    pub code_hash: Vec<u8>,
    pub sent_at: i64,
    pub expires_at: i64,
    /// Wrong confirmations so far (a pending factor's code).
    pub failures: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "owner, factor_id, code_hash, sent_at, expires_at, failures, used_at";

/// Stores `code`, replacing its owner's earlier one, on an open transaction or pool.
macro_rules! put_code {
    ($executor:expr, $code:expr) => {{
        let c: &EmailCodeRecord = $code;
        sqlx::query(&format!(
            "INSERT INTO email_codes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, 0, NULL) \
             ON CONFLICT (owner) DO UPDATE SET factor_id = $2, code_hash = $3, sent_at = $4, \
             expires_at = $5, failures = 0, used_at = NULL"
        ))
        .bind(&c.owner)
        .bind(&c.factor_id)
        .bind(&c.code_hash)
        .bind(c.sent_at)
        .bind(c.expires_at)
        .execute($executor)
        .await
    }};
}

impl Store {
    /// Stores the live code of `code.owner` (a challenge), replacing an earlier one.
    pub async fn put_email_code(&self, code: &EmailCodeRecord) -> Result<()> {
        with_pool!(&self.db, write, |p| put_code!(p, code).map(|_| ()))?;
        Ok(())
    }

    pub async fn email_code(&self, owner: &str) -> Result<Option<EmailCodeRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM email_codes WHERE owner = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(owner)
            .fetch_optional(p)
            .await)?)
    }

    /// Stores a pending email factor with the code just sent to confirm it, replacing
    /// the user's earlier pending email factor (and its code).
    pub async fn insert_email_factor(
        &self,
        factor: &FactorRecord,
        code: &EmailCodeRecord,
    ) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query(
                "DELETE FROM email_codes WHERE factor_id IN (SELECT id FROM factors \
                 WHERE user_id = $1 AND kind = 'email_otp' AND status = 'pending')",
            )
            .bind(&factor.user_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM factors WHERE user_id = $1 AND kind = 'email_otp' AND status = 'pending'",
            )
            .bind(&factor.user_id)
            .execute(&mut *tx)
            .await?;
            insert_factor!(&mut *tx, factor)?;
            put_code!(&mut *tx, code)?;
        });
        Ok(())
    }

    /// Takes one of the `max_tries` tries of `owner`'s confirmation code before it is
    /// compared, so concurrent guesses cannot overrun them: the code's hash and the
    /// tries taken so far, or `None` when it is spent, expired at `now` or out of tries.
    pub async fn take_email_code_try(
        &self,
        owner: &str,
        now: i64,
        max_tries: i64,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(with_pool!(&self.db, write, |p| sqlx::query_as(
            "UPDATE email_codes SET failures = failures + 1 WHERE owner = $1 \
             AND used_at IS NULL AND expires_at > $2 AND failures < $3 \
             RETURNING code_hash, failures"
        )
        .bind(owner)
        .bind(now)
        .bind(max_tries)
        .fetch_optional(p)
        .await)?)
    }

    /// Confirms pending email factor `factor_id` with its code's hash: spends the code
    /// (live, at most `max_failures` tries taken) and activates the factor, with
    /// `audit` and, for a user's first factor, `recovery` codes. False when the code was
    /// spent, expired or used up meanwhile.
    pub async fn confirm_email_factor(
        &self,
        factor_id: &str,
        code_hash: &[u8],
        now: i64,
        max_failures: i64,
        recovery: Option<(&FactorRecord, &[Vec<u8>])>,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let spent = sqlx::query(
                "UPDATE email_codes SET used_at = $3 WHERE owner = $1 AND code_hash = $2 \
                 AND used_at IS NULL AND expires_at > $3 AND failures <= $4",
            )
            .bind(factor_id)
            .bind(code_hash)
            .bind(now)
            .bind(max_failures)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let activated = spent
                && sqlx::query(
                    "UPDATE factors SET status = 'active', confirmed_at = $2 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(factor_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            if activated {
                if let Some((codes, hashes)) = recovery {
                    insert_recovery_codes!(tx, codes, hashes);
                }
                for event in audit {
                    append!(tx, event);
                }
            }
            activated
        }))
    }
}
