//! Test support, off unless `testing.clock_control = true`: move this node's clock.

use axum::Json;
use axum::extract::State;
use stepgate_api::Problem;
use stepgate_api::{ClockNow, ClockOffset};
use stepgate_core::ErrorCode;

use crate::app::SharedApp;
use crate::error::AppError;
use crate::http::extract::{AdminCaller, ApiJson};

/// Move the clock (tests only; 404 unless `testing.clock_control`).
#[utoipa::path(put, path = "/v1/testing/clock", tag = "testing", operation_id = "setTestClock",
    request_body = ClockOffset,
    responses(
        (status = 200, body = ClockNow),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "NOT_FOUND: clock control is off"),
    ),
    security(("admin_key" = [])))]
pub async fn set_clock(
    State(app): State<SharedApp>,
    _caller: AdminCaller,
    ApiJson(body): ApiJson<ClockOffset>,
) -> Result<Json<ClockNow>, AppError> {
    if !app.config.testing.clock_control {
        return Err(AppError::new(ErrorCode::NotFound, "no such route"));
    }
    let offset = body
        .offset_seconds
        .ok_or_else(|| AppError::validation("offset_seconds must be an integer"))?;
    app.clock_offset
        .store(offset, std::sync::atomic::Ordering::Relaxed);
    Ok(Json(ClockNow { now: app.now() }))
}
