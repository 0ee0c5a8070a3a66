//! The OpenAPI document is true: schemathesis, a property-based fuzzer, generates
//! requests from the document the binary serves and checks every answer against it.
//! It fails on a 5xx, a status the operation does not document, a body that violates
//! its schema or content type, and a schema-valid request that is refused with 400.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{PURPOSES, Server, totp_step_now};
use serde_json::{Value, json};

/// Where `scripts/test-deps` installs schemathesis (a pinned version, in a venv).
fn schemathesis() -> PathBuf {
    let st = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/test-tools/schemathesis/bin/st"
    ));
    assert!(
        st.exists(),
        "{} is missing: run scripts/test-deps",
        st.display()
    );
    st
}

/// Examples per operation and phase; the whole run stays near a minute per backend.
const MAX_EXAMPLES: &str = "25";
/// A fixed seed keeps the suite repeatable; `STEPGATE_FUZZ_SEED` explores other inputs.
const DEFAULT_SEED: &str = "20261203";

/// The checks the issue names: no server error, only documented statuses, bodies and
/// content types as documented, and schema-valid requests accepted.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance,\
                      content_type_conformance,positive_data_acceptance";

struct Run {
    ok: bool,
    output: String,
    generated: u64,
}

/// Runs schemathesis against the server with `config` (a schemathesis.toml) and `args`.
fn fuzz(server: &Server, config: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schemathesis.toml"), config).unwrap();
    let seed = std::env::var("STEPGATE_FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let out = Command::new(schemathesis())
        .current_dir(dir.path())
        .args(["run", &server.url("/openapi.json")])
        .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed, "--workers", "1", "--no-color"])
        .args(args)
        .output()
        .expect("running schemathesis");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary says "N generated, …".
    let generated = output
        .lines()
        .find_map(|l| l.trim().split_once(" generated,")?.0.parse().ok())
        .unwrap_or(0);
    Run {
        ok: out.status.success(),
        output,
        generated,
    }
}

/// The credentials of each security scheme, as schemathesis applies them by the
/// operation's declared security; answers a schema-valid request may get besides 2xx.
fn config(admin_key: &str, service_key: &str, access_token: &str, extra: &str) -> String {
    format!(
        r#"
[auth.openapi.admin_key]
bearer = "{admin_key}"
[auth.openapi.service_key]
bearer = "{service_key}"
[auth.openapi.access_token]
bearer = "{access_token}"

# Well-formed requests may still meet state: an unknown id (404), a conflict (409), an
# expired challenge (410), a locked account (423), a limit (429), a refusal (401, 403).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "410", "423", "429"]
{extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_what_the_server_does() {
    let server = Server::with_config(PURPOSES).await;
    // A user with TOTP and an open challenge, so that the fuzzer reaches past 404s.
    let token = server.user_token("fuzzer").await;
    server.enroll_totp(&token, totp_step_now()).await;
    let challenge = server
        .challenge(&token, json!({"purpose": "factors:delete"}))
        .await;
    let factors = server.get("/v1/factors", Some(&token)).await;
    let factor_id = factors.body["factors"][0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Known values the fuzzer mixes into what it generates, so that requests get past
    // "no such …" to the logic behind it.
    let known_values = format!(
        r#"
[dictionaries.access_tokens]
values = ["{token}"]
[dictionaries.purposes]
values = ["admin:resources:delete", "factors:delete", "payroll:transmit", "reports:export"]

[[operations]]
include-operation-id = "verifyChallenge"
parameters = {{ id = "{challenge}" }}
[[operations]]
include-operation-id = "deleteFactor"
parameters = {{ id = "{factor_id}" }}
[[operations]]
include-operation-id = "decide"
parameters = {{ "body.access_token" = {{ dictionary = "access_tokens", probability = 0.9 }}, "body.purpose" = {{ dictionary = "purposes", probability = 0.5 }} }}
[[operations]]
include-operation-id = "createChallenge"
parameters = {{ "body.purpose" = {{ dictionary = "purposes", probability = 0.7 }} }}
[[operations]]
include-operation-id = "redeemElevation"
parameters = {{ "body.purpose" = {{ dictionary = "purposes", probability = 0.7 }} }}
[[operations]]
include-operation-id = "updatePurpose"
parameters = {{ purpose = {{ dictionary = "purposes", probability = 0.7 }} }}
"#,
        challenge = challenge["challenge_id"].as_str().unwrap(),
    );
    let everything = fuzz(
        &server,
        &config(
            &server.admin_key,
            &server.service_key,
            &token,
            &known_values,
        ),
        // Logging out would end the session the other operations use: it has its own run.
        &["--exclude-operation-id", "logout"],
    );
    assert!(
        everything.ok,
        "schemathesis found the document untrue:\n{}",
        everything.output
    );

    let logout_token = server.session_token("fuzzer").await;
    let logout = fuzz(
        &server,
        &config(&server.admin_key, &server.service_key, &logout_token, ""),
        &["--include-operation-id", "logout"],
    );
    assert!(
        logout.ok,
        "schemathesis found logout's description untrue:\n{}",
        logout.output
    );

    let requests = everything.generated + logout.generated;
    println!(
        "schemathesis: {requests} generated requests over {} operations, no failure",
        operations(&server).await
    );
    // Every operation is fuzzed with a fair number of requests, not a handful.
    assert!(
        requests > 1000,
        "only {requests} requests were generated:\n{}",
        everything.output
    );
}

async fn operations(server: &Server) -> usize {
    let doc: Value = server.get("/openapi.json", None).await.body;
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum()
}
