//! The decision path shared by `POST /v1/decisions` and forward-auth: who is asking
//! (access token, checked through a bounded cache), what the session holds (a cached
//! view of its liveness, roles, risk history and elevations), the risk of the request,
//! and the Cedar policies or the purpose. Every answer is recorded, in batches, off the
//! request path.
//!
//! What the caches may and may not do: a cached view can only make an answer *less*
//! generous for a moment (an elevation made on another node is not yet seen), never use
//! an elevation that is gone: an allow that relies on one uses it up in the database
//! (`rely_on`), and every `step_up` or `deny` from a cached view is decided again from a
//! fresh one before it is answered. Logout and elevation changes through this node drop
//! the view at once; through another node they are seen within `session_cache_ms`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepgate_core::ErrorCode;
use stepgate_core::authz::{Facts, Outcome, Verdict};
use stepgate_core::risk::{DeviceSignal, PreviousLogin, RiskAssessment, Signals};
use stepgate_core::session::acr;
use stepgate_core::stepup::Use;
use stepgate_store::{DecisionRecord, ElevationRecord, SessionRecord, Store};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::config::DecisionsConfig;
use crate::dpop::{Scheme, check_possession};
use crate::elevations::{check_holder, parse_elevation_token, rely_on, rely_on_all};
use crate::error::AppError;
use crate::fresh::FreshCache;
use crate::policy::PolicySnapshot;
use crate::risk::RiskView;
use crate::stepup::challenges::{self, ChallengeRequest};
use crate::tokens::AccessClaims;

/// What a session looks like to the decision path, read in one go and reused for
/// `session_cache_ms`.
pub struct SessionView {
    pub session: SessionRecord,
    /// The session's lifetime rules, converted once per load.
    live: stepgate_core::session::Session,
    pub roles: Vec<String>,
    device: DeviceSignal,
    previous_login: Option<PreviousLogin>,
    countries: Vec<String>,
    ips: Vec<String>,
    /// Live session-mode elevations of this session.
    elevations: Vec<ElevationRecord>,
}

/// The decision path's state: caches and the record queue.
pub struct Decider {
    tokens: quick_cache::sync::Cache<[u8; 32], Arc<AccessClaims>>,
    /// Session views by session id, for `session_cache_ms`.
    views: FreshCache<String, SessionView>,
    /// The current policy version (one entry), for the same time.
    policy: FreshCache<(), PolicySnapshot>,
    records: mpsc::Sender<PendingRecord>,
    records_rx: Mutex<Option<mpsc::Receiver<PendingRecord>>>,
    dropped: AtomicU64,
    /// Recent Cedar outcomes by their complete facts. The policies are fixed for the
    /// process's life and `decide` is a pure function of the facts, so a hit is exactly
    /// the answer Cedar would give.
    outcomes: quick_cache::sync::Cache<String, Arc<Judged>>,
    /// `stepgate_decisions_total` by answer, registered on first use (after the
    /// metrics recorder is installed).
    counted: std::sync::OnceLock<[metrics::Counter; 3]>,
}

/// A decision waiting to be recorded. It shares what it can with the caches (the
/// session's view, the memoized facts), so queuing one copies nothing.
pub struct PendingRecord {
    at: i64,
    view: Arc<SessionView>,
    decision: &'static str,
    purpose: Option<String>,
    policy_version: i64,
    facts: Arc<str>,
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

    fn count(&self, verdict: &str) {
        let [allow, step_up, deny] = self.counted.get_or_init(|| {
            [Verdict::Allow, Verdict::StepUp, Verdict::Deny]
                .map(|v| metrics::counter!("stepgate_decisions_total", "decision" => v.as_str()))
        });
        match verdict {
            "allow" => allow,
            "step_up" => step_up,
            _ => deny,
        }
        .increment(1);
    }

    fn record(&self, record: PendingRecord) {
        if self.records.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("stepgate_decision_records_dropped_total").increment(1);
        }
    }
}

