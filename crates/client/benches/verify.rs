//! Local access-token verification cost: what an RP pays per request when it checks a
//! token against the cached JWKS instead of asking stepgate.
//!
//! `cargo bench -p stepgate-client --bench verify`

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use stepgate_client::TokenVerifier;

const ISSUER: &str = "http://localhost:8080";

/// Median ns per call over `rounds` rounds of `iters` calls.
fn measure(name: &str, iters: u32, rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.min(200) {
        f();
    }
    let mut per_op: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    per_op.sort_by(|a, b| a.total_cmp(b));
    let median = per_op[rounds / 2];
    println!("{name:<36} {median:>10.0} ns/op");
    median
}

fn main() {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key generation");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("generated key");
    let jwks = serde_json::json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "bench",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    }]});
    let verifier = TokenVerifier::from_jwks(ISSUER, &jwks).expect("jwks");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "0195f0e4-8c2b-7c1e-a0f3-1b2c3d4e5f60",
        "sid": "9a1c0f52-5f0e-4bfa-8f0a-3c1d2e3f4a5b", "iat": now, "exp": now + 3600,
        "auth_time": now, "acr": "urn:stepgate:acr:mfa", "amr": ["pwd", "otp"],
        "su": true, "su_time": now, "su_purpose": "admin:resources:delete",
    });
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("bench".into());
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(pkcs8.as_ref()))
        .expect("signing");

    verifier
        .verify_cached(&token)
        .expect("the bench token verifies");
    // The signature check alone, for scale: the rest is JWT parsing and claim checks.
    let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    measure("Ed25519 signature check alone", 5000, 9, || {
        black_box(public.verify(signing_input.as_bytes(), &signature).is_ok());
    });
    measure("TokenVerifier::verify_cached", 5000, 9, || {
        black_box(verifier.verify_cached(black_box(&token)).is_ok());
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    measure("TokenVerifier::verify (async, cached)", 5000, 9, || {
        black_box(runtime.block_on(verifier.verify(black_box(&token))).is_ok());
    });
}
