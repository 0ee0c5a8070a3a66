//! The hosted step-up page in a real browser (Debian's headless chromium, driven with
//! playwright-core): a TOTP step-up, keyboard-only, an emailed code from a real SMTP
//! sink, a login challenge, expired and blocked challenges; and, over plain HTTP, what
//! an attacker would try: another challenge's secret, a foreign `return_to`, a token in
//! a URL. Each browser test saves phone and desktop screenshots to `target/tmp/pages/`.

mod common;

use common::browser::Browser;
use common::smtp::{SmtpSink, code_in};
use common::webauthn::SoftPasskey;
use common::*;
use serde_json::{Value, json};

const RETURN_TO: &str = "http://app.example.test/payments";

async fn server(extra: &str) -> Server {
    Server::for_browser(&format!(
        "{PURPOSES}\n[testing]\nclock_control = true\n[pages]\nreturn_to = [\"{RETURN_TO}\"]\n{extra}"
    ))
    .await
}

/// A user with TOTP (enrolled with the code of the step before now); their token and
/// secret.
async fn totp_user(s: &Server, name: &str) -> (String, String) {
    let token = s.user_token(name).await;
    let secret = s.enroll_totp(&token, previous_totp_step()).await;
    (token, secret)
}

/// A six-digit code that is not the one of `step` or the step after.
fn wrong_code(secret: &str, step: i64) -> String {
    let taken = [oathtool(secret, step), oathtool(secret, step + 1)];
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !taken.iter().any(|t| t == c))
        .unwrap()
        .to_owned()
}

/// No response the browser saw carries a token in its URL or `Location`.
fn assert_no_token_in_urls(responses: &[Value]) {
    for r in responses {
        for field in ["url", "location"] {
            let text = r[field].as_str().unwrap_or_default();
            assert!(
                !text.contains("sge_") && !text.contains("eyJ") && !text.contains("token"),
                "a token in a {field}: {r}"
            );
        }
    }
}

#[tokio::test]
async fn a_totp_step_up_on_the_page_elevates_and_the_rp_collects_the_token_once() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "ada").await;
    let challenge = s
        .challenge(
            &token,
            json!({"purpose": "admin:resources:delete", "action_summary": "Delete bucket prod-logs"}),
        )
        .await;
    let id = challenge["challenge_id"].as_str().unwrap();
    let url = challenge["stepup_url"].as_str().unwrap();
    assert!(
        url.starts_with(&s.page_url(&format!("/stepup/{id}?secret="))),
        "{url}"
    );

    let mut b = Browser::launch();
    assert_eq!(b.goto(url), 200);
    assert_eq!(b.text("h1"), "Delete a production resource");
    assert_eq!(
        b.text(".consequence"),
        "The resource and its data are deleted for good."
    );
    assert!(b.text(".summary").contains("Delete bucket prod-logs"));
    // Only what this user has and the purpose allows: TOTP, and recovery codes behind
    // a link; no passkey button, no email.
    assert_eq!(b.count("#totp-code"), 1);
    assert_eq!(b.count("#passkey-button"), 0);
    assert_eq!(b.count("#email-code"), 0);
    assert_eq!(b.count("form[action$='/send']"), 0);
    assert_eq!(b.count("details.recovery summary"), 1);
    b.assert_weight("step-up page");
    b.screenshot("stepup-totp-prompt");

    // A wrong code: the error is tied to its field, and one attempt is gone.
    let step = totp_step_now();
    b.fill("#totp-code", &wrong_code(&secret, step));
    b.press("Enter");
    b.wait_for("#totp-error");
    assert_eq!(b.text("#totp-error"), "That is not the right code.");
    assert_eq!(
        b.attribute("#totp-code", "aria-describedby").as_deref(),
        Some("totp-error")
    );
    assert!(b.text(".hint").contains("4 attempts left"));
    b.screenshot("stepup-totp-wrong-code");

    b.fill("#totp-code", &oathtool(&secret, step));
    b.press("Enter");
    b.wait_for(".outcome.ok");
    assert_eq!(b.text(".outcome.ok h2"), "Done");
    b.screenshot("stepup-totp-done");
    assert_no_token_in_urls(&b.responses());

    // Another session of the same user cannot collect it; the asking session can, once.
    let other = s.session_token("ada").await;
    s.get(&format!("/v1/stepup/challenges/{id}"), Some(&other))
        .await
        .assert_problem(404, "NOT_FOUND");
    let first = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&token))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "passed");
    assert_eq!(first.body["collected"], true);
    let elevation = first.body["elevation"]["elevation_token"]
        .as_str()
        .expect("the token, on the first collection")
        .to_owned();
    let again = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&token))
        .await;
    assert_eq!(again.body["collected"], true);
    assert!(again.body.get("elevation").is_none(), "{}", again.text);
    // The collected token redeems once, bound to the network that asked.
    let redeem = json!({"elevation_token": elevation, "purpose": "admin:resources:delete", "ip": "127.0.0.1"});
    let redeemed = s.redeem(redeem.clone()).await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.text);
    s.redeem(redeem)
        .await
        .assert_problem(403, "STEPUP_TOKEN_REUSED");
}

