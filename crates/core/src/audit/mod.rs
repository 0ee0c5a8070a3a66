//! The audit log's vocabulary: every event type stepgate records. A type's wire name
//! (stored in the log, listed by `GET /v1/audit`, filtered on with `type=`) never
//! changes once shipped.

pub mod chain;

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    ApiKeyCreated,
    ApiKeyRevoked,
    AccountLoginSucceeded,
    AccountLoginFailed,
    AccountLocked,
    DeviceRemembered,
    FactorEnrolled,
    FactorRemoved,
    /// A WebAuthn assertion whose signature counter did not rise: the credential may
    /// have been cloned. The assertion is refused.
    FactorCounterRegressed,
    /// An admin removed every factor of a user (who lost them all): critical.
    FactorsReset,
    PolicyUpdated,
    AccountStepupChallengeRequested,
    AccountStepupVerified,
    AccountStepupFailed,
    AccountStepupBlocked,
    AccountStepupRedeemed,
    /// A single-use elevation presented again: critical.
    AccountStepupReused,
    AccountStepupRevoked,
}

impl EventType {
    pub const ALL: [EventType; 19] = [
        Self::UserCreated,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::AccountLoginSucceeded,
        Self::AccountLoginFailed,
        Self::AccountLocked,
        Self::DeviceRemembered,
        Self::FactorEnrolled,
        Self::FactorRemoved,
        Self::FactorCounterRegressed,
        Self::FactorsReset,
        Self::PolicyUpdated,
        Self::AccountStepupChallengeRequested,
        Self::AccountStepupVerified,
        Self::AccountStepupFailed,
        Self::AccountStepupBlocked,
        Self::AccountStepupRedeemed,
        Self::AccountStepupReused,
        Self::AccountStepupRevoked,
    ];

    /// The wire name, e.g. `ACCOUNT_STEPUP_REUSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "USER_CREATED",
            Self::ApiKeyCreated => "API_KEY_CREATED",
            Self::ApiKeyRevoked => "API_KEY_REVOKED",
            Self::AccountLoginSucceeded => "ACCOUNT_LOGIN_SUCCEEDED",
            Self::AccountLoginFailed => "ACCOUNT_LOGIN_FAILED",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::DeviceRemembered => "DEVICE_REMEMBERED",
            Self::FactorEnrolled => "FACTOR_ENROLLED",
            Self::FactorRemoved => "FACTOR_REMOVED",
            Self::FactorCounterRegressed => "FACTOR_COUNTER_REGRESSED",
            Self::FactorsReset => "FACTORS_RESET",
            Self::PolicyUpdated => "POLICY_UPDATED",
            Self::AccountStepupChallengeRequested => "ACCOUNT_STEPUP_CHALLENGE_REQUESTED",
            Self::AccountStepupVerified => "ACCOUNT_STEPUP_VERIFIED",
            Self::AccountStepupFailed => "ACCOUNT_STEPUP_FAILED",
            Self::AccountStepupBlocked => "ACCOUNT_STEPUP_BLOCKED",
            Self::AccountStepupRedeemed => "ACCOUNT_STEPUP_REDEEMED",
            Self::AccountStepupReused => "ACCOUNT_STEPUP_REUSED",
            Self::AccountStepupRevoked => "ACCOUNT_STEPUP_REVOKED",
        }
    }
}

/// How much an event matters to the people who watch the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    /// Worth a look: failures, removals, policy changes.
    Warning,
    /// Act now: a replayed elevation, a lockout, a cloned credential, a factor reset.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The event types of this severity.
    pub fn types(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |t| t.severity() == self)
    }
}

impl EventType {
    pub fn severity(self) -> Severity {
        match self {
            Self::AccountStepupReused
            | Self::AccountLocked
            | Self::FactorCounterRegressed
            | Self::FactorsReset => Severity::Critical,
            Self::AccountLoginFailed
            | Self::AccountStepupFailed
            | Self::AccountStepupBlocked
            | Self::FactorRemoved
            | Self::ApiKeyRevoked
            | Self::AccountStepupRevoked
            | Self::PolicyUpdated => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_type_has_one_severity_and_replay_is_critical() {
        let counted: usize = Severity::ALL.iter().map(|s| s.types().count()).sum();
        assert_eq!(counted, EventType::ALL.len());
        assert_eq!(
            EventType::AccountStepupReused.severity(),
            Severity::Critical
        );
        assert_eq!(Severity::parse("warning"), Some(Severity::Warning));
        assert_eq!(Severity::parse("loud"), None);
    }

    #[test]
    fn wire_names_are_unique_and_screaming_snake_case() {
        let names: HashSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
        }
    }
}
