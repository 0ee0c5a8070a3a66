//! Second factors: TOTP and recovery codes.

use serde::{Deserialize, Serialize};

/// A pending TOTP enrollment; confirm it with a code from the authenticator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrollment {
    /// The pending factor's id.
    pub factor_id: String,
    /// The shared secret, base32 without padding, for manual entry. Shown once.
    pub secret: String,
    /// An `otpauth://totp/…` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The `otpauth_uri` as an SVG QR code.
    pub qr_svg: String,
}

/// `POST /v1/factors/totp/{id}/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmTotp {
    /// The 6 digits the authenticator shows now.
    pub code: String,
}

/// An enrolled factor (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Factor {
    /// The factor's id.
    pub factor_id: String,
    /// `totp` or `recovery_code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` until confirmed, then `active`.
    pub status: String,
    /// When it was created.
    pub created_at: String,
    /// When it was confirmed.
    pub confirmed_at: Option<String>,
    /// Recovery codes: how many are unused.
    pub codes_left: Option<i64>,
}

/// `GET /v1/factors`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactorList {
    /// The caller's factors.
    pub factors: Vec<Factor>,
}

/// `POST /v1/factors/recovery-codes`: ten one-time codes, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// The recovery-code factor's id.
    pub factor_id: String,
    /// The codes (`xxxxx-xxxxx`): shown once, stored only as keyed hashes.
    pub codes: Vec<String>,
}
