//! `PUT /v1/testing/clock`, only with `testing.clock_control = true`.

use serde::{Deserialize, Serialize};

use crate::json::json_integer;

/// `PUT /v1/testing/clock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockOffset {
    /// Seconds added to the system clock from now on.
    #[serde(deserialize_with = "json_integer")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub offset_seconds: Option<i64>,
}

/// The answer to a [`ClockOffset`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockNow {
    /// The node's clock after the change, Unix seconds.
    pub now: i64,
}
