//! The run-time step-up policy: the config's purposes and platform minimums, with the
//! admins' tightenings kept as immutable versions in the store (so every node reads the
//! same policy; none is cached in one node's memory).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepgate_core::audit::EventType;
use stepgate_core::purpose::{self, FactorClass, Purpose, Requirement, RequirementChange};
use stepgate_core::{Error, ErrorCode};
use stepgate_store::{AuditEvent, PolicyVersionRecord, Store, StoreError};

use crate::app::App;
use crate::error::AppError;

/// A requirement as a policy version stores it (and its audit event records it): the
/// store's format, which the API's `stepgate_api::Requirement` happens to share.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RequirementDoc {
    /// `any` or `phishing_resistant`.
    pub factor: FactorClassDoc,
    pub ttl_seconds: i64,
    pub single_use: bool,
    pub bind_ip: bool,
    pub approvals: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FactorClassDoc {
    Any,
    PhishingResistant,
}

impl From<Requirement> for RequirementDoc {
    fn from(r: Requirement) -> Self {
        Self {
            factor: match r.factor {
                FactorClass::Any => FactorClassDoc::Any,
                FactorClass::PhishingResistant => FactorClassDoc::PhishingResistant,
            },
            ttl_seconds: r.ttl_seconds,
            single_use: r.single_use,
            bind_ip: r.bind_ip,
            approvals: r.approvals,
        }
    }
}

impl From<RequirementDoc> for Requirement {
    fn from(d: RequirementDoc) -> Self {
        Self {
            factor: match d.factor {
                FactorClassDoc::Any => FactorClass::Any,
                FactorClassDoc::PhishingResistant => FactorClass::PhishingResistant,
            },
            ttl_seconds: d.ttl_seconds,
            single_use: d.single_use,
            bind_ip: d.bind_ip,
            approvals: d.approvals,
        }
    }
}

/// One policy version as read from the store.
pub struct PolicySnapshot {
    pub version: i64,
    tightened: BTreeMap<String, Requirement>,
}

pub struct Policy {
    purposes: BTreeMap<String, Purpose>,
}

impl Policy {
    pub fn new(purposes: Vec<Purpose>) -> Self {
        Self {
            purposes: purposes
                .into_iter()
                .map(|p| (p.name.as_str().to_owned(), p))
                .collect(),
        }
    }

    pub fn purpose(&self, name: &str) -> Option<&Purpose> {
        self.purposes.get(name)
    }

    pub fn purposes(&self) -> impl Iterator<Item = &Purpose> {
        self.purposes.values()
    }