#[tokio::test]
async fn keyboard_only_completes_a_totp_step_up() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "kim").await;
    let challenge = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let mut b = Browser::launch();
    b.goto(challenge["stepup_url"].as_str().unwrap());
    // The code field is the first stop of the focus order.
    b.press("Tab");
    assert_eq!(b.focused()["id"], "totp-code", "{}", b.focused());
    b.type_text(&oathtool(&secret, totp_step_now()));
    b.press("Tab");
    assert_eq!(b.focused()["text"], "Verify");
    b.press("Enter");
    b.wait_for(".outcome.ok");
    b.screenshot("stepup-keyboard-done");
    let state = s
        .get(
            &format!(
                "/v1/stepup/challenges/{}",
                challenge["challenge_id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    assert_eq!(state.body["status"], "passed");
}

#[tokio::test]
async fn an_email_code_step_up_with_the_code_from_a_real_smtp_sink() {
    let sink = SmtpSink::start();
    let s = server(&sink.config()).await;
    let token = s.user_token("eve").await;
    let r = s
        .post(
            "/v1/factors/email",
            Some(&token),
            json!({"email": "eve@example.test"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let confirm = format!(
        "/v1/factors/email/{}/confirm",
        r.body["factor_id"].as_str().unwrap()
    );
    let code = code_in(&sink.mails().pop().unwrap());
    let confirmed = s.post(&confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    let challenge = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let mut b = Browser::launch();
    b.goto(challenge["stepup_url"].as_str().unwrap());
    // No code is sent before the person asks for one.
    let before = sink.mails().len();
    b.click("form[action$='/send'] button");
    b.wait_for("#email-code");
    assert!(b.text("#email-sent").contains("e***@example.test"));
    let mails = sink.mails();
    assert_eq!(mails.len(), before + 1);
    b.screenshot("stepup-email-sent");
    b.fill("#email-code", &code_in(mails.last().unwrap()));
    b.press("Enter");
    b.wait_for(".outcome.ok");
    b.screenshot("stepup-email-done");
}

#[tokio::test]
async fn a_login_challenge_passed_on_the_page_gives_the_rp_the_session_once() {
    let s = server("").await;
    s.create_user("lou").await;
    let laptop =
        json!({"username": "lou", "password": PASSWORD, "device": {"fingerprint": "laptop"}});
    let first = s.post("/v1/sessions", None, laptop).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let secret = s
        .enroll_totp(
            first.body["access_token"].as_str().unwrap(),
            previous_totp_step(),
        )
        .await;

    // A new device: the sign-in answers with a login challenge and its page.
    let phone =
        json!({"username": "lou", "password": PASSWORD, "device": {"fingerprint": "phone"}});
    let login = s.post("/v1/sessions", None, phone).await;
    login.assert_problem(401, "STEPUP_REQUIRED");
    let id = login.body["challenge_id"].as_str().unwrap();
    let mut b = Browser::launch();
    b.goto(login.body["stepup_url"].as_str().unwrap());
    assert_eq!(b.text("h1"), "Sign in");
    b.fill("#totp-code", &oathtool(&secret, totp_step_now()));
    b.press("Enter");
    b.wait_for(".outcome.ok");
    assert!(b.text(".outcome.ok").contains("You are signed in"));
    b.screenshot("stepup-login-done");
    assert_no_token_in_urls(&b.responses());

    // The RP's backend collects the session with its service key, once; a user's
    // token cannot read a login challenge.
    let user = s.session_token("lou").await;
    s.get(&format!("/v1/stepup/challenges/{id}"), Some(&user))
        .await
        .assert_problem(404, "NOT_FOUND");
    let collected = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&s.service_key))
        .await;
    assert_eq!(collected.status, 200, "{}", collected.text);
    let access = collected.body["session"]["access_token"]
        .as_str()
        .expect("the session's token");
    let current = s.get("/v1/sessions/current", Some(access)).await;
    assert_eq!(current.status, 200, "{}", current.text);
    let again = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&s.service_key))
        .await;
    assert!(again.body.get("session").is_none(), "{}", again.text);
}

#[tokio::test]
async fn expired_and_blocked_challenges_are_shown_as_such() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "max").await;

    let blocked = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let mut b = Browser::launch();
    b.goto(blocked["stepup_url"].as_str().unwrap());
    let wrong = wrong_code(&secret, totp_step_now());
    for _ in 0..5 {
        b.fill("#totp-code", &wrong);
        b.press("Enter");
        b.wait_for(".error, .outcome");
    }
    assert_eq!(b.text(".outcome h2"), "Too many wrong answers");
    assert_eq!(b.count("#totp-code"), 0);
    b.screenshot("stepup-blocked");

    let expired = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    s.set_clock(3600).await;
    b.goto(expired["stepup_url"].as_str().unwrap());
    assert_eq!(b.text(".outcome h2"), "This request has expired");
    assert_eq!(b.count("#totp-code"), 0);
    b.screenshot("stepup-expired");
}

