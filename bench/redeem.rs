//! Redeem throughput: single-use elevation tokens consumed over HTTP on loopback, with
//! a `GET /healthz` baseline measured in the same run against the same server.
//!
//!   cargo bench --bench redeem                                    # SQLite
//!   STEPGATE_TEST_DATABASE_URL=postgres://… cargo bench --bench redeem   # PostgreSQL
//!
//! BENCH_REDEEMS (default 2000) tokens are made first (recovery-code step-ups), then
//! redeemed once each by BENCH_CONCURRENCY (default 32) keep-alive workers. The load
//! generator shares the machine's cores with the server.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{PURPOSES, Server};
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `jobs` requests with `workers` concurrent workers; returns requests per second.
async fn run<F, Fut>(jobs: usize, workers: usize, job: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let next = next.clone();
            let job = job.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    job(i).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    jobs as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n = env_usize("BENCH_REDEEMS", 2000);
    let workers = env_usize("BENCH_CONCURRENCY", 32);
    let s =
        Arc::new(Server::with_config(&format!("password_hash_concurrency = 2\n{PURPOSES}")).await);
    let backend = if s.database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    // Tokens: ten per user (one per recovery code), users made eight at a time.
    let users = n.div_ceil(10);
    let made = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(n)));
    {
        let s = s.clone();
        let made = made.clone();
        run(users, 8, move |u| {
            let s = s.clone();
            let made = made.clone();
            async move {
                let token = s.user_token(&format!("bench{u}")).await;
                let codes = s
                    .post("/v1/factors/recovery-codes", Some(&token), Value::Null)
                    .await
                    .body["codes"]
                    .clone();
                for code in codes.as_array().unwrap() {
                    let c = s
                        .challenge(&token, json!({"purpose": "factors:delete"}))
                        .await;
                    let v = s
                        .verify(
                            &token,
                            c["challenge_id"].as_str().unwrap(),
                            "recovery_code",
                            code.as_str().unwrap(),
                        )
                        .await;
                    made.lock()
                        .await
                        .push(v.body["elevation_token"].as_str().unwrap().to_owned());
                }
            }
        })
        .await;
    }
    let tokens = Arc::new(std::mem::take(&mut *made.lock().await));
    let http = reqwest::Client::new();

    let baseline = {
        let (http, url) = (http.clone(), s.url("/healthz"));
        run(tokens.len(), workers, move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                assert!(http.get(url).send().await.unwrap().status().is_success());
            }
        })
        .await
    };
    let redeems = {
        let (http, url, key, tokens) = (
            http.clone(),
            s.url("/v1/stepup/redeem"),
            s.service_key.clone(),
            tokens.clone(),
        );
        run(tokens.len(), workers, move |i| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            let body = json!({"elevation_token": tokens[i], "purpose": "factors:delete"});
            async move {
                let r = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
        .await
    };
    println!(
        "backend: {backend}; {} tokens, {workers} concurrent workers",
        tokens.len()
    );
    println!("GET /healthz baseline: {baseline:.0} req/s");
    println!(
        "POST /v1/stepup/redeem: {redeems:.0} redeems/s ({:.1}% of baseline)",
        100.0 * redeems / baseline
    );
}
