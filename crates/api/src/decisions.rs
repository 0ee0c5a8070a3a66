//! `POST /v1/decisions`: may this session do this now?

use serde::{Deserialize, Serialize};

use crate::risk::Risk;

/// `POST /v1/decisions`.
///
/// Exactly one of `purpose` and `action` + `resource` is set: build it with
/// [`DecisionRequest::purpose`] or [`DecisionRequest::action`]. (Its schema is
/// [`DecisionQuestion`], which states that rule.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The end user's access token.
    pub access_token: String,
    /// With `resource`: the Cedar action (`Action::"<action>"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// With `action`: the Cedar resource (`Resource::"<resource>"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The resource's attributes for the policies (strings, integers, booleans, arrays,
    /// objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Instead of `action`/`resource`: decide by a purpose (allowed only with its
    /// elevation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// What the RP sees of the end user's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<DecisionContext>,
    /// A token-mode elevation to rely on in the same call (used up if the allow needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_token: Option<String>,
    /// Hex SHA-256 of the exact action, for digest-bound elevations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_digest: Option<String>,
    /// For a DPoP-bound access token: the proof the user sent with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopProof>,
}

impl DecisionRequest {
    /// Asks about a step-up purpose.
    pub fn purpose(access_token: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            purpose: Some(purpose.into()),
            ..Self::default()
        }
    }

    /// Asks about a Cedar action on a resource.
    pub fn action(
        access_token: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            access_token: access_token.into(),
            action: Some(action.into()),
            resource: Some(resource.into()),
            ..Self::default()
        }
    }

    /// Sets the request context.
    pub fn context(mut self, context: DecisionContext) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the presented elevation token.
    pub fn elevation_token(mut self, token: impl Into<String>) -> Self {
        self.elevation_token = Some(token.into());
        self
    }

    /// Sets the resource's attributes.
    pub fn resource_attributes(
        mut self,
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.resource_attributes = Some(attributes);
        self
    }

    /// Sets the action digest (hex SHA-256 of the exact action).
    pub fn action_digest(mut self, digest: impl Into<String>) -> Self {
        self.action_digest = Some(digest.into());
        self
    }

    /// Sets the DPoP proof.
    pub fn dpop(mut self, proof: DpopProof) -> Self {
        self.dpop = Some(proof);
        self
    }
}

/// What the RP sees of the end user's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionContext {
    /// The end user's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::IpText>))]
    pub ip: Option<String>,
    /// A device fingerprint the client computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::Fingerprint>))]
    pub device_fingerprint: Option<String>,
    /// The user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schemas::DeviceText>))]
    pub user_agent: Option<String>,
}

/// A DPoP proof (RFC 9449) relayed by the caller, with the request it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DpopProof {
    /// The `DPoP` header's value.
    pub proof: String,
    /// The method of the request the proof was made for (`htm`).
    pub method: String,
    /// The URL (scheme, host, path) of that request (`htu`).
    pub url: String,
}

/// `allow`, `step_up` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Go on.
    Allow,
    /// Step up first: see `challenge_id`, `allowed_factors`, `acr_values`, `max_age`.
    StepUp,
    /// Refused.
    Deny,
}

impl DecisionKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::StepUp => "step_up",
            Self::Deny => "deny",
        }
    }
}

/// The scheme an access token is presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TokenScheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449: the token is bound to a key (`cnf.jkt`) and comes with a `DPoP` proof.
    #[serde(rename = "DPoP")]
    Dpop,
}

impl TokenScheme {
    /// The auth-scheme as written in `Authorization` and `WWW-Authenticate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// The answer to a [`DecisionRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The verdict.
    pub decision: DecisionKind,
    /// The token's user.
    pub user_id: String,
    /// The token's session.
    pub session_id: String,
    /// For `step_up`: the purpose that would satisfy it; for `allow`, the one relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// For `step_up`: a ready challenge for the user to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    /// For `step_up`: the purpose in words a person understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// For `step_up`: the factors that can answer it (empty when the user must enroll
    /// one first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_factors: Option<Vec<String>>,
    /// For `step_up`: the user has no second factor yet and must enroll one first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enrollment_required: bool,
    /// For `step_up`: the RFC 9470 `acr_values` a new authentication must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// For `step_up`: the RFC 9470 `max_age`: how old that authentication may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (the RFC 9470 answer's scheme).
    pub token_scheme: TokenScheme,
    /// For an `allow` that used an elevation: which (the first, when several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
    /// For an `allow` that used elevations: every one it used up or relied on, all in
    /// one transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elevation_ids: Vec<String>,
    /// The risk of this action on this session now.
    pub risk: Risk,
    /// Why, in words.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The Cedar policies that decided.
    #[serde(default)]
    pub policy_ids: Vec<String>,
    /// The policy version that decided.
    pub policy_version: i64,
    /// For `step_up` when a passkey may answer: the challenge's assertion options for
    /// `navigator.credentials.get()` in the user's browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub webauthn_options: Option<serde_json::Value>,
    /// For `step_up`: routes that act on the challenge (`send` for an email code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<crate::stepup::ChallengeLinks>,
    /// For `step_up`: the hosted step-up page for the challenge (see
    /// `StepUpChallenge::stepup_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stepup_url: Option<String>,
}

/// The schema of a [`DecisionRequest`]: by purpose, or by Cedar action and resource.
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum DecisionQuestion {
    ByPurpose(doc::DecisionByPurpose),
    ByAction(doc::DecisionByAction),
}

/// The two shapes of [`DecisionRequest`], for the OpenAPI document only.
#[cfg(feature = "openapi")]
pub mod doc {
    #![allow(dead_code)]
    use serde::Deserialize;

    use super::{DecisionContext, DpopProof};

    /// A decision by purpose.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DecisionByPurpose {
        /// The end user's access token.
        access_token: String,
        #[schema(value_type = crate::schemas::Name)]
        purpose: String,
        #[schema(inline)]
        context: Option<DecisionContext>,
        /// A token-mode elevation to rely on in the same call (used up if the allow
        /// needs it).
        elevation_token: Option<String>,
        /// Hex SHA-256 of the exact action, for digest-bound elevations.
        #[schema(value_type = Option<crate::schemas::Sha256Hex>)]
        action_digest: Option<String>,
        /// For a DPoP-bound access token: the proof the user sent with the request.
        dpop: Option<DpopProof>,
    }

    /// A decision by Cedar action and resource.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DecisionByAction {
        /// The end user's access token.
        access_token: String,
        /// The Cedar action (`Action::"<action>"`).
        #[schema(value_type = crate::schemas::Name)]
        action: String,
        /// The Cedar resource (`Resource::"<resource>"`).
        #[schema(value_type = crate::schemas::Name)]
        resource: String,
        /// The resource's attributes for the policies (strings, integers, booleans,
        /// arrays, objects).
        #[schema(value_type = Option<Object>)]
        resource_attributes: Option<serde_json::Map<String, serde_json::Value>>,
        #[schema(inline)]
        context: Option<DecisionContext>,
        /// A token-mode elevation to rely on in the same call (used up if the allow
        /// needs it).
        elevation_token: Option<String>,
        /// Hex SHA-256 of the exact action, for digest-bound elevations.
        #[schema(value_type = Option<crate::schemas::Sha256Hex>)]
        action_digest: Option<String>,
        /// For a DPoP-bound access token: the proof the user sent with the request.
        dpop: Option<DpopProof>,
    }
}
