//! The risk engine end to end: seed 000's three decisions, each signal alone, lockout
//! and its decay, rate limits, device memory. Client IPs vary through X-Forwarded-For
//! from 127.0.0.1 (a trusted proxy here); time moves through the test clock control.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    DpopKey, PASSWORD, PURPOSES, Reply, Server, eventually, jwt_claims, oathtool, totp_step_now,
};
use serde_json::{Value, json};

const LONDON: &str = "81.2.69.10";
const MANCHESTER: &str = "81.2.70.10";
const SYDNEY: &str = "175.16.199.10";
const TOR_EXIT: &str = "203.0.113.66";
/// Not in the GeoIP database.
const UNPLACED: &str = "198.18.5.5";

/// A server that believes X-Forwarded-For from loopback, lets tests move its clock, and
/// has a GeoIP database and a "tor-exits" list in `files`.
async fn server(files: &Path, extra_risk: &str, extra: &str) -> Server {
    let mmdb = files.join("geo.mmdb");
    if !mmdb.exists() {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/geo/make_mmdb.py"
            ))
            .arg(&mmdb)
            .output()
            .expect("python3 with mmdb-writer (scripts/test-deps)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            files.join("tor.txt"),
            "# test list\n203.0.113.0/24\n198.51.100.7\n",
        )
        .unwrap();
    }
    Server::with_config(&format!(
        "trusted_proxies = [\"127.0.0.1/32\"]\n{extra}\n[testing]\nclock_control = true\n\
         [risk]\ngeoip_database = {:?}\n{extra_risk}\n[[risk.ip_lists]]\nname = \"tor-exits\"\npath = {:?}\nweight = 40\n{PURPOSES}",
        mmdb.display().to_string(),
        files.join("tor.txt").display().to_string(),
    ))
    .await
}

async fn login_from(
    s: &Server,
    user: &str,
    password: &str,
    ip: &str,
    device: Option<&str>,
) -> Reply {
    let mut body = json!({"username": user, "password": password});
    if let Some(d) = device {
        body["device"] = json!({"fingerprint": d, "user_agent": "test-agent"});
    }
    s.send(
        s.http
            .post(s.url("/v1/sessions"))
            .header("x-forwarded-for", ip)
            .json(&body),
    )
    .await
}

fn reasons(risk: &Value) -> Vec<String> {
    risk["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["weight"].as_u64().unwrap() > 0)
        .map(|r| r["observed"].as_str().unwrap().to_owned())
        .collect()
}

/// A user who enrolled TOTP from `device` at `ip` (which also remembers that device).
/// Returns the TOTP secret and the step its confirmation used.
async fn enrolled(s: &Server, user: &str, ip: &str, device: &str) -> (String, i64) {
    s.create_user(user).await;
    let first = login_from(s, user, PASSWORD, ip, Some(device)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["enrollment_required"], true);
    assert!(
        reasons(&first.body["risk"]).is_empty()
            || first.body["risk"]["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["signal"] == "enrollment")
    );
    let token = first.body["access_token"].as_str().unwrap();
    let step = totp_step_now();
    (s.enroll_totp(token, step).await, step)
}

#[tokio::test]
async fn the_three_decisions() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "", "").await;
    let (secret, step) = enrolled(&s, "emp", LONDON, "laptop").await;
    assert_eq!(
        s.audit("type=DEVICE_REMEMBERED").await.len(),
        1,
        "enrolling remembers the device"
    );

    // 1. Known device, known network, regular hours: a session, no challenge.
    let one = login_from(&s, "emp", PASSWORD, LONDON, Some("laptop")).await;
    assert_eq!(one.status, 201, "{}", one.text);
    assert_eq!(one.body["risk"]["tier"], "low");
    assert_eq!(one.body["enrollment_required"], false);
    assert_eq!(one.body["risk"]["device_trust"], "fingerprint");
    assert!(
        reasons(&one.body["risk"]).is_empty(),
        "{}",
        one.body["risk"]
    );

    // 2. The same password from a new device: medium, TOTP step-up, then a session.
    let two = login_from(&s, "emp", PASSWORD, LONDON, Some("new-laptop")).await;
    two.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(two.body["risk"]["tier"], "medium");
    assert_eq!(reasons(&two.body["risk"]), vec!["new device for this user"]);
    assert_eq!(
        two.body["allowed_factors"],
        json!(["totp", "recovery_code"])
    );
    let challenge = two.body["challenge_id"].as_str().unwrap();
    // No access token is needed to answer a login challenge; a wrong code is counted.
    let wrong = s.verify_anonymous(challenge, "totp", "000000").await;
    wrong.assert_problem(401, "STEPUP_FAILED");
    let passed = s
        .verify_anonymous(challenge, "totp", &oathtool(&secret, step + 1))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let token = passed.body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&token);
    assert_eq!(claims["acr"], "urn:stepgate:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    let current = s.get("/v1/sessions/current", Some(&token)).await;
    assert_eq!(current.body["risk"]["tier"], "medium");
    assert_eq!(s.audit("type=DEVICE_REMEMBERED").await.len(), 2);
    // The device is remembered: the next login from it is case 1.
    let again = login_from(&s, "emp", PASSWORD, LONDON, Some("new-laptop")).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["risk"]["tier"], "low");

    // 3. Deleting a production resource: mandatory step-up; the elevation expires
    // after five minutes. (The clock moves a minute on, so a fresh TOTP step is current.)
    s.set_clock(60).await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let v = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 2),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let elevation = v.body["elevation_token"].as_str().unwrap().to_owned();
    // Bound to the IP of the verify request (this test's loopback).
    let redeem = json!({"elevation_token": elevation, "purpose": "admin:resources:delete", "ip": "127.0.0.1"});
    s.set_clock(60 + 301).await;
    s.redeem(redeem.clone())
        .await
        .assert_problem(403, "STEPUP_TOKEN_EXPIRED");
    s.set_clock(60 + 290).await;
    assert_eq!(
        s.redeem(redeem.clone()).await.status,
        200,
        "valid just before five minutes"
    );
    s.redeem(redeem)
        .await
        .assert_problem(403, "STEPUP_TOKEN_REUSED");

    let logins = s.audit("type=ACCOUNT_LOGIN_SUCCEEDED").await;
    assert_eq!(logins.len(), 4);
    assert!(
        logins.iter().all(|e| e["data"]["risk"]["tier"].is_string()),
        "every login event records the assessment"
    );
}