/// The page over plain HTTP, as an attacker would use it.
async fn page(s: &Server, url: &str) -> Reply {
    s.send(s.http.get(url)).await
}

async fn post_form(s: &Server, path: &str, form: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    s.send(client.post(s.page_url(path)).form(form)).await
}

#[tokio::test]
async fn a_page_secret_opens_its_own_challenge_only_and_is_checked_on_every_answer() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "sam").await;
    let a = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let b = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    let (a_id, b_id) = (
        a["challenge_id"].as_str().unwrap(),
        b["challenge_id"].as_str().unwrap(),
    );
    let a_secret = a["stepup_url"]
        .as_str()
        .unwrap()
        .split("secret=")
        .nth(1)
        .unwrap()
        .to_owned();

    let ok = page(&s, a["stepup_url"].as_str().unwrap()).await;
    assert_eq!(ok.status, 200);
    let csp = ok.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(ok.headers["x-frame-options"], "DENY");
    assert_eq!(ok.headers["referrer-policy"], "no-referrer");
    assert_eq!(ok.headers["cache-control"], "no-store");
    assert!(ok.text.len() < 60 * 1024);
    assert!(!ok.text.contains("<script>"), "no inline script");

    // A's secret on B, no secret, a secret one character off: the same 404 page.
    for url in [
        s.page_url(&format!("/stepup/{b_id}?secret={a_secret}")),
        s.page_url(&format!("/stepup/{b_id}")),
        s.page_url(&format!("/stepup/{a_id}?secret={}", &a_secret[1..])),
        s.page_url(&format!("/stepup/no-such?secret={a_secret}")),
    ] {
        let r = page(&s, &url).await;
        assert_eq!(r.status, 404, "{url}");
        assert!(r.text.contains("This link is not valid"), "{}", r.text);
        assert!(!r.text.contains("Export reports"), "{}", r.text);
    }

    // Answering B with A's secret: refused, and nothing is counted or stored.
    let before = s.db_snapshot().await;
    let code = oathtool(&secret, totp_step_now());
    let r = post_form(
        &s,
        &format!("/stepup/{b_id}"),
        &[("secret", &a_secret), ("factor", "totp"), ("code", &code)],
    )
    .await;
    assert_eq!(r.status, 404);
    // Malformed forms: a 4xx page, nothing stored.
    let r = post_form(&s, &format!("/stepup/{a_id}"), &[("secret", &a_secret)]).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s
        .send(
            s.http
                .post(s.page_url(&format!("/stepup/{a_id}")))
                .json(&json!({"secret": a_secret})),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(s.db_snapshot().await, before);
    let state = s
        .get(&format!("/v1/stepup/challenges/{b_id}"), Some(&token))
        .await;
    assert_eq!(state.body["attempts_left"], 5);
    assert_eq!(state.body["status"], "pending");
}

