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
