//! DPoP proofs (RFC 9449) checked the one way stepgate checks them, shared by the server
//! (sign-in, DPoP-bound access tokens and elevations) and the SDK (an RP verifying a
//! bound token locally). A client proves possession of a private key by signing a short
//! JWT for each request; the key's RFC 7638 thumbprint (`jkt`) names the key.
//!
//! Not here: replay. A proof's `jti` must be seen once; where that is remembered (the
//! server's store, the SDK verifier's memory) is the caller's choice.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How far a proof's `iat` may be from the server's clock.
pub const MAX_SKEW_SECONDS: i64 = 60;

/// A checked proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// Base64url SHA-256 thumbprint of the public key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// Base64url SHA-256 of the access token the proof accompanies (RFC 9449 §4.2).
    pub ath: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    htm: String,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(default)]
    ath: Option<String>,
}

/// Checks a `DPoP` header value for a request `method` to `url` (scheme, host and path,
/// no query). Replay (the same `jti` twice) is the caller's check.
pub fn verify(proof: &str, method: &str, url: &str, now: i64) -> Result<Proof, String> {
    let header =
        jsonwebtoken::decode_header(proof).map_err(|_| "the proof is not a JWT".to_owned())?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err("typ must be dpop+jwt".into());
    }
    let jwk = header.jwk.ok_or("the proof carries no jwk")?;
    let jkt = thumbprint(&jwk, header.alg)?;
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|_| "the jwk is not a usable public key".to_owned())?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| "the proof's signature or claims are invalid".to_owned())?
        .claims;
    if !claims.htm.eq_ignore_ascii_case(method) {
        return Err("htm does not match the request method".into());
    }
    if claims.htu.split(['?', '#']).next() != Some(url) {
        return Err("htu does not match the request URL".into());
    }
    // abs_diff: an attacker-chosen iat must not overflow the subtraction.
    if now.abs_diff(claims.iat) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err("iat is too far from the server's time".into());
    }
    if claims.jti.is_empty() || claims.jti.len() > 128 {
        return Err("jti must be 1 to 128 characters".into());
    }
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        ath: claims.ath,
    })
}

/// Checks a proof sent with an access token bound to `jkt` (RFC 9449 §7.1): a valid
/// proof for this request, made with that key, whose `ath` is the token's hash.
pub fn verify_for_token(
    proof: &str,
    method: &str,
    url: &str,
    now: i64,
    token: &str,
    jkt: &str,
) -> Result<Proof, String> {
    let proof = verify(proof, method, url, now)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        proof.jkt.as_bytes(),
        jkt.as_bytes(),
    )) {
        return Err("the proof is not made with the key the token is bound to".into());
    }
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
    if proof.ath.as_deref() != Some(ath.as_str()) {
        return Err("ath does not match the access token".into());
    }
    Ok(proof)
}

/// RFC 7638 thumbprint of an ES256 (P-256) or EdDSA (Ed25519) public key; other keys,
/// and keys that do not match the header's algorithm, are refused (never panicked on).
fn thumbprint(jwk: &Jwk, alg: Algorithm) -> Result<String, String> {
    let canonical = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256)
            if ec.curve == EllipticCurve::P256 =>
        {
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                ec.x, ec.y
            )
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x)
        }
        _ => return Err("only ES256 (P-256) and EdDSA (Ed25519) keys are accepted".into()),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::{
        CommonParameters, EllipticCurveKeyParameters, EllipticCurveKeyType, OctetKeyPairParameters,
        OctetKeyPairType,
    };

    fn jwk(algorithm: AlgorithmParameters) -> Jwk {
        Jwk {
            common: CommonParameters::default(),
            algorithm,
        }
    }

    #[test]
    fn mismatched_keys_are_refused_not_panicked_on() {
        // jsonwebtoken's own thumbprint panics on these shapes; ours refuses them.
        let ec_with_ed_curve = jwk(AlgorithmParameters::EllipticCurve(
            EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::Ed25519,
                x: "x".into(),
                y: "y".into(),
            },
        ));
        assert!(thumbprint(&ec_with_ed_curve, Algorithm::ES256).is_err());
        let okp_with_p256 = jwk(AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::P256,
            x: "x".into(),
        }));
        assert!(thumbprint(&okp_with_p256, Algorithm::EdDSA).is_err());
        let ed = jwk(AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        }));
        assert!(
            thumbprint(&ed, Algorithm::ES256).is_err(),
            "alg must match the key"
        );
        // RFC 8037 Appendix A.3's thumbprint of this key.
        assert_eq!(
            thumbprint(&ed, Algorithm::EdDSA).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn extreme_iat_values_are_refused_without_overflow() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(jwk(AlgorithmParameters::OctetKeyPair(
            OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(public),
            },
        )));
        let key = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
        for iat in [i64::MIN, i64::MAX] {
            let claims =
                serde_json::json!({"htm": "POST", "htu": "http://x/y", "iat": iat, "jti": "j"});
            let proof = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            assert!(verify(&proof, "POST", "http://x/y", 1_800_000_000).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            assert!(verify(bad, "POST", "http://x/y", 0).is_err());
        }
    }
}
