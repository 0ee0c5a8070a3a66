//! Authorization decisions end to end: Cedar policies with the `@step_up` annotation,
//! `POST /v1/decisions` by action/resource and by purpose, the Authress flow (step_up →
//! challenge → session-mode verify → the same decision allows, for that session only),
//! elevation tokens relied on in the call, DPoP-bound tokens, decision records, and a
//! malformed policy file refused at start.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{DpopKey, PASSWORD, PURPOSES, Reply, Server, eventually, oathtool, totp_step_now};
use serde_json::{Value, json};

pub const POLICIES: &str = r#"
@id("admins-manage")
permit (principal, action, resource)
when { principal.roles.contains("admin") };

@id("readers-read")
permit (principal, action == Action::"read", resource);

@id("exporters-export")
permit (principal, action == Action::"export", resource);

@id("delete-prod-needs-stepup")
@step_up("admin:resources:delete")
forbid (principal, action == Action::"delete", resource)
when { resource has env && resource.env == "prod" }
unless { context.elevations.contains("admin:resources:delete") };

@id("export-needs-stepup")
@step_up("reports:export")
forbid (principal, action == Action::"export", resource)
unless { context.elevations.contains("reports:export") };

@id("no-high-risk")
forbid (principal, action, resource)
when { context.risk_tier == "high" };
"#;

/// A server with the test purposes and `POLICIES`; the policy file lives in `files`.
async fn server(files: &Path) -> Server {
    let path = files.join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}\n[testing]\nclock_control = true\n",
        path.display().to_string()
    ))
    .await
}

async fn decide(s: &Server, body: Value) -> Reply {
    s.post("/v1/decisions", Some(&s.service_key), body).await
}

fn delete_prod(token: &str) -> Value {
    json!({"access_token": token, "action": "delete", "resource": "db-7",
           "resource_attributes": {"env": "prod", "replicas": 3},
           "context": {"ip": "127.0.0.1"}})
}

#[tokio::test]
async fn policies_answer_allow_step_up_and_deny() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("ada", &["admin"]).await;
    s.create_user_with_roles("rita", &[]).await;
    let ada = s.session_token("ada").await;
    let rita = s.session_token("rita").await;

    let read = decide(
        &s,
        json!({"access_token": rita, "action": "read", "resource": "db-7"}),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["decision"], "allow");
    assert_eq!(read.body["policy_ids"], json!(["readers-read"]));
    assert_eq!(read.body["policy_version"], 1);
    assert!(read.body["risk"]["tier"].is_string());
    assert!(read.body["risk"]["reasons"].is_array());
    assert!(read.body.get("challenge_id").is_none());

    let write = decide(
        &s,
        json!({"access_token": rita, "action": "write", "resource": "db-7"}),
    )
    .await;
    assert_eq!(write.body["decision"], "deny");
    assert_eq!(write.body["policy_ids"], json!([]));
    assert!(
        write.body["reasons"][0]
            .as_str()
            .unwrap()
            .contains(r#"no policy permits Action::"write" on Resource::"db-7""#),
        "{}",
        write.text
    );

    // The annotated forbid is the only thing between ada and the delete: step up.
    let del = decide(&s, delete_prod(&ada)).await;
    assert_eq!(del.status, 200, "{}", del.text);
    assert_eq!(del.body["decision"], "step_up");
    assert_eq!(del.body["purpose"], "admin:resources:delete");
    assert_eq!(del.body["policy_ids"], json!(["delete-prod-needs-stepup"]));
    assert_eq!(del.body["acr_values"], "urn:stepgate:acr:mfa");
    assert_eq!(del.body["max_age"], 300);
    // ada has no second factor yet: the answer says to enroll one instead of a challenge.
    assert_eq!(del.body["enrollment_required"], true);

    // Not prod: the admin permit alone decides.
    let dev = decide(
        &s,
        json!({"access_token": ada, "action": "delete", "resource": "db-8",
               "resource_attributes": {"env": "dev"}}),
    )
    .await;
    assert_eq!(dev.body["decision"], "allow");
    assert_eq!(dev.body["policy_ids"], json!(["admins-manage"]));

    // rita is forbidden the same delete by the step-up policy, but a step-up would not
    // help her (no permit): deny, not step_up.
    let theirs = decide(&s, delete_prod(&rita)).await;
    assert_eq!(theirs.body["decision"], "deny", "{}", theirs.text);
    assert!(
        theirs.body["reasons"][0]
            .as_str()
            .unwrap()
            .contains("a step-up would not be enough")
    );
}

