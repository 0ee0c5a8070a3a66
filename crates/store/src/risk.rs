//! What the risk engine remembers per user (devices, logins), sign-in failures for
//! lockout, and rate-limit counters. Counters live here, so they hold across nodes.

use stepgate_core::risk::DeviceTrust;

use crate::audit::append;
use crate::sessions::insert_session;
use crate::stepup::claim_with_code;
use crate::{
    AuditEvent, Completion, Result, SessionRecord, SpentCode, Store, StoreError, with_pool, with_tx,
};

#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: String,
    pub user_id: String,
    /// SHA-256 (hex) of the fingerprint, or `jkt:` and a DPoP key's thumbprint.
    pub device_hash: String,
    /// `Fingerprint` or `Key`.
    pub trust: DeviceTrust,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// A device as stored; read into a [`DeviceRecord`] at once.
#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    user_id: String,
    device_hash: String,
    trust: String,
    user_agent: Option<String>,
    created_at: i64,
    last_seen_at: i64,
}

impl TryFrom<DeviceRow> for DeviceRecord {
    type Error = StoreError;

    fn try_from(r: DeviceRow) -> Result<Self> {
        Ok(Self {
            trust: DeviceTrust::parse(&r.trust)
                .map_err(|e| StoreError::Corrupt(format!("device {}: {e}", r.id)))?,
            id: r.id,
            user_id: r.user_id,
            device_hash: r.device_hash,
            user_agent: r.user_agent,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRecord {
    pub user_id: String,
    pub at: i64,
    pub ip: String,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Records a successful login on an open transaction.
macro_rules! insert_login {
    ($tx:ident, $l:expr) => {{
        let l: &$crate::LoginRecord = $l;
        sqlx::query(
            "INSERT INTO logins (user_id, at, ip, country, latitude, longitude) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&l.user_id)
        .bind(l.at)
        .bind(&l.ip)
        .bind(&l.country)
        .bind(l.latitude)
        .bind(l.longitude)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_login;

/// Remembers (or refreshes) a device on an open transaction. Trust only ever rises:
/// a device known by key stays so when it later shows only its fingerprint.
macro_rules! upsert_device {
    ($tx:ident, $d:expr) => {{
        let d: &$crate::DeviceRecord = $d;
        sqlx::query(
            "INSERT INTO devices (id, user_id, device_hash, trust, user_agent, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id, device_hash) DO UPDATE SET \
             trust = CASE WHEN devices.trust = 'key' THEN 'key' ELSE excluded.trust END, \
             user_agent = excluded.user_agent, last_seen_at = excluded.last_seen_at",
        )
        .bind(&d.id)
        .bind(&d.user_id)
        .bind(&d.device_hash)
        .bind(d.trust.as_str())
        .bind(&d.user_agent)
        .bind(d.created_at)
        .bind(d.last_seen_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

const DEVICE_COLUMNS: &str =
    "id, user_id, device_hash, trust, user_agent, created_at, last_seen_at";

/// What a passed login challenge creates, in the transaction that completes it (which
/// also gives the answer's `reservation` in the failure budget back).
pub struct LoginCompletion<'a> {
    pub reservation: &'a str,
    pub session: &'a SessionRecord,
    pub login: &'a LoginRecord,
    pub device: Option<&'a DeviceRecord>,
    pub audit: &'a [AuditEvent],
    /// The answer hands the session out itself (an API verify), so no later collection
    /// can.
    pub collected: bool,
}

impl Store {
    pub async fn device(&self, user_id: &str, device_hash: &str) -> Result<Option<DeviceRecord>> {
        let sql =
            format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND device_hash = $2");
        let row: Option<DeviceRow> = with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(user_id)
            .bind(device_hash)
            .fetch_optional(p)
            .await)?;
        row.map(DeviceRecord::try_from).transpose()
    }

    pub async fn devices_of_user(&self, user_id: &str) -> Result<Vec<DeviceRecord>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at, id"
        );
        let rows: Vec<DeviceRow> = with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(DeviceRecord::try_from).collect()
    }

    pub async fn remember_device(&self, device: &DeviceRecord, audit: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            upsert_device!(tx, device);
            append!(tx, audit);
        });
        Ok(())
    }

    pub async fn forget_device(&self, id: &str, user_id: &str) -> Result<bool> {
        let affected = with_pool!(&self.db, write, |p| sqlx::query(
            "DELETE FROM devices WHERE id = $1 AND user_id = $2"
        )
        .bind(id)
        .bind(user_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// The user's most recent successful logins, newest first.
    pub async fn recent_logins(&self, user_id: &str, limit: i64) -> Result<Vec<LoginRecord>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(
            "SELECT user_id, at, ip, country, latitude, longitude FROM logins WHERE user_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2"
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }

    pub async fn ip_seen_for_user(&self, user_id: &str, ip: &str) -> Result<bool> {
        let n: i64 = with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM logins WHERE user_id = $1 AND ip = $2"
        )
        .bind(user_id)
        .bind(ip)
        .fetch_one(p)
        .await)?;
        Ok(n > 0)
    }

    pub async fn countries_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT DISTINCT country FROM logins WHERE user_id = $1 AND country IS NOT NULL"
        )
        .bind(user_id)
        .fetch_all(p)
        .await)?)
    }

    /// Reserves a sign-in attempt for an account name before its password is checked:
    /// under a per-name lock, reads the wrong passwords (and attempts in flight) since
    /// `since`; at `max` or more nothing is written and `Err` carries their times (the
    /// account is locked), else a provisional failure row named `reservation` is written
    /// and `Ok` carries the times seen before it. Concurrent attempts therefore cannot
    /// overrun the lockout: each sees the others' reservations.
    pub async fn reserve_login_attempt(
        &self,
        username: &str,
        ip: &str,
        since: i64,
        max: usize,
        now: i64,
        reservation: &str,
    ) -> Result<std::result::Result<Vec<i64>, Vec<i64>>> {
        Ok(with_tx!(&self.db, |tx, pg_lock| {
            if pg_lock.is_some() {
                sqlx::query("SELECT pg_advisory_xact_lock(7403102, hashtext($1))")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            let seen: Vec<i64> = sqlx::query_scalar(
                "SELECT at FROM login_failures WHERE username = $1 AND at > $2 ORDER BY at DESC",
            )
            .bind(username)
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
            if seen.len() >= max {
                Err(seen)
            } else {
                sqlx::query(
                    "INSERT INTO login_failures (username, ip, at, reservation) VALUES ($1, $2, $3, $4)",
                )
                .bind(username)
                .bind(ip)
                .bind(now)
                .bind(reservation)
                .execute(&mut *tx)
                .await?;
                Ok(seen)
            }
        }))
    }

    /// The password was wrong: the reserved attempt becomes a failure, with its events.
    pub async fn confirm_login_failure(
        &self,
        reservation: &str,
        audit: &[AuditEvent],
    ) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query("UPDATE login_failures SET reservation = NULL WHERE reservation = $1")
                .bind(reservation)
                .execute(&mut *tx)
                .await?;
            for event in audit {
                append!(tx, event);
            }
        });
        Ok(())
    }

    /// The attempt did not fail on its password (or failed on something else): its
    /// reservation goes. A confirmed failure is untouched.
    pub async fn release_login_attempt(&self, reservation: &str) -> Result<()> {
        with_pool!(&self.db, write, |p| sqlx::query(
            "DELETE FROM login_failures WHERE reservation = $1"
        )
        .bind(reservation)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Times of an account name's wrong passwords since `since`, newest first.
    pub async fn login_failures_since(&self, username: &str, since: i64) -> Result<Vec<i64>> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT at FROM login_failures WHERE username = $1 AND at > $2 ORDER BY at DESC"
        )
        .bind(username)
        .bind(since)
        .fetch_all(p)
        .await)?)
    }

