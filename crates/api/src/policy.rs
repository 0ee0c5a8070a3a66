//! The step-up policy: each purpose's requirement, and the admins' changes to it.

use serde::{Deserialize, Serialize};

use crate::json::json_integer;

/// A purpose's requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requirement {
    /// `any` or `phishing_resistant`.
    pub factor: String,
    /// How long an elevation lives, seconds.
    pub ttl_seconds: i64,
    /// An elevation is used up by its first use.
    pub single_use: bool,
    /// An elevation works only from the IP that stepped up.
    pub bind_ip: bool,
    /// Distinct approvers needed.
    pub approvals: u32,
}

/// A purpose in the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposePolicy {
    /// The purpose's name.
    pub name: String,
    /// The purpose in words.
    pub title: String,
    /// The platform minimum from the config.
    pub minimum: Requirement,
    /// The requirement in force.
    pub requirement: Requirement,
}

/// `GET /v1/policy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// The version in force.
    pub policy_version: i64,
    /// Every purpose.
    pub purposes: Vec<PurposePolicy>,
}

/// `PUT /v1/policy/purposes/{purpose}`: any of a purpose's fields; omitted ones keep
/// their values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurposeChange {
    /// `any` or `phishing_resistant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::FactorClassName>))]
    pub factor: Option<String>,
    /// How long an elevation lasts, 1 to 86400 seconds.
    #[serde(
        default,
        deserialize_with = "json_integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub ttl_seconds: Option<i64>,
    /// Single use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
    /// IP binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_ip: Option<bool>,
    /// Must be 0: multi-party approval does not exist yet, and a purpose asking for it
    /// could never be met.
    #[serde(
        default,
        deserialize_with = "json_integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 0))]
    pub approvals: Option<u32>,
}

/// The answer to a [`PurposeChange`]: the new requirement and policy version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurposeUpdated {
    /// The purpose's name.
    pub purpose: String,
    /// The requirement now in force.
    pub requirement: Requirement,
    /// The new policy version.
    pub policy_version: i64,
}
