//! The admin console in a real browser: an admin signs in and steps up for
//! `admin:console`; the policy page saves a tightening and refuses to loosen below the
//! minimum; the audit log filters and pages; users are found and reset; live step-ups
//! are revoked; a user without the admin role is refused.

mod common;

use common::browser::Browser;
use common::*;
use serde_json::json;

async fn server() -> Server {
    Server::for_browser(&format!("{PURPOSES}\n")).await
}

/// An admin (or not) with TOTP; returns the TOTP secret.
async fn user_with_totp(s: &Server, name: &str, roles: &[&str]) -> String {
    let token = s.user_token_with_roles(name, roles).await;
    s.enroll_totp(&token, previous_totp_step()).await
}

/// Signs in on /admin from a new browser: the login step-up, then the console's own.
fn open_console(b: &mut Browser, s: &Server, name: &str, secret: &str) {
    b.goto(&s.page_url("/admin"));
    b.fill("#username", name);
    b.fill("#password", PASSWORD);
    b.press("Enter");
    b.wait_for("#totp-code");
    assert_eq!(b.text("h1"), "Sign in");
    b.fill("#totp-code", &oathtool(secret, totp_step_now()));
    b.press("Enter");
}

fn pass_console_step_up(b: &mut Browser, secret: &str) {
    b.wait_for("#totp-code");
    assert_eq!(b.text("h1"), "Open the admin console");
    b.fill("#totp-code", &oathtool(secret, totp_step_now() + 1));
    b.press("Enter");
    b.wait_for("#policy-version");
}

#[tokio::test]
async fn an_admin_saves_a_tightening_and_cannot_loosen_below_the_minimum() {
    let s = server().await;
    let secret = user_with_totp(&s, "ada", &["admin"]).await;
    let mut b = Browser::launch();
    open_console(&mut b, &s, "ada", &secret);
    pass_console_step_up(&mut b, &secret);
    assert_eq!(b.text("#policy-version"), "1");
    b.assert_weight("admin policy page");
    // payroll:transmit's minimum is phishing-resistant: the weaker option is disabled.
    assert!(
        b.attribute("#factor-payroll-transmit option[value=any]", "disabled")
            .is_some()
    );
    assert!(
        b.attribute(
            "#factor-admin-resources-delete option[value=any]",
            "disabled"
        )
        .is_none()
    );
    b.screenshot("admin-policy");

    // Tighten admin:resources:delete to phishing-resistant.
    b.call(json!({"op": "select", "selector": "#factor-admin-resources-delete", "value": "phishing_resistant"}));
    b.click("#purpose-admin-resources-delete button");
    b.wait_for("#notice");
    assert_eq!(b.text("#notice"), "Saved: policy version 2 is in force.");
    b.screenshot("admin-policy-saved");
    let policy = s.get("/v1/policy", Some(&s.admin_key)).await;
    assert_eq!(policy.body["policy_version"], 2);
    let deletes = policy.body["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin:resources:delete")
        .unwrap()
        .clone();
    assert_eq!(deletes["requirement"]["factor"], "phishing_resistant");

    // A loosening the page does not offer, sent anyway: refused, nothing written.
    let csrf = b.attribute("input[name=csrf]", "value").unwrap();
    for (purpose, field) in [
        ("payroll:transmit", "factor=any"),
        ("payroll:transmit", "ttl_seconds=121"),
        ("payroll:transmit", "single_use=no"),
    ] {
        let r = b.fetch(
            &s.page_url("/admin/policy"),
            "POST",
            Some(&format!("csrf={csrf}&purpose={purpose}&{field}")),
            Some("application/x-www-form-urlencoded"),
        );
        assert_eq!(r["status"], 409, "{field}: {r}");
        assert!(
            r["text"]
                .as_str()
                .unwrap()
                .contains("below its platform minimum"),
            "{r}"
        );
    }
    // Without the CSRF token: refused before anything else.
    let r = b.fetch(
        &s.page_url("/admin/policy"),
        "POST",
        Some("purpose=admin:resources:delete&factor=any"),
        Some("application/x-www-form-urlencoded"),
    );
    assert_eq!(r["status"], 403, "{r}");
    let policy = s.get("/v1/policy", Some(&s.admin_key)).await;
    assert_eq!(policy.body["policy_version"], 2);
}

#[tokio::test]
async fn the_console_filters_and_pages_the_audit_log_resets_a_user_and_revokes_a_step_up() {
    let s = server().await;
    let secret = user_with_totp(&s, "root", &["admin"]).await;
    for i in 0..60 {
        s.create_user(&format!("filler{i:02}")).await;
    }
    let (victim, codes) = s.recovery_user("victim").await;
    let elevated = s
        .elevate(&victim, &codes[0], json!({"purpose": "reports:export"}))
        .await;
    assert!(elevated["elevation_id"].is_string());

    let mut b = Browser::launch();
    open_console(&mut b, &s, "root", &secret);
    pass_console_step_up(&mut b, &secret);

    // Audit: every USER_CREATED, 50 a page, then the rest.
    b.goto(&s.page_url("/admin/audit?type=USER_CREATED"));
    assert_eq!(b.count("#audit tbody tr"), 50);
    b.assert_weight("admin audit page");
    b.screenshot("admin-audit");
    b.click("#next-page");
    b.wait_for("#audit");
    assert_eq!(
        b.count("#audit tbody tr"),
        62 - 50,
        "root, 60 fillers, victim"
    );
    assert_eq!(b.count("#next-page"), 0);
    // Severity: nothing critical happened yet; warnings are the failures and removals.
    b.goto(&s.page_url("/admin/audit?severity=critical"));
    assert_eq!(b.count("#audit tbody tr"), 0);
    let bad = b.goto(&s.page_url("/admin/audit?severity=loud"));
    assert_eq!(bad, 400);
    assert!(b.text("#admin-error").contains("severity"));

    // Live step-ups: the victim's export elevation (and the console's own); revoke it.
    b.goto(&s.page_url("/admin/elevations"));
    assert_eq!(b.count(".elevation-row"), 2);
    b.click("button[aria-label='Revoke Export reports for victim']");
    b.wait_for("#notice");
    assert_eq!(b.count(".elevation-row"), 1);
    let mine = s.get("/v1/stepup/elevations", Some(&victim)).await;
    assert_eq!(mine.body["elevations"], json!([]));

    // Users: find, open, reset.
    b.goto(&s.page_url("/admin/users?q=vic"));
    assert_eq!(b.count("td a"), 1);
    b.click("td a");
    b.wait_for("#reset-factors");
    b.screenshot("admin-user");
    b.click("#reset-factors");
    b.wait_for("#notice");
    assert!(
        b.text("#notice").contains("factors removed"),
        "{}",
        b.text("#notice")
    );
    b.goto(&s.page_url("/admin/audit?severity=critical"));
    assert_eq!(b.count("#audit tbody tr"), 1, "the reset is critical");
    assert!(b.text("#audit tbody tr").contains("FACTORS_RESET"));
}

#[tokio::test]
async fn a_user_without_the_admin_role_is_refused_the_console() {
    let s = server().await;
    let secret = user_with_totp(&s, "eve", &[]).await;
    let mut b = Browser::launch();
    open_console(&mut b, &s, "eve", &secret);
    b.wait_for("h1");
    assert_eq!(b.text("h1"), "This account is not an admin");
    b.screenshot("admin-refused-not-an-admin");
    let r = b.fetch(&s.page_url("/admin/audit"), "GET", None, None);
    assert_eq!(r["status"], 403);
}
