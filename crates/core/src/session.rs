//! Sessions and the lifetime of the access tokens that name them.

use crate::UnixTime;

/// Authentication Context Class Reference values stepgate issues.
pub mod acr {
    /// Password only.
    pub const PASSWORD: &str = "urn:stepgate:acr:pwd";
    /// Password plus a second factor (TOTP, email code, recovery code).
    pub const MFA: &str = "urn:stepgate:acr:mfa";
    /// OpenID EAP: phishing-resistant authentication (a passkey with user verification).
    pub const PHR: &str = "phr";
    /// OpenID EAP: phishing-resistant with a hardware-protected key.
    pub const PHRH: &str = "phrh";
    /// Every value this server issues or asks for, weakest first.
    pub const SUPPORTED: [&str; 4] = [PASSWORD, MFA, PHR, PHRH];

    /// The `acr_values` that satisfy a step-up of this factor class (RFC 9470).
    pub fn for_class(class: crate::purpose::FactorClass) -> &'static str {
        match class {
            crate::purpose::FactorClass::Any => MFA,
            crate::purpose::FactorClass::PhishingResistant => PHR,
        }
    }
}

/// A server-side login record, as the core needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

impl Session {
    /// A session is live until it is revoked or reaches its expiry (exclusive).
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Lifetimes configured by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// How long a session lasts from login.
    pub session_ttl: i64,
    /// How long one access token lasts; never past its session's end.
    pub access_token_ttl: i64,
}

impl SessionLifetimes {
    pub fn session_expiry(&self, now: UnixTime) -> UnixTime {
        now + self.session_ttl
    }

    pub fn access_token_expiry(&self, now: UnixTime, session_expires_at: UnixTime) -> UnixTime {
        (now + self.access_token_ttl).min(session_expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: UnixTime, revoked_at: Option<UnixTime>) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            created_at: 0,
            auth_time: 0,
            expires_at,
            revoked_at,
        }
    }

    #[test]
    fn liveness_ends_at_expiry_or_revocation() {
        assert!(session(100, None).is_live(99));
        assert!(!session(100, None).is_live(100));
        assert!(!session(100, Some(50)).is_live(60));
    }

    #[test]
    fn tokens_never_outlive_their_session() {
        let l = SessionLifetimes {
            session_ttl: 1000,
            access_token_ttl: 300,
        };
        assert_eq!(l.access_token_expiry(0, l.session_expiry(0)), 300);
        assert_eq!(l.access_token_expiry(900, 1000), 1000);
    }
}
