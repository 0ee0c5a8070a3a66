//! The decision path's caches: verified access tokens until their `exp`, each
//! session's view and the policy version for `decisions.session_cache_ms` (reloaded in
//! the background at half their age), and Cedar outcomes by their complete facts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use stepgate_api::DecisionKind;
use stepgate_core::authz::Verdict;
use stepgate_store::{ElevationRecord, SessionRecord};
use tokio::sync::mpsc;

use super::Judged;
use super::records::PendingRecord;
use crate::app::SharedApp;
use crate::config::DecisionsConfig;
use crate::error::AppError;
use crate::fresh::FreshCache;
use crate::policy::PolicySnapshot;
use crate::risk::signals::UserHistory;
use crate::tokens::AccessClaims;

/// What a session looks like to the decision path, read in one go and reused for
/// `session_cache_ms`.
pub struct SessionView {
    pub session: SessionRecord,
    /// The session's lifetime rules, converted once per load.
    pub(super) live: stepgate_core::session::Session,
    pub roles: Vec<String>,
    /// What the risk of its actions reads of the user.
    pub(super) history: UserHistory,
    /// Live session-mode elevations of this session.
    pub(super) elevations: Vec<ElevationRecord>,
}

/// The decision path's state: caches and the record queue.
pub struct Decider {
    pub(super) tokens: quick_cache::sync::Cache<[u8; 32], Arc<AccessClaims>>,
    /// Session views by session id, for `session_cache_ms`.
    pub(super) views: FreshCache<String, SessionView>,
    /// The current policy version (one entry), for the same time.
    pub(super) policy: FreshCache<(), PolicySnapshot>,
    pub(super) records: mpsc::Sender<PendingRecord>,
    pub(super) records_rx: Mutex<Option<mpsc::Receiver<PendingRecord>>>,
    pub(super) dropped: AtomicU64,
    /// Recent Cedar outcomes by their complete facts. The policies are fixed for the
    /// process's life and `decide` is a pure function of the facts, so a hit is exactly
    /// the answer Cedar would give.
    pub(super) outcomes: quick_cache::sync::Cache<String, Arc<Judged>>,
    /// `stepgate_decisions_total` by answer, registered on first use (after the
    /// metrics recorder is installed).
    pub(super) counted: std::sync::OnceLock<[metrics::Counter; 3]>,
}

impl Decider {
    pub fn new(config: &DecisionsConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.record_queue);
        let views = (config.token_cache_entries / 4).max(64);
        let ttl = Duration::from_millis(config.session_cache_ms);
        Self {
            tokens: quick_cache::sync::Cache::new(config.token_cache_entries.max(1)),
            views: FreshCache::new(views, ttl),
            policy: FreshCache::new(1, ttl),
            records: tx,
            records_rx: Mutex::new(Some(rx)),
            outcomes: quick_cache::sync::Cache::new(config.outcome_cache_entries.max(1)),
            dropped: AtomicU64::new(0),
            counted: std::sync::OnceLock::new(),
        }
    }

    /// Forgets what this node cached about a session (logout, step-up, revocation).
    pub fn forget_session(&self, session_id: &str) {
        self.views.forget(session_id);
    }

    /// Forgets the cached policy version (after a policy change through this node).
    pub fn forget_policy(&self) {
        self.policy.forget(&());
    }

    /// Records dropped because the queue was full.
    pub fn dropped_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes the receiving end of the record queue (once, for the writer task).
    pub fn take_record_receiver(&self) -> Option<mpsc::Receiver<PendingRecord>> {
        self.records_rx.lock().expect("records lock").take()
    }

    pub(super) fn count(&self, verdict: DecisionKind) {
        let [allow, step_up, deny] = self.counted.get_or_init(|| {
            [Verdict::Allow, Verdict::StepUp, Verdict::Deny]
                .map(|v| metrics::counter!("stepgate_decisions_total", "decision" => v.as_str()))
        });
        match verdict {
            DecisionKind::Allow => allow,
            DecisionKind::StepUp => step_up,
            DecisionKind::Deny => deny,
        }
        .increment(1);
    }

    pub(super) fn record(&self, record: PendingRecord) {
        if self.records.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("stepgate_decision_records_dropped_total").increment(1);
        }
    }
}

pub(super) fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(super) fn ended() -> AppError {
    AppError::unauthenticated("the access token's session has ended")
        .with("subject", "access_token")
}

/// Verifies an access token, through the cache: a token verified once is trusted until
/// its `exp` without checking its signature again.
pub(super) fn verify_token(
    app: &SharedApp,
    token: &str,
    now: i64,
) -> Result<Arc<AccessClaims>, AppError> {
    let key = token_key(token);
    if let Some(claims) = app.decider.tokens.get(&key) {
        if claims.exp > now {
            return Ok(claims);
        }
        app.decider.tokens.remove(&key);
    }
    let claims = app.tokens.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "access token refused");
        AppError::unauthenticated("the access token is invalid or expired")
            .with("subject", "access_token")
    })?;
    let claims = Arc::new(claims);
    app.decider.tokens.insert(key, claims.clone());
    Ok(claims)
}

pub(super) async fn load_view(
    app: &SharedApp,
    session_id: &str,
    now: i64,
) -> Result<SessionView, AppError> {
    metrics::counter!("stepgate_decision_view_loads_total").increment(1);
    let store = &app.store;
    let session = store.session(session_id).await?.ok_or_else(ended)?;
    let user = store
        .user_by_id(&session.user_id)
        .await?
        .ok_or_else(ended)?;
    let roles: Vec<String> = serde_json::from_str(&user.roles)
        .map_err(|e| AppError::internal(format!("corrupt roles of user {}: {e}", user.id)))?;
    Ok(SessionView {
        roles,
        history: UserHistory::load(app, &session).await?,
        elevations: store.live_session_elevations(session_id, now).await?,
        live: session.to_domain(),
        session,
    })
}

/// The session's view, cached unless `fresh`; the flag says whether it was just read.
/// Under steady traffic the view is reloaded in the background at half its age.
pub(super) async fn view(
    app: &SharedApp,
    session_id: &str,
    fresh: bool,
    now: i64,
) -> Result<(Arc<SessionView>, bool), AppError> {
    let views = &app.decider.views;
    if fresh {
        let v = views
            .reload(session_id, load_view(app, session_id, now))
            .await?;
        return Ok((v, true));
    }
    let got = views
        .get(session_id, || load_view(app, session_id, now))
        .await?;
    if got.refresh {
        let (app, session_id) = (app.clone(), session_id.to_owned());
        tokio::spawn(async move {
            metrics::counter!("stepgate_decision_view_refreshes_total").increment(1);
            let read = load_view(&app, &session_id, app.now());
            app.decider.views.refresh(&session_id, read).await;
        });
    }
    Ok((got.value, got.loaded))
}

/// The current policy version, cached and refreshed as the views are.
pub(super) async fn policy_snapshot(app: &SharedApp) -> Result<Arc<PolicySnapshot>, AppError> {
    let got = app
        .decider
        .policy
        .get(&(), || app.policy.current(&app.store))
        .await?;
    if got.refresh {
        let app = app.clone();
        tokio::spawn(async move {
            let read = app.policy.current(&app.store);
            app.decider.policy.refresh(&(), read).await;
        });
    }
    Ok(got.value)
}