    /// Counts one hit against `key` in the window starting at `window_start`, atomically
    /// across nodes; returns the count including this hit.
    pub async fn hit_rate_counter(&self, key: &str, window_start: i64) -> Result<i64> {
        Ok(with_pool!(&self.db, write, |p| sqlx::query_scalar(
            "INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1 \
             RETURNING count"
        )
        .bind(key)
        .bind(window_start)
        .fetch_one(p)
        .await)?)
    }

    /// Completes a login challenge: spends the answer's code, marks the challenge
    /// verified and creates the session, the login record and the remembered device,
    /// atomically. Nothing is written (and the code stays unspent) unless it completes.
    pub async fn complete_login_challenge(
        &self,
        challenge_id: &str,
        now: i64,
        code: SpentCode<'_>,
        login: LoginCompletion<'_>,
    ) -> Result<Completion> {
        let LoginCompletion {
            reservation,
            session,
            login,
            device,
            audit,
            collected,
        } = login;
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let won = sqlx::query(
                "UPDATE challenges SET status = 'verified', session_id = $3, checking = checking - 1, \
                 collected_at = $4 \
                 WHERE id = $1 AND status = 'pending' AND failures < max_attempts AND expires_at > $2",
            )
            .bind(challenge_id)
            .bind(now)
            .bind(&session.id)
            .bind(collected.then_some(now))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            claim_with_code!(tx, won, code, reservation);
            insert_session!(tx, session);
            insert_login!(tx, login);
            if let Some(d) = device {
                upsert_device!(tx, d);
            }
            for event in audit {
                append!(tx, event);
            }
            Completion::Completed
        }))
    }
}

