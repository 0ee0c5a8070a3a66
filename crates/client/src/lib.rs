//! Rust SDK for stepgate, for relying parties (RPs): the applications that put stepgate
//! in front of their sensitive actions.
//!
//! - [`Client`]: one typed async method per HTTP route; errors are [`Error::Problem`]
//!   with stepgate's stable `code`.
//! - [`TokenVerifier`]: verifies access tokens locally against the cached JWKS (a
//!   DPoP-bound token only with its proof, [`TokenVerifier::verify_dpop`]). It cannot
//!   see server-side revocation (logout, ended sessions); [`Client::decide`] can, and is
//!   the authoritative answer.
//! - [`RequireStepUp`]: a tower layer that asks `POST /v1/decisions` before each request
//!   and answers `step_up` with an RFC 9470 challenge; [`StepUp`] is its axum extractor.
//! - [`www_authenticate`]: a strict parser and a builder for `WWW-Authenticate`.
//!
//! What this crate is not: it has no server code and does not depend on stepgate's
//! server crates. The JSON shapes in [`types`] are `stepgate-api`'s, the same types the
//! server reads and renders (that crate depends on serde alone).

#![warn(missing_docs)]

mod client;
mod error;
mod layer;
pub mod types;
mod verify;
pub mod www_authenticate;

pub use client::{Client, ELEVATION_HEADER};
pub use error::Error;
pub use layer::{RequireStepUp, StepUp, StepUpLayer, StepUpService};
pub use types::*;
pub use verify::{
    AccessClaims, Confirmation, DEFAULT_REFETCH_INTERVAL, MAX_REMEMBERED_PROOFS, TokenVerifier,
    VerifyError,
};
pub use www_authenticate::Challenge;
