//! The per-operation costs behind two design choices, measured side by side in one run:
//! the JWT algorithm (EdDSA vs ES256, sign and verify as `jsonwebtoken` with aws-lc does
//! them) and the argon2id verification that dominates login.
//!
//! `cargo bench -p stepgate-server --bench crypto`

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// Median ns per call over `rounds` rounds of `iters` calls.
fn measure(name: &str, iters: u32, rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.min(100) {
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
    println!("{name:<28} {:>12.0} ns/op", median);
    median
}

fn claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "http://localhost:8080", "sub": "0195f0e4-8c2b-7c1e-a0f3-1b2c3d4e5f60",
        "sid": "9a1c0f52-5f0e-4bfa-8f0a-3c1d2e3f4a5b", "iat": 1_800_000_000_i64,
        "exp": 4_000_000_000_i64, "auth_time": 1_800_000_000_i64,
        "acr": "urn:stepgate:acr:pwd", "amr": ["pwd"],
    })
}

fn bench_alg(alg: Algorithm, encoding: EncodingKey, decoding: DecodingKey) -> (f64, f64) {
    let mut header = Header::new(alg);
    header.kid = Some("bench".into());
    let claims = claims();
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    let sign = measure(&format!("{alg:?} sign"), 2000, 7, || {
        black_box(jsonwebtoken::encode(&header, black_box(&claims), &encoding).unwrap());
    });
    let verify = measure(&format!("{alg:?} verify"), 2000, 7, || {
        black_box(
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding, &validation)
                .unwrap(),
        );
    });
    (sign, verify)
}

fn main() {
    let rng = SystemRandom::new();

    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed_pub = Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
    let (ed_sign, ed_verify) = bench_alg(
        Algorithm::EdDSA,
        EncodingKey::from_ed_der(ed.as_ref()),
        DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(ed_pub.public_key().as_ref()))
            .unwrap(),
    );

    let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec_pub = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec.as_ref()).unwrap();
    let point = ec_pub.public_key().as_ref();
    let (es_sign, es_verify) = bench_alg(
        Algorithm::ES256,
        EncodingKey::from_ec_der(ec.as_ref()),
        DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap(),
    );
    println!(
        "ES256/EdDSA ratio: sign {:.2}x, verify {:.2}x",
        es_sign / ed_sign,
        es_verify / ed_verify
    );

    // argon2id with the parameters `passwords.rs` uses.
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).unwrap(),
    );
    let hash = argon
        .hash_password(b"correct horse battery", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    let parsed = PasswordHash::new(&hash).unwrap();
    let verify = measure("argon2id verify (19 MiB, t=2)", 20, 5, || {
        black_box(
            argon
                .verify_password(b"correct horse battery", &parsed)
                .is_ok(),
        );
    });
    println!("argon2id verify: {:.1} ms", verify / 1e6);
}
