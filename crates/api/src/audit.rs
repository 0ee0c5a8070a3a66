//! The audit log as `GET /v1/audit` lists it.

use serde::{Deserialize, Serialize};

/// `GET /v1/audit` filters (query parameters).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 10000))]
    pub limit: Option<i64>,
    /// Only events of this type, e.g. `ACCOUNT_STEPUP_REUSED`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only events about this user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only events about this purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Only events of this severity: `info`, `warning` or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<crate::schemas::SeverityName>))]
    pub severity: Option<String>,
    /// Only events at or after this time (RFC 3339; a bare date means its midnight UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339; a bare date means its midnight UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    pub until: Option<String>,
}

/// An audit event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// The event type, e.g. `ACCOUNT_LOGIN_SUCCEEDED`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub at: String,
    /// The user concerned.
    pub user_id: Option<String>,
    /// The session concerned.
    pub session_id: Option<String>,
    /// The purpose concerned.
    pub purpose: Option<String>,
    /// The client IP.
    pub ip: Option<String>,
    /// The factor concerned.
    pub factor: Option<String>,
    /// The policy version in force.
    pub policy_version: Option<i64>,
    /// The challenge concerned.
    pub challenge_id: Option<String>,
    /// The elevation concerned.
    pub elevation_id: Option<String>,
    /// Event-specific fields.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<serde_json::Value>,
    /// The hash of the event before it (hex SHA-256; 64 zeros before the first).
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` and this event's canonical encoding (ARCHITECTURE.md,
    /// "The audit chain").
    pub hash: String,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditList {
    /// Events, oldest first.
    pub events: Vec<AuditEvent>,
}

/// `GET /v1/audit/verify` and `stepgate audit verify`: the chain is intact
/// (`{"ok": true, "checked": N}`) or broken at its first bad event
/// (`{"ok": false, "first_bad_seq": N, "reason": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    pub ok: bool,
    /// Events checked (when intact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<u64>,
    /// The first event that is altered, missing, out of order or cut off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    /// What is wrong there: `altered: …`, `deleted: …`, `reordered: …`,
    /// `truncated after checkpoint K: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
