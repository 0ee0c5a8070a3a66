//! Rate limits, counted in the store so that they hold across nodes.

use std::net::IpAddr;

use stepgate_core::ErrorCode;

use crate::app::SharedApp;
use crate::error::AppError;

/// Counts a request against a per-IP limit per minute, in the store (so the limit holds
/// across nodes); over it → `RATE_LIMITED` with `Retry-After`.
pub async fn rate_limit(
    app: &SharedApp,
    bucket: &str,
    ip: IpAddr,
    per_minute: u32,
) -> Result<(), AppError> {
    limit_per_minute(
        app,
        &format!("{bucket}:{ip}"),
        per_minute,
        "too many requests from this address; slow down",
    )
    .await
}

/// Counts one event against `key`'s limit per minute, in the store; over it →
/// `RATE_LIMITED` with `Retry-After` and `detail`.
pub async fn limit_per_minute(
    app: &SharedApp,
    key: &str,
    per_minute: u32,
    detail: &str,
) -> Result<(), AppError> {
    let now = app.now();
    let window = now - now.rem_euclid(60);
    let count = app.store.hit_rate_counter(key, window).await?;
    if count > i64::from(per_minute) {
        let mut e = AppError::new(ErrorCode::RateLimited, detail.to_owned());
        e.retry_after = Some(window + 60 - now);
        return Err(e);
    }
    Ok(())
}
