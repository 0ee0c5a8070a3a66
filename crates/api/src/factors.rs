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

/// `POST /v1/factors/email`: enroll an address; a code is sent to it to confirm it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEmailFactor {
    /// The address codes will be sent to. (The pattern describes a plain subset of
    /// the addresses accepted: up to 254 characters, `name@domain`, as mail servers
    /// take them.)
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[A-Za-z0-9_%+-]{1,16}(\.[A-Za-z0-9_%+-]{1,16}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?){1,3}$"
        )
    )]
    pub email: String,
}

/// A pending email factor: confirm it with the code just sent to the address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailEnrollment {
    /// The pending factor's id.
    pub factor_id: String,
    /// The address, masked (`a***@example.com`).
    pub sent_to: String,
    /// When the code expires.
    pub expires_at: String,
}

/// `POST /v1/factors/email/{id}/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmail {
    /// The code from the mail (6 to 8 digits, as configured).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*([0-9]\s*){6,8}$"))]
    pub code: String,
}
