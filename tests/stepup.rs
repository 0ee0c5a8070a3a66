//! Step-up end to end: factors, challenges, elevations in both modes, redemption and
//! its error codes, budgets, audit. TOTP codes come from oathtool.

mod common;

use common::{PASSWORD, PURPOSES, Server, jwt_claims, oathtool, totp_step_now, unix_now};
use serde_json::{Value, json};

async fn server() -> Server {
    Server::with_config(PURPOSES).await
}

/// A user with TOTP enrolled; returns (token, secret, the step used to confirm).
async fn totp_user(s: &Server, name: &str) -> (String, String, i64) {
    let token = s.user_token(name).await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&token, step).await;
    (token, secret, step)
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

#[tokio::test]
async fn totp_enrollment_keeps_the_secret_encrypted() {
    let s = server().await;
    let token = s.user_token("tina").await;
    let r = s.post("/v1/factors/totp", Some(&token), Value::Null).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    let uri = r.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/stepgate:tina?secret="),
        "{uri}"
    );
    assert!(
        uri.contains("&issuer=stepgate") && uri.contains("digits=6") && uri.contains("period=30")
    );
    assert!(r.body["qr_svg"].as_str().unwrap().contains("<svg"));

    let confirm_path = format!("/v1/factors/totp/{id}/confirm");
    let confirm = |code: String| s.post(&confirm_path, Some(&token), json!({"code": code}));
    let step = totp_step_now();
    confirm(oathtool(&secret, step + 3))
        .await
        .assert_problem(400, "VALIDATION_FAILED");
    confirm("12ab56".into())
        .await
        .assert_problem(400, "VALIDATION_FAILED");
    let ok = confirm(oathtool(&secret, step)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "active");
    // The first factor comes with recovery codes, shown this once.
    assert_eq!(ok.body["recovery_codes"].as_array().unwrap().len(), 10);
    confirm(oathtool(&secret, step + 1))
        .await
        .assert_problem(409, "CONFLICT");

    let factors = s.get("/v1/factors", Some(&token)).await;
    let mut kinds: Vec<&str> = factors.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["recovery_code", "totp"]);
    assert!(!factors.text.contains(&secret));
    assert_eq!(
        count(&s.audit("type=FACTOR_ENROLLED").await, "FACTOR_ENROLLED"),
        2
    );

    // The database holds neither the base32 secret nor its raw bytes.
    let stored: Vec<u8> = if s.database_url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&s.database_url)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT secret FROM factors WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
        sqlx::query_scalar("SELECT secret FROM factors WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    let raw = base32_decode(&secret);
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(!String::from_utf8_lossy(&stored).contains(&secret));
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        bits = (bits << 5) | alphabet.iter().position(|&a| a == c).unwrap() as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The authaz case: TOTP step-up for admin:resources:delete → elevation valid five
/// minutes, usable once, from that IP only.
#[tokio::test]
async fn admin_delete_elevation_lasts_five_minutes_once_from_one_ip() {
    let s = server().await;
    let (token, secret, step) = totp_user(&s, "ada").await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    assert_eq!(c["title"], "Delete a production resource");
    assert_eq!(c["allowed_factors"], json!(["totp", "recovery_code"]));
    assert_eq!(c["attempts_left"], 5);
    assert_eq!(c["mode"], "token");
    let id = c["challenge_id"].as_str().unwrap();

    // The code that confirmed enrollment is never accepted again.
    s.verify(&token, id, "totp", &oathtool(&secret, step))
        .await
        .assert_problem(401, "STEPUP_FAILED");
    let before = unix_now();
    let v = s
        .verify(&token, id, "totp", &oathtool(&secret, step + 1))
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["single_use"], true);
    assert!(v.body["access_token"].is_null());
    let elevation = v.body["elevation_token"].as_str().unwrap().to_owned();
    assert!(
        elevation.starts_with("sge_") && elevation.len() >= 4 + 43,
        "≥ 256 bits"
    );
    let expires = time_of(&v.body["expires_at"]);
    assert!(
        (before + 300..=unix_now() + 300).contains(&expires),
        "five minutes"
    );

    let purpose = "admin:resources:delete";
    s.redeem(json!({"elevation_token": elevation, "purpose": purpose, "ip": "198.51.100.7"}))
        .await
        .assert_problem(403, "STEPUP_IP_MISMATCH");
    s.redeem(json!({"elevation_token": elevation, "purpose": purpose}))
        .await
        .assert_problem(403, "STEPUP_IP_MISMATCH");
    s.redeem(
        json!({"elevation_token": elevation, "purpose": "payroll:transmit", "ip": "127.0.0.1"}),
    )
    .await
    .assert_problem(403, "STEPUP_SCOPE_MISMATCH");
    let ok = s
        .redeem(json!({"elevation_token": elevation, "purpose": purpose, "ip": "127.0.0.1"}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["purpose"], purpose);
    assert_eq!(ok.body["factor"], "totp");
    assert_eq!(ok.body["factor_class"], "any");
    assert_eq!(ok.body["user_id"], jwt_claims(&token)["sub"]);
    s.redeem(json!({"elevation_token": elevation, "purpose": purpose, "ip": "127.0.0.1"}))
        .await
        .assert_problem(403, "STEPUP_TOKEN_REUSED");

    let events = s
        .audit(&format!(
            "user={}",
            jwt_claims(&token)["sub"].as_str().unwrap()
        ))
        .await;
    for kind in [
        "ACCOUNT_STEPUP_CHALLENGE_REQUESTED",
        "ACCOUNT_STEPUP_FAILED",
        "ACCOUNT_STEPUP_VERIFIED",
        "ACCOUNT_STEPUP_REDEEMED",
        "ACCOUNT_STEPUP_REUSED",
    ] {
        assert_eq!(count(&events, kind), 1, "{kind}");
    }
    let verified = events
        .iter()
        .find(|e| e["type"] == "ACCOUNT_STEPUP_VERIFIED")
        .unwrap();
    assert_eq!(verified["purpose"], purpose);
    assert_eq!(verified["factor"], "totp");
    assert_eq!(verified["ip"], "127.0.0.1");
    assert_eq!(verified["policy_version"], 1);
    assert_eq!(verified["session_id"], jwt_claims(&token)["sid"]);
    let reused = events
        .iter()
        .find(|e| e["type"] == "ACCOUNT_STEPUP_REUSED")
        .unwrap();
    assert_eq!(reused["data"]["severity"], "critical");
}

fn time_of(v: &Value) -> i64 {
    let text = v.as_str().unwrap();
    // RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" → Unix seconds, via the date command.
    let out = std::process::Command::new("date")
        .args(["-u", "-d", text, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn wrong_answers_spend_the_challenge_then_block_it() {
    let s = server().await;
    let (token, secret, step) = totp_user(&s, "wanda").await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let id = c["challenge_id"].as_str().unwrap();
    for left in (0..5).rev() {
        let r = s.verify(&token, id, "totp", "000000").await;
        r.assert_problem(401, "STEPUP_FAILED");
        assert_eq!(r.body["attempts_left"], left);
    }
    // Dead now, even for the right code.
    s.verify(&token, id, "totp", &oathtool(&secret, step + 1))
        .await
        .assert_problem(403, "STEPUP_BLOCKED");
    // A failed step-up never ends the session.
    assert_eq!(
        s.get("/v1/sessions/current", Some(&token)).await.status,
        200
    );
    let events = s.audit("").await;
    assert_eq!(count(&events, "ACCOUNT_STEPUP_FAILED"), 5);
    assert_eq!(count(&events, "ACCOUNT_STEPUP_BLOCKED"), 1);
}

#[tokio::test]
async fn the_failure_budget_spans_challenges_and_never_locks_sign_in() {
    let s = server().await;
    let (token, _, _) = totp_user(&s, "bruno").await;
    for _ in 0..2 {
        let c = s
            .challenge(&token, json!({"purpose": "admin:resources:delete"}))
            .await;
        for _ in 0..5 {
            s.verify(
                &token,
                c["challenge_id"].as_str().unwrap(),
                "totp",
                "000000",
            )
            .await;
        }
    }
    // The budget is the factor's: TOTP is blocked, the recovery codes still answer.
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    assert_eq!(c["allowed_factors"], json!(["recovery_code"]));
    s.verify(
        &token,
        c["challenge_id"].as_str().unwrap(),
        "totp",
        "000000",
    )
    .await
    .assert_problem(403, "STEPUP_BLOCKED");
    // Sign-in is untouched, and the session goes on.
    assert_eq!(s.login("bruno", PASSWORD).await.status, 201);
    assert_eq!(
        s.get("/v1/sessions/current", Some(&token)).await.status,
        200
    );
}

#[tokio::test]
async fn weaker_factors_are_insufficient_and_not_counted() {
    let s = Server::with_config(&format!("{PURPOSES}\n[testing]\nclock_control = true\n")).await;
    let (token, secret, step) = totp_user(&s, "petra").await;
    // With TOTP alone, a phishing-resistant purpose cannot even be attempted: the answer
    // says what to enroll.
    let r = s
        .post(
            "/v1/stepup/challenges",
            Some(&token),
            json!({"purpose": "payroll:transmit"}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(
        r.body["enroll"],
        json!(["/v1/factors/webauthn/registrations"])
    );
    // With a passkey beside it, TOTP is still not offered, and refused uncounted.
    let c = s
        .challenge(
            &token,
            json!({"purpose": "factors:enroll", "mode": "token"}),
        )
        .await;
    let elevation = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await
        .body["elevation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = common::webauthn::SoftPasskey::security_key();
    s.register_passkey(&token, Some(&elevation), &key).await;
    let c = s
        .challenge(&token, json!({"purpose": "payroll:transmit"}))
        .await;
    assert_eq!(c["factor"], "phishing_resistant");
    assert_eq!(
        c["allowed_factors"],
        json!(["webauthn"]),
        "TOTP is not offered for a phishing-resistant purpose"
    );
    // A minute on, a TOTP step unspent so far is current.
    s.set_clock(60).await;
    let later = (unix_now() + 60) / 30;
    let id = c["challenge_id"].as_str().unwrap();
    for _ in 0..7 {
        s.verify(&token, id, "totp", &oathtool(&secret, later))
            .await
            .assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");
    }
    assert_eq!(count(&s.audit("").await, "ACCOUNT_STEPUP_FAILED"), 0);
    // The code was not consumed either: it still passes a purpose it is good for.
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let r = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, later),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn challenges_and_elevations_expire() {
    let s = Server::with_config(&format!(
        "[testing]\nclock_control = true\n[stepup]\nchallenge_ttl_seconds = 1\n{PURPOSES}"
    ))
    .await;
    let (token, codes) = s.recovery_user("ezra").await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    s.set_clock(2).await;
    s.verify(
        &token,
        c["challenge_id"].as_str().unwrap(),
        "recovery_code",
        &codes[0],
    )
    .await
    .assert_problem(410, "CHALLENGE_EXPIRED");

    let v = s
        .elevate(&token, &codes[0], json!({"purpose": "test:brief"}))
        .await;
    s.set_clock(4).await;
    s.redeem(json!({"elevation_token": v["elevation_token"], "purpose": "test:brief"}))
        .await
        .assert_problem(403, "STEPUP_TOKEN_EXPIRED");
}

#[tokio::test]
async fn invalid_revoked_and_orphaned_tokens_are_refused() {
    let s = server().await;
    let (token, codes) = s.recovery_user("ivy").await;
    let purpose = "reports:export";
    for bad in [
        "",
        "sge_",
        "sge_short",
        "nope",
        &format!("sge_{}", "A".repeat(43)),
    ] {
        s.redeem(json!({"elevation_token": bad, "purpose": purpose}))
            .await
            .assert_problem(403, "STEPUP_TOKEN_INVALID");
    }
    let v = s
        .elevate(&token, &codes[0], json!({"purpose": purpose}))
        .await;
    let elevation = v["elevation_token"].as_str().unwrap();
    // Multi-use until expiry.
    for _ in 0..3 {
        assert_eq!(
            s.redeem(json!({"elevation_token": elevation, "purpose": purpose}))
                .await
                .status,
            200
        );
    }
    let listed = s.get("/v1/stepup/elevations", Some(&token)).await;
    assert_eq!(listed.body["elevations"][0]["uses_left"], Value::Null);
    // Revoked by the RP's backend.
    let id = v["elevation_id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/v1/stepup/elevations/{id}"), Some(&s.service_key))
            .await
            .status,
        204
    );
    s.delete(&format!("/v1/stepup/elevations/{id}"), Some(&s.service_key))
        .await
        .assert_problem(404, "NOT_FOUND");
    s.redeem(json!({"elevation_token": elevation, "purpose": purpose}))
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
    assert_eq!(
        count(
            &s.audit("type=ACCOUNT_STEPUP_REVOKED").await,
            "ACCOUNT_STEPUP_REVOKED"
        ),
        1
    );

    // Logging out ends the session's elevations too.
    let v = s
        .elevate(&token, &codes[1], json!({"purpose": purpose}))
        .await;
    assert_eq!(
        s.delete("/v1/sessions/current", Some(&token)).await.status,
        204
    );
    s.redeem(json!({"elevation_token": v["elevation_token"], "purpose": purpose}))
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
}

#[tokio::test]
async fn elevations_bound_to_an_action_redeem_only_for_it() {
    let s = server().await;
    let (token, codes) = s.recovery_user("abe").await;
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let c = s
        .challenge(&token, json!({"purpose": "factors:delete", "action_digest": digest, "action_summary": "Delete report 42"}))
        .await;
    assert_eq!(c["action_summary"], "Delete report 42");
    let v = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "recovery_code",
            &codes[0],
        )
        .await;
    let elevation = v.body["elevation_token"].as_str().unwrap();
    let other = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    for d in [Some(other), None] {
        let mut body = json!({"elevation_token": elevation, "purpose": "factors:delete"});
        if let Some(d) = d {
            body["action_digest"] = json!(d);
        }
        s.redeem(body)
            .await
            .assert_problem(403, "STEPUP_SCOPE_MISMATCH");
    }
    s.redeem(
        json!({"elevation_token": elevation, "purpose": "factors:delete", "action_digest": "xyz"}),
    )
    .await
    .assert_problem(400, "VALIDATION_FAILED");
    let ok = s.redeem(json!({"elevation_token": elevation, "purpose": "factors:delete", "action_digest": digest})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// Session mode: the elevation belongs to the one session that asked.
#[tokio::test]
async fn session_mode_elevates_only_the_asking_session() {
    let s = server().await;
    let (laptop, secret, step) = totp_user(&s, "sam").await;
    let phone = s.login("sam", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = s
        .challenge(
            &laptop,
            json!({"purpose": "factors:delete", "mode": "session"}),
        )
        .await;
    let v = s
        .verify(
            &laptop,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert!(v.body["elevation_token"].is_null());
    let elevated = v.body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&elevated);
    assert_eq!(claims["su"], true);
    assert_eq!(claims["acr"], "urn:stepgate:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert!(claims["su_time"].as_i64().unwrap() >= claims["auth_time"].as_i64().unwrap());
    assert_eq!(claims["sid"], jwt_claims(&laptop)["sid"]);
    assert!(jwt_claims(&phone).get("su").is_none());

    let listed = s.get("/v1/stepup/elevations", Some(&phone)).await.body;
    let e = &listed["elevations"][0];
    assert_eq!(e["purpose"], "factors:delete");
    assert_eq!(e["mode"], "session");
    assert_eq!(e["uses_left"], 1);
    assert_eq!(e["current_session"], false, "listed from the other session");
    assert_eq!(e["session_id"], jwt_claims(&laptop)["sid"]);

    // The phone's session holds no elevation: removing a factor asks it to step up.
    let factor_id = s.get("/v1/factors", Some(&phone)).await.body["factors"][0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .delete(&format!("/v1/factors/{factor_id}"), Some(&phone))
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["purpose"], "factors:delete");
    assert!(r.body["challenge_id"].is_string());
    // The laptop's session does, once.
    assert_eq!(
        s.delete(&format!("/v1/factors/{factor_id}"), Some(&elevated))
            .await
            .status,
        204
    );
    assert_eq!(
        count(&s.audit("type=FACTOR_REMOVED").await, "FACTOR_REMOVED"),
        1
    );
    assert_eq!(
        s.get("/v1/stepup/elevations", Some(&laptop)).await.body["elevations"],
        json!([])
    );
}

#[tokio::test]
async fn users_see_and_end_their_elevations() {
    let s = server().await;
    let (token, codes) = s.recovery_user("una").await;
    let (other, other_codes) = s.recovery_user("otto").await;
    let v = s
        .elevate(&token, &codes[0], json!({"purpose": "reports:export"}))
        .await;
    let theirs = s
        .elevate(
            &other,
            &other_codes[0],
            json!({"purpose": "reports:export"}),
        )
        .await;
    let listed = s.get("/v1/stepup/elevations", Some(&token)).await.body;
    assert_eq!(listed["elevations"].as_array().unwrap().len(), 1);
    assert_eq!(listed["elevations"][0]["current_session"], true);
    // Someone else's elevation is not found, and stays live.
    let their_id = theirs["elevation_id"].as_str().unwrap();
    s.delete(&format!("/v1/stepup/elevations/{their_id}"), Some(&token))
        .await
        .assert_problem(404, "NOT_FOUND");
    let id = v["elevation_id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/v1/stepup/elevations/{id}"), Some(&token))
            .await
            .status,
        204
    );
    assert_eq!(
        s.get("/v1/stepup/elevations", Some(&token)).await.body["elevations"],
        json!([])
    );
    assert_eq!(
        s.get("/v1/stepup/elevations", Some(&other)).await.body["elevations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn recovery_codes_work_once_each() {
    let s = server().await;
    let (token, codes) = s.recovery_user("rita").await;
    assert_eq!(codes.len(), 10);
    let factors = s.get("/v1/factors", Some(&token)).await.body;
    assert_eq!(factors["factors"][0]["codes_left"], 10);
    s.elevate(
        &token,
        &codes[3].to_uppercase(),
        json!({"purpose": "reports:export"}),
    )
    .await;
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    s.verify(
        &token,
        c["challenge_id"].as_str().unwrap(),
        "recovery_code",
        &codes[3],
    )
    .await
    .assert_problem(401, "STEPUP_FAILED");
    assert_eq!(
        s.get("/v1/factors", Some(&token)).await.body["factors"][0]["codes_left"],
        9
    );
    // A new set replaces the old one; with a factor in place that is itself a step-up.
    s.post("/v1/factors/recovery-codes", Some(&token), Value::Null)
        .await
        .assert_problem(401, "STEPUP_REQUIRED");
    let enroll = s
        .elevate(&token, &codes[4], json!({"purpose": "factors:enroll"}))
        .await;
    let (_, fresh) = {
        let r = s
            .post_elevated(
                "/v1/factors/recovery-codes",
                &token,
                enroll["elevation_token"].as_str().unwrap(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        (r.status, r.body["codes"].clone())
    };
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    s.verify(
        &token,
        c["challenge_id"].as_str().unwrap(),
        "recovery_code",
        &codes[5],
    )
    .await
    .assert_problem(401, "STEPUP_FAILED");
    let r = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "recovery_code",
            fresh[0].as_str().unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_pending_challenge_completes_under_its_policy_version() {
    let s = server().await;
    let (token, codes) = s.recovery_user("polly").await;
    let policy = s.get("/v1/policy", Some(&s.admin_key)).await;
    assert_eq!(policy.status, 200, "{}", policy.text);
    assert_eq!(policy.body["policy_version"], 1);

    let pending = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    assert_eq!(pending["policy_version"], 1);
    let r = s
        .put(
            "/v1/policy/purposes/admin:resources:delete",
            Some(&s.admin_key),
            json!({"ttl_seconds": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["policy_version"], 2);
    assert_eq!(r.body["requirement"]["ttl_seconds"], 60);
    assert_eq!(
        r.body["requirement"]["bind_ip"], true,
        "omitted fields keep their values"
    );

    let old = s
        .verify(
            &token,
            pending["challenge_id"].as_str().unwrap(),
            "recovery_code",
            &codes[0],
        )
        .await;
    assert_eq!(old.status, 200, "{}", old.text);
    assert!(
        time_of(&old.body["expires_at"]) - unix_now() > 200,
        "version 1: five minutes"
    );

    let next = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    assert_eq!(next["policy_version"], 2);
    let new = s
        .verify(
            &token,
            next["challenge_id"].as_str().unwrap(),
            "recovery_code",
            &codes[1],
        )
        .await;
    assert!(
        time_of(&new.body["expires_at"]) - unix_now() <= 60,
        "version 2: one minute"
    );

    let events = s.audit("type=POLICY_UPDATED").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["policy_version"], 2);
    assert_eq!(events[0]["purpose"], "admin:resources:delete");
}

#[tokio::test]
async fn policy_cannot_be_loosened_below_the_platform_minimum() {
    let s = server().await;
    let before = s.db_snapshot().await;
    let path = "/v1/policy/purposes/payroll:transmit";
    for body in [
        json!({"factor": "any"}),
        json!({"ttl_seconds": 121}),
        json!({"single_use": false}),
        json!({"bind_ip": false}),
    ] {
        s.put(path, Some(&s.admin_key), body)
            .await
            .assert_problem(409, "POLICY_BELOW_MINIMUM");
    }
    for body in [
        json!({"factor": "strong"}),
        json!({"ttl": 5}),
        json!({"ttl_seconds": "soon"}),
        json!({"ttl_seconds": 0}),
    ] {
        s.put(path, Some(&s.admin_key), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.put(
        "/v1/policy/purposes/nothing:here",
        Some(&s.admin_key),
        json!({"ttl_seconds": 5}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    s.put(path, Some(&s.service_key), json!({"ttl_seconds": 5}))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert_eq!(s.db_snapshot().await, before);
    // Tightening and loosening back to the minimum are both fine.
    assert_eq!(
        s.put(path, Some(&s.admin_key), json!({"ttl_seconds": 30}))
            .await
            .status,
        200
    );
    // The same setting again changes nothing: no new version, no event, no row.
    let before = s.db_snapshot().await;
    let same = s
        .put(path, Some(&s.admin_key), json!({"ttl_seconds": 30}))
        .await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body["policy_version"], 2);
    assert_eq!(s.db_snapshot().await, before);
    let back = s
        .put(path, Some(&s.admin_key), json!({"ttl_seconds": 120}))
        .await;
    assert_eq!(back.body["policy_version"], 3);
}

#[tokio::test]
async fn bad_step_up_input_is_refused_and_stores_nothing() {
    let s = server().await;
    let (token, _, _) = totp_user(&s, "bea").await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let id = c["challenge_id"].as_str().unwrap();
    let before = s.db_snapshot().await;
    for body in [
        json!({}),
        json!({"purpose": 5}),
        json!({"purpose": "admin:resources:delete", "mode": "telepathy"}),
        json!({"purpose": "admin:resources:delete", "action_digest": "not-hex"}),
        json!({"purpose": "admin:resources:delete", "action_summary": "x".repeat(201)}),
    ] {
        s.post("/v1/stepup/challenges", Some(&token), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.post(
        "/v1/stepup/challenges",
        Some(&token),
        json!({"purpose": "no:such"}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    let verify = common::verify_path(id);
    for body in [
        json!({}),
        json!({"factor": "totp"}),
        json!({"factor": "carrier-pigeon", "code": "123456"}),
        json!({"factor": "totp", "code": "12345"}),
        json!({"factor": "totp", "code": 123456}),
        json!({"factor": "recovery_code", "code": "abcde-fghuj"}),
        json!({"factor": "webauthn"}),
        json!({"factor": "webauthn", "credential": "x"}),
        json!({"factor": "webauthn", "credential": {"id": "AAAA", "type": "public-key"}}),
    ] {
        s.post(&verify, Some(&token), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    // A well-formed answer with a factor the user does not have is not bad input: the
    // factor cannot answer (nothing is counted or stored either way).
    let stranger = common::webauthn::SoftPasskey::security_key();
    let options = json!({"publicKey": {"challenge": "AAAA"}});
    s.post(
        &verify,
        Some(&token),
        json!({"factor": "webauthn", "credential": stranger.assertion(&options, 1)}),
    )
    .await
    .assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");
    s.post(
        "/v1/stepup/challenges/nope/verify",
        Some(&token),
        json!({"factor": "totp", "code": "123456"}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    for body in [
        json!({}),
        json!({"elevation_token": "sge_x"}),
        json!({"elevation_token": "sge_x", "purpose": "p", "ip": "not-an-ip"}),
    ] {
        s.redeem(body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.post(
        "/v1/stepup/redeem",
        Some(&token),
        json!({"elevation_token": "x", "purpose": "p"}),
    )
    .await
    .assert_problem(401, "UNAUTHENTICATED");
    for q in ["limit=0", "limit=10001", "after_seq=x", "colour=red"] {
        s.get(&format!("/v1/audit?{q}"), Some(&s.admin_key))
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.get("/v1/audit", Some(&s.service_key))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert_eq!(
        s.db_snapshot().await,
        before,
        "refused step-up input changed stored state"
    );
    // None of that counted against the challenge.
    assert_eq!(
        s.verify(&token, id, "totp", "000000").await.body["attempts_left"],
        4
    );
}

#[tokio::test]
async fn audit_listing_pages_and_filters() {
    let s = server().await;
    let (token, codes) = s.recovery_user("axel").await;
    for code in &codes[..3] {
        s.elevate(&token, code, json!({"purpose": "reports:export"}))
            .await;
    }
    let all = s.audit("").await;
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "seq from 1 without gaps"
    );
    let page = s.audit("after_seq=2&limit=3").await;
    assert_eq!(
        page.iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(
        s.audit("type=ACCOUNT_STEPUP_VERIFIED&purpose=reports:export")
            .await
            .len(),
        3
    );
    assert_eq!(s.audit("purpose=payroll:transmit").await.len(), 0);
    assert_eq!(s.audit("user=someone-else").await.len(), 0);
}

#[tokio::test]
async fn factors_can_be_removed_with_an_elevation_token() {
    let s = server().await;
    let (token, codes) = s.recovery_user("felix").await;
    let totp_id = {
        let enroll = s
            .elevate(&token, &codes[2], json!({"purpose": "factors:enroll"}))
            .await;
        let r = s
            .post_elevated(
                "/v1/factors/totp",
                &token,
                enroll["elevation_token"].as_str().unwrap(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["factor_id"].as_str().unwrap().to_owned()
    };
    let path = format!("/v1/factors/{totp_id}");
    let with_header = |elevation: &str| {
        s.http
            .delete(s.url(&path))
            .bearer_auth(&token)
            .header("stepgate-elevation", elevation.to_owned())
    };

    let wrong = s
        .elevate(&token, &codes[0], json!({"purpose": "reports:export"}))
        .await;
    s.send(with_header(wrong["elevation_token"].as_str().unwrap()))
        .await
        .assert_problem(403, "STEPUP_SCOPE_MISMATCH");
    s.send(with_header("sge_garbage"))
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
    let right = s
        .elevate(&token, &codes[1], json!({"purpose": "factors:delete"}))
        .await;
    let elevation = right["elevation_token"].as_str().unwrap();
    assert_eq!(s.send(with_header(elevation)).await.status, 204);
    assert!(
        s.get("/v1/factors", Some(&token)).await.body["factors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["factor_id"] != totp_id.as_str())
    );
    // Used up: the same token cannot remove another factor.
    let recovery_id = s.get("/v1/factors", Some(&token)).await.body["factors"][0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = s
        .send(
            s.http
                .delete(s.url(&format!("/v1/factors/{recovery_id}")))
                .bearer_auth(&token)
                .header("stepgate-elevation", elevation),
        )
        .await;
    again.assert_problem(403, "STEPUP_TOKEN_REUSED");
    s.delete("/v1/factors/no-such-factor", Some(&token))
        .await
        .assert_problem(404, "NOT_FOUND");
}

/// Issue 11, defect 2: an elevation token won in one session of a user does not
/// authorize a factor change from another session of that user.
#[tokio::test]
async fn a_factor_route_refuses_an_elevation_won_in_another_session() {
    let s = server().await;
    let (won_in, codes) = s.recovery_user("hal").await;
    let other = s.session_token("hal").await;
    let factor = s.get("/v1/factors", Some(&other)).await.body["factors"][0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let elevation = s
        .elevate(&won_in, &codes[0], json!({"purpose": "factors:delete"}))
        .await;
    let remove = |token: &str| {
        s.http
            .delete(s.url(&format!("/v1/factors/{factor}")))
            .bearer_auth(token)
            .header(
                "stepgate-elevation",
                elevation["elevation_token"].as_str().unwrap(),
            )
    };
    let before = s.db_snapshot().await;
    let r = s.send(remove(&other)).await;
    r.assert_problem(403, "STEPUP_TOKEN_INVALID");
    assert!(r.text.contains("another session"), "{}", r.text);
    assert_eq!(s.db_snapshot().await, before);
    // Its own session may use it.
    assert_eq!(s.send(remove(&won_in)).await.status, 204);
}

#[tokio::test]
async fn adding_a_factor_next_to_one_is_a_step_up() {
    let s = server().await;
    let (token, secret, step) = totp_user(&s, "gus").await;
    // A password-only session cannot plant a second factor.
    let r = s
        .post("/v1/factors/recovery-codes", Some(&token), Value::Null)
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["purpose"], "factors:enroll");
    assert_eq!(r.body["allowed_factors"], json!(["totp", "recovery_code"]));
    // One authenticator at a time.
    s.post("/v1/factors/totp", Some(&token), Value::Null)
        .await
        .assert_problem(409, "CONFLICT");
    // The ready challenge is a session-mode one: pass it, and the same session may add.
    let v = s
        .verify(
            &token,
            r.body["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let elevated = v.body["access_token"].as_str().unwrap();
    assert_eq!(
        s.post("/v1/factors/recovery-codes", Some(elevated), Value::Null)
            .await
            .status,
        201
    );
    // Used up: a second set needs a second step-up.
    s.post("/v1/factors/recovery-codes", Some(elevated), Value::Null)
        .await
        .assert_problem(401, "STEPUP_REQUIRED");
}

/// Issue 11, defect 6: multi-party approval does not exist yet, so a purpose asking for
/// approvals is refused everywhere it could be set; before, the requester alone stepped
/// up and redeemed it.
#[tokio::test]
async fn a_purpose_with_approvals_is_refused_until_approvals_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stepgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n\
             [[purposes]]\nname = \"payroll:approve\"\ntitle = \"Approve payroll\"\n\
             factor = \"any\"\nttl_seconds = 60\napprovals = 2\n",
            dir.path().display().to_string()
        ),
    )
    .unwrap();
    let (ok, _, stderr) = common::run_cli(&config, &["config", "check"]);
    assert!(!ok, "config check accepted approvals = 2");
    assert!(
        stderr.contains("purposes[0].approvals") && stderr.contains("multi-party approval"),
        "{stderr}"
    );
    let out = common::stepgate(&config).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("purposes[0].approvals"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Over the policy API: refused, nothing written.
    let s = server().await;
    let before = s.db_snapshot().await;
    let r = s
        .put(
            "/v1/policy/purposes/reports:export",
            Some(&s.admin_key),
            json!({"approvals": 2}),
        )
        .await;
    r.assert_problem(400, "VALIDATION_FAILED");
    assert!(r.text.contains("multi-party approval"), "{}", r.text);
    assert_eq!(s.db_snapshot().await, before);
}

/// Issue 11, defect 5: step-up answers cannot fill the database. The same step-up asked
/// again while one is pending (50 forward-auth hits) gets that challenge back; opening
/// new ones is limited per session; and challenges, elevations, step-up failures and
/// decision records are pruned once past their retention (on SIGHUP here; every minute
/// otherwise).
#[tokio::test]
async fn step_up_answers_cannot_fill_the_database() {
    let s = Server::with_config(&format!(
        "keys_reload_seconds = 3600\n\
         [rate_limits]\nchallenges_per_session_per_minute = 5\n\
         [decisions]\nrecord_retention_days = 1\n\
         [testing]\nclock_control = true\n\
         {PURPOSES}\n\
         [[forward_auth]]\nmethod = \"DELETE\"\npath = \"/resources/*\"\npurpose = \"admin:resources:delete\"\n"
    ))
    .await;
    let (token, codes) = s.recovery_user("zed").await;
    let count = async |table: &str| s.db_snapshot().await.get(table).copied().unwrap_or(0);
    let before = count("challenges").await;

    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let r = s
            .send(
                s.http
                    .get(s.url("/v1/forward-auth"))
                    .bearer_auth(&token)
                    .header("x-original-method", "DELETE")
                    .header("x-original-uri", "/resources/7"),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
        ids.insert(r.headers["stepgate-challenge"].to_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(count("challenges").await, before + 1);
    let user = common::jwt_claims(&token)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let requested = s
        .audit(&format!(
            "type=ACCOUNT_STEPUP_CHALLENGE_REQUESTED&user={user}"
        ))
        .await;
    assert_eq!(requested.len(), 1, "{requested:?}");

    // The same request through the API: the same challenge, attempts not renewed.
    let id = ids.into_iter().next().unwrap();
    let wrong = s.verify(&token, &id, "recovery_code", "aaaaa-bbbbb").await;
    wrong.assert_problem(401, "STEPUP_FAILED");
    let again = s
        .post(
            "/v1/stepup/challenges",
            Some(&token),
            json!({"purpose": "admin:resources:delete", "mode": "session"}),
        )
        .await;
    assert_eq!(again.body["challenge_id"], id.as_str(), "{}", again.text);
    assert_eq!(again.body["attempts_left"], 4);

    // A step-up passed, so an elevation, a failure and decision records exist too.
    s.elevate(&token, &codes[0], json!({"purpose": "factors:delete"}))
        .await;

    // New challenges (each for another exact action) are limited per session: two were
    // opened this minute already.
    let mut opened = 0;
    let limited = loop {
        let digest = format!("{opened:064x}");
        let r = s
            .post(
                "/v1/stepup/challenges",
                Some(&token),
                json!({"purpose": "reports:export", "action_digest": digest}),
            )
            .await;
        if r.status != 201 {
            break r;
        }
        opened += 1;
        assert!(opened <= 5, "more than 5 new challenges in a minute");
    };
    limited.assert_problem(429, "RATE_LIMITED");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(opened, 3);

    for table in [
        "challenges",
        "elevations",
        "stepup_failures",
        "decision_records",
    ] {
        assert!(count(table).await > 0, "{table} is empty already");
    }
    // Two days on, a prune (SIGHUP) deletes what can no longer matter.
    s.set_clock(2 * 86_400).await;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let pruned = common::eventually(std::time::Duration::from_secs(10), async || {
        let snapshot = s.db_snapshot().await;
        [
            "challenges",
            "elevations",
            "stepup_failures",
            "decision_records",
        ]
        .iter()
        .all(|t| snapshot.get(*t).copied().unwrap_or(0) == 0)
    })
    .await;
    assert!(pruned, "not pruned: {:?}", s.db_snapshot().await);
}