#[tokio::test]
async fn the_authress_flow_elevates_only_the_session_that_stepped_up() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("ada", &["admin"]).await;
    // Two sessions of the same user (two devices), both before a factor exists.
    let phone = s.session_token("ada").await;
    let laptop = s.session_token("ada").await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&phone, step).await;

    let asked = decide(&s, delete_prod(&phone)).await;
    assert_eq!(asked.body["decision"], "step_up", "{}", asked.text);
    let challenge = asked.body["challenge_id"].as_str().unwrap();
    assert_eq!(
        asked.body["allowed_factors"],
        json!(["totp", "recovery_code"])
    );

    // The user steps up in session mode (the decision's challenge is session mode).
    let passed = s
        .verify(&phone, challenge, "totp", &oathtool(&secret, step + 1))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert_eq!(passed.body["mode"], "session");
    let elevated = passed.body["access_token"].as_str().unwrap().to_owned();

    // The other session of the same user is not elevated.
    let other = decide(&s, delete_prod(&laptop)).await;
    assert_eq!(other.body["decision"], "step_up", "{}", other.text);

    // The same decision now allows, relying on (and using up) the elevation.
    let allowed = decide(&s, delete_prod(&elevated)).await;
    assert_eq!(allowed.body["decision"], "allow", "{}", allowed.text);
    assert_eq!(allowed.body["purpose"], "admin:resources:delete");
    assert!(allowed.body["elevation_id"].is_string());
    assert!(
        allowed.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "relies on the session's elevation for admin:resources:delete")
    );
    let redeemed = s
        .audit("type=ACCOUNT_STEPUP_REDEEMED&purpose=admin:resources:delete")
        .await;
    assert_eq!(redeemed.len(), 1);

    // Single use: the next identical decision asks again.
    let again = decide(&s, delete_prod(&elevated)).await;
    assert_eq!(again.body["decision"], "step_up", "{}", again.text);
}

#[tokio::test]
async fn an_elevation_token_in_the_call_is_relied_on_once() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("ada", &["admin"]).await;
    let token = s.session_token("ada").await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&token, step).await;
    let c = s
        .challenge(&token, json!({"purpose": "admin:resources:delete"}))
        .await;
    let passed = s
        .verify(
            &token,
            c["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let elevation = passed.body["elevation_token"].as_str().unwrap().to_owned();

    // An allow that does not need the elevation leaves it alone.
    let mut read = json!({"access_token": token, "action": "read", "resource": "db-7",
                          "elevation_token": elevation, "context": {"ip": "127.0.0.1"}});
    let r = decide(&s, read.clone()).await;
    assert_eq!(r.body["decision"], "allow", "{}", r.text);
    assert!(r.body.get("elevation_id").is_none());

    // IP-bound: from elsewhere it is refused, and not used up.
    let mut elsewhere = delete_prod(&token);
    elsewhere["elevation_token"] = json!(elevation);
    elsewhere["context"]["ip"] = json!("198.51.100.4");
    decide(&s, elsewhere)
        .await
        .assert_problem(403, "STEPUP_IP_MISMATCH");

    let mut del = delete_prod(&token);
    del["elevation_token"] = json!(elevation);
    let first = decide(&s, del.clone()).await;
    assert_eq!(first.body["decision"], "allow", "{}", first.text);
    assert_eq!(first.body["elevation_id"], passed.body["elevation_id"]);
    decide(&s, del)
        .await
        .assert_problem(403, "STEPUP_TOKEN_REUSED");
    assert_eq!(s.audit("type=ACCOUNT_STEPUP_REUSED").await.len(), 1);
    // Once used, even a call that would not need it says it is spent.
    read["elevation_token"] = json!(elevation);
    decide(&s, read)
        .await
        .assert_problem(403, "STEPUP_TOKEN_REUSED");

    // Another session's token, or garbage, is not this session's elevation.
    let second = s.session_token("ada").await;
    let mut foreign = delete_prod(&second);
    foreign["elevation_token"] = json!(elevation);
    decide(&s, foreign)
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
}

#[tokio::test]
async fn a_dead_elevation_token_in_the_call_says_why() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    let (token, codes) = s.recovery_user("ivy").await;
    let digest = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    let other = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c";
    let bound = s
        .elevate(
            &token,
            &codes[0],
            json!({"purpose": "reports:export", "mode": "token", "action_digest": digest}),
        )
        .await;
    let export = json!({"access_token": token, "action": "export", "resource": "q3",
                        "elevation_token": bound["elevation_token"]});
    // Bound to one exact action: another digest, or none, is another scope.
    for d in [Some(other), None] {
        let mut ask = export.clone();
        if let Some(d) = d {
            ask["action_digest"] = json!(d);
        }
        decide(&s, ask)
            .await
            .assert_problem(403, "STEPUP_SCOPE_MISMATCH");
    }
    let mut exact = export.clone();
    exact["action_digest"] = json!(digest);
    let r = decide(&s, exact).await;
    assert_eq!(r.body["decision"], "allow", "{}", r.text);
    assert_eq!(r.body["elevation_id"], bound["elevation_id"]);

    let brief = s
        .elevate(
            &token,
            &codes[1],
            json!({"purpose": "test:brief", "mode": "token"}),
        )
        .await;
    s.set_clock(2).await;
    decide(
        &s,
        json!({"access_token": token, "action": "read", "resource": "q3",
               "elevation_token": brief["elevation_token"]}),
    )
    .await
    .assert_problem(403, "STEPUP_TOKEN_EXPIRED");
}

