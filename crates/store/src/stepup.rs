//! Challenges, elevations and the step-up failure budget.

use stepgate_core::stepup::ElevationMode;

use crate::audit::{append, audited_change};
use crate::{AuditEvent, Result, SpentCode, Store, with_pool, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub id: String,
    pub user_id: String,
    /// None for a login challenge.
    pub session_id: Option<String>,
    pub purpose: String,
    pub policy_version: i64,
    pub factor_class: String,
    pub ttl_seconds: i64,
    pub single_use: bool,
    pub bind_ip: bool,
    pub approvals: i64,
    #[sqlx(try_from = "String")]
    pub mode: ElevationMode,
    pub status: String,
    pub failures: i64,
    pub max_attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub action_digest: Option<String>,
    pub action_summary: Option<String>,
    /// Login challenges: JSON of the pending login.
    pub login_context: Option<String>,
    /// When a passkey may answer: the assertion options shown to the browser and
    /// webauthn-rs's state that checks the answer (both JSON).
    pub webauthn_options: Option<String>,
    pub webauthn_state: Option<String>,
    /// When what the passed challenge yielded was handed out (see
    /// [`Store::collect_challenge`]); never set on insert.
    #[sqlx(default)]
    pub collected_at: Option<i64>,
    /// The client IP it was opened for.
    pub ip: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ElevationRecord {
    pub id: String,
    pub token_hash: Option<Vec<u8>>,
    pub challenge_id: String,
    /// The policy version of the challenge it came from.
    pub policy_version: i64,
    pub user_id: String,
    pub session_id: String,
    pub purpose: String,
    pub factor: String,
    pub factor_class: String,
    #[sqlx(try_from = "String")]
    pub mode: ElevationMode,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub single_use: bool,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub action_digest: Option<String>,
    /// The DPoP key the step-up was proven with; a use must prove it again.
    pub jkt: Option<String>,
}

/// A step-up answer about to be checked: whose, with which factor, for what, when.
#[derive(Debug, Clone, Copy)]
pub struct StepupAttempt<'a> {
    pub user_id: &'a str,
    pub factor: &'a str,
    pub purpose: &'a str,
    pub at: i64,
}

pub(crate) const RELEASE_RESERVATION: &str = "DELETE FROM stepup_failures WHERE reservation = $1";

/// Gives a reserved place in the failure budget back, on an open transaction.
macro_rules! release_reservation {
    ($tx:ident, $reservation:expr) => {{
        let reservation: &str = $reservation;
        sqlx::query($crate::stepup::RELEASE_RESERVATION)
            .bind(reservation)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use release_reservation;

/// Follows a challenge's `UPDATE … SET status = 'verified'` on an open transaction
/// (`$won`: whether it changed the row). Returns `ChallengeClosed` if it did not;
/// rolls back and returns `CodeRefused` if the answer's code is not there to spend
/// (the challenge stays pending); otherwise spends the code and gives the answer's
/// place in the failure budget back, and the caller goes on to finish the completion.
macro_rules! claim_with_code {
    ($tx:ident, $won:expr, $code:expr, $reservation:expr) => {{
        if !$won {
            $tx.rollback().await?;
            return Ok($crate::Completion::ChallengeClosed);
        }
        if !$crate::factors::spend_code!($tx, $code) {
            $tx.rollback().await?;
            return Ok($crate::Completion::CodeRefused);
        }
        $crate::stepup::release_reservation!($tx, $reservation);
    }};
}
pub(crate) use claim_with_code;

/// What completing an action challenge writes besides the challenge's own row.
pub struct ActionCompletion<'a> {
    /// The answer's place in the failure budget, given back.
    pub reservation: &'a str,
    pub elevation: &'a ElevationRecord,
    pub audit: &'a AuditEvent,
    /// The answer hands the elevation out itself (an API verify), so no later
    /// collection can.
    pub collected: bool,
}

/// How an attempt to complete a challenge with a right answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// The challenge was no longer pending (expired, blocked or completed meanwhile);
    /// nothing was written and the code is still unspent.
    ChallengeClosed,
    /// The code was not there to spend: never issued (a wrong recovery code, a TOTP
    /// step not after the last accepted one) or spent already, by another answer too;
    /// nothing was written.
    CodeRefused,
}

/// What reserving an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// An attempt of the challenge and a budget place are held for this answer.
    Reserved,
    /// The challenge is not pending, expired, or every attempt left is spent or being
    /// checked: the code must not be checked. Nothing was written.
    ChallengeSpent,
    /// The user's budget for the factor is spent. Nothing was written.
    BudgetSpent,
}

