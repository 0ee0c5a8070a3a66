//! Email one-time codes through the binary and a real SMTP server on loopback: enrolling
//! an address, sending a code as its own step, the code answering once and only its
//! challenge, expiry, sending limits, a mail server that is down, and mails written to
//! files without `[smtp]`.

mod common;

use common::smtp::{SmtpSink, code_in, mails_in};
use common::*;
use serde_json::{Value, json};

const ADDRESS: &str = "ada@example.test";

async fn server_with(sink: &SmtpSink, extra: &str) -> Server {
    Server::with_config(&format!(
        "{PURPOSES}\n[testing]\nclock_control = true\n{}\n{extra}",
        sink.config()
    ))
    .await
}

/// Enrolls and confirms `ADDRESS` as the token's user's first factor; returns the
/// confirmation's answer.
async fn enroll_email(s: &Server, sink: &SmtpSink, token: &str) -> Value {
    let r = s
        .post("/v1/factors/email", Some(token), json!({"email": ADDRESS}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["sent_to"], "a***@example.test");
    let mail = sink.mails().pop().expect("a confirmation mail");
    assert!(mail.contains(ADDRESS), "{mail}");
    let id = r.body["factor_id"].as_str().unwrap();
    let confirmed = s
        .post(
            &format!("/v1/factors/email/{id}/confirm"),
            Some(token),
            json!({"code": code_in(&mail)}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    confirmed.body
}

async fn send(s: &Server, token: &str, challenge: &Value) -> Reply {
    s.post(
        challenge["links"]["send"].as_str().expect("a send link"),
        Some(token),
        json!({"factor": "email_otp"}),
    )
    .await
}

#[tokio::test]
async fn an_emailed_code_answers_its_challenge_once() {
    let sink = SmtpSink::start();
    let s = server_with(
        &sink,
        "[email]\nsends_per_user_per_minute = 10\nsends_per_address_per_minute = 10\n",
    )
    .await;
    let token = s.user_token("ada").await;

    // Enrollment: a wrong code is refused with the tries left; the right one confirms,
    // and the first factor comes with recovery codes.
    let r = s
        .post("/v1/factors/email", Some(&token), json!({"email": ADDRESS}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let confirm = format!(
        "/v1/factors/email/{}/confirm",
        r.body["factor_id"].as_str().unwrap()
    );
    let code = code_in(&sink.mails()[0]);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = s.post(&confirm, Some(&token), json!({"code": wrong})).await;
    refused.assert_problem(400, "VALIDATION_FAILED");
    assert_eq!(refused.body["attempts_left"], 4);
    let confirmed = s.post(&confirm, Some(&token), json!({"code": code})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.body["type"], "email_otp");
    assert_eq!(
        confirmed.body["recovery_codes"].as_array().unwrap().len(),
        10
    );

    // Opening a challenge sends nothing; the answer links to the send route.
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert_eq!(c["allowed_factors"], json!(["email_otp", "recovery_code"]));
    assert_eq!(sink.mails().len(), 1, "no mail on opening");
    let sent = send(&s, &token, &c).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(sent.body["sent_to"], "a***@example.test");
    let code = code_in(&sink.mails()[1]);
    let id = c["challenge_id"].as_str().unwrap();

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = s.verify(&token, id, "email_otp", wrong).await;
    r.assert_problem(401, "STEPUP_FAILED");
    assert_eq!(r.body["attempts_left"], 4);
    let passed = s.verify(&token, id, "email_otp", &code).await;
    assert_eq!(passed.status, 200, "{}", passed.text);

    // Another challenge with its own code: the first challenge's code does not answer it.
    let other = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    let other_id = other["challenge_id"].as_str().unwrap();
    assert_eq!(send(&s, &token, &other).await.status, 200);
    let own = code_in(&sink.mails()[2]);
    if own != code {
        s.verify(&token, other_id, "email_otp", &code)
            .await
            .assert_problem(401, "STEPUP_FAILED");
    }
    // Sending again replaces the code: the earlier one no longer works.
    assert_eq!(send(&s, &token, &other).await.status, 200);
    let replacement = code_in(&sink.mails()[3]);
    if replacement != own {
        s.verify(&token, other_id, "email_otp", &own)
            .await
            .assert_problem(401, "STEPUP_FAILED");
    }
    let r = s.verify(&token, other_id, "email_otp", &replacement).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Too weak for a phishing-resistant purpose: nothing is sent.
    let before = sink.mails().len();
    let r = s
        .post(
            "/v1/stepup/challenges",
            Some(&token),
            json!({"purpose": "payroll:transmit"}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(sink.mails().len(), before);
}

#[tokio::test]
async fn codes_expire_and_sending_is_limited() {
    let sink = SmtpSink::start();
    let s = server_with(
        &sink,
        "[email]\nsends_per_user_per_minute = 3\ncode_ttl_seconds = 60\n",
    )
    .await;
    let token = s.user_token("bo").await;
    enroll_email(&s, &sink, &token).await;
    // The confirmation mail was the first of this minute's three.
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert_eq!(send(&s, &token, &c).await.status, 200);
    assert_eq!(send(&s, &token, &c).await.status, 200);
    let limited = send(&s, &token, &c).await;
    limited.assert_problem(429, "RATE_LIMITED");
    assert_eq!(sink.mails().len(), 3);
    let code = code_in(&sink.mails()[2]);
    // The address has had its three codes this minute, whoever asks for the next.
    let other = s.user_token("bo2").await;
    s.post("/v1/factors/email", Some(&other), json!({"email": ADDRESS}))
        .await
        .assert_problem(429, "RATE_LIMITED");

    // A minute on, the code no longer answers (the challenge itself is still open).
    s.set_clock(61).await;
    let id = c["challenge_id"].as_str().unwrap();
    s.verify(&token, id, "email_otp", &code)
        .await
        .assert_problem(401, "STEPUP_FAILED");
}

#[tokio::test]
async fn a_mail_server_that_is_down_is_a_clear_error_and_stores_no_code() {
    let mut sink = SmtpSink::start();
    let s = server_with(&sink, "").await;
    let token = s.user_token("cy").await;
    enroll_email(&s, &sink, &token).await;
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert_eq!(send(&s, &token, &c).await.status, 200);
    let sent = code_in(sink.mails().last().unwrap());
    sink.stop();
    let before = s.db_snapshot().await;
    let r = send(&s, &token, &c).await;
    r.assert_problem(502, "EMAIL_NOT_SENT");
    assert_eq!(s.db_snapshot().await, before, "no code stored");
    // Enrolling another address while the server is down stores nothing either.
    let other = s.user_token("di").await;
    let before = s.db_snapshot().await;
    let r = s
        .post(
            "/v1/factors/email",
            Some(&other),
            json!({"email": "di@example.test"}),
        )
        .await;
    r.assert_problem(502, "EMAIL_NOT_SENT");
    assert_eq!(s.db_snapshot().await, before);
    // The failed send replaced nothing: the code that did arrive still answers.
    let id = c["challenge_id"].as_str().unwrap();
    let r = s.verify(&token, id, "email_otp", &sent).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn bad_email_input_is_refused_and_stores_nothing() {
    let sink = SmtpSink::start();
    let s = server_with(&sink, "").await;
    let token = s.user_token("ed").await;
    let enrollment = s
        .post("/v1/factors/email", Some(&token), json!({"email": ADDRESS}))
        .await;
    let confirm = format!(
        "/v1/factors/email/{}/confirm",
        enrollment.body["factor_id"].as_str().unwrap()
    );
    let before = s.db_snapshot().await;
    for body in [
        json!({}),
        json!({"email": "not an address"}),
        json!({"email": "a@b@c"}),
        json!({"email": "x<victim@example.test>"}),
        json!({"email": ADDRESS, "extra": true}),
        json!({"email": 5}),
    ] {
        s.post("/v1/factors/email", Some(&token), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    for body in [
        json!({}),
        json!({"code": "12345"}),
        json!({"code": "abcdef"}),
    ] {
        s.post(&confirm, Some(&token), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.post(
        "/v1/factors/email/nope/confirm",
        Some(&token),
        json!({"code": "123456"}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    for body in [
        json!({}),
        json!({"factor": "totp"}),
        json!({"factor": "pigeon"}),
    ] {
        s.post("/v1/stepup/challenges/nope/send", Some(&token), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    s.post(
        "/v1/stepup/challenges/nope/send",
        Some(&token),
        json!({"factor": "email_otp"}),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    assert_eq!(s.db_snapshot().await, before);
}

#[tokio::test]
async fn without_smtp_mails_are_files_in_the_data_dir() {
    let s = Server::with_config(PURPOSES).await;
    let token = s.user_token("fay").await;
    let r = s
        .post("/v1/factors/email", Some(&token), json!({"email": ADDRESS}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mails = mails_in(&s.dir.path().join("mail"));
    assert_eq!(mails.len(), 1);
    let confirmed = s
        .post(
            &format!(
                "/v1/factors/email/{}/confirm",
                r.body["factor_id"].as_str().unwrap()
            ),
            Some(&token),
            json!({"code": code_in(&mails[0])}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
}

#[tokio::test]
async fn a_risky_login_is_stepped_up_with_an_emailed_code() {
    let sink = SmtpSink::start();
    let s = server_with(&sink, "").await;
    let token = s.user_token("gus").await;
    enroll_email(&s, &sink, &token).await;
    let r = s
        .post(
            "/v1/sessions",
            None,
            json!({"username": "gus", "password": PASSWORD,
                   "device": {"fingerprint": "a-new-phone", "user_agent": "test"}}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(
        r.body["allowed_factors"],
        json!(["email_otp", "recovery_code"])
    );
    // Whoever holds the login challenge's id has the code sent, without a token.
    let sent = s
        .post(
            r.body["links"]["send"].as_str().unwrap(),
            None,
            json!({"factor": "email_otp"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let code = code_in(sink.mails().last().unwrap());
    let passed = s
        .verify_anonymous(r.body["challenge_id"].as_str().unwrap(), "email_otp", &code)
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let claims = jwt_claims(passed.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "urn:stepgate:acr:mfa");
}
