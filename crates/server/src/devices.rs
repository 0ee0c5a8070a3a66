//! Remembered devices below HTTP.

use stepgate_api::{Device, DeviceList};
use stepgate_core::ErrorCode;
use stepgate_core::audit::EventType;
use stepgate_store::{AuditEvent, DeviceRecord};

use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::time_format::rfc3339;

/// Remembers the calling session's device for its user (after it enrolled a factor or
/// passed a login step-up), raising `DEVICE_REMEMBERED` the first time.
pub async fn remember_session_device(
    app: &SharedApp,
    caller: &UserCaller,
    ip: &str,
    now: i64,
) -> Result<(), AppError> {
    let Some(hash) = &caller.session.device_hash else {
        return Ok(());
    };
    if app
        .store
        .device(&caller.session.user_id, hash)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let device = DeviceRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: caller.session.user_id.clone(),
        device_hash: hash.clone(),
        trust: crate::dpop::trust_of(hash),
        user_agent: caller.session.user_agent.clone(),
        created_at: now,
        last_seen_at: now,
    };
    let event = AuditEvent {
        user_id: Some(caller.session.user_id.clone()),
        session_id: Some(caller.session.id.clone()),
        ip: Some(ip.to_owned()),
        data: Some(
            serde_json::json!({ "device_id": device.id, "trust": device.trust.as_str() })
                .to_string(),
        ),
        ..AuditEvent::new(EventType::DeviceRemembered, now)
    };
    app.store.remember_device(&device, &event).await?;
    Ok(())
}

/// Forgets one of the caller's devices: its next login is a new device again. Another
/// user's device is as unknown as one that does not exist.
pub async fn forget(app: &SharedApp, caller: &UserCaller, device_id: &str) -> Result<(), AppError> {
    if app
        .store
        .forget_device(device_id, &caller.session.user_id)
        .await?
    {
        Ok(())
    } else {
        Err(AppError::new(ErrorCode::NotFound, "no such device"))
    }
}

/// The caller's remembered devices, the one the calling session signed in from marked.
pub async fn list(app: &SharedApp, caller: &UserCaller) -> Result<DeviceList, AppError> {
    let devices = app
        .store
        .devices_of_user(&caller.session.user_id)
        .await?
        .into_iter()
        .map(|d| Device {
            current: caller.session.device_hash.as_deref() == Some(d.device_hash.as_str()),
            device_id: d.id,
            trust: d.trust.as_str().to_owned(),
            user_agent: d.user_agent,
            created_at: rfc3339(d.created_at),
            last_seen_at: rfc3339(d.last_seen_at),
        })
        .collect();
    Ok(DeviceList { devices })
}