/// A user whose step-up budget is spent cannot be asked to step up: the decision that
/// would have been `step_up` is a `deny` that says why.
#[tokio::test]
async fn a_spent_step_up_budget_turns_step_up_into_deny() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    let (token, _codes) = s.recovery_user("ada").await;
    // Ten wrong answers (two challenges of five) spend the budget for this factor.
    for _ in 0..2 {
        let c = s
            .challenge(&token, json!({"purpose": "reports:export"}))
            .await;
        for _ in 0..5 {
            s.verify(
                &token,
                c["challenge_id"].as_str().unwrap(),
                "recovery_code",
                "AAAAA-AAAAA",
            )
            .await
            .assert_problem(401, "STEPUP_FAILED");
        }
    }
    let r = decide(
        &s,
        json!({"access_token": token, "action": "export", "resource": "q3"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["decision"], "deny", "{}", r.text);
    assert!(r.body.get("challenge_id").is_none(), "{}", r.text);
    let reasons = r.body["reasons"].to_string();
    assert!(reasons.contains("step-up is blocked"), "{reasons}");
}

#[tokio::test]
async fn decisions_by_purpose_and_their_records() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("eve", &[]).await;
    let token = s.session_token("eve").await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&token, step).await;

    let ask = json!({"access_token": token, "purpose": "reports:export"});
    let first = decide(&s, ask.clone()).await;
    assert_eq!(first.body["decision"], "step_up", "{}", first.text);
    assert_eq!(first.body["max_age"], 600);
    let passed = s
        .verify(
            &token,
            first.body["challenge_id"].as_str().unwrap(),
            "totp",
            &oathtool(&secret, step + 1),
        )
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    // reports:export is multi-use: every decision until it expires allows.
    for _ in 0..3 {
        let r = decide(&s, ask.clone()).await;
        assert_eq!(r.body["decision"], "allow", "{}", r.text);
    }
    // The Cedar route to the same elevation: export needs it, and it is held.
    let cedar = decide(
        &s,
        json!({"access_token": token, "action": "export", "resource": "q3"}),
    )
    .await;
    assert_eq!(cedar.body["decision"], "allow", "{}", cedar.text);
    assert_eq!(cedar.body["purpose"], "reports:export");

    decide(&s, json!({"access_token": token, "purpose": "no:such"}))
        .await
        .assert_problem(404, "NOT_FOUND");

    // Every decision is recorded, off the request path (identical ones in a batch share
    // a row with a count).
    let recorded = eventually(Duration::from_secs(10), async || {
        s.get("/metrics", None)
            .await
            .text
            .contains("stepgate_decision_records_written_total 5")
    })
    .await;
    assert!(recorded, "{}", s.get("/metrics", None).await.text);
    let rows = s.db_snapshot().await["decision_records"];
    assert!((3..=5).contains(&rows), "{rows} rows");
    let metrics = s.get("/metrics", None).await.text;
    assert!(
        metrics.contains("stepgate_decisions_total{decision=\"allow\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn logout_and_revocation_are_honoured_at_once() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("rita", &[]).await;
    let token = s.session_token("rita").await;
    let read = json!({"access_token": token, "action": "read", "resource": "x"});
    assert_eq!(decide(&s, read.clone()).await.body["decision"], "allow");
    assert_eq!(
        s.delete("/v1/sessions/current", Some(&token)).await.status,
        204
    );
    let r = decide(&s, read).await;
    r.assert_problem(401, "UNAUTHENTICATED");
    assert_eq!(r.body["subject"], "access_token");
}

/// The value of a counter without labels in the server's `/metrics`.
async fn counter(s: &Server, name: &str) -> u64 {
    let text = s.get("/metrics", None).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn concurrent_decisions_of_a_cold_session_read_its_view_once() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    let s = Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}\n[decisions]\nsession_cache_ms = 60000\n",
        path.display().to_string()
    ))
    .await;
    s.create_user_with_roles("cora", &[]).await;
    let token = s.session_token("cora").await;
    let read = json!({"access_token": token, "action": "read", "resource": "x"});
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let req = s
                .http
                .post(s.url("/v1/decisions"))
                .bearer_auth(&s.service_key)
                .json(&read);
            tokio::spawn(async move { req.send().await.unwrap().json::<Value>().await.unwrap() })
        })
        .collect();
    for racer in racers {
        assert_eq!(racer.await.unwrap()["decision"], "allow");
    }
    // One request read the view; the other 31 waited for it instead of reading too.
    assert_eq!(counter(&s, "stepgate_decision_view_loads_total").await, 1);
}

