//! The step-up state machine: challenge → verify → elevation → redeem / revoke / expire.
//!
//! These functions judge; they do not store. Each takes `now`, so every TTL and expiry is
//! tested without sleeping. The atomic parts (counting a failure, consuming a single-use
//! elevation) happen in the store, in one statement each; the store's answer is fed back
//! here to name the outcome.

use crate::purpose::{FactorClass, PurposeName, Requirement};
use crate::{Error, ErrorCode, UnixTime};

pub use stepgate_api::ElevationMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Pending,
    Verified,
    Blocked,
}

impl ChallengeStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "verified" => Self::Verified,
            "blocked" => Self::Blocked,
            _ => Self::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Blocked => "blocked",
        }
    }
}

/// Operator limits on step-up (config `[stepup]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepupLimits {
    pub challenge_ttl_seconds: i64,
    /// Wrong answers one challenge allows before it is dead.
    pub max_attempts: u32,
    /// Wrong answers per user and factor allowed within `window_seconds`.
    pub window_failures: u32,
    pub window_seconds: i64,
}

impl Default for StepupLimits {
    fn default() -> Self {
        Self {
            challenge_ttl_seconds: 300,
            max_attempts: 5,
            window_failures: 10,
            window_seconds: 900,
        }
    }
}

impl StepupLimits {
    /// Whether a user's recent failures with a factor exhaust its budget.
    pub fn window_exhausted(&self, failures_in_window: u32) -> bool {
        failures_in_window >= self.window_failures
    }
}

/// A pending step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    pub user_id: String,
    /// The session that asked; None for a login challenge (no session yet).
    pub session_id: Option<String>,
    pub purpose: PurposeName,
    /// The policy version it was issued under, and the requirement of that version.
    pub policy_version: i64,
    pub requirement: Requirement,
    pub mode: ElevationMode,
    pub status: ChallengeStatus,
    pub failures: u32,
    pub max_attempts: u32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The RP's SHA-256 of the exact action, if it bound the challenge to one.
    pub action_digest: Option<String>,
}

impl Challenge {
    pub fn attempts_left(&self) -> u32 {
        self.max_attempts.saturating_sub(self.failures)
    }

    /// Verify, step 1: the challenge can still be answered.
    pub fn check_live(&self, now: UnixTime) -> Result<(), Error> {
        if self.status == ChallengeStatus::Blocked || self.attempts_left() == 0 {
            return Err(Error::new(
                ErrorCode::StepupBlocked,
                "too many wrong answers: this challenge is closed; start a new one",
            ));
        }
        if self.status == ChallengeStatus::Verified {
            return Err(Error::new(
                ErrorCode::ChallengeExpired,
                "this challenge was already completed",
            ));
        }
        if now >= self.expires_at {
            return Err(Error::new(
                ErrorCode::ChallengeExpired,
                "this challenge has expired",
            ));
        }
        Ok(())
    }

    /// Verify, step 2: the factor is strong enough. Nothing is counted when it is not.
    pub fn check_factor(&self, class: FactorClass) -> Result<(), Error> {
        if class.satisfies(self.requirement.factor) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::StepupFactorInsufficient,
                format!(
                    "this purpose needs a {} factor",
                    self.requirement.factor.as_str().replace('_', "-")
                ),
            ))
        }
    }

    /// The elevation's expiry if the challenge passes at `now`.
    pub fn elevation_expiry(&self, now: UnixTime) -> UnixTime {
        now + self.requirement.ttl_seconds
    }
}

/// The result of a passed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevation {
    pub id: String,
    pub user_id: String,
    pub session_id: String,
    pub purpose: PurposeName,
    pub factor_class: FactorClass,
    pub mode: ElevationMode,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The client IP it is bound to, if the purpose binds IPs.
    pub ip: Option<String>,
    pub single_use: bool,
    pub consumed_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    pub action_digest: Option<String>,
}

/// What a relying party presents when it relies on an elevation.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    pub purpose: &'a str,
    /// The client IP as the RP saw it (canonical text form).
    pub ip: Option<&'a str>,
    pub action_digest: Option<&'a str>,
}

impl Elevation {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none()
            && now < self.expires_at
            && !(self.single_use && self.consumed_at.is_some())
    }

    /// `Some(1)` for an unused single-use elevation, `Some(0)` once used, `None` for
    /// multi-use (any number until expiry).
    pub fn uses_left(&self) -> Option<u32> {
        self.single_use
            .then_some(if self.consumed_at.is_some() { 0 } else { 1 })
    }

    /// Everything a use must satisfy, in the order errors are reported. Checks that
    /// do not pass consume nothing. Reuse is judged here for a read snapshot; the
    /// authoritative check is the store's atomic consume.
    pub fn check_use(&self, use_: &Use<'_>, now: UnixTime) -> Result<(), Error> {
        if self.revoked_at.is_some() {
            return Err(Error::new(
                ErrorCode::StepupTokenInvalid,
                "the elevation was revoked",
            ));
        }
        if now >= self.expires_at {
            return Err(Error::new(
                ErrorCode::StepupTokenExpired,
                "the elevation has expired",
            ));
        }
        if use_.purpose != self.purpose.as_str() {
            return Err(Error::new(
                ErrorCode::StepupScopeMismatch,
                format!("the elevation is for {}", self.purpose.as_str()),
            ));
        }
        if let Some(bound) = &self.action_digest
            && use_.action_digest != Some(bound.as_str())
        {
            return Err(Error::new(
                ErrorCode::StepupScopeMismatch,
                "the elevation is bound to another action",
            ));
        }
        if let Some(bound) = &self.ip
            && use_.ip != Some(bound.as_str())
        {
            return Err(Error::new(
                ErrorCode::StepupIpMismatch,
                "the elevation is bound to the network it was issued on",
            ));
        }
        if self.single_use && self.consumed_at.is_some() {
            return Err(reused());
        }
        Ok(())
    }
}

