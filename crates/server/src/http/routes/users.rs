//! `POST /v1/users`: a relying party's backend creates users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stepgate_core::ErrorCode;
use stepgate_core::identity::{Email, Password, Username};
use stepgate_store::{StoreError, UserRecord};
use utoipa::ToSchema;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::error::Problem;
use crate::http::extract::{ApiJson, ServiceCaller};

#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    /// 1–64 characters: letters, digits, `. _ - @ +`; case-insensitive.
    #[schema(pattern = r"^[A-Za-z0-9._@+-]{1,64}$", min_length = 1, max_length = 64)]
    pub username: String,
    /// 8–256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// One `@` between a non-empty name and a domain that neither starts nor ends with
    /// `.`; no white space or control characters; at most 254 characters.
    #[schema(
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@(?!\.)[^@\s\u0000-\u001f\u007f-\u009f]*[^@.\s\u0000-\u001f\u007f-\u009f]$",
        max_length = 254
    )]
    pub email: Option<String>,
    /// Role names for authorization policies (Cedar's `User.roles`): at most 32, each
    /// 1–64 characters of letters, digits and `: _ . -` (repeats are dropped).
    #[serde(default)]
    #[schema(max_items = 32, inline, value_type = Vec<crate::http::openapi::schemas::RoleName>)]
    pub roles: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    pub id: String,
}

/// Create a user.
#[utoipa::path(post, path = "/v1/users", tag = "users", operation_id = "createUser",
    request_body = CreateUser,
    responses(
        (status = 201, body = CreatedUser),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "VALIDATION_FAILED"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "CONFLICT: username taken"),
    ),
    security(("service_key" = [])))]
pub async fn create(
    State(app): State<SharedApp>,
    caller: ServiceCaller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), AppError> {
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let roles = stepgate_core::identity::parse_roles(&body.roles)?;
    let record = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.as_str().to_owned(),
        email: email.map(|e| e.as_str().to_owned()),
        password_hash: app.passwords.hash(password.expose().to_owned()).await?,
        created_at: app.now(),
        roles: serde_json::to_string(&roles).map_err(|e| AppError::internal(e.to_string()))?,
    };
    let event = crate::users::created_event(&record, &caller.key_id);
    match app.store.insert_user(&record, &event).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(CreatedUser { id: record.id }))),
        Err(StoreError::Conflict) => Err(AppError::new(
            ErrorCode::Conflict,
            "this username is already taken",
        )),
        Err(e) => Err(e.into()),
    }
}
