//! Single use under concurrency: 64 concurrent redeems of one single-use elevation token
//! → exactly one success and 63 `STEPUP_TOKEN_REUSED`, each with its
//! `ACCOUNT_STEPUP_REUSED` event. 100 rounds per backend, and on PostgreSQL once more
//! with the redeems split between two server processes sharing the database.

mod common;

use std::collections::HashMap;

use common::{PURPOSES, Server};
use serde_json::{Value, json};

const ROUNDS: usize = 100;
const RACERS: usize = 64;
const PURPOSE: &str = "factors:delete";

/// `ROUNDS` fresh single-use elevation tokens, from recovery-code step-ups.
async fn elevation_tokens(s: &Server) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut user = 0;
    while tokens.len() < ROUNDS {
        user += 1;
        let token = s.user_token(&format!("racer{user}")).await;
        let codes = s
            .post("/v1/factors/recovery-codes", Some(&token), Value::Null)
            .await
            .body["codes"]
            .clone();
        for code in codes.as_array().unwrap() {
            if tokens.len() == ROUNDS {
                break;
            }
            let c = s.challenge(&token, json!({"purpose": PURPOSE})).await;
            let v = s
                .verify(
                    &token,
                    c["challenge_id"].as_str().unwrap(),
                    "recovery_code",
                    code.as_str().unwrap(),
                )
                .await;
            assert_eq!(v.status, 200, "{}", v.text);
            tokens.push(v.body["elevation_token"].as_str().unwrap().to_owned());
        }
    }
    tokens
}

/// Races `RACERS` redeems of each token, spread over `nodes`; asserts exactly one
/// winner per token and that every loser was told `STEPUP_TOKEN_REUSED`.
async fn race(nodes: &[&Server], service_key: &str, tokens: &[String]) {
    let http = reqwest::Client::new();
    for (round, token) in tokens.iter().enumerate() {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let url = nodes[i % nodes.len()].url("/v1/stepup/redeem");
                let http = http.clone();
                let key = service_key.to_owned();
                let body = json!({"elevation_token": token, "purpose": PURPOSE});
                tokio::spawn(async move {
                    let r = http
                        .post(url)
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap();
                    (status, body["code"].as_str().unwrap_or("").to_owned())
                })
            })
            .collect();
        let mut outcomes: HashMap<(u16, String), usize> = HashMap::new();
        for r in racers {
            *outcomes.entry(r.await.unwrap()).or_default() += 1;
        }
        let expected = HashMap::from([
            ((200, String::new()), 1),
            ((403, "STEPUP_TOKEN_REUSED".to_owned()), RACERS - 1),
        ]);
        assert_eq!(outcomes, expected, "round {round}");
    }
}