#[tokio::test]
async fn each_signal_alone() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "", "").await;
    enrolled(&s, "sig", LONDON, "laptop").await;

    // A new IP (one the GeoIP database cannot place, so no location signal either).
    let r = login_from(&s, "sig", PASSWORD, UNPLACED, Some("laptop")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        reasons(&r.body["risk"]),
        vec!["IP not seen before for this user"]
    );
    assert_eq!(r.body["risk"]["tier"], "low");

    // A listed IP: the list's name is the reason (plus it is a new IP).
    let r = login_from(&s, "sig", PASSWORD, TOR_EXIT, Some("laptop")).await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["risk"]["tier"], "medium");
    assert!(reasons(&r.body["risk"]).contains(&"IP is on the list \"tor-exits\"".to_owned()));

    // Impossible travel: London, then Sydney minutes later.
    assert_eq!(
        login_from(&s, "sig", PASSWORD, LONDON, Some("laptop"))
            .await
            .status,
        201
    );
    let r = login_from(&s, "sig", PASSWORD, SYDNEY, Some("laptop")).await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["risk"]["tier"], "high");
    let why = reasons(&r.body["risk"]);
    assert!(
        why.iter()
            .any(|w| w.starts_with("impossible travel: 169") && w.contains("from GB")),
        "{why:?}"
    );
    assert!(why.contains(&"new country AU".to_owned()));

    // A failure burst: three wrong passwords, then the right one.
    for _ in 0..3 {
        login_from(&s, "sig", "not the password", LONDON, Some("laptop"))
            .await
            .assert_problem(401, "INVALID_CREDENTIALS");
    }
    let r = login_from(&s, "sig", PASSWORD, LONDON, Some("laptop")).await;
    assert!(
        reasons(&r.body["risk"]).contains(&"3 failed sign-ins recently".to_owned()),
        "{}",
        r.text
    );

    // No fingerprint at all.
    let r = login_from(&s, "sig", PASSWORD, LONDON, None).await;
    assert_eq!(
        reasons(&r.body["risk"])[0],
        "no device fingerprint was sent"
    );
}

#[tokio::test]
async fn unusual_hours_count_once_the_history_is_long_enough() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "weight_unusual_hour = 30\n", "").await;
    enrolled(&s, "owl", LONDON, "laptop").await;
    for _ in 0..5 {
        let r = login_from(&s, "owl", PASSWORD, LONDON, Some("laptop")).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(reasons(&r.body["risk"]).is_empty());
    }
    s.set_clock(12 * 3600).await;
    let r = login_from(&s, "owl", PASSWORD, LONDON, Some("laptop")).await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["risk"]["tier"], "medium");
    let why = reasons(&r.body["risk"]);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].ends_with(":00 UTC is outside the user's usual hours"),
        "{why:?}"
    );
}

