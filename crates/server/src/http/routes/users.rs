//! `POST /v1/users`: a relying party's backend creates users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_api::Problem;
use stepgate_api::{CreateUser, CreatedUser};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{ApiJson, ServiceCaller};
use crate::users::{self, NewUser};

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
    let new = NewUser {
        username: &body.username,
        password: &body.password,
        email: body.email.as_deref(),
        roles: &body.roles,
    };
    let user = users::create(&app.store, &app.passwords, new, &caller.key_id, app.now()).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { id: user.id })))
}