    /// Writes version 1 (no tightening) if the store has no policy yet.
    pub async fn ensure_initial(&self, store: &Store, now: i64) -> anyhow::Result<()> {
        if store.latest_policy().await?.is_some() {
            return Ok(());
        }
        let first = PolicyVersionRecord {
            version: 1,
            created_at: now,
            purposes: "{}".into(),
        };
        match store.insert_policy_version(&first, None).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()), // another node wrote it first
            Err(e) => Err(e.into()),
        }
    }

    pub async fn current(&self, store: &Store) -> Result<PolicySnapshot, AppError> {
        let record = store
            .latest_policy()
            .await?
            .ok_or_else(|| AppError::internal("no policy version in the store"))?;
        snapshot(&record)
    }

    /// The effective requirement of a purpose under a snapshot: the admins' setting, never
    /// below the platform minimum.
    pub fn requirement(&self, snapshot: &PolicySnapshot, purpose: &Purpose) -> Requirement {
        purpose::effective(
            &purpose.minimum,
            snapshot.tightened.get(purpose.name.as_str()),
        )
    }

    /// Applies an admin's change to one purpose as a new policy version. Refused with
    /// `POLICY_BELOW_MINIMUM` (and nothing written) if it would loosen below the minimum;
    /// a change that leaves the requirement as it is writes nothing and answers the
    /// current version.
    pub async fn update(
        &self,
        store: &Store,
        purpose: &Purpose,
        change: RequirementChange,
        now: i64,
    ) -> Result<(i64, Requirement), AppError> {
        // Two admins may race for the next version number; the loser re-reads and
        // re-applies its change on top of the winner's.
        for _ in 0..8 {
            let current = self.current(store).await?;
            let before = self.requirement(&current, purpose);
            let next = change.apply(&before);
            next.validate()?;
            if next == before {
                // Nothing changes: no new version, no audit event.
                return Ok((current.version, next));
            }
            next.check_at_least(&purpose.minimum).map_err(|below| {
                Error::new(
                    ErrorCode::PolicyBelowMinimum,
                    format!(
                        "{} would loosen {} below its platform minimum",
                        below.0,
                        purpose.name.as_str()
                    ),
                )
            })?;
            let mut tightened = current.tightened.clone();
            tightened.insert(purpose.name.as_str().to_owned(), next);
            let docs: BTreeMap<&String, RequirementDoc> = tightened
                .iter()
                .map(|(k, v)| (k, RequirementDoc::from(*v)))
                .collect();
            let record = PolicyVersionRecord {
                version: current.version + 1,
                created_at: now,
                purposes: serde_json::to_string(&docs).map_err(AppError::internal)?,
            };
            let event = AuditEvent {
                purpose: Some(purpose.name.as_str().to_owned()),
                policy_version: Some(record.version),
                data: Some(
                    serde_json::json!({ "requirement": RequirementDoc::from(next) }).to_string(),
                ),
                ..AuditEvent::new(EventType::PolicyUpdated, now)
            };
            match store.insert_policy_version(&record, Some(&event)).await {
                Ok(()) => return Ok((record.version, next)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            "the policy is changing too fast; try again",
        ))
    }
}

fn snapshot(record: &PolicyVersionRecord) -> Result<PolicySnapshot, AppError> {
    let docs: BTreeMap<String, RequirementDoc> =
        serde_json::from_str(&record.purposes).map_err(AppError::internal)?;
    Ok(PolicySnapshot {
        version: record.version,
        tightened: docs.into_iter().map(|(k, v)| (k, v.into())).collect(),
    })
}

/// A purpose with the requirement the policy in force gives it.
pub struct InForce<'a> {
    pub purpose: &'a Purpose,
    pub requirement: Requirement,
}

/// The policy in force: its version, and every purpose with its requirement.
pub async fn in_force(app: &App) -> Result<(i64, Vec<InForce<'_>>), AppError> {
    let snapshot = app.policy.current(&app.store).await?;
    let purposes = app
        .policy
        .purposes()
        .map(|purpose| InForce {
            purpose,
            requirement: app.policy.requirement(&snapshot, purpose),
        })
        .collect();
    Ok((snapshot.version, purposes))
}

/// An admin's change to a purpose's requirement, as given: omitted fields keep their
/// values.
pub struct PurposeEdit<'a> {
    /// `any` or `phishing_resistant`.
    pub factor: Option<&'a str>,
    pub ttl_seconds: Option<i64>,
    pub single_use: Option<bool>,
    pub bind_ip: Option<bool>,
    pub approvals: Option<u32>,
}

/// Applies an admin's edit to purpose `name`: a new policy version (see
/// [`Policy::update`]), which the decision path sees at once on this node. An unknown
/// purpose is `NOT_FOUND` before anything else is checked.
pub async fn change_purpose(
    app: &App,
    name: &str,
    edit: PurposeEdit<'_>,
) -> Result<(i64, Requirement), AppError> {
    let purpose = app
        .policy
        .purpose(name)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no purpose named {name:?}")))?;
    let change = RequirementChange {
        factor: edit.factor.map(FactorClass::parse).transpose()?,
        ttl_seconds: edit.ttl_seconds,
        single_use: edit.single_use,
        bind_ip: edit.bind_ip,
        approvals: edit.approvals,
    };
    let changed = app
        .policy
        .update(&app.store, purpose, change, app.now())
        .await?;
    app.decider.forget_policy();
    Ok(changed)
}
