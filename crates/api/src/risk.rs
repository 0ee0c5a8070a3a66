//! A risk assessment as answers show it.

use serde::{Deserialize, Serialize};

/// A risk assessment: the score is the sum of the reasons' weights, capped at 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Risk {
    /// 0..=100.
    pub score: u8,
    /// `low`, `medium` or `high`.
    pub tier: String,
    /// `none`, `fingerprint` or `key`.
    pub device_trust: String,
    /// What each signal saw and what it weighed.
    pub reasons: Vec<RiskReason>,
}

/// One signal's contribution to a [`Risk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskReason {
    /// The signal's name: `device`, `network`, `ip_reputation`, `location`, `travel`,
    /// `time_of_day`, `failure_velocity`, `session_age`, `purpose`, or `enrollment` (a
    /// login let through because the user has no second factor yet).
    pub signal: String,
    /// What it saw, in words.
    pub observed: String,
    /// What it added to the score.
    pub weight: u8,
}
