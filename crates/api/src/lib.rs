//! stepgate's wire contract, written once: the JSON body of every request and answer,
//! the claims of an access token, the problem document and its stable error codes.
//!
//! The server deserializes requests into these types and renders answers from them;
//! the SDK (`stepgate-client`) sends and reads the same types. With the `openapi`
//! feature each type also describes itself for the server's OpenAPI document, which is
//! the published contract (`GET /openapi.json`).
//!
//! Conventions: times in bodies are RFC 3339 strings; the claims of an access token are
//! Unix seconds. Request types accept only the members they name (unknown members are
//! refused) where the server has always refused them.

/// The header that carries an elevation token: to the routes stepgate protects itself
/// (factor changes), and through forward-auth from the proxied request.
pub const ELEVATION_HEADER: &str = "Stepgate-Elevation";

pub mod api_keys;
pub mod audit;
pub mod claims;
pub mod decisions;
pub mod devices;
pub mod discovery;
pub mod error;
pub mod factors;
pub mod json;
pub mod policy;
pub mod risk;
#[cfg(feature = "openapi")]
pub mod schemas;
pub mod sessions;
pub mod stepup;
pub mod testing;
pub mod users;

pub use api_keys::{ApiKeyInfo, ApiKeyList, CreateApiKey, CreatedApiKey};
pub use audit::{AuditEvent, AuditList, AuditQuery, AuditVerification};
pub use claims::{AccessClaims, Confirmation};
pub use decisions::{
    Decision, DecisionContext, DecisionKind, DecisionRequest, DpopProof, TokenScheme,
};
pub use devices::{Device, DeviceList};
pub use discovery::OpenIdConfiguration;
pub use error::{ErrorCode, Problem};
pub use factors::{
    ConfirmEmail, ConfirmTotp, EmailEnrollment, Factor, FactorList, FinishWebauthnRegistration,
    NewEmailFactor, NewWebauthnRegistration, RecoveryCodes, TotpEnrollment, WebauthnRegistration,
};
pub use policy::{Policy, PurposeChange, PurposePolicy, PurposeUpdated, Requirement};
pub use risk::{Risk, RiskReason};
pub use sessions::{CurrentSession, DeviceInfo, Login, LoginResponse, LoginStepUp};
pub use stepup::{
    ChallengeLinks, ChallengeProgress, ChallengeState, CodeSent, Elevation, ElevationList,
    ElevationMode, NewChallenge, Redeem, Redeemed, SendCode, StepUpChallenge, Verified,
    VerifyAnswer, VerifyChallenge,
};
pub use testing::{ClockNow, ClockOffset};
pub use users::{CreateUser, CreatedUser, FactorsReset};