#[tokio::test]
async fn busy_views_are_refreshed_ahead_and_another_nodes_logout_is_seen() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    let config = format!(
        "policy_file = {:?}\n{PURPOSES}\n[decisions]\nsession_cache_ms = 1000\n",
        path.display().to_string()
    );
    let a = Server::with_config(&config).await;
    // Node b shares a's database and signing keys, so it accepts a's tokens.
    let keys = a.dir.path().join("signing-keys.json");
    let b = Server::on_database(
        &format!(
            "signing_key_file = {:?}\n{config}",
            keys.display().to_string()
        ),
        Some(a.database_url.clone()),
    )
    .await;
    a.create_user_with_roles("nico", &[]).await;
    let token = a.session_token("nico").await;
    let read = json!({"access_token": token, "action": "read", "resource": "x"});
    // Steady traffic: the view is reloaded in the background at half its age, so no
    // request finds it expired and reads the store itself (only the very first does).
    let busy = std::time::Instant::now();
    while busy.elapsed() < Duration::from_millis(2500) {
        assert_eq!(decide(&a, read.clone()).await.body["decision"], "allow");
    }
    let loads = counter(&a, "stepgate_decision_view_loads_total").await;
    let refreshes = counter(&a, "stepgate_decision_view_refreshes_total").await;
    assert!(refreshes >= 2, "{refreshes} background reloads in 2.5 s");
    assert_eq!(
        loads - refreshes,
        1,
        "{loads} loads, {refreshes} in the background"
    );

    assert_eq!(
        b.delete("/v1/sessions/current", Some(&token)).await.status,
        204
    );
    let logged_out = std::time::Instant::now();
    let seen = eventually(Duration::from_secs(10), async || {
        decide(&a, read.clone()).await.status == 401
    })
    .await;
    assert!(seen, "node a never saw the logout");
    // The bound is session_cache_ms (1 s); the margin is for a slow test machine.
    let took = logged_out.elapsed();
    assert!(took < Duration::from_secs(4), "seen after {took:?}");
}

