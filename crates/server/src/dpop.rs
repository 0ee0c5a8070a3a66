//! DPoP proofs (RFC 9449), checked by `stepgate-dpop`; here what a proven key means to
//! the server: a device that proves a key is strongly trusted, since a key does not
//! travel the way a fingerprint can be copied.

pub use stepgate_dpop::{MAX_SKEW_SECONDS, Proof, verify, verify_for_token};

use crate::app::SharedApp;
use crate::error::AppError;
use crate::tokens::AccessClaims;
use stepgate_api::TokenScheme;
use stepgate_core::risk::DeviceTrust;

/// Devices known by a DPoP key are stored under `jkt:<thumbprint>` (a public key's hash,
/// nothing secret); devices known by fingerprint under the fingerprint's SHA-256.
pub const DEVICE_PREFIX: &str = "jkt:";

/// The trust a remembered device earns: `key` for a proven key, else `fingerprint`.
pub fn trust_of(device_hash: &str) -> DeviceTrust {
    if device_hash.starts_with(DEVICE_PREFIX) {
        DeviceTrust::Key
    } else {
        DeviceTrust::Fingerprint
    }
}

/// Checks the DPoP side of an access token (RFC 9449 §7): a token bound to a key
/// (`cnf.jkt`) must come with the `DPoP` scheme and a fresh, unreplayed proof from
/// that key for this request; an unbound token must not claim the `DPoP` scheme.
pub async fn check_possession(
    app: &SharedApp,
    claims: &AccessClaims,
    token: &str,
    scheme: TokenScheme,
    proof: Option<&str>,
    method: &str,
    url: &str,
) -> Result<(), AppError> {
    let Some(cnf) = &claims.cnf else {
        return if scheme == TokenScheme::Dpop {
            Err(AppError::unauthenticated(
                "the DPoP scheme is for DPoP-bound tokens; this token is a Bearer token",
            ))
        } else {
            Ok(())
        };
    };
    if scheme != TokenScheme::Dpop {
        return Err(AppError::unauthenticated(
            "this access token is bound to a DPoP key: send it as \"DPoP <token>\" with a DPoP proof",
        ));
    }
    let proof = proof.ok_or_else(|| {
        AppError::unauthenticated("a DPoP-bound access token needs a DPoP proof header")
    })?;
    let now = app.now();
    let proof = verify_for_token(proof, method, url, now, token, &cnf.jkt)
        .map_err(|why| AppError::unauthenticated(format!("invalid DPoP proof: {why}")))?;
    if !spend_proof(app, &proof).await? {
        return Err(AppError::unauthenticated(
            "invalid DPoP proof: it was used before",
        ));
    }
    Ok(())
}

/// Records a checked proof's `jti` as used (the replay guard, in the store so it holds
/// across nodes); false if it was used before.
pub async fn spend_proof(app: &SharedApp, proof: &Proof) -> Result<bool, AppError> {
    Ok(app
        .store
        .use_dpop_proof(&proof.jkt, &proof.jti, proof.iat + 2 * MAX_SKEW_SECONDS)
        .await?)
}
