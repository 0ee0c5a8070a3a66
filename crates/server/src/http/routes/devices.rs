//! Users see and forget the devices stepgate remembers for them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepgate_api::DeviceList;
use stepgate_api::Problem;

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::http::extract::ApiPath;

/// The caller's remembered devices.
#[utoipa::path(get, path = "/v1/devices", tag = "devices", operation_id = "listDevices",
    responses((status = 200, body = DeviceList)),
    security(("access_token" = [])))]
pub async fn list(
    State(app): State<SharedApp>,
    caller: UserCaller,
) -> Result<Json<DeviceList>, AppError> {
    Ok(Json(crate::devices::list(&app, &caller).await?))
}

/// Forget a device: its next login is a new device again.
#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", operation_id = "forgetDevice",
    params(("id" = String, Path, description = "The device id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND"),
    ),
    security(("access_token" = [])))]
pub async fn forget(
    State(app): State<SharedApp>,
    caller: UserCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    crate::devices::forget(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
