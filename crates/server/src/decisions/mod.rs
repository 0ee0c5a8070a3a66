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

mod cache;
mod facts;
mod records;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use stepgate_core::ErrorCode;
use stepgate_core::authz::{Facts, Outcome, Verdict};
use stepgate_core::risk::{RiskAssessment, Signals};
use stepgate_core::session::acr;
use stepgate_core::stepup::{ElevationMode, Use};
use stepgate_store::ElevationRecord;

pub use cache::{Decider, SessionView};
pub use records::{PendingRecord, write_records};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::dpop::check_possession;
use crate::error::AppError;
use crate::policy::PolicySnapshot;
use crate::risk::signals::{ActionRequest, action_signals};
use crate::stepup::challenges::{self, ChallengeRequest};
use crate::stepup::elevations::{check_holder, parse_elevation_token, rely_on, rely_on_all};
use crate::tokens::AccessClaims;
use cache::{ended, policy_snapshot, verify_token, view};
use facts::facts_json;
use stepgate_api::{Decision, DecisionKind, DpopProof, TokenScheme};

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

/// The caller's credentials on a decision request: the end user's access token, as it
/// was presented, with its DPoP proof.
pub struct Credentials {
    pub token: String,
    pub scheme: TokenScheme,
    pub dpop: Option<DpopProof>,
}

/// What is asked of a session, however it arrived.
pub struct Ask {
    pub question: Question,
    pub ip: Option<IpAddr>,
    pub device_fingerprint: Option<String>,
    pub elevation_token: Option<String>,
    pub action_digest: Option<String>,
    /// How the challenge of a `step_up` is opened: its mode (the decision routes give
    /// the config's `decisions.challenge_mode`) and what it tells the user.
    pub challenge_mode: ElevationMode,
    pub action_summary: Option<String>,
    /// The presented elevation must be for this very purpose (a factor route's own
    /// step-up): one for another purpose is refused with `STEPUP_SCOPE_MISMATCH`, as a
    /// redeem would, rather than answered with a step-up.
    pub elevation_for_question: bool,
}

/// An answer, and for a `step_up` that cannot be answered now (no factor enrolled, the
/// failure budget spent) why, as the challenge refused to open.
pub struct Decided {
    pub answer: Decision,
    pub unanswerable: Option<AppError>,
    /// The elevations an allow used, as they were won.
    pub relied: Vec<ElevationRecord>,
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
    let request = ActionRequest {
        ip: ask.ip.zip(ip_text),
        device_fingerprint: ask.device_fingerprint.as_deref(),
    };
    action_signals(app, &view.session, &view.history, request, sensitivity, now)
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
/// records the answer: for the holder of the access token in `credentials`.
pub async fn decide(
    app: &SharedApp,
    credentials: Credentials,
    ask: Ask,
) -> Result<Decision, AppError> {
    let now = app.now();
    let claims = verify_token(app, &credentials.token, now)?;
    let proof = credentials.dpop.as_ref();
    check_possession(
        app,
        &claims,
        &credentials.token,
        credentials.scheme,
        proof.map(|p| p.proof.as_str()),
        proof.map_or("", |p| p.method.as_str()),
        proof.map_or("", |p| p.url.as_str()),
    )
    .await
    .map_err(|e| e.with("subject", "access_token"))?;
    Ok(decide_for(app, &claims, &ask).await?.answer)
}

/// The one answer to "may this session do this now", for a caller whose access token
/// (`claims`) and its possession are already checked: the decision routes ask it
/// through [`decide`], the guard of factor changes directly.
pub async fn decide_for(
    app: &SharedApp,
    claims: &AccessClaims,
    ask: &Ask,
) -> Result<Decided, AppError> {
    let now = app.now();
    let caller_jkt = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    let presented = presented_elevation(app, ask, &claims.sid, caller_jkt).await?;
    let ip_text = ask.ip.map(|ip| ip.to_string());
    if let Some(record) = &presented {
        refuse_if_dead(app, record, ask, ip_text.as_deref(), now).await?;
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

        let (judged, assessment) = judge(app, ask, ip_text.as_deref(), &view, &held, now)?;
        let outcome = &judged.outcome;
        if outcome.verdict != Verdict::Allow && !fresh {
            // Decide again from the database before refusing anything.
            fresh = true;
            continue;
        }
        let mut answer = answer_of(claims, &view, outcome, &assessment, snapshot.version);
        let mut unanswerable = None;
        let mut relied = Vec::new();
        match outcome.verdict {
            Verdict::Allow => {
                let relied_on = RelyOn {
                    presented: presented.as_ref(),
                    ip_text: ip_text.as_deref(),
                };
                match relied_on
                    .use_all(app, ask, &view, outcome, &mut answer, now)
                    .await
                {
                    Ok(used) => relied = used,
                    // The session's elevation went meanwhile: decide again.
                    Err(Relied::Changed(_)) if !fresh => {
                        fresh = true;
                        continue;
                    }
                    Err(Relied::Changed(e) | Relied::Refused(e)) => return Err(e),
                }
            }
            Verdict::StepUp => {
                let purpose_name = outcome.purpose.clone().unwrap_or_default();
                unanswerable = step_up(
                    app,
                    claims,
                    &view,
                    ask,
                    &purpose_name,
                    &snapshot,
                    &mut answer,
                )
                .await?;
            }
            Verdict::Deny => {}
        }
        record(app, &view, &answer, &judged, now);
        return Ok(Decided {
            answer,
            unanswerable,
            relied,
        });
    }
}

/// Counts the answer and queues its record (written in batches, off the request path).
fn record(app: &SharedApp, view: &Arc<SessionView>, answer: &Decision, judged: &Judged, now: i64) {
    app.decider.count(answer.decision);
    app.decider.record(PendingRecord {
        at: now,
        view: view.clone(),
        decision: answer.decision,
        purpose: answer.purpose.clone(),
        policy_version: answer.policy_version,
        facts: judged.facts.clone(),
    });
}

/// A presented token that is dead says why at once (and a reused one raises the
/// critical event), as a redeem would.
async fn refuse_if_dead(
    app: &SharedApp,
    record: &ElevationRecord,
    ask: &Ask,
    ip_text: Option<&str>,
    now: i64,
) -> Result<(), AppError> {
    let purpose = match &ask.question {
        Question::Purpose(asked) if ask.elevation_for_question => asked,
        _ => &record.purpose,
    };
    let use_ = Use {
        purpose,
        ip: ip_text,
        action_digest: ask.action_digest.as_deref(),
    };
    let dead = record
        .to_domain()
        .map_err(|e| AppError::internal(format!("corrupt elevation: {e}")))?
        .check_use(&use_, now)
        .is_err();
    if dead {
        rely_on(app, record, &use_, now).await?;
    }
    Ok(())
}

/// The answer to a verdict, before an allow's elevations or a step-up's challenge.
fn answer_of(
    claims: &AccessClaims,
    view: &SessionView,
    outcome: &Outcome,
    assessment: &RiskAssessment,
    policy_version: i64,
) -> Decision {
    Decision {
        decision: kind(outcome.verdict),
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
            TokenScheme::Dpop
        } else {
            TokenScheme::Bearer
        },
        elevation_id: None,
        elevation_ids: Vec::new(),
        risk: crate::risk::shown(assessment),
        reasons: outcome.reasons.clone(),
        policy_ids: outcome.policy_ids.clone(),
        policy_version,
        webauthn_options: None,
        links: None,
        stepup_url: None,
    }
}