#[tokio::test]
async fn lockout_holds_from_any_ip_and_decays() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "", "").await;
    s.create_user("lou").await;
    for i in 0..10 {
        let ip = format!("198.18.0.{i}");
        login_from(&s, "lou", "wrong password!", &ip, None)
            .await
            .assert_problem(401, "INVALID_CREDENTIALS");
    }
    for ip in ["198.18.1.1", LONDON] {
        let locked = login_from(&s, "lou", PASSWORD, ip, None).await;
        locked.assert_problem(423, "ACCOUNT_LOCKED");
        let retry: i64 = locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
    }
    // Unknown names lock the same way, so lockout reveals nothing about who exists.
    for _ in 0..10 {
        login_from(&s, "nobody", "wrong password!", LONDON, None).await;
    }
    login_from(&s, "nobody", PASSWORD, LONDON, None)
        .await
        .assert_problem(423, "ACCOUNT_LOCKED");
    let locked_events = s.audit("type=ACCOUNT_LOCKED").await;
    assert_eq!(locked_events.len(), 2);
    let failed = s.audit("type=ACCOUNT_LOGIN_FAILED").await;
    assert_eq!(failed.len(), 20);
    // Every login event records an assessment; a burst shows in it.
    assert!(failed.iter().all(|e| e["data"]["risk"]["tier"].is_string()));
    assert!(
        failed[9]["data"]["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["observed"] == "10 failed sign-ins recently")
    );

    // The lock decays with the window.
    s.set_clock(901).await;
    assert_eq!(
        login_from(&s, "lou", PASSWORD, LONDON, None).await.status,
        201
    );
}

#[tokio::test]
async fn per_ip_rate_limits_answer_429() {
    let files = tempfile::tempdir().unwrap();
    let s = server(
        files.path(),
        "",
        "[rate_limits]\nlogin_per_minute = 3\nverify_per_minute = 3\n",
    )
    .await;
    s.create_user("rae").await;
    // Start at the beginning of a one-minute window, so it cannot roll over mid-test.
    s.set_clock(61 - common::unix_now().rem_euclid(60)).await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&s, "rae", PASSWORD, LONDON, None).await.status,
            201
        );
    }
    let limited = login_from(&s, "rae", PASSWORD, LONDON, None).await;
    limited.assert_problem(429, "RATE_LIMITED");
    assert!(limited.headers.get("retry-after").is_some());
    assert_eq!(
        login_from(&s, "rae", PASSWORD, MANCHESTER, None)
            .await
            .status,
        201,
        "other addresses are not limited"
    );
    for _ in 0..3 {
        s.verify_anonymous("no-such-challenge", "totp", "123456")
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    s.verify_anonymous("no-such-challenge", "totp", "123456")
        .await
        .assert_problem(429, "RATE_LIMITED");
}

#[tokio::test]
async fn high_risk_is_blocked_when_policy_says_so() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "block_high = true\n", "").await;
    enrolled(&s, "hal", LONDON, "laptop").await;
    login_from(&s, "hal", PASSWORD, LONDON, Some("laptop")).await;
    let r = login_from(&s, "hal", PASSWORD, SYDNEY, Some("laptop")).await;
    r.assert_problem(403, "LOGIN_BLOCKED");
    assert_eq!(r.body["risk"]["tier"], "high");
    assert_eq!(
        login_from(&s, "hal", PASSWORD, LONDON, Some("laptop"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn users_forget_devices_and_enroll_when_they_have_no_factor() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "", "").await;
    s.create_user("fay").await;
    let first = login_from(&s, "fay", PASSWORD, LONDON, Some("phone")).await;
    let token = first.body["access_token"].as_str().unwrap().to_owned();
    assert!(
        first.body["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signal"] == "enrollment")
    );
    // Without a factor, every purpose asks for enrollment first.
    let r = s
        .post(
            "/v1/stepup/challenges",
            Some(&token),
            json!({"purpose": "reports:export"}),
        )
        .await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["enrollment_required"], true);

    s.post("/v1/factors/recovery-codes", Some(&token), Value::Null)
        .await;
    let devices = s.get("/v1/devices", Some(&token)).await.body;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
    assert_eq!(devices["devices"][0]["current"], true);
    assert_eq!(devices["devices"][0]["trust"], "fingerprint");
    assert!(
        !devices.to_string().contains("phone"),
        "fingerprints are stored hashed"
    );
    assert_eq!(
        login_from(&s, "fay", PASSWORD, LONDON, Some("phone"))
            .await
            .status,
        201
    );

    let id = devices["devices"][0]["device_id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/v1/devices/{id}"), Some(&token))
            .await
            .status,
        204
    );
    s.delete(&format!("/v1/devices/{id}"), Some(&token))
        .await
        .assert_problem(404, "NOT_FOUND");
    let r = login_from(&s, "fay", PASSWORD, LONDON, Some("phone")).await;
    r.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(r.body["allowed_factors"], json!(["recovery_code"]));
}