impl Store {
    /// Deletes what can no longer matter, each table by its own cutoff (a Unix time;
    /// rows older are deleted). Returns how many rows went.
    pub async fn prune(&self, cutoffs: &Prune) -> Result<u64> {
        let statements: [(&str, i64); 9] = [
            (
                "DELETE FROM rate_counters WHERE window_start < $1",
                cutoffs.rate_counters,
            ),
            (
                "DELETE FROM login_failures WHERE at < $1",
                cutoffs.login_failures,
            ),
            (
                "DELETE FROM stepup_failures WHERE at < $1",
                cutoffs.stepup_failures,
            ),
            (
                "DELETE FROM dpop_proofs WHERE expires_at < $1",
                cutoffs.dpop_proofs,
            ),
            (
                "DELETE FROM challenges WHERE expires_at < $1",
                cutoffs.challenges,
            ),
            (
                "DELETE FROM webauthn_registrations WHERE expires_at < $1",
                cutoffs.challenges,
            ),
            (
                "DELETE FROM email_codes WHERE expires_at < $1",
                cutoffs.challenges,
            ),
            (
                "DELETE FROM elevations WHERE expires_at < $1",
                cutoffs.elevations,
            ),
            (
                "DELETE FROM decision_records WHERE at < $1",
                cutoffs.decision_records,
            ),
        ];
        let mut deleted = 0;
        // One statement per transaction: pruning never holds the writer for long.
        for (sql, before) in statements {
            deleted += with_pool!(&self.db, write, |p| sqlx::query(sql)
                .bind(before)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(deleted)
    }
}

/// The cutoffs of [`Store::prune`]: rows older than these go.
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    /// Rate-limit windows that started before this.
    pub rate_counters: i64,
    /// Sign-in failures (lockout and risk history) made before this.
    pub login_failures: i64,
    /// Wrong step-up answers made before this (outside every failure window).
    pub stepup_failures: i64,
    /// DPoP replay records whose proofs expired before this.
    pub dpop_proofs: i64,
    /// Challenges, WebAuthn registration ceremonies and emailed codes that expired
    /// before this.
    pub challenges: i64,
    /// Elevations that expired before this.
    pub elevations: i64,
    /// Decision records made before this.
    pub decision_records: i64,
}

impl Store {
    /// Records a DPoP proof's `jti` for its key; false if it was seen before (a replay).
    pub async fn use_dpop_proof(&self, jkt: &str, jti: &str, expires_at: i64) -> Result<bool> {
        let affected = with_pool!(&self.db, write, |p| sqlx::query(
            "INSERT INTO dpop_proofs (jkt, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jkt, jti) DO NOTHING"
        )
        .bind(jkt)
        .bind(jti)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }
}
