//! The account page in a real browser: from a fresh server a person signs in, enrolls a
//! passkey with Chromium's virtual authenticator, and passes `payroll:transmit` on the
//! step-up page; sign-in with the risk engine's step-up; removing a factor behind its
//! own step-up; the cookie's flags; CSRF refused with nothing changed.

mod common;

use std::time::Instant;

use common::browser::Browser;
use common::smtp::{SmtpSink, code_in};
use common::*;
use serde_json::json;

async fn server() -> Server {
    Server::for_browser(&format!("{PURPOSES}\n")).await
}

/// Signs `name` in on the account page (a user without factors gets straight in).
fn sign_in(b: &mut Browser, s: &Server, name: &str) {
    b.goto(&s.page_url("/account"));
    b.fill("#username", name);
    b.fill("#password", PASSWORD);
    b.press("Enter");
}

/// Signs `name` in from this browser, a new device: the password leads to the step-up
/// page ("Sign in"), the authenticator app's code back to the account page.
fn sign_in_with_totp(b: &mut Browser, s: &Server, name: &str, secret: &str) {
    sign_in(b, s, name);
    b.wait_for("#totp-code");
    assert_eq!(b.text("h1"), "Sign in");
    b.fill("#totp-code", &oathtool(secret, totp_step_now()));
    b.press("Enter");
    b.wait_for("#factors-heading");
}

#[tokio::test]
async fn a_person_enrolls_a_passkey_on_the_account_page_and_passes_payroll_on_the_step_up_page() {
    let s = server().await;
    s.create_user("pat").await;
    let mut b = Browser::launch();
    let authenticator = b.add_virtual_authenticator();
    sign_in(&mut b, &s, "pat");
    b.wait_for("#factors-heading");
    assert!(b.text(".bar").contains("pat"));
    b.assert_weight("account page");
    b.screenshot("account-new");

    b.fill("#passkey-name", "laptop passkey");
    b.click("#add-passkey");
    b.wait_for("#create-passkey");
    b.click("#create-passkey");
    b.wait_for("#recovery-codes");
    assert_eq!(b.text("#notice"), "Passkey added.");
    // The first factor comes with recovery codes, shown once.
    assert_eq!(b.text("#recovery-codes").lines().count(), 10);
    assert!(
        b.text(".factor-row[data-kind=webauthn]")
            .contains("laptop passkey")
    );
    b.screenshot("account-passkey-added");
    let held = b.credentials(&authenticator);
    assert_eq!(held.len(), 1);
    let count_before = held[0]["signCount"].as_u64().unwrap();

    // The RP asks for payroll:transmit (phishing-resistant): the page offers only the
    // passkey, and the person passes it.
    let token = s.session_token("pat").await;
    let challenge = s
        .challenge(&token, json!({"purpose": "payroll:transmit", "action_summary": "Payroll run 2026-12, 412 payees"}))
        .await;
    assert_eq!(challenge["allowed_factors"], json!(["webauthn"]));
    let started = Instant::now();
    b.goto(challenge["stepup_url"].as_str().unwrap());
    assert_eq!(b.text("h1"), "Transmit payroll");
    assert_eq!(b.count("#passkey-button"), 1);
    assert_eq!(b.count("#totp-code"), 0);
    assert_eq!(b.count("details.recovery"), 0);
    b.screenshot("stepup-passkey-prompt");
    b.click("#passkey-button");
    b.wait_for(".outcome.ok");
    let took = started.elapsed();
    eprintln!("one passkey step-up in the browser (page load to done): {took:?}");
    b.screenshot("stepup-passkey-done");

    let id = challenge["challenge_id"].as_str().unwrap();
    let state = s
        .get(&format!("/v1/stepup/challenges/{id}"), Some(&token))
        .await;
    let elevation = state.body["elevation"]["elevation_token"].as_str().unwrap();
    let redeemed = s
        .redeem(
            json!({"elevation_token": elevation, "purpose": "payroll:transmit", "ip": "127.0.0.1"}),
        )
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.text);
    assert_eq!(redeemed.body["factor_class"], "phishing_resistant");
    // The authenticator signed once more, and the server took its counter.
    assert!(
        b.credentials(&authenticator)[0]["signCount"]
            .as_u64()
            .unwrap()
            > count_before
    );
}

