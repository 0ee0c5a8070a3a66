//! `POST /v1/users`: a relying party's backend creates users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_core::ErrorCode;
use stepgate_core::identity::{Email, Password, Username};
use stepgate_store::{StoreError, UserRecord};

use stepgate_api::{CreateUser, CreatedUser};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{ApiJson, ServiceCaller};
use stepgate_api::Problem;

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