#[tokio::test]
async fn bad_decision_input_is_refused_and_stores_nothing() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("rita", &[]).await;
    let token = s.session_token("rita").await;
    let before = s.settled_snapshot().await;
    let cases = [
        json!({"action": "read", "resource": "x"}),
        json!({"access_token": token}),
        json!({"access_token": token, "purpose": "reports:export", "action": "read", "resource": "x"}),
        json!({"access_token": token, "action": "read"}),
        json!({"access_token": token, "action": "", "resource": "x"}),
        json!({"access_token": token, "action": "read", "resource": "x".repeat(300)}),
        json!({"access_token": token, "action": "read", "resource": "x", "context": {"ip": "nope"}}),
        json!({"access_token": token, "action": "read", "resource": "x", "resource_attributes": {"ratio": 0.5}}),
        json!({"access_token": token, "action": "read", "resource": "x", "resource_attributes": {"gone": null}}),
        json!({"access_token": token, "action": "read", "resource": "x", "surprise": 1}),
        json!({"access_token": token, "action": "read", "resource": "x", "action_digest": "abc"}),
        json!({"access_token": 7, "action": "read", "resource": "x"}),
    ];
    for case in cases {
        decide(&s, case)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    for bad in ["not-a-token", "a.b.c", &format!("{token}x")] {
        let r = decide(
            &s,
            json!({"access_token": bad, "action": "read", "resource": "x"}),
        )
        .await;
        r.assert_problem(401, "UNAUTHENTICATED");
        assert_eq!(r.body["subject"], "access_token");
    }
    let malformed_elevation = json!({"access_token": token, "action": "read", "resource": "x",
                                     "elevation_token": "sge_short"});
    decide(&s, malformed_elevation)
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
    // The route is for a relying party's backend: no key, or a user's token, is refused.
    let body = json!({"access_token": token, "action": "read", "resource": "x"});
    s.post("/v1/decisions", None, body.clone())
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    s.post("/v1/decisions", Some(&token), body.clone())
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let admin = s.post("/v1/decisions", Some(&s.admin_key), body).await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut after = s.db_snapshot().await;
    // The one valid (admin-key) decision above is the only record.
    assert_eq!(after.remove("decision_records"), Some(1));
    let mut expected = before.clone();
    expected.remove("decision_records");
    assert_eq!(after, expected);
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_proof_from_their_key() {
    let files = tempfile::tempdir().unwrap();
    let s = server(files.path()).await;
    s.create_user_with_roles("kim", &[]).await;
    let key = DpopKey::new();
    let login_url = "http://localhost:8080/v1/sessions";
    let r = s
        .send(
            s.http
                .post(s.url("/v1/sessions"))
                .header("dpop", key.proof(login_url))
                .json(&json!({"username": "kim", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["token_type"], "DPoP");
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let claims = common::jwt_claims(&token);
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");

    let current_url = "http://localhost:8080/v1/sessions/current";
    let dpop_get = |proof: String, scheme: &'static str| {
        s.http
            .get(s.url("/v1/sessions/current"))
            .header("authorization", format!("{scheme} {token}"))
            .header("dpop", proof)
    };
    // As a plain bearer token it is refused; with a proof from its key it works.
    s.get("/v1/sessions/current", Some(&token))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let proof = key.proof_for("GET", current_url, Some(&token));
    assert_eq!(s.send(dpop_get(proof.clone(), "DPoP")).await.status, 200);
    // A replayed proof, another key's proof, a proof for another URL or without ath: no.
    let thief = DpopKey::new();
    for bad in [
        proof,
        thief.proof_for("GET", current_url, Some(&token)),
        key.proof_for("GET", "http://localhost:8080/v1/devices", Some(&token)),
        key.proof_for("GET", current_url, None),
    ] {
        s.send(dpop_get(bad, "DPoP"))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }

    // The decision API checks the proof the relying party relays.
    let app_url = "https://app.example/reports";
    let ask = |proof: Option<String>| {
        let mut body = json!({"access_token": token, "action": "read", "resource": "r"});
        if let Some(p) = proof {
            body["dpop"] = json!({"proof": p, "method": "GET", "url": app_url});
        }
        body
    };
    decide(&s, ask(None))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let ok = decide(&s, ask(Some(key.proof_for("GET", app_url, Some(&token))))).await;
    assert_eq!(ok.body["decision"], "allow", "{}", ok.text);
    assert_eq!(ok.body["token_scheme"], "DPoP");
    decide(&s, ask(Some(thief.proof_for("GET", app_url, Some(&token)))))
        .await
        .assert_problem(401, "UNAUTHENTICATED");

    // An elevation made by this session is bound to the key too: redeeming its token
    // needs a proof from the key over the elevation token.
    let dpop_post = |path: &str, body: Value| {
        let url = format!("http://localhost:8080{path}");
        s.http
            .post(s.url(path))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof_for("POST", &url, Some(&token)))
            .json(&body)
    };
    let step = totp_step_now();
    let enrolled = s.send(dpop_post("/v1/factors/totp", Value::Null)).await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.text);
    let secret = enrolled.body["secret"].as_str().unwrap().to_owned();
    let id = enrolled.body["factor_id"].as_str().unwrap();
    let confirm_path = format!("/v1/factors/totp/{id}/confirm");
    let confirmed = s
        .send(dpop_post(
            &confirm_path,
            json!({"code": oathtool(&secret, step)}),
        ))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let c = s
        .send(dpop_post(
            "/v1/stepup/challenges",
            json!({"purpose": "reports:export"}),
        ))
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let verify_path = common::verify_path(c.body["challenge_id"].as_str().unwrap());
    let v = s
        .send(dpop_post(
            &verify_path,
            json!({"factor": "totp", "code": oathtool(&secret, step + 1)}),
        ))
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let elevation = v.body["elevation_token"].as_str().unwrap().to_owned();
    let action_url = "https://app.example/export";
    let redeem = |proof: Option<String>| {
        let mut body = json!({"elevation_token": elevation, "purpose": "reports:export"});
        if let Some(p) = proof {
            body["dpop"] = json!({"proof": p, "method": "POST", "url": action_url});
        }
        body
    };
    s.redeem(redeem(None))
        .await
        .assert_problem(403, "STEPUP_TOKEN_INVALID");
    s.redeem(redeem(Some(thief.proof_for(
        "POST",
        action_url,
        Some(&elevation),
    ))))
    .await
    .assert_problem(403, "STEPUP_TOKEN_INVALID");
    s.redeem(redeem(Some(key.proof_for(
        "POST",
        action_url,
        Some(&token),
    ))))
    .await
    .assert_problem(403, "STEPUP_TOKEN_INVALID");
    let ok = s
        .redeem(redeem(Some(key.proof_for(
            "POST",
            action_url,
            Some(&elevation),
        ))))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_malformed_policy_file_is_refused_at_start_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.cedar");
    std::fs::write(
        &policies,
        "permit (principal, action, resource);\n\npermit (principal, actoin, resource);\n",
    )
    .unwrap();
    let config = dir.path().join("stepgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\npolicy_file = {:?}\n",
            dir.path().display().to_string(),
            policies.display().to_string()
        ),
    )
    .unwrap();
    for args in [&["policy", "check"][..], &["config", "check"][..]] {
        let (ok, _, stderr) = common::run_cli(&config, args);
        assert!(!ok, "{args:?}");
        assert!(
            stderr.contains("policies.cedar") && stderr.contains("line 3, column 20"),
            "{stderr}"
        );
    }
    let out = common::stepgate(&config).arg("serve").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3, column 20"), "{stderr}");

    // A step-up annotation naming no configured purpose is refused too; a good file passes.
    std::fs::write(
        &policies,
        "@step_up(\"nope\") forbid (principal, action, resource);\n",
    )
    .unwrap();
    let (ok, _, stderr) = common::run_cli(&config, &["policy", "check"]);
    assert!(
        !ok && stderr.contains("names no configured purpose"),
        "{stderr}"
    );
    std::fs::write(&policies, POLICIES).unwrap();
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\npolicy_file = {:?}\n{PURPOSES}",
            dir.path().display().to_string(),
            policies.display().to_string()
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = common::run_cli(&config, &["policy", "check"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("6 policies"), "{stdout}");
}

/// The README's example schema and policies are the real thing: they validate strictly.
#[test]
fn the_readme_policies_validate_against_the_readme_schema() {
    let readme = include_str!("../README.md");
    let block = |fence: &str| {
        let start = readme.find(fence).expect("README block") + fence.len();
        readme[start..][..readme[start..].find("```").unwrap()].to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("stepgate.cedarschema");
    let policies = dir.path().join("policies.cedar");
    std::fs::write(&schema, block("```cedarschema\n")).unwrap();
    std::fs::write(&policies, block("```cedar\n")).unwrap();
    let config = dir.path().join("stepgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\npolicy_file = {:?}\npolicy_schema = {:?}\n{PURPOSES}",
            dir.path().display().to_string(),
            policies.display().to_string(),
            schema.display().to_string()
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = common::run_cli(&config, &["policy", "check"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("5 policies") && stdout.contains("validated against the schema"),
        "{stdout}"
    );
}

/// Issue 11, defect 1: a permit that names one elevation, while the session also holds
/// an unrelated multi-use one that sorts first. The allow must rely on (and check, and
/// use up) the elevation it needs, not the first one held.
#[tokio::test]
async fn an_allow_uses_every_elevation_it_needs_and_only_those() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("policies.cedar");
    std::fs::write(
        &path,
        r#"
        @id("delete-with-elevation")
        permit (principal, action == Action::"delete", resource)
        when { context.elevations.contains("admin:resources:delete") };

        @id("purge-with-both")
        permit (principal, action == Action::"purge", resource)
        when { context.elevations.contains("admin:resources:delete")
               && context.elevations.contains("factors:delete") };
        "#,
    )
    .unwrap();
    let s = Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}",
        path.display().to_string()
    ))
    .await;
    let (token, codes) = s.recovery_user("eve").await;
    let session = |purpose: &str| json!({"purpose": purpose, "mode": "session"});
    let export = s
        .elevate(&token, &codes[0], session("reports:export"))
        .await;
    let delete = s
        .elevate(&token, &codes[1], session("admin:resources:delete"))
        .await;
    let ask = |action: &str, ip: &str| {
        json!({"access_token": token, "action": action, "resource": "db-7",
               "context": {"ip": ip}})
    };

    // The delete elevation is bound to 127.0.0.1: from elsewhere it is refused.
    decide(&s, ask("delete", "203.0.113.9"))
        .await
        .assert_problem(403, "STEPUP_IP_MISMATCH");
    let r = decide(&s, ask("delete", "127.0.0.1")).await;
    assert_eq!(r.body["decision"], "allow", "{}", r.text);
    assert_eq!(r.body["elevation_id"], delete["elevation_id"]);
    assert_eq!(r.body["elevation_ids"], json!([delete["elevation_id"]]));
    // Single use: it is gone, and the multi-use export elevation does not stand in.
    let again = decide(&s, ask("delete", "127.0.0.1")).await;
    assert_eq!(again.body["decision"], "deny", "{}", again.text);
    let used = s
        .audit(&format!(
            "type=ACCOUNT_STEPUP_REDEEMED&user={}",
            r.body["user_id"].as_str().unwrap()
        ))
        .await;
    let ids: Vec<&Value> = used.iter().map(|e| &e["elevation_id"]).collect();
    assert_eq!(ids, vec![&delete["elevation_id"]], "{used:?}");
    assert_ne!(export["elevation_id"], delete["elevation_id"]);

    // Two needed: both are used at once, or neither.
    let delete = s
        .elevate(&token, &codes[2], session("admin:resources:delete"))
        .await;
    let factors = s
        .elevate(&token, &codes[3], session("factors:delete"))
        .await;
    decide(&s, ask("purge", "203.0.113.9"))
        .await
        .assert_problem(403, "STEPUP_IP_MISMATCH");
    let listed = s.get("/v1/stepup/elevations", Some(&token)).await;
    let live: Vec<&Value> = listed.body["elevations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["elevation_id"])
        .collect();
    assert!(live.contains(&&factors["elevation_id"]), "{}", listed.text);
    let r = decide(&s, ask("purge", "127.0.0.1")).await;
    assert_eq!(r.body["decision"], "allow", "{}", r.text);
    assert_eq!(
        r.body["elevation_ids"],
        json!([delete["elevation_id"], factors["elevation_id"]])
    );
    let again = decide(&s, ask("purge", "127.0.0.1")).await;
    assert_eq!(again.body["decision"], "deny", "{}", again.text);
}
