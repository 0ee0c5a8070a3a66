//! Second factors: TOTP, WebAuthn credentials (passkeys and security keys) and
//! recovery codes.

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
    /// `totp`, `webauthn` or `recovery_code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` until confirmed, then `active`.
    pub status: String,
    /// What the user called it (WebAuthn credentials).
    #[serde(default)]
    pub name: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it was confirmed.
    pub confirmed_at: Option<String>,
    /// When it last answered a step-up.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// WebAuthn: the credential cannot leave its authenticator (a security key or a
    /// device-bound passkey: `acr` `phrh`, `amr` `hwk`); false for a synced passkey
    /// (`phr`, `swk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_bound: Option<bool>,
    /// Recovery codes: how many are unused.
    pub codes_left: Option<i64>,
    /// The confirmation of a user's first factor only: a first set of recovery codes
    /// (`xxxxx-xxxxx`), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// `POST /v1/factors/webauthn/registrations`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebauthnRegistration {
    /// What to call the credential (1 to 64 characters; default "Passkey").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::CredentialName>))]
    pub name: Option<String>,
}

/// A started WebAuthn registration: pass `options` to
/// `navigator.credentials.create()`, then post the credential to
/// `/v1/factors/webauthn/registrations/{registration_id}` before `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebauthnRegistration {
    /// The ceremony's id.
    pub registration_id: String,
    /// `CredentialCreationOptions` JSON (`{"publicKey": {…}}`, binary fields base64url).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
    /// When the ceremony expires.
    pub expires_at: String,
}

/// `POST /v1/factors/webauthn/registrations/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinishWebauthnRegistration {
    /// The browser's `PublicKeyCredential` (`credential.toJSON()`: `id`, `rawId`,
    /// `type`, `response.attestationObject`, `response.clientDataJSON`, base64url).
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = crate::schemas::RegistrationCredential)
    )]
    pub credential: serde_json::Value,
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
