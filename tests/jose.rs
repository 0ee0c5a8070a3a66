//! The access token verifies with an independent JOSE implementation (Python PyJWT,
//! installed by `scripts/test-deps`), which fetches the key from the JWKS itself.

mod common;

use common::{Server, jwt_claims};

fn pyjwt_verify(server: &Server, token: &str) -> (bool, String, String) {
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/jose/verify_token.py"
        ))
        .arg(server.url("/.well-known/jwks.json"))
        .arg(token)
        .arg("http://localhost:8080")
        .output()
        .expect("python3 must be installed (scripts/test-deps)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn pyjwt_verifies_access_tokens_from_the_jwks() {
    let s = Server::start().await;
    let token = s.user_token("oscar").await;
    let (ok, stdout, stderr) = pyjwt_verify(&s, &token);
    assert!(ok, "PyJWT refused the token: {stderr}");
    let claims: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(claims, jwt_claims(&token));

    // And it refuses a token whose payload was altered.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = s.user_token("peggy").await;
    parts[1] = other.split('.').nth(1).unwrap();
    let (ok, _, stderr) = pyjwt_verify(&s, &parts.join("."));
    assert!(!ok);
    assert!(stderr.contains("Signature verification failed"), "{stderr}");
}
