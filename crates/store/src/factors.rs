//! Enrolled factors: TOTP secrets (encrypted by the caller) and recovery codes (hashed).

use stepgate_core::factor::{FactorKind, FactorStatus};

use crate::StoreError;
use crate::audit::{append, audited_change};
use crate::{AuditEvent, Result, Store, with_pool, with_tx};

#[derive(Debug, Clone)]
pub struct FactorRecord {
    pub id: String,
    pub user_id: String,
    pub kind: FactorKind,
    /// `Pending` until confirmed, then `Active`.
    pub status: FactorStatus,
    /// Encrypted secret (TOTP); never plain.
    pub secret: Option<Vec<u8>>,
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    /// What the user called it (WebAuthn credentials).
    pub name: Option<String>,
    /// When it last answered a step-up.
    pub last_used_at: Option<i64>,
    /// A WebAuthn credential's public facts (its key is sealed in `secret`).
    pub credential: Option<CredentialFacts>,
}

/// What is judged and listed of a WebAuthn credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFacts {
    /// base64url of the credential id.
    pub credential_id: String,
    /// The signature counter as last accepted.
    pub sign_count: i64,
    /// A synced passkey (true) or bound to one authenticator (false).
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// A factor as stored; read into a [`FactorRecord`] at once.
#[derive(sqlx::FromRow)]
struct FactorRow {
    id: String,
    user_id: String,
    kind: String,
    status: String,
    secret: Option<Vec<u8>>,
    last_step: Option<i64>,
    created_at: i64,
    confirmed_at: Option<i64>,
    name: Option<String>,
    last_used_at: Option<i64>,
    credential_id: Option<String>,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
}

impl TryFrom<FactorRow> for FactorRecord {
    type Error = StoreError;

