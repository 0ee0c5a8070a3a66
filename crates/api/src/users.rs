//! `POST /v1/users`.

use serde::{Deserialize, Serialize};

/// `POST /v1/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUser {
    /// 1–64 characters: letters, digits, `. _ - @ +`; case-insensitive.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._@+-]{1,64}$", min_length = 1, max_length = 64)
    )]
    pub username: String,
    /// 8–256 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub password: String,
    /// One `@` between a non-empty name and a domain that neither starts nor ends with
    /// `.`; no white space or control characters; at most 254 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@(?!\.)[^@\s\u0000-\u001f\u007f-\u009f]*[^@.\s\u0000-\u001f\u007f-\u009f]$",
            max_length = 254
        )
    )]
    pub email: Option<String>,
    /// Role names for authorization policies (Cedar's `User.roles`): at most 32, each
    /// 1–64 characters of letters, digits and `: _ . -` (repeats are dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_items = 32, inline, value_type = Vec<crate::schemas::RoleName>)
    )]
    pub roles: Vec<String>,
}

/// The answer to [`CreateUser`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedUser {
    /// The new user's id.
    pub id: String,
}

/// `DELETE /v1/users/{id}/factors`: what an admin's reset did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FactorsReset {
    /// Factors removed (recovery codes count as one).
    pub factors_removed: u64,
    /// Live sessions ended (their elevations too).
    pub sessions_ended: u64,
}
