//! Policy versions: immutable rows, one per change.

use crate::audit::append;
use crate::{AuditEvent, Result, Store, StoreError, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyVersionRecord {
    pub version: i64,
    pub created_at: i64,
    /// JSON: purpose name -> requirement.
    pub purposes: String,
}

impl Store {
    pub async fn latest_policy(&self) -> Result<Option<PolicyVersionRecord>> {
        Ok(with_pool!(&self.db, read, |p| {
            sqlx::query_as(
            "SELECT version, created_at, purposes FROM policy_versions ORDER BY version DESC LIMIT 1"
        )
        .fetch_optional(p)
        .await
        })?)
    }

    pub async fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT version, created_at, purposes FROM policy_versions WHERE version = $1"
        )
        .bind(version)
        .fetch_optional(p)
        .await)?)
    }

    /// Writes `record` as the next version. [`StoreError::Conflict`] when another writer
    /// took that version number first: re-read and retry.
    pub async fn insert_policy_version(
        &self,
        record: &PolicyVersionRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<()> {
        let result: Result<()> = async {
            with_tx!(&self.db, |tx, _pg_lock| {
                sqlx::query(
                    "INSERT INTO policy_versions (version, created_at, purposes) VALUES ($1, $2, $3)",
                )
                .bind(record.version)
                .bind(record.created_at)
                .bind(&record.purposes)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_insert)?;
                if let Some(event) = audit {
                    append!(tx, event);
                }
            });
            Ok(())
        }
        .await;
        result
    }
}