async fn assert_audit(s: &Server) {
    let reused = s.audit("type=ACCOUNT_STEPUP_REUSED&limit=10000").await;
    let mut per_elevation: HashMap<String, usize> = HashMap::new();
    for e in &reused {
        *per_elevation
            .entry(e["elevation_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
        assert_eq!(e["data"]["severity"], "critical");
    }
    assert_eq!(per_elevation.len(), ROUNDS);
    assert!(
        per_elevation.values().all(|&n| n == RACERS - 1),
        "{per_elevation:?}"
    );
    assert_eq!(
        s.audit("type=ACCOUNT_STEPUP_REDEEMED&limit=10000")
            .await
            .len(),
        ROUNDS
    );
    // Appends stayed gapless under the race.
    let all = s.audit("limit=10000").await;
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_redeems_of_a_single_use_token_have_one_winner() {
    let s = Server::with_config(PURPOSES).await;
    let tokens = elevation_tokens(&s).await;
    race(&[&s], &s.service_key, &tokens).await;
    assert_audit(&s).await;
}

#[tokio::test]
async fn two_nodes_sharing_postgres_still_have_one_winner() {
    let a = Server::with_config(PURPOSES).await;
    if !a.database_url.starts_with("postgres") {
        eprintln!("two-node race runs on PostgreSQL only (set STEPGATE_TEST_DATABASE_URL)");
        return;
    }
    let b = Server::on_database(PURPOSES, Some(a.database_url.clone())).await;
    let tokens = elevation_tokens(&a).await;
    race(&[&a, &b], &a.service_key, &tokens).await;
    assert_audit(&a).await;
}

/// POSTs every body to `path` at once (one task each); counts answers by status and
/// code.
async fn race_posts(
    s: &Server,
    path: &str,
    bearer: Option<&str>,
    bodies: Vec<Value>,
) -> HashMap<(u16, String), usize> {
    let posts = bodies.into_iter().map(|b| (path.to_owned(), b)).collect();
    race_requests(s, bearer, posts).await
}

/// POSTs every (path, body) at once (one task each); counts answers by status and code.
async fn race_requests(
    s: &Server,
    bearer: Option<&str>,
    posts: Vec<(String, Value)>,
) -> HashMap<(u16, String), usize> {
    let racers: Vec<_> = posts
        .into_iter()
        .map(|(path, body)| {
            let mut req = s.http.post(s.url(&path)).json(&body);
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (status, body["code"].as_str().unwrap_or("").to_owned())
            })
        })
        .collect();
    let mut counts = HashMap::new();
    for r in racers {
        *counts.entry(r.await.unwrap()).or_default() += 1;
    }
    counts
}

/// 30 concurrent wrong passwords for one account: the lockout (10 in 15 min) holds
/// exactly, because each attempt reserves its place before its password is checked.
#[tokio::test]
async fn concurrent_wrong_passwords_cannot_overrun_the_lockout() {
    let s = Server::with_config(PURPOSES).await;
    s.create_user("target").await;
    let bodies = vec![json!({"username": "target", "password": "wrong password!"}); 30];
    let counts = race_posts(&s, "/v1/sessions", None, bodies).await;
    let expected = HashMap::from([
        ((401, "INVALID_CREDENTIALS".to_owned()), 10),
        ((423, "ACCOUNT_LOCKED".to_owned()), 20),
    ]);
    assert_eq!(counts, expected);
    assert_eq!(s.audit("type=ACCOUNT_LOGIN_FAILED").await.len(), 10);
    // Nothing is left reserved: exactly the ten failures are stored.
    assert_eq!(s.db_snapshot().await["login_failures"], 10);
}

/// 20 concurrent wrong step-up answers spread over four challenges: the per-user budget
/// (10 per factor in 15 min) holds exactly across challenges.
#[tokio::test]
async fn concurrent_wrong_step_ups_cannot_overrun_the_budget() {
    let s = Server::with_config(PURPOSES).await;
    let token = s.user_token("ada").await;
    let step = common::totp_step_now();
    let secret = s.enroll_totp(&token, step).await;
    let right: Vec<String> = (step - 2..=step + 3)
        .map(|t| common::oathtool(&secret, t))
        .collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !right.contains(c))
        .unwrap();
    // Five answers per challenge (its own limit), twenty in all, all at once.
    let mut posts = Vec::new();
    for _ in 0..4 {
        let path = export_challenge(&s, &token).await;
        let body = json!({"factor": "totp", "code": wrong});
        posts.extend(std::iter::repeat_n((path, body), 5));
    }
    let counts = race_requests(&s, Some(&token), posts).await;
    let expected = HashMap::from([
        ((401, "STEPUP_FAILED".to_owned()), 10),
        ((403, "STEPUP_BLOCKED".to_owned()), 10),
    ]);
    assert_eq!(counts, expected);
    assert_eq!(s.db_snapshot().await["stepup_failures"], 10);
    // The budget is spent for this factor: a new challenge no longer offers it (only
    // the recovery codes that came with it), and TOTP answers are refused outright.
    let c = s
        .challenge(&token, json!({"purpose": "reports:export"}))
        .await;
    assert_eq!(c["allowed_factors"], json!(["recovery_code"]));
    s.verify(&token, c["challenge_id"].as_str().unwrap(), "totp", &wrong)
        .await
        .assert_problem(403, "STEPUP_BLOCKED");
}

/// Ten different right recovery codes answer one challenge at once: one completes it,
/// the others find it closed or busy, and only the winner's code is spent (a code is used up in
/// the transaction that completes the challenge, never by an answer that did not).
#[tokio::test]
async fn right_answers_that_lose_the_race_keep_their_codes() {
    let s = Server::with_config(PURPOSES).await;
    let (token, codes) = s.recovery_user("ada").await;
    let path = export_challenge(&s, &token).await;
    let bodies = codes
        .iter()
        .map(|code| json!({"factor": "recovery_code", "code": code}))
        .collect();
    let counts = race_posts(&s, &path, Some(&token), bodies).await;
    // Each of the others either held one of the challenge's five attempts and found it
    // completed (410), or found every attempt taken by answers being checked (409).
    assert_eq!(counts.get(&(200, String::new())), Some(&1), "{counts:?}");
    let closed = counts
        .get(&(410, "CHALLENGE_EXPIRED".to_owned()))
        .unwrap_or(&0);
    let busy = counts.get(&(409, "CONFLICT".to_owned())).unwrap_or(&0);
    assert_eq!(closed + busy, 9, "{counts:?}");
    assert_eq!(codes_left(&s, &token).await, 9);
    assert_eq!(s.db_snapshot().await["stepup_failures"], 0);
    // The nine losers' codes still work, one challenge each; the winner's does not.
    let mut outcomes: HashMap<u16, usize> = HashMap::new();
    for code in &codes {
        let path = export_challenge(&s, &token).await;
        let body = json!({"factor": "recovery_code", "code": code});
        let r = s.post(&path, Some(&token), body).await;
        *outcomes.entry(r.status).or_default() += 1;
    }
    assert_eq!(outcomes, HashMap::from([(200, 9), (401, 1)]));
}