#[tokio::test]
async fn signing_in_with_a_step_up_and_removing_a_factor_behind_its_own() {
    let s = server().await;
    let api = s.user_token("quinn").await;
    let secret = s.enroll_totp(&api, previous_totp_step()).await;

    let mut b = Browser::launch();
    sign_in_with_totp(&mut b, &s, "quinn", &secret);
    assert!(b.url().ends_with("/account"), "{}", b.url());
    assert_no_secret_cookie_leaks(&b.cookies());
    b.screenshot("account-after-step-up-sign-in");

    // Removing the authenticator needs factors:delete: the step-up page, back, again.
    b.click(".factor-row[data-kind=totp] button");
    b.wait_for("#totp-code");
    assert_eq!(b.text("h1"), "Remove a sign-in factor");
    b.fill("#totp-code", &oathtool(&secret, totp_step_now() + 1));
    b.press("Enter");
    b.wait_for("#notice");
    assert!(b.text("#notice").contains("Step-up passed"));
    assert_eq!(b.count(".elevation-row"), 1, "the live step-up is listed");
    b.click(".factor-row[data-kind=totp] button");
    b.wait_for("#notice");
    assert_eq!(b.text("#notice"), "Factor removed.");
    assert_eq!(b.count(".factor-row[data-kind=totp]"), 0);
    b.screenshot("account-factor-removed");
}

/// The sign-in cookie: HttpOnly, SameSite=Strict, only for /account.
fn assert_no_secret_cookie_leaks(cookies: &[serde_json::Value]) {
    let account = cookies
        .iter()
        .find(|c| c["name"] == "sg_account")
        .expect("the sign-in cookie");
    assert_eq!(account["httpOnly"], true);
    assert_eq!(account["sameSite"], "Strict");
    assert_eq!(account["path"], "/account");
    assert_eq!(account["secure"], false, "public_url is http here");
    assert!(
        account["expires"].as_f64().unwrap() > 0.0,
        "short-lived, not a session cookie"
    );
    assert!(
        cookies.iter().all(|c| c["name"] != "sg_login"),
        "the login cookie is cleared once used"
    );
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let s = server().await;
    s.create_user("rob").await;
    let mut b = Browser::launch();
    sign_in(&mut b, &s, "rob");
    b.wait_for("#factors-heading");
    assert_no_secret_cookie_leaks(&b.cookies());
    let csrf = b.attribute("input[name=csrf]", "value").unwrap();

    let before = s.db_snapshot().await;
    for body in ["", "csrf=", "csrf=AAAA", &format!("csrf={}", &csrf[1..])] {
        let r = b.fetch(
            &s.page_url("/account/recovery-codes"),
            "POST",
            Some(body),
            Some("application/x-www-form-urlencoded"),
        );
        assert_eq!(r["status"], 403, "{body}: {r}");
    }
    assert_eq!(s.db_snapshot().await, before);

    // The same form with its token works (the browser's cookie, this page's token).
    let r = b.fetch(
        &s.page_url("/account/recovery-codes"),
        "POST",
        Some(&format!("csrf={csrf}")),
        Some("application/x-www-form-urlencoded"),
    );
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["text"].as_str().unwrap().contains("recovery-codes"));

    // Without the cookie (another browser), the token alone is nothing.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = s
        .send(
            plain
                .post(s.page_url("/account/recovery-codes"))
                .form(&[("csrf", csrf.as_str())]),
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/account");
}