/// How often the record writer wakes to drain the queue. Waking on a timer instead of
/// on every record keeps cross-thread wake-ups off the decision path.
const RECORD_FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Writes queued decision records every `RECORD_FLUSH_EVERY`: everything queued is
/// folded (identical decisions of a session become one row with a count) and written
/// `batch` rows per transaction. When `stop` fires, closes the queue and writes what is
/// left before returning.
pub async fn write_records(
    store: Store,
    mut rx: mpsc::Receiver<PendingRecord>,
    batch: usize,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut ticker = tokio::time::interval(RECORD_FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drained = Vec::new();
    let mut closing = false;
    loop {
        if !closing {
            closing = tokio::select! {
                _ = ticker.tick() => false,
                () = stop.notified() => {
                    rx.close();
                    true
                }
            };
        }
        // At most one queue's worth per tick, so a writer that falls behind still
        // writes in bounded steps (and the queue, full meanwhile, drops and counts).
        let mut budget = rx.max_capacity();
        while budget > 0
            && let Ok(record) = rx.try_recv()
        {
            drained.push(record);
            budget -= 1;
        }
        if !drained.is_empty() {
            let rows = fold(&mut drained);
            for chunk in rows.chunks(batch.max(1)) {
                write_batch(&store, chunk).await;
            }
        }
        if closing && rx.is_empty() {
            return;
        }
    }
}

/// Folds pending records into rows: identical decisions of a session (same answer,
/// policy version and facts) become one row whose `count` says how many it stands for.
/// Empties `pending`.
fn fold(pending: &mut Vec<PendingRecord>) -> Vec<DecisionRecord> {
    // Records from the same cached view and memoized facts share pointers, so most are
    // grouped by comparing addresses; the groups are then merged by content.
    let mut by_pointer: std::collections::HashMap<
        (usize, usize, &'static str, &Option<String>, i64),
        usize,
    > = std::collections::HashMap::new();
    let mut groups: Vec<(usize, i64)> = Vec::new();
    for (i, r) in pending.iter().enumerate() {
        let key = (
            Arc::as_ptr(&r.view) as usize,
            Arc::as_ptr(&r.facts) as *const u8 as usize,
            r.decision,
            &r.purpose,
            r.policy_version,
        );
        match by_pointer.get(&key) {
            Some(&g) => groups[g].1 += 1,
            None => {
                by_pointer.insert(key, groups.len());
                groups.push((i, 1));
            }
        }
    }
    drop(by_pointer);
    let mut rows: Vec<DecisionRecord> = Vec::with_capacity(groups.len());
    let mut by_content: std::collections::HashMap<(&str, &str, &Option<String>, i64, &str), usize> =
        std::collections::HashMap::new();
    for (i, count) in groups {
        let r = &pending[i];
        let key = (
            r.view.session.id.as_str(),
            r.decision,
            &r.purpose,
            r.policy_version,
            &*r.facts,
        );
        match by_content.get(&key) {
            Some(&row) => rows[row].count += count,
            None => {
                by_content.insert(key, rows.len());
                rows.push(DecisionRecord {
                    at: r.at,
                    user_id: r.view.session.user_id.clone(),
                    session_id: r.view.session.id.clone(),
                    decision: r.decision.into(),
                    purpose: r.purpose.clone(),
                    policy_version: r.policy_version,
                    facts: r.facts.to_string(),
                    count,
                });
            }
        }
    }
    drop(by_content);
    pending.clear();
    rows
}

/// Writes one transaction's worth of rows.
async fn write_batch(store: &Store, rows: &[DecisionRecord]) {
    let decisions: u64 = rows.iter().map(|r| r.count as u64).sum();
    match store.insert_decision_records(rows).await {
        Ok(()) => {
            metrics::counter!("stepgate_decision_records_written_total").increment(decisions);
        }
        Err(e) => {
            tracing::warn!(error = %e, lost = decisions, "writing decision records failed");
            metrics::counter!("stepgate_decision_records_dropped_total").increment(decisions);
        }
    }
}

/// What is being decided.
#[derive(Debug, Clone)]
pub enum Question {
    /// "May this session do what `purpose` names?" — allowed only with an elevation.
    Purpose(String),
    /// "May this session do `action` on `resource`?" — the Cedar policies decide.
    Action {
        action: String,
        resource: String,
        attributes: Option<serde_json::Map<String, serde_json::Value>>,
    },
}

/// A DPoP proof relayed by the caller, with the request it was made for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RelayedProof {
    pub proof: String,
    /// The method of the request the proof was made for.
    pub method: String,
    /// The URL (scheme, host, path) of that request.
    pub url: String,
}

/// A decision request, however it arrived.
pub struct Ask {
    pub token: String,
    pub scheme: Scheme,
    pub dpop: Option<RelayedProof>,
    pub question: Question,
    pub ip: Option<IpAddr>,
    pub device_fingerprint: Option<String>,
    pub elevation_token: Option<String>,
    pub action_digest: Option<String>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionAnswer {
    /// `allow`, `step_up` or `deny`.
    pub decision: &'static str,
    pub user_id: String,
    pub session_id: String,
    /// For `step_up`: the purpose that would satisfy it; for `allow`, the one relied on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// For `step_up`: a ready challenge for the user to answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_factors: Option<Vec<String>>,
    /// For `step_up`: the user has no second factor yet and must enroll one first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enrollment_required: bool,
    /// For `step_up`: the RFC 9470 `acr_values` a new authentication must reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// For `step_up`: the RFC 9470 `max_age`: how old that authentication may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (the RFC 9470 answer's scheme).
    pub token_scheme: &'static str,
    /// For an `allow` that used an elevation: which (the first, when several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
    /// For an `allow` that used elevations: every one it used up or relied on, all in
    /// one transaction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elevation_ids: Vec<String>,
    pub risk: RiskView,
    pub reasons: Vec<String>,
    pub policy_ids: Vec<String>,
    pub policy_version: i64,
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn ended() -> AppError {
    AppError::unauthenticated("the access token's session has ended")
        .with("subject", "access_token")
}

/// Verifies an access token, through the cache: a token verified once is trusted until
/// its `exp` without checking its signature again.
fn verify_token(app: &SharedApp, token: &str, now: i64) -> Result<Arc<AccessClaims>, AppError> {
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

async fn load_view(app: &SharedApp, session_id: &str, now: i64) -> Result<SessionView, AppError> {
    metrics::counter!("stepgate_decision_view_loads_total").increment(1);
    let store = &app.store;
    let session = store.session(session_id).await?.ok_or_else(ended)?;
    let user = store
        .user_by_id(&session.user_id)
        .await?
        .ok_or_else(ended)?;
    let roles: Vec<String> = serde_json::from_str(&user.roles)
        .map_err(|e| AppError::internal(format!("corrupt roles of user {}: {e}", user.id)))?;
    let device =
        crate::risk::device_signal(app, &session.user_id, session.device_hash.as_deref()).await?;
    let previous_login = store
        .recent_logins(&session.user_id, 1)
        .await?
        .first()
        .map(crate::risk::previous_login);
    Ok(SessionView {
        roles,
        device,
        previous_login,
        countries: store.countries_of_user(&session.user_id).await?,
        ips: store.ips_of_user(&session.user_id).await?,
        elevations: store.live_session_elevations(session_id, now).await?,
        live: session.to_domain(),
        session,
    })
}

/// The session's view, cached unless `fresh`; the flag says whether it was just read.
/// Under steady traffic the view is reloaded in the background at half its age.
async fn view(
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
async fn policy_snapshot(app: &SharedApp) -> Result<Arc<PolicySnapshot>, AppError> {
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

/// The risk signals of a decision; `ip_text` is `ask.ip` rendered (once per decision).
fn signals(
    app: &SharedApp,
    view: &SessionView,
    ask: &Ask,
    ip_text: Option<&str>,
    sensitivity: Option<(String, u8)>,
    now: i64,
) -> Signals {
    let device = match (&ask.device_fingerprint, &view.session.device_hash) {
        // Another device than the one that logged in is using this session's token.
        (Some(f), Some(hash)) if hex::encode(Sha256::digest(f.as_bytes())) != *hash => {
            DeviceSignal::New
        }
        (Some(_), None) => DeviceSignal::New,
        _ => view.device,
    };
    let (ip_seen_before, listed, geo) = match ask.ip {
        Some(ip) => (
            Some(ip_text.is_some_and(|text| view.ips.iter().any(|seen| seen == text))),
            app.risk_sources.listed(ip),
            app.risk_sources.locate(ip),
        ),
        None => (None, Vec::new(), None),
    };
    Signals {
        device,
        ip_seen_before,
        listed,
        geo,
        countries_seen: view.countries.clone(),
        previous_login: view.previous_login.clone(),
        login_hours: Vec::new(),
        recent_failures: 0,
        session_age: Some(now - view.session.created_at),
        purpose_sensitivity: sensitivity,
    }
}

/// The elevation the caller presented, checked to belong to this session (and, when
/// key-bound, to the key this request proved).
async fn presented_elevation(
    app: &SharedApp,
    ask: &Ask,
    session_id: &str,
    caller_jkt: Option<&str>,
) -> Result<Option<ElevationRecord>, AppError> {
    let Some(raw) = &ask.elevation_token else {
        return Ok(None);
    };
    let hash = parse_elevation_token(raw)?;
    let record = app
        .store
        .elevation_by_token_hash(&hash)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::StepupTokenInvalid, "unknown elevation token"))?;
    check_holder(&record, session_id, caller_jkt)?;
    Ok(Some(record))
}

/// Decides, opens a challenge for a `step_up`, uses up what an `allow` relies on, and
/// records the answer.
pub async fn decide(app: &SharedApp, ask: Ask) -> Result<DecisionAnswer, AppError> {
    let now = app.now();
    let claims = verify_token(app, &ask.token, now)?;
    let proof = ask.dpop.as_ref();
    check_possession(
        app,
        &claims,
        &ask.token,
        ask.scheme,
        proof.map(|p| p.proof.as_str()),
        proof.map_or("", |p| p.method.as_str()),
        proof.map_or("", |p| p.url.as_str()),
    )
    .await
    .map_err(|e| e.with("subject", "access_token"))?;
    let caller_jkt = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    let presented = presented_elevation(app, &ask, &claims.sid, caller_jkt).await?;
    let ip_text = ask.ip.map(|ip| ip.to_string());
    if let Some(record) = &presented {
        // A presented token that is dead says why at once (and a reused one raises the
        // critical event), as a redeem would.
        let use_ = Use {
            purpose: &record.purpose,
            ip: ip_text.as_deref(),
            action_digest: ask.action_digest.as_deref(),
        };
        if record
            .to_domain()
            .map_err(|e| AppError::internal(format!("corrupt elevation: {e}")))?
            .check_use(&use_, now)
            .is_err()
        {
            rely_on(app, record, &use_, now).await?;
        }
    }

    let mut fresh = false;
    loop {
        let (view, loaded) = view(app, &claims.sid, fresh, now).await?;
        fresh |= loaded;
        // An ended session stays ended, so its cached view keeps answering that
        // without reading the store again.
        if view.session.user_id != claims.sub || !view.live.is_live(now) {
            return Err(ended());
        }
        let snapshot = policy_snapshot(app).await?;
        let mut held: BTreeSet<String> =
            view.elevations.iter().map(|e| e.purpose.clone()).collect();
        held.extend(presented.iter().map(|e| e.purpose.clone()));

        let (judged, assessment) = judge(app, &ask, ip_text.as_deref(), &view, &held, now)?;
        let outcome = &judged.outcome;
        if outcome.verdict != Verdict::Allow && !fresh {
            // Decide again from the database before refusing anything.
            fresh = true;
            continue;
        }
        let mut answer = DecisionAnswer {
            decision: outcome.verdict.as_str(),
            user_id: view.session.user_id.clone(),
            session_id: view.session.id.clone(),
            purpose: outcome.purpose.clone(),
            challenge_id: None,
            title: None,
            allowed_factors: None,
            enrollment_required: false,
            acr_values: None,
            max_age: None,
            token_scheme: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            elevation_id: None,
            elevation_ids: Vec::new(),
            risk: RiskView::from(&assessment),
            reasons: outcome.reasons.clone(),
            policy_ids: outcome.policy_ids.clone(),
            policy_version: snapshot.version,
        };
        match outcome.verdict {
            Verdict::Allow => {
                // Every elevation the allow relies on is used, all or none.
                let mut records = Vec::with_capacity(outcome.relies_on.len());
                for relied in &outcome.relies_on {
                    let record = presented
                        .iter()
                        .chain(view.elevations.iter())
                        .find(|e| e.purpose == *relied)
                        .ok_or_else(|| AppError::internal("relied-on elevation vanished"))?;
                    records.push(record);
                }
                let uses: Vec<(&ElevationRecord, Use<'_>)> = records
                    .iter()
                    .map(|record| {
                        let use_ = Use {
                            purpose: &record.purpose,
                            ip: ip_text.as_deref(),
                            action_digest: ask.action_digest.as_deref(),
                        };
                        (*record, use_)
                    })
                    .collect();
                match rely_on_all(app, &uses, now).await {
                    Ok(()) => {
                        if let Some(first) = records.first() {
                            answer.purpose = Some(first.purpose.clone());
                            answer.elevation_id = Some(first.id.clone());
                        }
                        answer.elevation_ids = records.iter().map(|r| r.id.clone()).collect();
                    }
                    // The caller's own token failing is the caller's answer.
                    Err((i, e)) if presented.as_ref().is_some_and(|p| p.id == records[i].id) => {
                        return Err(e);
                    }
                    // The session's elevation went meanwhile: decide again.
                    Err(_) if !fresh => {
                        fresh = true;
                        continue;
                    }
                    Err((_, e)) => return Err(e),
                }
            }
            Verdict::StepUp => {
                let purpose_name = outcome.purpose.clone().unwrap_or_default();
                step_up(
                    app,
                    &claims,
                    &view,
                    &ask,
                    &purpose_name,
                    &snapshot,
                    &mut answer,
                )
                .await?;
            }
            Verdict::Deny => {}
        }
        app.decider.count(answer.decision);
        app.decider.record(PendingRecord {
            at: now,
            view: view.clone(),
            decision: answer.decision,
            purpose: answer.purpose.clone(),
            policy_version: answer.policy_version,
            facts: judged.facts.clone(),
        });
        return Ok(answer);
    }
}

/// A verdict and the facts it was reached on, as they are recorded.
pub struct Judged {
    pub outcome: Outcome,
    facts: Arc<str>,
}

/// The verdict and the risk, without side effects.
fn judge(
    app: &SharedApp,
    ask: &Ask,
    ip_text: Option<&str>,
    view: &SessionView,
    held: &BTreeSet<String>,
    now: i64,
) -> Result<(Arc<Judged>, RiskAssessment), AppError> {
    match &ask.question {
        Question::Purpose(name) => {
            let purpose = app.policy.purpose(name).ok_or_else(|| {
                AppError::new(ErrorCode::NotFound, format!("no purpose named {name:?}"))
            })?;
            let sensitivity =
                (purpose.sensitivity > 0).then(|| (name.clone(), purpose.sensitivity));
            let assessment = stepgate_core::risk::assess(
                &signals(app, view, ask, ip_text, sensitivity, now),
                &app.risk,
                now,
            );
            let outcome = if held.contains(name) {
                Outcome {
                    verdict: Verdict::Allow,
                    purpose: None,
                    policy_ids: Vec::new(),
                    relies_on: vec![name.clone()],
                    reasons: vec![format!("the session holds an elevation for {name}")],
                }
            } else {
                Outcome {
                    verdict: Verdict::StepUp,
                    purpose: Some(name.clone()),
                    policy_ids: Vec::new(),
                    relies_on: Vec::new(),
                    reasons: vec![format!("{name} needs a step-up and none is held")],
                }
            };
            let facts = facts_json(ask, &view.roles, &assessment, held, &outcome).into();
            Ok((Arc::new(Judged { outcome, facts }), assessment))
        }
        Question::Action {
            action,
            resource,
            attributes,
        } => {
            let assessment = stepgate_core::risk::assess(
                &signals(app, view, ask, ip_text, None, now),
                &app.risk,
                now,
            );
            let facts = Facts {
                user_id: &view.session.user_id,
                roles: &view.roles,
                action,
                resource,
                resource_attributes: attributes.as_ref(),
                risk_tier: assessment.tier.as_str(),
                risk_score: assessment.score,
                device_trust: assessment.device_trust.as_str(),
                ip: ip_text.unwrap_or_default(),
            };
            // The recorded facts are a function of the memo key too, so they are kept
            // with the outcome.
            let key = outcome_key(&facts, held);
            if let Some(judged) = key.as_ref().and_then(|k| app.decider.outcomes.get(k)) {
                return Ok((judged, assessment));
            }
            let outcome = app
                .authz
                .decide(&facts, held)
                .map_err(AppError::validation)?;
            let facts = facts_json(ask, &view.roles, &assessment, held, &outcome).into();
            let judged = Arc::new(Judged { outcome, facts });
            if let Some(k) = key {
                app.decider.outcomes.insert(k, judged.clone());
            }
            Ok((judged, assessment))
        }
    }
}

/// The memo key of a Cedar decision: every fact Cedar sees, joined with separators no
/// fact can contain (names, ids and roles are checked to hold no control characters;
/// attributes are JSON text). Large attribute sets are not memoized.
fn outcome_key(facts: &Facts<'_>, held: &BTreeSet<String>) -> Option<String> {
    use std::fmt::Write;
    let attributes = match facts.resource_attributes {
        Some(map) => serde_json::to_string(map).ok()?,
        None => String::new(),
    };
    if attributes.len() > 2048 {
        return None;
    }
    let mut key = String::with_capacity(160 + attributes.len());
    for part in [
        facts.user_id,
        facts.action,
        facts.resource,
        &attributes,
        facts.risk_tier,
        facts.device_trust,
        facts.ip,
    ] {
        key.push_str(part);
        key.push('\0');
    }
    let _ = write!(key, "{}\0", facts.risk_score);
    for role in facts.roles {
        key.push_str(role);
        key.push('\u{1}');
    }
    key.push('\0');
    for purpose in held {
        key.push_str(purpose);
        key.push('\u{1}');
    }
    Some(key)
}

/// Fills a `step_up` answer: the requirement's `acr_values`/`max_age` and a ready
/// challenge. A user who cannot step up now (no factor; failure budget spent) is told so.
async fn step_up(
    app: &SharedApp,
    claims: &AccessClaims,
    view: &SessionView,
    ask: &Ask,
    purpose_name: &str,
    snapshot: &PolicySnapshot,
    answer: &mut DecisionAnswer,
) -> Result<(), AppError> {
    let purpose = app.policy.purpose(purpose_name).ok_or_else(|| {
        AppError::internal(format!("policy names unknown purpose {purpose_name}"))
    })?;
    let requirement = app.policy.requirement(snapshot, purpose);
    answer.acr_values = Some(acr::for_class(requirement.factor).to_owned());
    answer.max_age = Some(requirement.ttl_seconds);
    answer.title = Some(purpose.title.clone());
    let caller = UserCaller {
        claims: claims.clone(),
        session: view.session.clone(),
    };
    let ip = ask
        .ip
        .or_else(|| view.session.ip.parse().ok())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let request = ChallengeRequest {
        purpose: purpose_name.to_owned(),
        mode: stepgate_core::stepup::ElevationMode::parse(&app.config.decisions.challenge_mode)?,
        action_digest: ask.action_digest.clone(),
        action_summary: None,
    };
    match challenges::open(app, &caller, ip, request).await {
        Ok(challenge) => {
            answer.challenge_id = Some(challenge.record.id);
            answer.allowed_factors = Some(challenge.allowed_factors);
        }
        Err(e) if e.code == ErrorCode::StepupRequired => {
            answer.enrollment_required = true;
            answer
                .reasons
                .push("the user has no second factor: enroll one first".into());
        }
        Err(e) if e.code == ErrorCode::StepupBlocked => {
            answer.decision = Verdict::Deny.as_str();
            answer
                .reasons
                .push("step-up is blocked: too many wrong answers recently".into());
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// What a decision record keeps of the request, serialized straight from borrowed
/// values: the decision path builds one per request, so no `serde_json::Value` tree.
#[derive(Serialize)]
struct RecordedFacts<'a> {
    action: Option<&'a str>,
    resource: Option<&'a str>,
    resource_attributes: Option<&'a serde_json::Map<String, serde_json::Value>>,
    purpose: Option<&'a str>,
    roles: &'a [String],
    risk_tier: &'static str,
    risk_score: u8,
    device_trust: &'static str,
    ip: Option<IpAddr>,
    elevations: &'a BTreeSet<String>,
    policy_ids: &'a [String],
}

fn facts_json(
    ask: &Ask,
    roles: &[String],
    assessment: &RiskAssessment,
    held: &BTreeSet<String>,
    outcome: &Outcome,
) -> String {
    let (action, resource, resource_attributes, purpose) = match &ask.question {
        Question::Purpose(p) => (None, None, None, Some(p.as_str())),
        Question::Action {
            action,
            resource,
            attributes,
        } => (
            Some(action.as_str()),
            Some(resource.as_str()),
            attributes.as_ref(),
            None,
        ),
    };
    serde_json::to_string(&RecordedFacts {
        action,
        resource,
        resource_attributes,
        purpose,
        roles,
        risk_tier: assessment.tier.as_str(),
        risk_score: assessment.score,
        device_trust: assessment.device_trust.as_str(),
        ip: ask.ip,
        elevations: held,
        policy_ids: &outcome.policy_ids,
    })
    .expect("decision facts serialize")
}

#[cfg(test)]
mod tests {
    use stepgate_core::risk::{DeviceTrust, Tier};

    use super::*;

    fn view_of(session: &str) -> Arc<SessionView> {
        let record = SessionRecord {
            id: session.into(),
            user_id: format!("user-of-{session}"),
            created_at: 0,
            auth_time: 0,
            expires_at: 0,
            revoked_at: None,
            ip: "127.0.0.1".into(),
            user_agent: None,
            device_hash: None,
            acr: String::new(),
            amr: String::new(),
            enrollment_required: false,
            risk: None,
            jkt: None,
        };
        Arc::new(SessionView {
            live: record.to_domain(),
            session: record,
            roles: Vec::new(),
            device: DeviceSignal::Absent,
            previous_login: None,
            countries: Vec::new(),
            ips: Vec::new(),
            elevations: Vec::new(),
        })
    }

    fn pending(view: &Arc<SessionView>, decision: &'static str, facts: &Arc<str>) -> PendingRecord {
        PendingRecord {
            at: 100,
            view: view.clone(),
            decision,
            purpose: None,
            policy_version: 1,
            facts: facts.clone(),
        }
    }

    #[test]
    fn identical_decisions_of_a_session_fold_into_one_row_with_a_count() {
        let (a, b) = (view_of("s-a"), view_of("s-b"));
        // The same session seen through a reloaded view: another pointer, same content.
        let a_again = view_of("s-a");
        let read: Arc<str> = r#"{"action":"read"}"#.into();
        let read_again: Arc<str> = r#"{"action":"read"}"#.into();
        let write: Arc<str> = r#"{"action":"write"}"#.into();
        let mut queue = vec![
            pending(&a, "allow", &read),
            pending(&a, "allow", &read),
            pending(&a_again, "allow", &read_again),
            pending(&a, "deny", &read),
            pending(&a, "allow", &write),
            pending(&b, "allow", &read),
            PendingRecord {
                purpose: Some("reports:export".into()),
                ..pending(&a, "allow", &read)
            },
            PendingRecord {
                policy_version: 2,
                ..pending(&a, "allow", &read)
            },
        ];
        let rows = fold(&mut queue);
        assert!(queue.is_empty());
        type Row<'a> = (&'a str, &'a str, Option<&'a str>, i64, &'a str, i64);
        let summary: Vec<Row> = rows
            .iter()
            .map(|r| {
                (
                    r.session_id.as_str(),
                    r.decision.as_str(),
                    r.purpose.as_deref(),
                    r.policy_version,
                    r.facts.as_str(),
                    r.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("s-a", "allow", None, 1, r#"{"action":"read"}"#, 3),
                ("s-a", "deny", None, 1, r#"{"action":"read"}"#, 1),
                ("s-a", "allow", None, 1, r#"{"action":"write"}"#, 1),
                ("s-b", "allow", None, 1, r#"{"action":"read"}"#, 1),
                (
                    "s-a",
                    "allow",
                    Some("reports:export"),
                    1,
                    r#"{"action":"read"}"#,
                    1
                ),
                ("s-a", "allow", None, 2, r#"{"action":"read"}"#, 1),
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.user_id == format!("user-of-{}", r.session_id))
        );
    }

    #[test]
    fn recorded_facts_are_the_json_object_they_always_were() {
        let attributes = serde_json::json!({"env": "prod", "replicas": 3, "tags": ["a"]});
        let ask = Ask {
            token: String::new(),
            scheme: Scheme::Bearer,
            dpop: None,
            question: Question::Action {
                action: "delete".into(),
                resource: "db-7".into(),
                attributes: attributes.as_object().cloned(),
            },
            ip: Some("2001:db8::1".parse().unwrap()),
            device_fingerprint: None,
            elevation_token: None,
            action_digest: None,
        };
        let roles = vec!["admin".to_owned()];
        let assessment = RiskAssessment {
            score: 20,
            tier: Tier::Low,
            reasons: Vec::new(),
            device_trust: DeviceTrust::None,
        };
        let held = BTreeSet::from(["reports:export".to_owned()]);
        let outcome = Outcome {
            verdict: Verdict::StepUp,
            purpose: Some("admin:resources:delete".into()),
            policy_ids: vec!["delete-prod-needs-stepup".into()],
            relies_on: Vec::new(),
            reasons: Vec::new(),
        };
        let expected = serde_json::json!({
            "action": "delete",
            "resource": "db-7",
            "resource_attributes": attributes,
            "purpose": null,
            "roles": roles,
            "risk_tier": "low",
            "risk_score": 20,
            "device_trust": "none",
            "ip": "2001:db8::1",
            "elevations": held,
            "policy_ids": outcome.policy_ids,
        })
        .to_string();
        assert_eq!(
            facts_json(&ask, &roles, &assessment, &held, &outcome),
            expected
        );
        let by_purpose = Ask {
            question: Question::Purpose("reports:export".into()),
            ip: None,
            ..ask
        };
        let text = facts_json(&by_purpose, &[], &assessment, &BTreeSet::new(), &outcome);
        assert!(
            text.starts_with(r#"{"action":null,"resource":null,"resource_attributes":null,"purpose":"reports:export","roles":[],"#),
            "{text}"
        );
    }
}
