use crate::audit::{append, audited_change};
use crate::{AuditEvent, Result, Store, StoreError, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// The public part of the key, used to find it.
    pub id: String,
    pub scope: String,
    /// SHA-256 of the secret part. The secret has 256 random bits, so a fast hash is
    /// enough; the plain key is shown once at creation and never stored.
    pub secret_hash: Vec<u8>,
    pub label: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Inserts a key and its `API_KEY_CREATED` event in one transaction.
    pub async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query(
                "INSERT INTO api_keys (id, scope, secret_hash, label, created_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&key.id)
            .bind(&key.scope)
            .bind(&key.secret_hash)
            .bind(&key.label)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_insert)?;
            append!(tx, audit);
        });
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(with_pool!(&self.db, read, |p| {
            sqlx::query_as(
            "SELECT id, scope, secret_hash, label, created_at, revoked_at FROM api_keys WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await
        })?)
    }

    /// All keys, newest first (secret hashes included; callers must not render them).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT id, scope, secret_hash, label, created_at, revoked_at FROM api_keys \
             ORDER BY created_at DESC, id"
        )
        .fetch_all(p)
        .await)?)
    }

    /// Revokes a key, with its `API_KEY_REVOKED` event, in one transaction. The last live
    /// admin key is never revoked: the statement's WHERE looks for another, and the audit
    /// lock taken first serializes concurrent revokes, so two admins revoking each
    /// other's keys at once cannot both succeed.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> Result<Revocation> {
        Ok(with_tx!(&self.db, |tx, pg_lock| {
            if let Some(lock) = pg_lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let revoked = audited_change!(
                tx,
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                     AND (scope <> 'admin' OR EXISTS (SELECT 1 FROM api_keys o \
                     WHERE o.scope = 'admin' AND o.revoked_at IS NULL AND o.id <> $1))",
                )
                .bind(id)
                .bind(now),
                audit
            );
            if revoked {
                Revocation::Revoked
            } else {
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT scope FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                match live {
                    Some(_) => Revocation::LastAdmin,
                    None => Revocation::NotFound,
                }
            }
        }))
    }
}

/// What revoking a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// Unknown, or already revoked.
    NotFound,
    /// It is the last live admin key.
    LastAdmin,
}