#[tokio::test]
async fn an_authenticator_app_is_added_on_the_account_page_from_its_qr_code() {
    let s = server().await;
    s.create_user("tia").await;
    let mut b = Browser::launch();
    sign_in(&mut b, &s, "tia");
    b.wait_for("#add-totp");
    b.click("#add-totp");
    b.wait_for(".qr svg");
    let secret = b.text("#totp-secret");
    b.screenshot("account-totp-qr");
    b.fill("#totp-confirm", &oathtool(&secret, totp_step_now()));
    b.press("Enter");
    b.wait_for("#recovery-codes");
    assert_eq!(b.text("#notice"), "Authenticator app added.");
    assert_eq!(b.count(".factor-row[data-kind=totp]"), 1);
    assert_eq!(b.count("#add-totp"), 0, "one authenticator at a time");
}

#[tokio::test]
async fn a_revoked_step_up_is_asked_again_and_a_forgotten_device_is_new_again() {
    let s = server().await;
    let api = s.user_token("uma").await;
    let secret = s.enroll_totp(&api, previous_totp_step()).await;
    let mut b = Browser::launch();
    sign_in_with_totp(&mut b, &s, "uma", &secret);
    // Passing the sign-in step-up remembered this browser.
    assert_eq!(b.count(".device-row"), 1, "{}", b.text("main"));

    b.click(".factor-row[data-kind=totp] button");
    b.wait_for("#totp-code");
    b.fill("#totp-code", &oathtool(&secret, totp_step_now() + 1));
    b.press("Enter");
    b.wait_for("#notice");
    assert_eq!(b.count(".elevation-row"), 1);
    b.click(".elevation-row button");
    b.wait_for("#notice");
    assert_eq!(b.text("#notice"), "Step-up revoked.");
    assert_eq!(b.count(".elevation-row"), 0);
    b.screenshot("account-step-up-revoked");
    // The revoked step-up no longer removes the factor: the step-up page asks again.
    b.click(".factor-row[data-kind=totp] button");
    b.wait_for("#totp-code");
    assert_eq!(b.text("h1"), "Remove a sign-in factor");

    b.goto(&s.page_url("/account"));
    b.wait_for(".device-row button");
    b.click(".device-row button");
    b.wait_for("#notice");
    assert!(b.text("#notice").starts_with("Device forgotten"));
    assert_eq!(b.count(".device-row"), 0);
    assert_eq!(
        b.count(".factor-row[data-kind=totp]"),
        1,
        "nothing else changed"
    );
    b.screenshot("account-device-forgotten");
}

#[tokio::test]
async fn an_email_address_is_added_with_the_code_from_a_real_smtp_sink() {
    let sink = SmtpSink::start();
    let s = Server::for_browser(&format!("{PURPOSES}\n{}", sink.config())).await;
    s.create_user("val").await;
    let mut b = Browser::launch();
    sign_in(&mut b, &s, "val");
    b.wait_for("#email-address");
    b.fill("#email-address", "val@example.test");
    b.press("Enter");
    b.wait_for("#email-confirm");
    // The page shows the address masked, as every page and response does.
    assert!(b.text("#email-confirm-sent").contains("v***@example.test"));
    b.screenshot("account-email-confirm");
    // A wrong code is tied to its field and adds nothing.
    b.fill("#email-confirm", "000000");
    b.press("Enter");
    b.wait_for("#email-confirm-error");
    assert_eq!(
        b.attribute("#email-confirm", "aria-invalid").as_deref(),
        Some("true")
    );
    b.fill("#email-confirm", &code_in(sink.mails().last().unwrap()));
    b.press("Enter");
    b.wait_for("#recovery-codes");
    assert_eq!(b.text("#notice"), "Email address added.");
    assert_eq!(b.count(".factor-row[data-kind=email_otp]"), 1);
    assert_eq!(b.count("#email-address"), 0, "one address at a time");
    // The recovery codes come with a download of exactly what is shown.
    let link = "a[download='stepgate-recovery-codes.txt']";
    let href = b.attribute(link, "href").unwrap();
    assert!(href.starts_with("data:text/plain"), "{href}");
    let shown = b.text("#recovery-codes");
    let first = shown.lines().next().unwrap().trim().to_owned();
    assert!(
        href.contains(&first) || href.contains(&first.replace('-', "%2D")),
        "{href}"
    );
    b.screenshot("account-email-added");
}
