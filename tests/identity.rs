//! Users, login, sessions, tokens and keys, end to end over HTTP.

mod common;

use std::time::Duration;

use common::{PASSWORD, Server, eventually, jwt_claims};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;

/// Verifies an access token in-process against the server's JWKS.
async fn verify_with_jwks(server: &Server, token: &str) -> serde_json::Value {
    let jwks = server.get("/.well-known/jwks.json", None).await.body;
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the token's kid is in the JWKS");
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["http://localhost:8080"]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("token verifies against the JWKS")
        .claims
}

#[tokio::test]
async fn create_user_login_verify_and_logout() {
    let s = Server::start().await;
    let user_id = s.create_user("Alice").await;

    let r = s.login("alice", PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let session_id = r.body["session_id"].as_str().unwrap().to_owned();
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in <= 900);

    let claims = verify_with_jwks(&s, &token).await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["sid"], session_id.as_str());
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_eq!(claims["acr"], "urn:stepgate:acr:pwd");
    assert_eq!(claims["amr"], json!(["pwd"]));
    for c in ["iat", "exp", "auth_time"] {
        assert!(claims[c].is_i64(), "{c}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        expires_in
    );

    let current = s.get("/v1/sessions/current", Some(&token)).await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(current.body["session_id"], session_id.as_str());
    assert_eq!(current.body["user_id"], user_id.as_str());
    assert_eq!(current.body["ip"], "127.0.0.1");

    let out = s.delete("/v1/sessions/current", Some(&token)).await;
    assert_eq!(out.status, 204, "{}", out.text);
    // The token still has a valid signature and expiry, but its session is gone.
    s.get("/v1/sessions/current", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    s.delete("/v1/sessions/current", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_ends_only_its_own_session() {
    let s = Server::start().await;
    let first = s.user_token("bob").await;
    let second = s.login("bob", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.delete("/v1/sessions/current", Some(&first)).await.status,
        204
    );
    assert_eq!(
        s.get("/v1/sessions/current", Some(&second)).await.status,
        200
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let s = Server::start().await;
    s.create_user("carol").await;
    let wrong = s.login("carol", "not the password").await;
    let unknown = s.login("nobody", "not the password").await;
    wrong.assert_problem(401, "INVALID_CREDENTIALS");
    unknown.assert_problem(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.body, unknown.body);
    // Usernames are case-insensitive at login too.
    assert_eq!(s.login("CAROL", PASSWORD).await.status, 201);
}

#[tokio::test]
async fn duplicate_usernames_conflict_case_insensitively() {
    let s = Server::start().await;
    s.create_user("dave").await;
    let before = s.db_snapshot().await;
    s.post(
        "/v1/users",
        Some(&s.service_key),
        json!({"username": "DAVE", "password": PASSWORD}),
    )
    .await
    .assert_problem(409, "CONFLICT");
    assert_eq!(s.db_snapshot().await, before);
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let s = Server::with_config("[session]\naccess_token_ttl_seconds = 1\n").await;
    let token = s.user_token("erin").await;
    assert_eq!(
        jwt_claims(&token)["exp"].as_i64().unwrap() - jwt_claims(&token)["iat"].as_i64().unwrap(),
        1
    );
    let refused = eventually(Duration::from_secs(5), async || {
        s.get("/v1/sessions/current", Some(&token)).await.status == 401
    })
    .await;
    assert!(refused, "an expired token kept working");
    s.get("/v1/sessions/current", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn expired_sessions_end_their_tokens() {
    let s =
        Server::with_config("[session]\nttl_seconds = 1\naccess_token_ttl_seconds = 600\n").await;
    let token = s.user_token("frank").await;
    // The token may not outlive its session.
    let claims = jwt_claims(&token);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 1);
    assert!(
        eventually(Duration::from_secs(5), async || {
            s.get("/v1/sessions/current", Some(&token)).await.status == 401
        })
        .await
    );
}

#[tokio::test]
async fn tampered_and_foreign_tokens_are_refused() {
    let s = Server::start().await;
    let token = s.user_token("grace").await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Change the subject in the payload, keep the signature.
    let mut claims = jwt_claims(&token);
    claims["sub"] = json!("someone-else");
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = parts.join(".");
    s.get("/v1/sessions/current", Some(&forged))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // A token signed by another stepgate's key is unknown here.
    let other = Server::start().await;
    let foreign = other.user_token("grace").await;
    s.get("/v1/sessions/current", Some(&foreign))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid() {
    let s = Server::start().await;
    let old = s.user_token("heidi").await;
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();

    let (ok, stdout, stderr) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{stderr}");
    let new_kid = stdout.trim().to_owned();
    assert_ne!(new_kid, old_kid);

    // The running server picks the new key up by itself.
    let picked_up = eventually(Duration::from_secs(10), async || {
        s.get("/.well-known/jwks.json", None).await.body["keys"]
            .as_array()
            .is_some_and(|k| k.len() == 2)
    })
    .await;
    assert!(picked_up, "JWKS never showed the rotated key");
    let jwks = s.get("/.well-known/jwks.json", None).await.body;
    assert_eq!(jwks["keys"][0]["kid"], new_kid.as_str(), "newest key first");

    let new = s.login("heidi", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        new_kid
    );
    for token in [&old, &new] {
        verify_with_jwks(&s, token).await;
        assert_eq!(s.get("/v1/sessions/current", Some(token)).await.status, 200);
    }
}

#[tokio::test]
async fn users_can_be_created_from_the_cli() {
    let s = Server::start().await;
    let mut child = common::stepgate(&s.config_path)
        .args([
            "users",
            "create",
            "--username",
            "ivan",
            "--email",
            "ivan@example.test",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = s.login("ivan", PASSWORD).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        jwt_claims(r.body["access_token"].as_str().unwrap())["sub"],
        id.as_str()
    );

    // A second user with the same name is refused and a short password too.
    let (ok, _, stderr) = s.cli(&["users", "create", "--username", "ivan"]);
    assert!(!ok);
    assert!(
        stderr.contains("password") || stderr.contains("taken"),
        "{stderr}"
    );
}

#[tokio::test]
async fn api_keys_are_managed_by_admins_only() {
    let s = Server::start().await;
    // A service key may create users but not manage keys.
    s.post(
        "/v1/api-keys",
        Some(&s.service_key),
        json!({"scope": "service"}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    s.get("/v1/api-keys", Some(&s.service_key))
        .await
        .assert_problem(403, "FORBIDDEN");

    let created = s
        .post(
            "/v1/api-keys",
            Some(&s.admin_key),
            json!({"scope": "service", "label": "billing"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();

    let listed = s.get("/v1/api-keys", Some(&s.admin_key)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["api_keys"].as_array().unwrap().len(), 3);
    assert!(!listed.text.contains(&key), "a key's secret was listed");
    assert!(!listed.text.contains("secret_hash"));

    let user = json!({"username": "judy", "password": PASSWORD});
    assert_eq!(
        s.post("/v1/users", Some(&key), user.clone()).await.status,
        201
    );
    assert_eq!(
        s.delete(&format!("/v1/api-keys/{id}"), Some(&s.admin_key))
            .await
            .status,
        204
    );
    s.post(
        "/v1/users",
        Some(&key),
        json!({"username": "judy2", "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");
    s.delete(&format!("/v1/api-keys/{id}"), Some(&s.admin_key))
        .await
        .assert_problem(404, "NOT_FOUND");
    s.post("/v1/api-keys", Some(&s.admin_key), json!({"scope": "root"}))
        .await
        .assert_problem(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn sqlite_and_postgres_stay_correct_under_concurrent_writers() {
    let s = Server::with_config("password_hash_concurrency = 2\n").await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let http = s.http.clone();
            let users = s.url("/v1/users");
            let sessions = s.url("/v1/sessions");
            let key = s.service_key.clone();
            tokio::spawn(async move {
                let name = format!("user{i}");
                let created = http
                    .post(&users)
                    .bearer_auth(&key)
                    .json(&json!({"username": name, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                let mut statuses = vec![created];
                for _ in 0..3 {
                    let r = http
                        .post(&sessions)
                        .json(&json!({"username": name, "password": PASSWORD}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), vec![201, 201, 201, 201]);
    }
    let counts = s.db_snapshot().await;
    assert_eq!(counts["users"], 24);
    assert_eq!(counts["sessions"], 72);
    assert!(!s.logs().contains("database is locked"));
}

/// Issue 11, defect 11: creating a user, creating a key and revoking one are audited,
/// naming who did it; the last live admin key cannot be revoked over HTTP, not even by
/// two admins revoking each other's keys at once.
#[tokio::test]
async fn user_and_key_changes_are_audited_and_the_last_admin_key_stays() {
    let s = Server::start().await;
    let key_id = |key: &str| key.split('_').nth(1).unwrap().to_owned();
    let admin_id = key_id(&s.admin_key);

    let user = s
        .post(
            "/v1/users",
            Some(&s.service_key),
            json!({"username": "kai", "password": PASSWORD, "roles": ["ops"]}),
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.text);
    let created = s.audit("type=USER_CREATED").await;
    let kai = created
        .iter()
        .find(|e| e["user_id"] == user.body["id"])
        .unwrap_or_else(|| panic!("no USER_CREATED for kai: {created:?}"));
    assert_eq!(kai["data"]["username"], "kai");
    assert_eq!(kai["data"]["roles"], json!(["ops"]));
    assert_eq!(kai["data"]["by"], key_id(&s.service_key));

    // Labels are shown in listings and logs: no control characters.
    let before = s.db_snapshot().await;
    for label in ["two\nlines", "\u{1b}[2Jclear", "nul\u{0}"] {
        s.post(
            "/v1/api-keys",
            Some(&s.admin_key),
            json!({"scope": "admin", "label": label}),
        )
        .await
        .assert_problem(400, "VALIDATION_FAILED");
    }
    assert_eq!(s.db_snapshot().await, before);

    let second = s
        .post(
            "/v1/api-keys",
            Some(&s.admin_key),
            json!({"scope": "admin", "label": "second"}),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    let second_key = second.body["key"].as_str().unwrap().to_owned();
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    let made = s.audit("type=API_KEY_CREATED").await;
    let made = made
        .iter()
        .find(|e| e["data"]["api_key_id"] == second_id.as_str())
        .unwrap_or_else(|| panic!("no API_KEY_CREATED: {made:?}"));
    assert_eq!(made["data"]["scope"], "admin");
    assert_eq!(made["data"]["label"], "second");
    assert_eq!(made["data"]["by"], admin_id);
    assert!(
        !made.to_string().contains(&second_key),
        "the key was audited"
    );

    // Two admins revoke each other's keys at once: exactly one wins.
    let revoke = |by: &str, id: &str| {
        s.http
            .delete(s.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(by)
    };
    let (a, b) = tokio::join!(
        s.send(revoke(&s.admin_key, &second_id)),
        s.send(revoke(&second_key, &admin_id))
    );
    // The loser is refused as the last admin (409), or, if the winner committed before
    // the loser's key was checked, as a revoked key (401).
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert!(
        statuses == [204, 409] || statuses == [204, 401],
        "{statuses:?}: {} / {}",
        a.text,
        b.text
    );
    let (survivor, survivor_id) = if a.status == 204 {
        (s.admin_key.clone(), admin_id.clone())
    } else {
        (second_key.clone(), second_id.clone())
    };

    // Revoking itself, the last admin key: refused, and it keeps working.
    let r = s.send(revoke(&survivor, &survivor_id)).await;
    r.assert_problem(409, "CONFLICT");
    let listed = s.get("/v1/api-keys", Some(&survivor)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let revoked = s
        .get("/v1/audit?type=API_KEY_REVOKED", Some(&survivor))
        .await;
    let events = revoked.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", revoked.text);
    assert_eq!(events[0]["data"]["by"], survivor_id);
}