/// One right TOTP code answers two challenges at once: it is accepted once.
#[tokio::test]
async fn one_code_answering_two_challenges_at_once_is_accepted_once() {
    let s = Server::with_config(PURPOSES).await;
    let token = s.user_token("ada").await;
    let step = common::totp_step_now();
    let secret = s.enroll_totp(&token, step).await;
    let code = common::oathtool(&secret, step + 1);
    let mut posts = Vec::new();
    for _ in 0..2 {
        let path = export_challenge(&s, &token).await;
        posts.push((path, json!({"factor": "totp", "code": code})));
    }
    let counts = race_requests(&s, Some(&token), posts).await;
    let expected = HashMap::from([
        ((200, String::new()), 1),
        ((401, "STEPUP_FAILED".to_owned()), 1),
    ]);
    assert_eq!(counts, expected);
    assert_eq!(s.db_snapshot().await["elevations"], 1);
}

/// Opens a new `reports:export` challenge (each for another action, so it is not the
/// pending one given back); returns the route that answers it.
async fn export_challenge(s: &Server, token: &str) -> String {
    let summary = format!("export {}", uuid::Uuid::new_v4());
    let c = s
        .challenge(
            token,
            json!({"purpose": "reports:export", "action_summary": summary}),
        )
        .await;
    common::verify_path(c["challenge_id"].as_str().unwrap())
}

async fn codes_left(s: &Server, token: &str) -> i64 {
    let factors = s.get("/v1/factors", Some(token)).await.body;
    factors["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "recovery_code")
        .and_then(|f| f["codes_left"].as_i64())
        .unwrap()
}

/// Issue 11, defect 7: concurrent answers to one challenge. Each answer takes one of the
/// challenge's attempts before its code is compared, so of ten answers at once (nine
/// wrong recovery codes and one right one) at most `max_attempts` (5) are compared, and
/// every wrong one compared counts. Before, all ten were compared, and the right code
/// was compared against a challenge already out of attempts (answered 410).
#[tokio::test]
async fn concurrent_answers_to_one_challenge_never_outnumber_its_attempts() {
    let s = Server::with_config(&format!(
        "[stepup]\nmax_failures_per_window = 1000\n[rate_limits]\nverify_per_minute = 10000\n{PURPOSES}"
    ))
    .await;
    let (token, codes) = s.recovery_user("mallory").await;
    let http = reqwest::Client::new();
    let mut trials = Vec::new();
    for (trial, right) in codes.iter().take(8).enumerate() {
        let c = s.challenge(&token, json!({"purpose": PURPOSE})).await;
        let url = s.url(&common::verify_path(c["challenge_id"].as_str().unwrap()));
        let answers: Vec<String> = (0..9)
            .map(|i| format!("wrong{trial}{i:04}"))
            .chain([right.clone()])
            .collect();
        let racers: Vec<_> = answers
            .into_iter()
            .enumerate()
            .map(|(i, code)| {
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                // In odd trials the right code leaves a little after the wrong ones, so
                // that it meets a challenge whose attempts they hold (or used up).
                let late = trial % 2 == 1 && i == 9;
                tokio::spawn(async move {
                    if late {
                        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
                    }
                    let r = http
                        .post(url)
                        .bearer_auth(token)
                        .json(&json!({"factor": "recovery_code", "code": code}))
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    (status, body)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for r in racers {
            outcomes.push(r.await.unwrap());
        }
        let failed = outcomes
            .iter()
            .filter(|(_, b)| b["code"] == "STEPUP_FAILED")
            .count();
        let passed = outcomes.iter().filter(|(st, _)| *st == 200).count();
        trials.push((
            c["challenge_id"].as_str().unwrap().to_owned(),
            failed,
            passed,
        ));
        assert!(
            failed + passed <= 5,
            "trial {trial}: {failed} wrong and {passed} right answers compared: {outcomes:?}"
        );
        for (status, body) in &outcomes {
            assert!(
                [200, 401, 403, 409, 410].contains(status),
                "trial {trial}: {status} {body}"
            );
        }
        // The right code is either compared while an attempt is held for it (and wins),
        // or not compared at all (STEPUP_BLOCKED: out of attempts; CONFLICT: every
        // attempt left is being checked); never compared against a challenge
        // that ran out of attempts meanwhile (410).
        let (status, body) = outcomes.last().unwrap();
        assert!(
            *status == 200 || body["code"] == "STEPUP_BLOCKED" || body["code"] == "CONFLICT",
            "trial {trial}: the right code got {status} {body}"
        );
    }
    // Every wrong code compared counts (an audit event each, also when the challenge was
    // completed meanwhile), and still no more than the challenge's attempts.
    let user = common::jwt_claims(&token)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = s
        .audit(&format!(
            "type=ACCOUNT_STEPUP_FAILED&user={user}&limit=1000"
        ))
        .await;
    for (id, failed, passed) in &trials {
        let counted = events
            .iter()
            .filter(|e| e["challenge_id"] == id.as_str())
            .count();
        assert!(
            counted >= *failed,
            "{id}: {counted} events for {failed} failures"
        );
        assert!(
            counted + passed <= 5,
            "{id}: {counted} counted and {passed} passed"
        );
    }
}
