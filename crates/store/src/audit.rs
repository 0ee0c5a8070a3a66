//! The append-only, hash-chained audit log. An event is written inside the transaction
//! of the change it records, into the inbox: no lock and no sequence number, so
//! concurrent requests do not queue behind each other. One appender at a time (the
//! PostgreSQL advisory lock on every node; SQLite's single writer) moves inbox rows into
//! `audit_events` in batches, giving each its `seq` (from 1, without gaps), its
//! `prev_hash` and its `hash`, so the chain stays gapless and unforked with any number
//! of nodes.

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
    /// The hash of the event before it (32 bytes).
    pub prev_hash: Vec<u8>,
    /// SHA-256 of `prev_hash` and this event's canonical encoding (32 bytes).
    pub hash: Vec<u8>,
}

/// An event waiting in the inbox for its place in the chain.
#[derive(sqlx::FromRow)]
struct InboxRow {
    id: i64,
    #[sqlx(rename = "type")]
    kind: String,
    at: i64,
    user_id: Option<String>,
    session_id: Option<String>,
    purpose: Option<String>,
    ip: Option<String>,
    factor: Option<String>,
    policy_version: Option<i64>,
    challenge_id: Option<String>,
    elevation_id: Option<String>,
    data: Option<String>,
}

impl InboxRow {
    fn at_seq(self, seq: i64, prev_hash: Vec<u8>) -> AuditRecord {
        AuditRecord {
            seq,
            kind: self.kind,
            at: self.at,
            user_id: self.user_id,
            session_id: self.session_id,
            purpose: self.purpose,
            ip: self.ip,
            factor: self.factor,
            policy_version: self.policy_version,
            challenge_id: self.challenge_id,
            elevation_id: self.elevation_id,
            data: self.data,
            prev_hash,
            hash: Vec::new(),
        }
    }
}

/// A signed chain head as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckpointRecord {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: i64,
    pub key_id: String,
    /// Ed25519 over `checkpoint_message(seq, hash)`, base64url.
    pub signature: String,
}

/// The chain's last event: its seq and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Vec<u8>,
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

/// Writes one event into the audit inbox on an open transaction: it is chained when
/// the transaction has committed, by the appender.
macro_rules! append {
    ($tx:ident, $event:expr) => {{
        let e: &$crate::AuditEvent = $event;
        sqlx::query(
            "INSERT INTO audit_inbox (type, at, user_id, session_id, purpose, ip, factor, \
             policy_version, challenge_id, elevation_id, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    ($tx:ident, $query:expr, $event:expr) => {{
        let changed = $query.execute(&mut *$tx).await?.rows_affected() == 1;
        if changed {
            append!($tx, $event);
        }
        changed
    }};
}
pub(crate) use audited_change;

impl Store {
    /// Appends one event on its own.
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            append!(tx, event);
        });
        Ok(())
    }

    /// Whether events wait in the inbox.
    pub async fn audit_inbox_waiting(&self) -> Result<bool> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM audit_inbox)"
        )
        .fetch_one(p)
        .await)?)
    }

    /// Moves up to `limit` inbox events, oldest first, to the end of the chain in one
    /// transaction: each gets the next `seq`, the previous hash and its own hash from
    /// `link(prev_hash, event)`. Appenders on every node take one lock, so the chain
    /// has one head. Answers how many moved and the head after the batch (`None` while
    /// the log is empty).
    pub async fn chain_inbox(
        &self,
        limit: i64,
        mut link: impl FnMut(&[u8], &AuditRecord) -> Vec<u8>,
    ) -> Result<(usize, Option<ChainHead>)> {
        Ok(with_tx!(&self.db, |tx, pg_lock| {
            if let Some(lock) = pg_lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            // The DELETE comes first: on SQLite it takes the write lock before the head
            // is read.
            let mut rows: Vec<InboxRow> = sqlx::query_as(
                "DELETE FROM audit_inbox WHERE id IN \
                 (SELECT id FROM audit_inbox ORDER BY id LIMIT $1) \
                 RETURNING id, type, at, user_id, session_id, purpose, ip, factor, \
                 policy_version, challenge_id, elevation_id, data",
            )
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            rows.sort_by_key(|r| r.id);
            let head: Option<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
            let (mut seq, mut prev) = head.unwrap_or((0, vec![0; 32]));
            let moved = rows.len();
            for row in rows {
                seq += 1;
                let mut e = row.at_seq(seq, prev);
                e.hash = link(&e.prev_hash, &e);
                sqlx::query(
                    "INSERT INTO audit_events (seq, type, at, user_id, session_id, purpose, \
                     ip, factor, policy_version, challenge_id, elevation_id, data, \
                     prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(e.seq)
                .bind(&e.kind)
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
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .execute(&mut *tx)
                .await?;
                prev = e.hash;
            }
            (moved, (seq > 0).then_some(ChainHead { seq, hash: prev }))
        }))
    }

    /// The chain's last event.
    pub async fn audit_head(&self) -> Result<Option<ChainHead>> {
        let head: Option<(i64, Vec<u8>)> = with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
        )
        .fetch_optional(p)
        .await)?;
        Ok(head.map(|(seq, hash)| ChainHead { seq, hash }))
    }

    /// Stores a signed chain head; false if one for that seq exists (another node
    /// signed it first).
    pub async fn insert_checkpoint(&self, c: &CheckpointRecord) -> Result<bool> {
        Ok(with_pool!(&self.db, write, |p| sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING"
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.key_id)
        .bind(&c.signature)
        .execute(p)
        .await
        .map(|done| done.rows_affected() == 1))?)
    }

    /// Every signed checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq"
        )
        .fetch_all(p)
        .await)?)
    }

    /// The latest signed checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints \
             ORDER BY seq DESC LIMIT 1"
        )
        .fetch_optional(p)
        .await)?)
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
             challenge_id, elevation_id, data, prev_hash, hash FROM audit_events \
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
