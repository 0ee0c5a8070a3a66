//! Passkeys and security keys through the binary: registration and assertion
//! ceremonies with a software authenticator, phishing resistance by class, the tokens
//! they earn, and the attacks on them (another origin, another RP id, a replayed or
//! cloned credential, no user verification, a ceremony finished twice or elsewhere).

mod common;

use common::webauthn::SoftPasskey;
use common::*;
use serde_json::{Value, json};

async fn server() -> Server {
    Server::with_config(PURPOSES).await
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// A user with TOTP (their first factor); returns the token, secret and the step used.
async fn totp_user(s: &Server, name: &str) -> (String, String, i64) {
    let token = s.user_token(name).await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&token, step).await;
    (token, secret, step)
}

/// An elevation token for `factors:enroll`, stepped up with TOTP's code of `step`.
async fn enroll_elevation(s: &Server, token: &str, secret: &str, step: i64) -> String {
    let c = s
        .challenge(token, json!({"purpose": "factors:enroll", "mode": "token"}))
        .await;
    let r = s
        .verify(
            token,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(secret, step),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["elevation_token"].as_str().unwrap().to_owned()
}

/// A user whose first and only factor is `key`; returns the token and the finish
/// answer.
async fn passkey_user(s: &Server, name: &str, key: &SoftPasskey) -> (String, Value) {
    let token = s.user_token(name).await;
    let factor = s.register_passkey(&token, None, key).await;
    (token, factor)
}

/// Answers challenge `c` with an assertion from `key`.
async fn answer(s: &Server, token: &str, c: &Value, assertion: Value) -> Reply {
    s.post(
        &verify_path(c["challenge_id"].as_str().unwrap()),
        Some(token),
        json!({"factor": "webauthn", "credential": assertion}),
    )
    .await
}

#[tokio::test]
async fn payroll_is_passed_with_a_passkey_and_only_with_one() {
    let s = server().await;
    let (token, secret, step) = totp_user(&s, "amara").await;
    let payroll = json!({"purpose": "payroll:transmit"});

    // TOTP alone cannot pass a phishing-resistant purpose: the user is told what to enroll.
    let r = s
        .post("/v1/stepup/challenges", Some(&token), payroll.clone())
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(
        r.body["enroll"],
        json!(["/v1/factors/webauthn/registrations"])
    );
    assert_eq!(r.body["factor"], "phishing_resistant");

    // A challenge pending from before the passkey (for an `any` purpose).
    let before_passkey = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert!(before_passkey.get("webauthn_options").is_none());

    // Adding a passkey beside TOTP is itself a step-up, asked once at the start.
    let r = s
        .post(
            "/v1/factors/webauthn/registrations",
            Some(&token),
            json!({}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["purpose"], "factors:enroll");
    let elevation = enroll_elevation(&s, &token, &secret, step + 1).await;
    let key = SoftPasskey::security_key();
    let factor = s.register_passkey(&token, Some(&elevation), &key).await;
    assert_eq!(factor["type"], "webauthn");
    assert_eq!(factor["status"], "active");
    assert_eq!(factor["name"], "test key");
    assert_eq!(factor["hardware_bound"], true);
    assert!(
        factor.get("recovery_codes").is_none(),
        "not the first factor: no new recovery codes"
    );

    let mut key = key;
    // Asked again, the step-up is a new challenge with the passkey in it, not the old
    // one without.
    let again = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert_ne!(again["challenge_id"], before_passkey["challenge_id"]);
    assert!(again["webauthn_options"].is_object(), "{again}");
    // The old challenge has no passkey ceremony: an assertion for it is refused, uncounted.
    let options = &again["webauthn_options"];
    answer(&s, &token, &before_passkey, key.assertion(options, 1))
        .await
        .assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");

    let c = s.challenge(&token, payroll.clone()).await;
    assert_eq!(c["allowed_factors"], json!(["webauthn"]));
    let allowed = &c["webauthn_options"]["publicKey"]["allowCredentials"];
    assert_eq!(allowed[0]["id"], key.credential_id_b64(), "{c}");
    assert_eq!(
        c["webauthn_options"]["publicKey"]["userVerification"],
        "required"
    );

    // A right TOTP code is too weak here: refused, not counted, not spent.
    let id = c["challenge_id"].as_str().unwrap();
    s.verify(&token, id, "totp", &oathtool(&secret, step + 2))
        .await
        .assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");
    assert_eq!(count(&s.audit("").await, "ACCOUNT_STEPUP_FAILED"), 0);

    let assertion = key.assert(&c["webauthn_options"]);
    let passed = answer(&s, &token, &c, assertion.clone()).await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let redeemed = s
        .redeem(json!({
            "elevation_token": passed.body["elevation_token"], "purpose": "payroll:transmit",
            "ip": "127.0.0.1",
        }))
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.text);
    assert_eq!(redeemed.body["factor"], "webauthn");
    assert_eq!(redeemed.body["factor_class"], "phishing_resistant");

    // The same assertion again: the challenge is done; on a new challenge it answers
    // another ceremony.
    answer(&s, &token, &c, assertion.clone())
        .await
        .assert_problem(410, "CHALLENGE_EXPIRED");
    let again = s.challenge(&token, payroll).await;
    let r = answer(&s, &token, &again, assertion).await;
    r.assert_problem(401, "STEPUP_FAILED");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("another ceremony"),
        "{}",
        r.text
    );

    // The decision API's step-up carries the ceremony too, for the RP to hand to the
    // browser.
    let decided = s
        .post(
            "/v1/decisions",
            Some(&s.service_key),
            json!({"access_token": token, "purpose": "payroll:transmit"}),
        )
        .await;
    assert_eq!(decided.body["decision"], "step_up", "{}", decided.text);
    assert_eq!(decided.body["allowed_factors"], json!(["webauthn"]));
    let options = &decided.body["webauthn_options"]["publicKey"];
    assert_eq!(
        options["allowCredentials"][0]["id"],
        key.credential_id_b64()
    );

    let listed = s.get("/v1/factors", Some(&token)).await;
    let passkey = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "webauthn")
        .unwrap()
        .clone();
    assert_eq!(passkey["name"], "test key");
    assert!(passkey["last_used_at"].is_string(), "{passkey}");
}

