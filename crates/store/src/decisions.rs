//! Decision records (written in batches off the request path) and the reads that make
//! up a session's decision view.

use crate::stepup::ELEVATION_COLUMNS;
use crate::{ElevationRecord, Result, Store, with_pool, with_tx};

/// One decision, compactly: what was asked, what was seen, what was answered.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub at: i64,
    pub user_id: String,
    pub session_id: String,
    pub decision: String,
    pub purpose: Option<String>,
    pub policy_version: i64,
    /// JSON of the facts the decision saw.
    pub facts: String,
    /// How many identical decisions this record stands for.
    pub count: i64,
}

impl Store {
    /// Writes a batch of decision records in one transaction.
    pub async fn insert_decision_records(&self, records: &[DecisionRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        with_tx!(&self.db, |tx, _pg_lock| {
            for r in records {
                sqlx::query(
                    "INSERT INTO decision_records (at, user_id, session_id, decision, purpose, \
                     policy_version, facts, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(r.at)
                .bind(&r.user_id)
                .bind(&r.session_id)
                .bind(&r.decision)
                .bind(&r.purpose)
                .bind(r.policy_version)
                .bind(&r.facts)
                .bind(r.count)
                .execute(&mut *tx)
                .await?;
            }
        });
        Ok(())
    }

    /// How many decisions are recorded (identical ones share a row with a count).
    pub async fn decision_record_count(&self) -> Result<i64> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM decision_records"
        )
        .fetch_one(p)
        .await)?)
    }

    /// The distinct IPs the user has logged in from (most recent first, at most 1000).
    pub async fn ips_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT ip FROM logins WHERE user_id = $1 GROUP BY ip ORDER BY MAX(at) DESC LIMIT 1000"
        )
        .bind(user_id)
        .fetch_all(p)
        .await)?)
    }

    /// A session's live session-mode elevations (not revoked, expired or used up).
    pub async fn live_session_elevations(
        &self,
        session_id: &str,
        now: i64,
    ) -> Result<Vec<ElevationRecord>> {
        let sql = format!(
            "SELECT {ELEVATION_COLUMNS} FROM elevations WHERE session_id = $1 AND mode = 'session' \
             AND revoked_at IS NULL AND expires_at > $2 \
             AND NOT (single_use AND consumed_at IS NOT NULL) ORDER BY expires_at, id"
        );
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(session_id)
            .bind(now)
            .fetch_all(p)
            .await)?)
    }
}