/// The error for a second use of a single-use elevation.
pub fn reused() -> Error {
    Error::new(
        ErrorCode::StepupTokenReused,
        "this single-use elevation was already used",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement() -> Requirement {
        Requirement {
            factor: FactorClass::Any,
            ttl_seconds: 300,
            single_use: true,
            bind_ip: true,
            approvals: 0,
        }
    }

    fn challenge() -> Challenge {
        Challenge {
            id: "c".into(),
            user_id: "u".into(),
            session_id: Some("s".into()),
            purpose: PurposeName::parse("admin:resources:delete").unwrap(),
            policy_version: 1,
            requirement: requirement(),
            mode: ElevationMode::Token,
            status: ChallengeStatus::Pending,
            failures: 0,
            max_attempts: 5,
            created_at: 1000,
            expires_at: 1300,
            action_digest: None,
        }
    }

    fn elevation() -> Elevation {
        Elevation {
            id: "e".into(),
            user_id: "u".into(),
            session_id: "s".into(),
            purpose: PurposeName::parse("admin:resources:delete").unwrap(),
            factor_class: FactorClass::Any,
            mode: ElevationMode::Token,
            created_at: 1000,
            expires_at: 1300,
            ip: Some("192.0.2.1".into()),
            single_use: true,
            consumed_at: None,
            revoked_at: None,
            action_digest: None,
        }
    }

    fn code(r: Result<(), Error>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn challenges_expire_and_close_after_their_attempts() {
        let c = challenge();
        assert_eq!(code(c.check_live(1299)), None);
        assert_eq!(code(c.check_live(1300)), Some(ErrorCode::ChallengeExpired));
        let spent = Challenge {
            failures: 5,
            ..c.clone()
        };
        assert_eq!(code(spent.check_live(1000)), Some(ErrorCode::StepupBlocked));
        let done = Challenge {
            status: ChallengeStatus::Verified,
            ..c
        };
        assert_eq!(
            code(done.check_live(1000)),
            Some(ErrorCode::ChallengeExpired)
        );
    }

    #[test]
    fn weak_factors_are_insufficient_for_phishing_resistant_purposes() {
        let mut c = challenge();
        c.requirement.factor = FactorClass::PhishingResistant;
        assert_eq!(
            code(c.check_factor(FactorClass::Any)),
            Some(ErrorCode::StepupFactorInsufficient)
        );
        assert_eq!(code(c.check_factor(FactorClass::PhishingResistant)), None);
    }

    #[test]
    fn the_authaz_elevation_lasts_five_minutes_once_from_one_ip() {
        let c = challenge();
        let e = Elevation {
            expires_at: c.elevation_expiry(1000),
            ..elevation()
        };
        let ok = Use {
            purpose: "admin:resources:delete",
            ip: Some("192.0.2.1"),
            action_digest: None,
        };
        assert_eq!(code(e.check_use(&ok, 1299)), None);
        assert_eq!(
            code(e.check_use(&ok, 1300)),
            Some(ErrorCode::StepupTokenExpired)
        );
        let other_ip = Use {
            ip: Some("198.51.100.1"),
            ..ok
        };
        assert_eq!(
            code(e.check_use(&other_ip, 1100)),
            Some(ErrorCode::StepupIpMismatch)
        );
        let no_ip = Use { ip: None, ..ok };
        assert_eq!(
            code(e.check_use(&no_ip, 1100)),
            Some(ErrorCode::StepupIpMismatch)
        );
        let other_purpose = Use {
            purpose: "payroll:transmit",
            ..ok
        };
        assert_eq!(
            code(e.check_use(&other_purpose, 1100)),
            Some(ErrorCode::StepupScopeMismatch)
        );
        let used = Elevation {
            consumed_at: Some(1100),
            ..e.clone()
        };
        assert_eq!(
            code(used.check_use(&ok, 1200)),
            Some(ErrorCode::StepupTokenReused)
        );
        assert_eq!(used.uses_left(), Some(0));
        let revoked = Elevation {
            revoked_at: Some(1100),
            ..e
        };
        assert_eq!(
            code(revoked.check_use(&ok, 1200)),
            Some(ErrorCode::StepupTokenInvalid)
        );
        assert!(!revoked.is_live(1200));
    }

    #[test]
    fn action_bound_elevations_redeem_only_for_that_action() {
        let e = Elevation {
            action_digest: Some("abc".into()),
            ip: None,
            ..elevation()
        };
        let base = Use {
            purpose: "admin:resources:delete",
            ip: None,
            action_digest: Some("abc"),
        };
        assert_eq!(code(e.check_use(&base, 1100)), None);
        let other = Use {
            action_digest: Some("def"),
            ..base
        };
        assert_eq!(
            code(e.check_use(&other, 1100)),
            Some(ErrorCode::StepupScopeMismatch)
        );
        let missing = Use {
            action_digest: None,
            ..base
        };
        assert_eq!(
            code(e.check_use(&missing, 1100)),
            Some(ErrorCode::StepupScopeMismatch)
        );
    }

    #[test]
    fn multi_use_elevations_have_no_use_count() {
        let e = Elevation {
            single_use: false,
            consumed_at: Some(1100),
            ..elevation()
        };
        assert_eq!(e.uses_left(), None);
        assert!(e.is_live(1200));
    }

    #[test]
    fn the_failure_window_is_a_budget() {
        let l = StepupLimits::default();
        assert!(!l.window_exhausted(9));
        assert!(l.window_exhausted(10));
    }
}
