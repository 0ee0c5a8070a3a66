//! API keys of relying parties and admins.

use serde::{Deserialize, Serialize};

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApiKey {
    /// `service` or `admin`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schemas::ScopeName))]
    pub scope: String,
    /// A label for people: at most 200 characters, without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,200}$")
    )]
    pub label: Option<String>,
}

/// A new API key; `key` is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    /// The key's id.
    pub id: String,
    /// `service` or `admin`.
    pub scope: String,
    /// The label, if one was given.
    pub label: Option<String>,
    /// The key itself (`sgk_…`): shown this once, stored only as a hash.
    pub key: String,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyInfo {
    /// The key's id.
    pub id: String,
    /// `service` or `admin`.
    pub scope: String,
    /// The label, if one was given.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// `GET /v1/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyList {
    /// All keys, live and revoked.
    pub api_keys: Vec<ApiKeyInfo>,
}
