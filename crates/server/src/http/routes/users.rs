//! `POST /v1/users`: a relying party's backend creates users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_api::Problem;
use stepgate_api::{CreateUser, CreatedUser, FactorsReset};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::factors;
use crate::http::extract::{AdminCaller, ApiJson, ApiPath, ServiceCaller};
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

/// Reset a user's factors: for a user who lost every authenticator. Every factor goes,
/// the user's sessions and elevations end; they sign in with the password and enroll
/// again. Audited as `FACTORS_RESET`, critical.
#[utoipa::path(delete, path = "/v1/users/{id}/factors", tag = "users", operation_id = "resetFactors",
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, body = FactorsReset),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "UNAUTHENTICATED"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "FORBIDDEN: an admin key is needed"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: no such user"),
    ),
    security(("admin_key" = [])))]
pub async fn reset_factors(
    State(app): State<SharedApp>,
    caller: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FactorsReset>, AppError> {
    Ok(Json(factors::reset(&app, &id, &caller.key_id).await?))
}