#[tokio::test]
async fn ip_lists_reload_when_their_file_changes() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "reload_seconds = 1\n", "").await;
    enrolled(&s, "ron", LONDON, "laptop").await;
    login_from(&s, "ron", PASSWORD, MANCHESTER, Some("laptop")).await;
    std::fs::write(files.path().join("tor.txt"), format!("{MANCHESTER}\n")).unwrap();
    let listed = eventually(Duration::from_secs(10), async || {
        let r = login_from(&s, "ron", PASSWORD, MANCHESTER, Some("laptop")).await;
        reasons(&r.body["risk"]).contains(&"IP is on the list \"tor-exits\"".to_owned())
    })
    .await;
    assert!(listed, "the changed list was not picked up");
}

#[tokio::test]
async fn sighup_reloads_the_lists_at_once() {
    let files = tempfile::tempdir().unwrap();
    let s = server(
        files.path(),
        "reload_seconds = 3600\n",
        "keys_reload_seconds = 3600\n",
    )
    .await;
    enrolled(&s, "hup", LONDON, "laptop").await;
    login_from(&s, "hup", PASSWORD, MANCHESTER, Some("laptop")).await;
    std::fs::write(files.path().join("tor.txt"), format!("{MANCHESTER}\n")).unwrap();
    let listed = async || {
        let r = login_from(&s, "hup", PASSWORD, MANCHESTER, Some("laptop")).await;
        reasons(&r.body["risk"]).contains(&"IP is on the list \"tor-exits\"".to_owned())
    };
    assert!(!listed().await, "reloaded before the signal");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        eventually(Duration::from_secs(5), listed).await,
        "SIGHUP did not reload the list"
    );
}

#[test]
fn bad_sources_are_refused_at_start_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("bad.txt");
    std::fs::write(&list, "10.0.0.0/8\nnot-an-ip\n").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[[risk.ip_lists]]\nname = \"bad\"\npath = {:?}\n",
            dir.path().display().to_string(),
            list.display().to_string()
        ),
    )
    .unwrap();
    let (ok, _, stderr) = common::run_cli(&config, &["config", "check"]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.txt:2") && stderr.contains("not-an-ip"),
        "{stderr}"
    );
    let out = common::stepgate(&config).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.txt:2"));
}

const LOGIN_HTU: &str = "http://localhost:8080/v1/sessions";

async fn login_with_proof(s: &Server, user: &str, proof: &str) -> Reply {
    s.send(
        s.http
            .post(s.url("/v1/sessions"))
            .header("x-forwarded-for", LONDON)
            .header("dpop", proof)
            .json(&json!({"username": user, "password": PASSWORD})),
    )
    .await
}

#[tokio::test]
async fn a_proven_dpop_key_makes_a_strongly_trusted_device() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path(), "", "").await;
    let (secret, step) = enrolled(&s, "kim", LONDON, "laptop").await;
    let key = DpopKey::new();

    // First time this key is seen: a new device, stepped up like any other.
    let first = login_with_proof(&s, "kim", &key.proof(LOGIN_HTU)).await;
    first.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(
        reasons(&first.body["risk"]),
        vec!["new device for this user"]
    );
    let passed = s
        .verify_anonymous(
            first.body["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert_eq!(passed.body["token_type"], "DPoP");
    let token = passed.body["access_token"].as_str().unwrap().to_owned();
    // The session is bound to the key: its token works only with a proof from it.
    let devices_url = "http://localhost:8080/v1/devices";
    s.get("/v1/devices", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let devices = s
        .send(
            s.http
                .get(s.url("/v1/devices"))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", key.proof_for("GET", devices_url, Some(&token))),
        )
        .await
        .body;
    assert!(
        devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["trust"] == "key" && d["current"] == true),
        "{devices}"
    );

    // From now on the key is strong evidence, and the reasons say so.
    let proof = key.proof(LOGIN_HTU);
    let again = login_with_proof(&s, "kim", &proof).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["risk"]["device_trust"], "key");
    assert!(
        again.body["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["observed"] == "trusted device: it holds a device-bound key")
    );

    // Proofs are single-use and bound to the request; junk is refused, storing nothing.
    let before = s.db_snapshot().await;
    for bad in [
        proof,
        key.proof("http://localhost:8080/v1/elsewhere"),
        "not.a.proof".into(),
        String::new(),
    ] {
        login_with_proof(&s, "kim", &bad)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    let other = DpopKey::new();
    let mut forged = other.proof(LOGIN_HTU);
    forged.replace_range(forged.len() - 4.., "AAAA");
    login_with_proof(&s, "kim", &forged)
        .await
        .assert_problem(400, "VALIDATION_FAILED");
    assert_eq!(s.db_snapshot().await, before);
}
