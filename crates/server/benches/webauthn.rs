//! What a WebAuthn ceremony costs the server, measured in one run beside the raw ES256
//! signature check inside it: starting and finishing a registration (attestation
//! `none`), starting and finishing an assertion, with the same software authenticator
//! the end-to-end tests use.
//!
//! `cargo bench -p stepgate-server --bench webauthn`

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential, Uuid};

#[allow(dead_code)]
#[path = "../../../tests/common/webauthn.rs"]
mod soft;

/// Median µs per call over `rounds` rounds of `iters` calls.
fn measure(name: &str, iters: u32, rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.min(50) {
        f();
    }
    let mut per_op: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters) / 1000.0
        })
        .collect();
    per_op.sort_by(|a, b| a.total_cmp(b));
    let median = per_op[rounds / 2];
    println!("{name:<36} {median:>10.1} µs/op");
    median
}

fn bytes(v: &serde_json::Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

fn main() {
    let rp = stepgate_server::factors::webauthn::relying_party(soft::ORIGIN).unwrap();
    let mut key = soft::SoftPasskey::security_key();
    let user = Uuid::new_v4();

    let start_reg = measure("registration: start", 2000, 7, || {
        black_box(
            rp.start_passkey_registration(user, "ada", "ada", None)
                .unwrap(),
        );
    });
    let (options, state) = rp
        .start_passkey_registration(user, "ada", "ada", None)
        .unwrap();
    let options = serde_json::to_value(options).unwrap();
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options)).unwrap();
    let finish_reg = measure("registration: finish (verify)", 2000, 7, || {
        black_box(rp.finish_passkey_registration(&credential, &state).unwrap());
    });
    let passkey = rp.finish_passkey_registration(&credential, &state).unwrap();

    let start_auth = measure("assertion: start", 2000, 7, || {
        black_box(
            rp.start_passkey_authentication(std::slice::from_ref(&passkey))
                .unwrap(),
        );
    });
    let (options, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let options = serde_json::to_value(options).unwrap();
    let json = key.assert(&options);
    let assertion: PublicKeyCredential = serde_json::from_value(json.clone()).unwrap();
    let finish_auth = measure("assertion: finish (verify)", 2000, 7, || {
        black_box(
            rp.finish_passkey_authentication(&assertion, &state)
                .unwrap(),
        );
    });

    // The signature check inside the assertion, alone.
    let response = &json["response"];
    let mut signed = bytes(&response["authenticatorData"]);
    signed.extend_from_slice(&Sha256::digest(bytes(&response["clientDataJSON"])));
    let signature = bytes(&response["signature"]);
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key());
    let raw = measure("ES256 signature verify (aws-lc)", 2000, 7, || {
        public
            .verify(black_box(&signed), black_box(&signature))
            .unwrap();
    });

    println!(
        "\nassertion finish / raw ES256 verify: {:.1}x; registration finish / raw: {:.1}x",
        finish_auth / raw,
        finish_reg / raw
    );
    println!(
        "a whole ceremony's server CPU: registration {:.0} µs, assertion {:.0} µs",
        start_reg + finish_reg,
        start_auth + finish_auth
    );
}