/// What counting a wrong answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; this many wrong answers so far.
    Counted(i64),
    /// Counted in the budget, but the challenge was no longer pending (completed meanwhile),
    /// or the answer was settled already.
    NotPending,
}

const CHALLENGE_COLUMNS: &str = "id, user_id, session_id, purpose, policy_version, factor_class, \
    ttl_seconds, single_use, bind_ip, approvals, mode, status, failures, max_attempts, created_at, \
    expires_at, action_digest, action_summary, login_context, webauthn_options, webauthn_state, ip";

pub(crate) const ELEVATION_COLUMNS: &str = "id, token_hash, challenge_id, policy_version, user_id, session_id, purpose, factor, \
    factor_class, mode, created_at, expires_at, ip, single_use, consumed_at, revoked_at, action_digest, jkt";

impl Store {
    pub async fn insert_challenge(&self, c: &ChallengeRecord, audit: &AuditEvent) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            sqlx::query(&format!(
                "INSERT INTO challenges ({CHALLENGE_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
            ))
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(&c.session_id)
            .bind(&c.purpose)
            .bind(c.policy_version)
            .bind(&c.factor_class)
            .bind(c.ttl_seconds)
            .bind(c.single_use)
            .bind(c.bind_ip)
            .bind(c.approvals)
            .bind(c.mode.as_str())
            .bind(&c.status)
            .bind(c.failures)
            .bind(c.max_attempts)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(&c.action_digest)
            .bind(&c.action_summary)
            .bind(&c.login_context)
            .bind(&c.webauthn_options)
            .bind(&c.webauthn_state)
            .bind(&c.ip)
            .execute(&mut *tx)
            .await?;
            append!(tx, audit);
        });
        Ok(())
    }

    /// A pending challenge of this session that an identical new one would duplicate:
    /// same purpose, mode, action digest and summary, under the same policy version,
    /// open until at least `open_until`, with an attempt left.
    pub async fn pending_challenge(
        &self,
        like: &ChallengeRecord,
        open_until: i64,
    ) -> Result<Option<ChallengeRecord>> {
        let sql = format!(
            "SELECT {CHALLENGE_COLUMNS}, collected_at FROM challenges WHERE session_id = $1 AND purpose = $2 \
             AND status = 'pending' AND mode = $3 AND policy_version = $4 \
             AND action_digest IS NOT DISTINCT FROM $5 AND action_summary IS NOT DISTINCT FROM $6 \
             AND expires_at >= $7 AND failures + checking < max_attempts \
             ORDER BY created_at DESC, id LIMIT 1"
        );
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(&like.session_id)
            .bind(&like.purpose)
            .bind(like.mode.as_str())
            .bind(like.policy_version)
            .bind(&like.action_digest)
            .bind(&like.action_summary)
            .bind(open_until)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRecord>> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS}, collected_at FROM challenges WHERE id = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Counts a checked wrong answer against the challenge and the user's factor budget,
    /// with its audit events (`blocked` too when this answer spent the last attempt), in
    /// one transaction. The answer held one of the challenge's attempts (`checking`) and
    /// a place in the budget since [`Store::reserve_stepup_attempt`]; both become a
    /// failure, even if another answer completed the challenge meanwhile: every code
    /// checked counts. `NotPending` when the reservation was settled already.
    pub async fn record_stepup_failure(
        &self,
        challenge_id: &str,
        reservation: &str,
        failed: &AuditEvent,
        blocked: &AuditEvent,
    ) -> Result<FailureOutcome> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let confirmed =
                sqlx::query("UPDATE stepup_failures SET reservation = NULL WHERE reservation = $1")
                    .bind(reservation)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            let row: Option<(i64, i64, String)> = if confirmed {
                sqlx::query_as(
                    "UPDATE challenges SET failures = failures + 1, checking = checking - 1 \
                     WHERE id = $1 RETURNING failures, max_attempts, status",
                )
                .bind(challenge_id)
                .fetch_optional(&mut *tx)
                .await?
            } else {
                None
            };
            match row {
                None => FailureOutcome::NotPending,
                Some((failures, max_attempts, status)) => {
                    append!(tx, failed);
                    // Decided from the count this UPDATE produced, so of two concurrent
                    // last answers exactly one raises it.
                    if failures == max_attempts && status == "pending" {
                        append!(tx, blocked);
                    }
                    if status == "pending" {
                        FailureOutcome::Counted(failures)
                    } else {
                        FailureOutcome::NotPending
                    }
                }
            }
        }))
    }

    /// Reserves a step-up answer before its code is checked, in one transaction: one of
    /// the challenge's attempts (only while it is pending, unexpired, and its failures
    /// plus the answers being checked stay below its limit; the UPDATE's WHERE is the
    /// lock), and, under a per-user lock, a place in the user's budget for this factor
    /// (wrong answers and answers in flight since `since`, below `limit`), written as a
    /// provisional failure named `reservation`. `record_stepup_failure` confirms both;
    /// the completing transaction or `release_stepup_attempt` gives both back.
    pub async fn reserve_stepup_attempt(
        &self,
        attempt: &StepupAttempt<'_>,
        challenge_id: &str,
        since: i64,
        limit: i64,
        reservation: &str,
    ) -> Result<Reserved> {
        let StepupAttempt {
            user_id,
            factor,
            purpose,
            at: now,
        } = *attempt;
        Ok(with_tx!(&self.db, |tx, pg_lock| {
            if pg_lock.is_some() {
                sqlx::query("SELECT pg_advisory_xact_lock(7403103, hashtext($1))")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let held = sqlx::query(
                "UPDATE challenges SET checking = checking + 1 WHERE id = $1 \
                 AND status = 'pending' AND expires_at > $2 AND failures + checking < max_attempts",
            )
            .bind(challenge_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !held {
                return Ok(Reserved::ChallengeSpent);
            }
            let seen: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM stepup_failures WHERE user_id = $1 AND factor = $2 AND at > $3",
            )
            .bind(user_id)
            .bind(factor)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if seen >= limit {
                // Dropping the transaction gives the challenge's attempt back too.
                return Ok(Reserved::BudgetSpent);
            }
            sqlx::query(
                "INSERT INTO stepup_failures (user_id, factor, purpose, at, reservation) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(factor)
            .bind(purpose)
            .bind(now)
            .bind(reservation)
            .execute(&mut *tx)
            .await?;
            Reserved::Reserved
        }))
    }

    /// Gives back a reserved answer that was never judged wrong (it was not checked, or
    /// the challenge closed meanwhile): its budget place and its challenge attempt.
    /// Idempotent: a reservation already settled changes nothing.
    pub async fn release_stepup_attempt(
        &self,
        challenge_id: &str,
        reservation: &str,
    ) -> Result<()> {
        with_tx!(&self.db, |tx, _pg_lock| {
            let released = sqlx::query(RELEASE_RESERVATION)
                .bind(reservation)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if released {
                sqlx::query("UPDATE challenges SET checking = checking - 1 WHERE id = $1")
                    .bind(challenge_id)
                    .execute(&mut *tx)
                    .await?;
            }
        });
        Ok(())
    }

    /// Wrong step-up answers by this user with this factor since `since`.
    pub async fn stepup_failures_since(
        &self,
        user_id: &str,
        factor: &str,
        since: i64,
    ) -> Result<i64> {
        Ok(with_pool!(&self.db, read, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM stepup_failures WHERE user_id = $1 AND factor = $2 AND at > $3"
        )
        .bind(user_id)
        .bind(factor)
        .bind(since)
        .fetch_one(p)
        .await)?)
    }

    /// Completes an action challenge: spends the answer's code, marks the challenge
    /// verified, gives the answer's `reservation` in the failure budget back and makes
    /// the elevation, with the audit event, in one transaction.
    pub async fn complete_challenge(
        &self,
        challenge_id: &str,
        now: i64,
        code: SpentCode<'_>,
        completion: ActionCompletion<'_>,
    ) -> Result<Completion> {
        let ActionCompletion {
            reservation,
            elevation,
            audit,
            collected,
        } = completion;
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let won = sqlx::query(
                "UPDATE challenges SET status = 'verified', checking = checking - 1, collected_at = $3 \
                 WHERE id = $1 AND status = 'pending' AND failures < max_attempts AND expires_at > $2",
            )
            .bind(challenge_id)
            .bind(now)
            .bind(collected.then_some(now))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            claim_with_code!(tx, won, code, reservation);
            sqlx::query(&format!(
                "INSERT INTO elevations ({ELEVATION_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
            ))
            .bind(&elevation.id)
            .bind(&elevation.token_hash)
            .bind(&elevation.challenge_id)
            .bind(elevation.policy_version)
            .bind(&elevation.user_id)
            .bind(&elevation.session_id)
            .bind(&elevation.purpose)
            .bind(&elevation.factor)
            .bind(&elevation.factor_class)
            .bind(elevation.mode.as_str())
            .bind(elevation.created_at)
            .bind(elevation.expires_at)
            .bind(&elevation.ip)
            .bind(elevation.single_use)
            .bind(elevation.consumed_at)
            .bind(elevation.revoked_at)
            .bind(&elevation.action_digest)
            .bind(&elevation.jkt)
            .execute(&mut *tx)
            .await?;
            append!(tx, audit);
            Completion::Completed
        }))
    }

    /// Collects, once, what a challenge passed on the hosted page yielded: marks it
    /// collected and, for a token-mode elevation, stores the hash of the token being
    /// handed out now. False when it is not passed or was collected already. Single
    /// collection: the UPDATE's WHERE is the lock.
    pub async fn collect_challenge(
        &self,
        challenge_id: &str,
        now: i64,
        elevation_token_hash: Option<&[u8]>,
    ) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            let won = sqlx::query(
                "UPDATE challenges SET collected_at = $2 \
                 WHERE id = $1 AND status = 'verified' AND collected_at IS NULL",
            )
            .bind(challenge_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won && let Some(hash) = elevation_token_hash {
                sqlx::query(
                    "UPDATE elevations SET token_hash = $2 \
                     WHERE challenge_id = $1 AND token_hash IS NULL",
                )
                .bind(challenge_id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            }
            won
        }))
    }

    /// The elevation a passed action challenge made.
    pub async fn elevation_of_challenge(
        &self,
        challenge_id: &str,
    ) -> Result<Option<ElevationRecord>> {
        let sql = format!("SELECT {ELEVATION_COLUMNS} FROM elevations WHERE challenge_id = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(challenge_id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn elevation(&self, id: &str) -> Result<Option<ElevationRecord>> {
        let sql = format!("SELECT {ELEVATION_COLUMNS} FROM elevations WHERE id = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn elevation_by_token_hash(&self, hash: &[u8]) -> Result<Option<ElevationRecord>> {
        let sql = format!("SELECT {ELEVATION_COLUMNS} FROM elevations WHERE token_hash = $1");
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(hash)
            .fetch_optional(p)
            .await)?)
    }

    /// A user's elevations that are neither revoked, expired nor used up, newest first.
    pub async fn live_elevations_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<ElevationRecord>> {
        let sql = format!(
            "SELECT {ELEVATION_COLUMNS} FROM elevations WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND NOT (single_use AND consumed_at IS NOT NULL) \
             ORDER BY created_at DESC, id"
        );
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(p)
            .await)?)
    }

    /// Every user's live elevations, newest first, at most `limit`.
    pub async fn live_elevations(&self, now: i64, limit: i64) -> Result<Vec<ElevationRecord>> {
        let sql = format!(
            "SELECT {ELEVATION_COLUMNS} FROM elevations WHERE revoked_at IS NULL \
             AND expires_at > $1 AND NOT (single_use AND consumed_at IS NOT NULL) \
             ORDER BY created_at DESC, id LIMIT $2"
        );
        Ok(with_pool!(&self.db, read, |p| sqlx::query_as(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Uses elevations, all of them or none, in one transaction with their audit
    /// events. For a single-use one this is the atomic consume: of any number of
    /// concurrent callers on any number of nodes exactly one uses it, because the
    /// UPDATE's WHERE is the lock. A multi-use one is only checked to be live. `None`
    /// when every one was used, else the index of the first that could not be (and
    /// none was used).
    pub async fn use_elevations(
        &self,
        uses: &[(&str, &AuditEvent)],
        now: i64,
    ) -> Result<Option<usize>> {
        if uses.is_empty() {
            // Nothing to use: no write transaction (on SQLite it would queue behind
            // the single writer).
            return Ok(None);
        }
        with_tx!(&self.db, |tx, _pg_lock| {
            for (i, (id, audit)) in uses.iter().enumerate() {
                let used = audited_change!(
                    tx,
                    sqlx::query(
                        "UPDATE elevations SET consumed_at = $2 WHERE id = $1 \
                         AND revoked_at IS NULL AND expires_at > $2 \
                         AND (NOT single_use OR consumed_at IS NULL)",
                    )
                    .bind(*id)
                    .bind(now),
                    *audit
                );
                if !used {
                    // Dropping the open transaction rolls back the uses before this one.
                    return Ok(Some(i));
                }
            }
        });
        Ok(None)
    }

    /// Revokes a live elevation. False if it was already revoked or unknown.
    pub async fn revoke_elevation(&self, id: &str, now: i64, audit: &AuditEvent) -> Result<bool> {
        Ok(with_tx!(&self.db, |tx, _pg_lock| {
            audited_change!(
                tx,
                sqlx::query(
                    "UPDATE elevations SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now),
                audit
            )
        }))
    }
}

impl ChallengeRecord {
    /// The challenge as the core judges it. Fails only on a corrupt row.
    pub fn to_domain(
        &self,
    ) -> std::result::Result<stepgate_core::stepup::Challenge, stepgate_core::Error> {
        use stepgate_core::purpose::{FactorClass, PurposeName, Requirement};
        use stepgate_core::stepup::{Challenge, ChallengeStatus};
        Ok(Challenge {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            purpose: PurposeName::parse(&self.purpose)?,
            policy_version: self.policy_version,
            requirement: Requirement {
                factor: FactorClass::parse(&self.factor_class)?,
                ttl_seconds: self.ttl_seconds,
                single_use: self.single_use,
                bind_ip: self.bind_ip,
                approvals: u32::try_from(self.approvals).unwrap_or(u32::MAX),
            },
            mode: self.mode,
            status: ChallengeStatus::parse(&self.status),
            failures: u32::try_from(self.failures).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(0),
            created_at: self.created_at,
            expires_at: self.expires_at,
            action_digest: self.action_digest.clone(),
        })
    }
}

impl ElevationRecord {
    /// The elevation as the core judges it. Fails only on a corrupt row.
    pub fn to_domain(
        &self,
    ) -> std::result::Result<stepgate_core::stepup::Elevation, stepgate_core::Error> {
        use stepgate_core::purpose::{FactorClass, PurposeName};
        use stepgate_core::stepup::Elevation;
        Ok(Elevation {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            purpose: PurposeName::parse(&self.purpose)?,
            factor_class: FactorClass::parse(&self.factor_class)?,
            mode: self.mode,
            created_at: self.created_at,
            expires_at: self.expires_at,
            ip: self.ip.clone(),
            single_use: self.single_use,
            consumed_at: self.consumed_at,
            revoked_at: self.revoked_at,
            action_digest: self.action_digest.clone(),
        })
    }
}
