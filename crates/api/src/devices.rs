//! Remembered devices.

use serde::{Deserialize, Serialize};

/// A device stepgate remembers for a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    /// The device id (`DELETE /v1/devices/{id}` forgets it).
    pub device_id: String,
    /// `fingerprint` (weak: fingerprints can be copied) or `key` (holds a DPoP key).
    pub trust: String,
    /// The user agent seen when it was remembered.
    pub user_agent: Option<String>,
    /// When it was remembered.
    pub created_at: String,
    /// When it was last seen.
    pub last_seen_at: String,
    /// It is the device of the calling session.
    pub current: bool,
}

/// `GET /v1/devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    /// The caller's remembered devices.
    pub devices: Vec<Device>,
}
