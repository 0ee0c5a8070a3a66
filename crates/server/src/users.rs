//! Users as the audit sees them being made, by the API or the CLI.

use stepgate_core::audit::EventType;
use stepgate_store::{AuditEvent, UserRecord};

/// `USER_CREATED`: the user, its username and roles, and who created it (an API key's
/// id, or `cli`).
pub fn created_event(user: &UserRecord, by: &str) -> AuditEvent {
    let roles: serde_json::Value = serde_json::from_str(&user.roles).unwrap_or_default();
    AuditEvent {
        user_id: Some(user.id.clone()),
        data: Some(
            serde_json::json!({ "username": user.username, "roles": roles, "by": by }).to_string(),
        ),
        ..AuditEvent::new(EventType::UserCreated, user.created_at)
    }
}
