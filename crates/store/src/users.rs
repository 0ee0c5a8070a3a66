use crate::audit::append;
use crate::{AuditEvent, Result, Store, StoreError, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    /// PHC string (argon2id); never leaves the server.
    pub password_hash: String,
    pub created_at: i64,
    /// JSON array of role names (Cedar's `User.roles`).
    pub roles: String,
}

impl Store {
    /// Inserts a user with its `USER_CREATED` event; [`StoreError::Conflict`] when the
    /// username is taken (and then nothing is written).
    pub async fn insert_user(&self, user: &UserRecord, audit: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query(
                "INSERT INTO users (id, username, email, password_hash, created_at, roles) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.created_at)
            .bind(&user.roles)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_insert)?;
            append!(tx, audit);
        });
        Ok(())
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>> {
        Ok(with_pool!(&self.db, read, |p| {
            sqlx::query_as(
            "SELECT id, username, email, password_hash, created_at, roles FROM users WHERE username = $1"
        )
        .bind(username)
        .fetch_optional(p)
        .await
        })?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT id, username, email, password_hash, created_at, roles FROM users WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?)
    }

    /// Users whose name starts with `prefix` (no wildcards of its own), by name, at
    /// most `limit`.
    pub async fn users_named_like(&self, prefix: &str, limit: i64) -> Result<Vec<UserRecord>> {
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT id, username, email, password_hash, created_at, roles FROM users \
             WHERE username LIKE $1 ESCAPE '\\' ORDER BY username LIMIT $2"
        )
        .bind(format!("{escaped}%"))
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }
}
