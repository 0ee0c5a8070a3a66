//! Creating users, by the API (a relying party's backend) or the CLI (an operator).

use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_core::identity::{Email, Password, Username, parse_roles};
use stepgate_store::{AuditEvent, Store, StoreError, UserRecord};

use crate::error::AppError;
use crate::passwords::Passwords;

/// A user to create, as given: each field is checked here.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: Option<&'a str>,
    pub roles: &'a [String],
}

/// Checks the fields, hashes the password and stores the user with its `USER_CREATED`
/// event; `by` is who created it (an API key's id, or `cli`). A taken username is
/// `CONFLICT`.
pub async fn create(
    store: &Store,
    passwords: &Passwords,
    new: NewUser<'_>,
    by: &str,
    now: i64,
) -> Result<UserRecord, AppError> {
    let username = Username::parse(new.username)?;
    let password = Password::parse(new.password)?;
    let email = new.email.map(Email::parse).transpose()?;
    let roles = parse_roles(new.roles)?;
    let record = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.as_str().to_owned(),
        email: email.map(|e| e.as_str().to_owned()),
        password_hash: passwords.hash(password.expose().to_owned()).await?,
        created_at: now,
        roles: serde_json::to_string(&roles).map_err(|e| AppError::internal(e.to_string()))?,
    };
    match store
        .insert_user(&record, &created_event(&record, by))
        .await
    {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => Err(AppError::new(
            ErrorCode::Conflict,
            "this username is already taken",
        )),
        Err(e) => Err(e.into()),
    }
}

/// `USER_CREATED`: the user, its username and roles, and who created it.
fn created_event(user: &UserRecord, by: &str) -> AuditEvent {
    let roles: serde_json::Value = serde_json::from_str(&user.roles).unwrap_or_default();
    AuditEvent {
        user_id: Some(user.id.clone()),
        data: Some(
            serde_json::json!({ "username": user.username, "roles": roles, "by": by }).to_string(),
        ),
        ..AuditEvent::new(EventType::UserCreated, user.created_at)
    }
}