#[tokio::test]
async fn a_first_passkey_comes_with_recovery_codes_and_session_mode_names_it() {
    let s = server().await;
    for (name, key, acr, amr) in [
        ("hana", SoftPasskey::security_key(), "phrh", "hwk"),
        ("ivo", SoftPasskey::synced(), "phr", "swk"),
    ] {
        let mut key = key;
        let (token, factor) = passkey_user(&s, name, &key).await;
        let codes = factor["recovery_codes"].as_array().expect("first factor");
        assert_eq!(codes.len(), 10);
        assert_eq!(factor["hardware_bound"], acr == "phrh");
        // The codes work: they are the user's recovery factor.
        let listed = s.get("/v1/factors", Some(&token)).await;
        let mut kinds: Vec<&str> = listed.body["factors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect();
        kinds.sort_unstable();
        assert_eq!(kinds, vec!["recovery_code", "webauthn"]);

        let c = s
            .challenge(
                &token,
                json!({"purpose": "reports:export", "mode": "session"}),
            )
            .await;
        assert_eq!(c["allowed_factors"], json!(["webauthn", "recovery_code"]));
        let passed = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
        assert_eq!(passed.status, 200, "{}", passed.text);
        let claims = jwt_claims(passed.body["access_token"].as_str().unwrap());
        assert_eq!(claims["acr"], acr);
        assert_eq!(claims["amr"], json!(["pwd", amr, "user"]));
        assert_eq!(claims["su"], true);
    }
    // The discovery document lists the values these tokens carry.
    let d = s.get("/.well-known/openid-configuration", None).await;
    let supported = d.body["acr_values_supported"].as_array().unwrap();
    assert!(supported.contains(&json!("phr")) && supported.contains(&json!("phrh")));
}

#[tokio::test]
async fn assertions_for_another_origin_or_rp_or_without_verification_fail() {
    let s = server().await;
    let key = SoftPasskey::security_key();
    let (token, _) = passkey_user(&s, "jonas", &key).await;
    let payroll = json!({"purpose": "payroll:transmit"});
    let mut key = key;

    // A phishing page on another origin relays the challenge: its assertion fails.
    let c = s.challenge(&token, payroll.clone()).await;
    key.origin = "https://stepgate.example.evil".into();
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    r.assert_problem(401, "STEPUP_FAILED");
    assert!(
        r.body["detail"].as_str().unwrap().contains("origin"),
        "{}",
        r.text
    );
    key.origin = common::webauthn::ORIGIN.into();

    // Signed for another relying party.
    key.rp_id = "evil.example".into();
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    r.assert_problem(401, "STEPUP_FAILED");
    assert!(
        r.body["detail"].as_str().unwrap().contains("relying party"),
        "{}",
        r.text
    );
    key.rp_id = common::webauthn::RP_ID.into();

    // Both were counted as wrong answers.
    let failed_before = count(&s.audit("").await, "ACCOUNT_STEPUP_FAILED");
    assert_eq!(failed_before, 2);

    // No user verification: too weak for a phishing-resistant purpose, not counted.
    key.user_verified = false;
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    r.assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");
    assert_eq!(
        count(&s.audit("").await, "ACCOUNT_STEPUP_FAILED"),
        failed_before
    );
    key.user_verified = true;

    // A credential this account never registered.
    let mut stranger = SoftPasskey::security_key();
    let r = answer(&s, &token, &c, stranger.assert(&c["webauthn_options"])).await;
    r.assert_problem(403, "STEPUP_FACTOR_INSUFFICIENT");

    // Neither was counted, and the challenge still passes with the right answer.
    assert_eq!(
        count(&s.audit("").await, "ACCOUNT_STEPUP_FAILED"),
        failed_before
    );
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let s = server().await;
    let key = SoftPasskey::security_key();
    let (token, _) = passkey_user(&s, "kira", &key).await;
    let mut key = key;
    key.counter = 10;
    let export = json!({"purpose": "reports:export"});
    let c = s.challenge(&token, export.clone()).await;
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A clone of the key, still at an older counter.
    let c = s.challenge(&token, export.clone()).await;
    let r = answer(&s, &token, &c, key.assertion(&c["webauthn_options"], 5)).await;
    r.assert_problem(401, "STEPUP_FAILED");
    assert!(
        r.body["detail"].as_str().unwrap().contains("counter"),
        "{}",
        r.text
    );
    let events = s.audit("type=FACTOR_COUNTER_REGRESSED").await;
    assert_eq!(events.len(), 1, "{events:?}");
    // The same counter again is refused too; the real key, moving on, passes.
    let r = answer(&s, &token, &c, key.assertion(&c["webauthn_options"], 10)).await;
    r.assert_problem(401, "STEPUP_FAILED");
    let r = answer(&s, &token, &c, key.assert(&c["webauthn_options"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_risky_login_is_stepped_up_with_a_passkey() {
    let s = server().await;
    let key = SoftPasskey::security_key();
    let (_, _) = passkey_user(&s, "lena", &key).await;
    let mut key = key;
    // From a new device the login needs a second factor; the passkey answers it.
    let r = s
        .post(
            "/v1/sessions",
            None,
            json!({"username": "lena", "password": PASSWORD,
                   "device": {"fingerprint": "a-new-laptop", "user_agent": "test"}}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    let factors = r.body["allowed_factors"].as_array().unwrap();
    assert!(factors.contains(&json!("webauthn")), "{}", r.text);
    let options = &r.body["webauthn_options"];
    let passed = s
        .post(
            &verify_path(r.body["challenge_id"].as_str().unwrap()),
            None,
            json!({"factor": "webauthn", "credential": key.assert(options)}),
        )
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let claims = jwt_claims(passed.body["access_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "phrh");
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user"]));
}

#[tokio::test]
async fn registrations_finish_once_and_a_bad_credential_changes_nothing() {
    let s = server().await;
    let token = s.user_token("milo").await;
    let key = SoftPasskey::synced();
    let started = s
        .post(
            "/v1/factors/webauthn/registrations",
            Some(&token),
            json!({"name": "Phone"}),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let id = started.body["registration_id"].as_str().unwrap();
    let options = &started.body["options"];
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let path = format!("/v1/factors/webauthn/registrations/{id}");

    // Bad input, each refused with a clear 4xx that stores nothing.
    let before = s.db_snapshot().await;
    let mut phished = SoftPasskey::synced();
    phished.origin = "https://evil.example".into();
    for (body, status, code) in [
        (json!({}), 400, "VALIDATION_FAILED"),
        (json!({"credential": "x"}), 400, "VALIDATION_FAILED"),
        (json!({"credential": {"id": 1}}), 400, "VALIDATION_FAILED"),
        (
            json!({"credential": phished.register(options)}),
            400,
            "VALIDATION_FAILED",
        ),
        (
            json!({"credential": key.register(options), "extra": 1}),
            400,
            "VALIDATION_FAILED",
        ),
    ] {
        s.post(&path, Some(&token), body)
            .await
            .assert_problem(status, code);
    }
    for (body, code) in [
        (json!({"name": ""}), "VALIDATION_FAILED"),
        (json!({"name": "x".repeat(65)}), "VALIDATION_FAILED"),
        (json!({"nickname": "x"}), "VALIDATION_FAILED"),
    ] {
        s.post("/v1/factors/webauthn/registrations", Some(&token), body)
            .await
            .assert_problem(400, code);
    }
    s.post(
        "/v1/factors/webauthn/registrations/nope",
        Some(&token),
        json!({"credential": key.register(options)}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    assert_eq!(s.db_snapshot().await, before);

    // Another session of the same user cannot finish it.
    let other = s.session_token("milo").await;
    s.post(
        &path,
        Some(&other),
        json!({"credential": key.register(options)}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");

    // The ceremony still finishes, once.
    let finished = s
        .post(
            &path,
            Some(&token),
            json!({"credential": key.register(options)}),
        )
        .await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert_eq!(finished.body["name"], "Phone");
    s.post(
        &path,
        Some(&token),
        json!({"credential": key.register(options)}),
    )
    .await
    .assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn ceremonies_started_on_one_node_finish_on_another() {
    let a = server().await;
    if !a.database_url.starts_with("postgres") {
        eprintln!("two-node ceremonies run on PostgreSQL only (set STEPGATE_TEST_DATABASE_URL)");
        return;
    }
    // Node b shares a's database, signing keys and secrets key, as a cluster does.
    let shared = format!(
        "signing_key_file = {:?}\nsecrets_key_file = {:?}\n{PURPOSES}",
        a.dir.path().join("signing-keys.json").display().to_string(),
        a.dir.path().join("secrets.key").display().to_string(),
    );
    let b = Server::on_database(&shared, Some(a.database_url.clone())).await;
    let token = a.user_token("nour").await;
    let mut key = SoftPasskey::security_key();
    let started = a
        .post(
            "/v1/factors/webauthn/registrations",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let id = started.body["registration_id"].as_str().unwrap();
    let finished = b
        .post(
            &format!("/v1/factors/webauthn/registrations/{id}"),
            Some(&token),
            json!({"credential": key.register(&started.body["options"])}),
        )
        .await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    // An assertion ceremony opened on a is answered on b.
    let c = a
        .challenge(&token, json!({"purpose": "payroll:transmit"}))
        .await;
    let r = answer(&b, &token, &c, key.assert(&c["webauthn_options"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_registration_expires_and_two_finishes_at_once_store_one_credential() {
    let s = Server::with_config(&format!("{PURPOSES}\n[testing]\nclock_control = true\n")).await;
    let token = s.user_token("olga").await;
    let start = || {
        s.post(
            "/v1/factors/webauthn/registrations",
            Some(&token),
            json!({}),
        )
    };

    // Five minutes to finish.
    let late = start().await;
    assert_eq!(late.status, 201, "{}", late.text);
    s.set_clock(301).await;
    let key = SoftPasskey::synced();
    s.post(
        &format!(
            "/v1/factors/webauthn/registrations/{}",
            late.body["registration_id"].as_str().unwrap()
        ),
        Some(&token),
        json!({"credential": key.register(&late.body["options"])}),
    )
    .await
    .assert_problem(410, "CHALLENGE_EXPIRED");

    // The same credential posted ten times at once: one is stored.
    let started = start().await;
    let path = format!(
        "/v1/factors/webauthn/registrations/{}",
        started.body["registration_id"].as_str().unwrap()
    );
    let credential = key.register(&started.body["options"]);
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let req = s
                .http
                .post(s.url(&path))
                .bearer_auth(&token)
                .json(&json!({"credential": credential}));
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [vec![201], vec![409; 9]].concat(), "{statuses:?}");
    let listed = s.get("/v1/factors", Some(&token)).await;
    let passkeys = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == "webauthn")
        .count();
    assert_eq!(passkeys, 1);
}

#[tokio::test]
async fn an_admin_resets_the_factors_of_a_user_who_lost_them() {
    let s = server().await;
    let id = s.create_user("pia").await;
    let token = s.session_token("pia").await;
    s.register_passkey(&token, None, &SoftPasskey::security_key())
        .await;
    let path = format!("/v1/users/{id}/factors");
    // Not for a service key, nor for a user.
    s.delete(&path, Some(&s.service_key))
        .await
        .assert_problem(403, "FORBIDDEN");
    s.delete("/v1/users/nobody/factors", Some(&s.admin_key))
        .await
        .assert_problem(404, "NOT_FOUND");

    let reset = s.delete(&path, Some(&s.admin_key)).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(
        reset.body["factors_removed"], 2,
        "the passkey and the recovery codes"
    );
    assert_eq!(reset.body["sessions_ended"], 1);
    let events = s.audit("type=FACTORS_RESET").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_id"], id.as_str());
    assert!(events[0].to_string().contains("critical"), "{}", events[0]);
    // The old session is over; a new one starts from the password and enrolls again
    // without a step-up.
    s.get("/v1/sessions/current", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let fresh = s.login("pia", PASSWORD).await;
    assert_eq!(fresh.body["enrollment_required"], true, "{}", fresh.text);
    let token = fresh.body["access_token"].as_str().unwrap();
    let factor = s
        .register_passkey(token, None, &SoftPasskey::synced())
        .await;
    assert_eq!(factor["recovery_codes"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn a_credential_belongs_to_one_account_and_an_ip_public_url_has_no_passkeys() {
    let s = server().await;
    let key = SoftPasskey::security_key();
    passkey_user(&s, "quinn", &key).await;
    // The same credential offered for another account is refused.
    let token = s.user_token("rafa").await;
    let started = s
        .post(
            "/v1/factors/webauthn/registrations",
            Some(&token),
            json!({}),
        )
        .await;
    let path = format!(
        "/v1/factors/webauthn/registrations/{}",
        started.body["registration_id"].as_str().unwrap()
    );
    s.post(
        &path,
        Some(&token),
        json!({"credential": key.register(&started.body["options"])}),
    )
    .await
    .assert_problem(409, "CONFLICT");

    // An IP address cannot be a WebAuthn RP id: passkeys are unavailable, said plainly.
    let ip = Server::with_config(&format!(
        "public_url = \"http://127.0.0.1:8080\"\n{PURPOSES}"
    ))
    .await;
    let token = ip.user_token("sol").await;
    ip.post(
        "/v1/factors/webauthn/registrations",
        Some(&token),
        json!({}),
    )
    .await
    .assert_problem(503, "UNAVAILABLE");
    assert!(
        ip.logs().contains("passkeys are unavailable"),
        "{}",
        ip.logs()
    );
}