    fn try_from(r: FactorRow) -> Result<Self> {
        let corrupt =
            |e: stepgate_core::Error| StoreError::Corrupt(format!("factor {}: {e}", r.id));
        Ok(Self {
            kind: FactorKind::parse(&r.kind).map_err(corrupt)?,
            status: FactorStatus::parse(&r.status).map_err(corrupt)?,
            id: r.id,
            user_id: r.user_id,
            secret: r.secret,
            last_step: r.last_step,
            created_at: r.created_at,
            confirmed_at: r.confirmed_at,
            name: r.name,
            last_used_at: r.last_used_at,
            credential: r.credential_id.map(|credential_id| CredentialFacts {
                credential_id,
                sign_count: r.sign_count,
                backup_eligible: r.backup_eligible,
                backup_state: r.backup_state,
            }),
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, status, secret, last_step, created_at, confirmed_at, \
    name, last_used_at, credential_id, sign_count, backup_eligible, backup_state";

/// Inserts a factor row on an open transaction or pool.
macro_rules! insert_factor {
    ($executor:expr, $f:expr) => {{
        let f: &FactorRecord = $f;
        let credential = f.credential.as_ref();
        sqlx::query(
            "INSERT INTO factors (id, user_id, kind, status, secret, last_step, created_at, \
             confirmed_at, name, last_used_at, credential_id, sign_count, backup_eligible, \
             backup_state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&f.id)
        .bind(&f.user_id)
        .bind(f.kind.as_str())
        .bind(f.status.as_str())
        .bind(&f.secret)
        .bind(f.last_step)
        .bind(f.created_at)
        .bind(f.confirmed_at)
        .bind(&f.name)
        .bind(f.last_used_at)
        .bind(credential.map(|c| c.credential_id.as_str()))
        .bind(credential.map_or(0, |c| c.sign_count))
        .bind(credential.is_some_and(|c| c.backup_eligible))
        .bind(credential.is_some_and(|c| c.backup_state))
        .execute($executor)
        .await
    }};
}
pub(crate) use insert_factor;

/// Replaces the user's recovery codes with `codes` (a factor) and its code hashes, on an
/// open transaction.
macro_rules! insert_recovery_codes {
    ($tx:ident, $codes:expr, $hashes:expr) => {{
        let codes: &FactorRecord = $codes;
        sqlx::query("DELETE FROM factors WHERE user_id = $1 AND kind = 'recovery_code'")
            .bind(&codes.user_id)
            .execute(&mut *$tx)
            .await?;
        insert_factor!(&mut *$tx, codes)?;
        for hash in $hashes {
            sqlx::query("INSERT INTO recovery_codes (factor_id, code_hash) VALUES ($1, $2)")
                .bind(&codes.id)
                .bind(hash)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use insert_recovery_codes;

impl Store {
    pub async fn insert_factor(&self, f: &FactorRecord) -> Result<()> {
        with_pool!(&self.db, write, |p| insert_factor!(p, f).map(|_| ()))?;
        Ok(())
    }

    pub async fn factor(&self, id: &str) -> Result<Option<FactorRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM factors WHERE id = $1");
        let row: Option<FactorRow> = with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(FactorRecord::try_from).transpose()
    }

    /// A user's factors, oldest first.
    pub async fn factors_of_user(&self, user_id: &str) -> Result<Vec<FactorRecord>> {
        let sql =
            format!("SELECT {COLUMNS} FROM factors WHERE user_id = $1 ORDER BY created_at, id");
        let rows: Vec<FactorRow> = with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(FactorRecord::try_from).collect()
    }

    /// Activates a pending TOTP factor whose code for `step` was just checked, and
    /// records the step as used. False if it was not pending (e.g. confirmed already).
    pub async fn confirm_totp(
        &self,
        id: &str,
        step: i64,
        now: i64,
        audit: &AuditEvent,
    ) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            audited_change!(
                tx,
                sqlx::query(
                    "UPDATE factors SET status = 'active', confirmed_at = $2, last_step = $3 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(now)
                .bind(step),
                audit
            )
        }))
    }
}

/// The one-time code a right step-up answer uses up. It is spent in the transaction
/// that completes the challenge, so an answer that cannot complete (the challenge
/// expired or was closed meanwhile) leaves the code unspent.
#[derive(Debug, Clone, Copy)]
pub enum SpentCode<'a> {
    /// A TOTP time step: accepted once per factor, in order (`last_step < step`).
    TotpStep {
        factor_id: &'a str,
        step: i64,
        at: i64,
    },
    /// A recovery code, by its hash.
    RecoveryCode {
        factor_id: &'a str,
        code_hash: &'a [u8],
        at: i64,
    },
    /// An emailed code answering challenge `owner`, by its hash: live and unspent.
    EmailCode {
        factor_id: &'a str,
        owner: &'a str,
        code_hash: &'a [u8],
        at: i64,
    },
    /// A WebAuthn assertion's signature counter: it must rise above the last accepted
    /// one, unless the authenticator keeps none (0 after 0).
    WebauthnCounter {
        factor_id: &'a str,
        counter: i64,
        backup_state: bool,
        at: i64,
    },
}

/// Spends a one-time code on an open transaction; evaluates to whether it was still
/// unspent. The UPDATE's WHERE is the lock: of two concurrent answers with the same
/// code, one spends it.
macro_rules! spend_code {
    ($tx:ident, $code:expr) => {{
        let code: $crate::SpentCode<'_> = $code;
        let affected = match code {
            $crate::SpentCode::TotpStep {
                factor_id,
                step,
                at,
            } => sqlx::query(
                "UPDATE factors SET last_step = $2, last_used_at = $3 WHERE id = $1 \
                 AND status = 'active' AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(factor_id)
            .bind(step)
            .bind(at)
            .execute(&mut *$tx)
            .await?
            .rows_affected(),
            $crate::SpentCode::WebauthnCounter {
                factor_id,
                counter,
                backup_state,
                at,
            } => sqlx::query(
                "UPDATE factors SET sign_count = $2, backup_state = $3, last_used_at = $4 \
                 WHERE id = $1 AND status = 'active' \
                 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
            )
            .bind(factor_id)
            .bind(counter)
            .bind(backup_state)
            .bind(at)
            .execute(&mut *$tx)
            .await?
            .rows_affected(),
            $crate::SpentCode::EmailCode {
                factor_id,
                owner,
                code_hash,
                at,
            } => sqlx::query(
                "UPDATE email_codes SET used_at = $4 WHERE owner = $1 AND factor_id = $2 \
                 AND code_hash = $3 AND used_at IS NULL AND expires_at > $4",
            )
            .bind(owner)
            .bind(factor_id)
            .bind(code_hash)
            .bind(at)
            .execute(&mut *$tx)
            .await?
            .rows_affected(),
            $crate::SpentCode::RecoveryCode {
                factor_id,
                code_hash,
                at,
            } => sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE factor_id = $1 \
                 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(factor_id)
            .bind(code_hash)
            .bind(at)
            .execute(&mut *$tx)
            .await?
            .rows_affected(),
        };
        if affected == 1 {
            // Emailed and recovery codes live in their own tables: their factor's last
            // use is recorded here (TOTP and WebAuthn record it in their own update).
            if let $crate::SpentCode::EmailCode { factor_id, at, .. }
            | $crate::SpentCode::RecoveryCode { factor_id, at, .. } = code
            {
                sqlx::query("UPDATE factors SET last_used_at = $2 WHERE id = $1")
                    .bind(factor_id)
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        affected == 1
    }};
}
pub(crate) use spend_code;

impl Store {
    /// Replaces the user's recovery codes with a new set, as one active factor.
    pub async fn replace_recovery_codes(
        &self,
        factor: &FactorRecord,
        code_hashes: &[Vec<u8>],
        audit: &AuditEvent,
    ) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            insert_recovery_codes!(tx, factor, code_hashes);
            append!(tx, audit);
        });
        Ok(())
    }

    pub async fn recovery_codes_left(&self, factor_id: &str) -> Result<i64> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE factor_id = $1 AND used_at IS NULL"
        )
        .bind(factor_id)
        .fetch_one(p)
        .await)?)
    }

    /// Deletes a user's factor. False if there was none with this id for this user.
    pub async fn delete_factor(&self, id: &str, user_id: &str, audit: &AuditEvent) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query("DELETE FROM recovery_codes WHERE factor_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM email_codes WHERE factor_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM factors WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if done {
                append!(tx, audit);
            }
            done
        }))
    }

    /// Removes every factor of `user_id` (with their recovery and emailed codes), and
    /// ends the user's live sessions and elevations at `now`, with `audit`, in one
    /// transaction: a user who lost every authenticator starts again from the
    /// password. Returns how many factors went and the ended sessions' ids.
    pub async fn reset_factors(
        &self,
        user_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> Result<(u64, Vec<String>)> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            for sql in [
                "DELETE FROM email_codes WHERE factor_id IN (SELECT id FROM factors WHERE user_id = $1)",
                "DELETE FROM recovery_codes WHERE factor_id IN (SELECT id FROM factors WHERE user_id = $1)",
            ] {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
            let removed = sqlx::query("DELETE FROM factors WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE elevations SET revoked_at = $2 WHERE user_id = $1 \
                 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let sessions: Vec<String> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL \
                 RETURNING id",
            )
            .bind(user_id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            append!(tx, audit);
            (removed, sessions)
        }))
    }
}