#[tokio::test]
async fn return_to_must_be_allow_listed_and_the_redirect_carries_no_token() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "ria").await;
    let challenge = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let url = challenge["stepup_url"].as_str().unwrap();
    let id = challenge["challenge_id"].as_str().unwrap();
    let secret_param = url.split("secret=").nth(1).unwrap();

    for foreign in [
        "http://evil.example.test/payments",
        "http://app.example.test/paymentsX",
        "http://app.example.test:8080/payments",
        "https://app.example.test/payments",
        "http://user@app.example.test/payments",
        "/relative",
    ] {
        let r = page(&s, &format!("{url}&return_to={}", urlencode(foreign))).await;
        assert_eq!(r.status, 400, "{foreign}: {}", r.text);
        assert!(
            r.text.contains("return address is not allowed"),
            "{}",
            r.text
        );
        let r = post_form(
            &s,
            &format!("/stepup/{id}"),
            &[
                ("secret", secret_param),
                ("return_to", foreign),
                ("factor", "totp"),
                ("code", "000000"),
            ],
        )
        .await;
        assert_eq!(r.status, 400, "{foreign}");
    }
    let state = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&token))
        .await;
    assert_eq!(
        state.body["attempts_left"], 5,
        "refused forms count nothing"
    );

    // An allow-listed return_to: a right answer is a 303 there, and nowhere else.
    let target = format!("{RETURN_TO}/batch/7");
    let r = post_form(
        &s,
        &format!("/stepup/{id}"),
        &[
            ("secret", secret_param),
            ("return_to", &target),
            ("factor", "totp"),
            ("code", &oathtool(&secret, totp_step_now())),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.headers["location"], target.as_str());
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://app.example.test"),
        "{csp}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_session_mode_step_up_passed_on_another_device_elevates_the_asking_session() {
    let s = server("").await;
    let (token, secret) = totp_user(&s, "sia").await;
    let challenge = s
        .challenge(
            &token,
            json!({"purpose": "reports:export", "mode": "session"}),
        )
        .await;
    let ask = json!({"access_token": token, "purpose": "reports:export"});
    let before = s
        .post("/v1/decisions", Some(&s.service_key), ask.clone())
        .await;
    assert_eq!(before.body["decision"], "step_up", "{}", before.text);

    // Another device: a fresh browser with no cookie and no token, only the link.
    let mut b = Browser::launch();
    b.goto(challenge["stepup_url"].as_str().unwrap());
    b.fill("#totp-code", &oathtool(&secret, totp_step_now()));
    b.press("Enter");
    b.wait_for(".outcome.ok");

    // The asking session is elevated with no other action: its next decision allows.
    let after = s.post("/v1/decisions", Some(&s.service_key), ask).await;
    assert_eq!(after.body["decision"], "allow", "{}", after.text);
    // Its RP may also collect, once, a fresh access token that says so.
    let id = challenge["challenge_id"].as_str().unwrap();
    let state = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&token))
        .await;
    let su = state.body["elevation"]["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(su)["su"], true);
    assert_eq!(jwt_claims(su)["su_purpose"], "reports:export");
    assert!(state.body["elevation"]["elevation_token"].is_null());
}

#[tokio::test]
async fn a_phishing_resistant_step_up_for_a_user_without_a_passkey_says_to_enroll_one() {
    let s = server("").await;
    let token = s.user_token("pia").await;
    let mut key = SoftPasskey::security_key();
    key.origin = s.page_url("");
    s.register_passkey(&token, None, &key).await;
    let challenge = s
        .challenge(&token, json!({"purpose": "payroll:transmit"}))
        .await;
    // The passkey is gone meanwhile (an admin's reset).
    let user = jwt_claims(&token)["sub"].as_str().unwrap().to_owned();
    let reset = s
        .delete(&format!("/v1/users/{user}/factors"), Some(&s.admin_key))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);

    let mut b = Browser::launch();
    b.goto(challenge["stepup_url"].as_str().unwrap());
    assert!(
        b.text("#enroll-passkey")
            .contains("passkey or a hardware security key")
    );
    assert_eq!(
        b.attribute("#enroll-passkey a", "href").as_deref(),
        Some("/account")
    );
    assert_eq!(b.count("#passkey-button"), 0);
    assert_eq!(b.count("#totp-code"), 0);
    b.screenshot("stepup-needs-passkey");
}
