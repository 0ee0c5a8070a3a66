use crate::{Result, Store, StoreError, with_pool};

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
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        with_pool!(&self.db, write, |p| sqlx::query(
            "INSERT INTO api_keys (id, scope, secret_hash, label, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&key.id)
        .bind(&key.scope)
        .bind(&key.secret_hash)
        .bind(&key.label)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(StoreError::from_insert)
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

    /// Revokes a key. Returns false when it was already revoked or unknown.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let affected = with_pool!(&self.db, write, |p| sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }
}