/// Why an allow could not use what it relies on.
enum Relied {
    /// One of the session's elevations went meanwhile: decide again from the store
    /// (or, on a fresh view already, answer why).
    Changed(AppError),
    /// The caller's own presented token failed: that is the answer.
    Refused(AppError),
}

/// The elevations an allow may rely on: the presented one and the session's.
struct RelyOn<'a> {
    presented: Option<&'a ElevationRecord>,
    ip_text: Option<&'a str>,
}

impl RelyOn<'_> {
    /// Uses every elevation the allow relies on, all or none, and names them in the
    /// answer; returns them.
    async fn use_all(
        &self,
        app: &SharedApp,
        ask: &Ask,
        view: &SessionView,
        outcome: &Outcome,
        answer: &mut Decision,
        now: i64,
    ) -> Result<Vec<ElevationRecord>, Relied> {
        let mut records = Vec::with_capacity(outcome.relies_on.len());
        for relied in &outcome.relies_on {
            let record = self
                .presented
                .into_iter()
                .chain(view.elevations.iter())
                .find(|e| e.purpose == *relied)
                .ok_or_else(|| {
                    Relied::Refused(AppError::internal("relied-on elevation vanished"))
                })?;
            records.push(record);
        }
        let uses: Vec<(&ElevationRecord, Use<'_>)> = records
            .iter()
            .map(|record| {
                let use_ = Use {
                    purpose: &record.purpose,
                    ip: self.ip_text,
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
                Ok(records.into_iter().cloned().collect())
            }
            Err((i, e)) if self.presented.is_some_and(|p| p.id == records[i].id) => {
                Err(Relied::Refused(e))
            }
            Err((_, e)) => Err(Relied::Changed(e)),
        }
    }
}

/// The verdict as the answer names it.
fn kind(verdict: Verdict) -> DecisionKind {
    match verdict {
        Verdict::Allow => DecisionKind::Allow,
        Verdict::StepUp => DecisionKind::StepUp,
        Verdict::Deny => DecisionKind::Deny,
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
/// challenge. A user who cannot step up now (no factor; failure budget spent) is told so
/// in the answer, and the challenge's refusal is returned.
async fn step_up(
    app: &SharedApp,
    claims: &AccessClaims,
    view: &SessionView,
    ask: &Ask,
    purpose_name: &str,
    snapshot: &PolicySnapshot,
    answer: &mut Decision,
) -> Result<Option<AppError>, AppError> {
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
        mode: ask.challenge_mode,
        action_digest: ask.action_digest.clone(),
        action_summary: ask.action_summary.clone(),
    };
    match challenges::open(app, &caller, ip, request).await {
        Ok(challenge) => {
            answer.webauthn_options = challenge.webauthn_options();
            answer.links = challenges::links_of(&challenge.record.id, &challenge.allowed_factors);
            answer.stepup_url = Some(challenges::stepup_url(app, &challenge.record.id));
            answer.challenge_id = Some(challenge.record.id);
            answer.allowed_factors = Some(challenge.allowed_factors);
            Ok(None)
        }
        Err(e) if e.code == ErrorCode::StepupRequired => {
            // No factor strong enough: the refusal says what to enroll.
            answer.enrollment_required = true;
            answer.reasons.push(e.detail.to_string());
            Ok(Some(e))
        }
        Err(e) if e.code == ErrorCode::StepupBlocked => {
            answer.decision = DecisionKind::Deny;
            answer
                .reasons
                .push("step-up is blocked: too many wrong answers recently".into());
            Ok(Some(e))
        }
        Err(e) => Err(e),
    }
}
