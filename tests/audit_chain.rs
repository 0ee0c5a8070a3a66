//! The tamper-evident audit log: the hash chain and its signed checkpoints, checked by
//! `GET /v1/audit/verify` and `stepgate audit verify`. Each attack is done the way an
//! attacker with database access would do it, behind the server's back, and must be
//! found at the right seq by both.

mod common;

use std::time::Duration;

use common::{Server, eventually};
use serde_json::Value;

/// The API's verdict.
async fn api_verdict(s: &Server) -> Value {
    let r = s.get("/v1/audit/verify", Some(&s.admin_key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The CLI's verdict and whether it exited 0.
fn cli_verdict(s: &Server, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let (ok, out, err) = s.cli(&all);
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no verdict: {err}"));
    (ok, serde_json::from_str(line).unwrap())
}

/// Both verdicts agree that the chain is broken at `seq` for a reason starting `reason`.
async fn assert_broken(s: &Server, seq: i64, reason: &str) {
    let api = api_verdict(s).await;
    assert_eq!(api["ok"], false, "{api}");
    assert_eq!(api["first_bad_seq"], seq, "{api}");
    assert!(api["reason"].as_str().unwrap().starts_with(reason), "{api}");
    let (exit_ok, cli) = cli_verdict(s, &[]);
    assert!(!exit_ok, "the CLI exits 1 on a broken chain");
    assert_eq!(cli, api);
}

async fn assert_intact(s: &Server, events: usize) {
    let api = api_verdict(s).await;
    assert_eq!(api, serde_json::json!({"ok": true, "checked": events}));
    let (exit_ok, cli) = cli_verdict(s, &[]);
    assert!(exit_ok);
    assert_eq!(cli, api);
}

#[tokio::test]
async fn altering_reordering_and_deleting_a_row_are_each_found_at_its_seq() {
    let s = Server::start().await;
    for name in ["ada", "bo", "cy", "di", "ed", "flo"] {
        s.create_user(name).await;
    }
    let events = s.audit("").await;
    assert!(events.len() >= 8, "two API keys and six users");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "gapless from 1");
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
        let prev = if i == 0 {
            "0".repeat(64)
        } else {
            events[i - 1]["hash"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            e["prev_hash"],
            prev.as_str(),
            "each event links to the one before"
        );
    }
    assert_intact(&s, events.len()).await;

    // Altered: one field of one row.
    assert_eq!(
        s.sql("UPDATE audit_events SET ip = '203.0.113.66' WHERE seq = 5")
            .await,
        1
    );
    assert_broken(&s, 5, "altered").await;
    s.sql("UPDATE audit_events SET ip = NULL WHERE seq = 5")
        .await;
    assert_intact(&s, events.len()).await;

    // Altered JSON data: a user's name rewritten.
    let data = s
        .sql_strings("SELECT data FROM audit_events WHERE seq = 6")
        .await
        .remove(0);
    s.sql(&format!(
        "UPDATE audit_events SET data = '{}' WHERE seq = 6",
        data.replacen("\":\"", "\":\"x", 1).replace('\'', "''")
    ))
    .await;
    assert_broken(&s, 6, "altered").await;
    s.sql(&format!(
        "UPDATE audit_events SET data = '{}' WHERE seq = 6",
        data.replace('\'', "''")
    ))
    .await;
    assert_intact(&s, events.len()).await;

    // Reordered: rows 4 and 5 swap places.
    for step in [
        "UPDATE audit_events SET seq = -5 WHERE seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -5",
    ] {
        s.sql(step).await;
    }
    assert_broken(&s, 4, "reordered").await;
    for step in [
        "UPDATE audit_events SET seq = -4 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE seq = -4",
    ] {
        s.sql(step).await;
    }
    assert_intact(&s, events.len()).await;

    // Deleted: reported at its own seq.
    assert_eq!(s.sql("DELETE FROM audit_events WHERE seq = 3").await, 1);
    assert_broken(&s, 3, "deleted").await;
}

#[tokio::test]
async fn cutting_the_tail_after_a_signed_checkpoint_is_found_and_so_is_a_forged_checkpoint() {
    let s = Server::with_config("[audit]\ncheckpoint_every = 4\n").await;
    for i in 0..10 {
        s.create_user(&format!("user{i}")).await;
    }
    let total = s.audit("").await.len() as i64;
    let signed = eventually(Duration::from_secs(10), async || {
        s.sql_i64("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints")
            .await
            >= total - 3
    })
    .await;
    assert!(signed, "a checkpoint at least every 4 events");
    assert_intact(&s, total as usize).await;

    // A checkpoint's hash changed: its signature no longer covers it.
    let k = s.sql_i64("SELECT MIN(seq) FROM audit_checkpoints").await;
    let hash = s
        .sql_strings(&format!(
            "SELECT signature FROM audit_checkpoints WHERE seq = {k}"
        ))
        .await
        .remove(0);
    let forged = format!("{}A{}", &hash[..10], &hash[11..]);
    let forged = if forged == hash {
        format!("{}B{}", &hash[..10], &hash[11..])
    } else {
        forged
    };
    s.sql(&format!(
        "UPDATE audit_checkpoints SET signature = '{forged}' WHERE seq = {k}"
    ))
    .await;
    assert_broken(&s, k, "the signature of checkpoint").await;
    s.sql(&format!(
        "UPDATE audit_checkpoints SET signature = '{hash}' WHERE seq = {k}"
    ))
    .await;
    assert_intact(&s, total as usize).await;

    // The tail cut off below the latest checkpoint: every row left links correctly,
    // only the signed head knows more existed.
    let latest = s.sql_i64("SELECT MAX(seq) FROM audit_checkpoints").await;
    s.sql(&format!(
        "DELETE FROM audit_events WHERE seq > {}",
        latest - 2
    ))
    .await;
    assert_broken(
        &s,
        latest - 1,
        &format!("truncated after checkpoint {latest}"),
    )
    .await;
}

#[tokio::test]
async fn two_nodes_appending_at_once_keep_one_gapless_chain() {
    let a = Server::start().await;
    if !a.database_url.starts_with("postgres") {
        eprintln!("two nodes share a database on PostgreSQL only (set STEPGATE_TEST_DATABASE_URL)");
        return;
    }
    let shared = format!(
        "signing_key_file = {:?}\nsecrets_key_file = {:?}\n[audit]\ncheckpoint_every = 7\n",
        a.dir.path().join("signing-keys.json").display().to_string(),
        a.dir.path().join("secrets.key").display().to_string(),
    );
    let b = Server::on_database(&shared, Some(a.database_url.clone())).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            node.create_user(&format!("n{i}")).await;
            // A wrong password: another event, on the other write path.
            node.login(&format!("n{i}"), "not the password").await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = a.audit("limit=10000").await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    assert!(events.len() >= 4 + 80, "{}", events.len());
    assert_intact(&a, events.len()).await;
    assert_eq!(api_verdict(&b).await, api_verdict(&a).await);
}

/// A third party checks the chain from the listing alone with Python's standard
/// library, following ARCHITECTURE.md's "The audit chain": no stepgate code involved.
#[tokio::test]
async fn a_third_party_verifies_the_listing_with_python_alone() {
    let s = Server::start().await;
    let label = "ünïcode \"quoted\" back\\slash ☃ 𝄞";
    let r = s
        .post(
            "/v1/api-keys",
            Some(&s.admin_key),
            serde_json::json!({"scope": "service", "label": label}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = s.user_token("grace").await;
    s.login("grace", "wrong password").await;
    drop(token);
    let listing = s.get("/v1/audit", Some(&s.admin_key)).await.text;
    assert!(
        listing.contains("back\\\\slash ☃"),
        "the label is in the log: {listing}"
    );
    let script = r#"
import hashlib, json, sys
events = json.load(sys.stdin)["events"]
prev = "0" * 64
for e in events:
    assert e.pop("prev_hash") == prev, ("prev_hash", e["seq"])
    claimed = e.pop("hash")
    canonical = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    computed = hashlib.sha256(bytes.fromhex(prev) + canonical.encode("utf-8")).hexdigest()
    assert computed == claimed, ("hash", e["seq"], canonical)
    prev = claimed
print(len(events))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test-deps)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(listing.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(checked >= 6, "{checked}");
    assert_intact(&s, checked).await;
}
