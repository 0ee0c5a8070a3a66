//! Running it: first start with no config, config checks, discovery, health, metrics,
//! OpenAPI, client IP behind proxies, logs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, PASSWORD, PURPOSES, Server, eventually, run_cli};
use serde_json::json;

#[tokio::test]
async fn a_fresh_start_needs_no_config() {
    let cwd = tempfile::tempdir().unwrap();
    let clean = |cmd: &mut Command| common::fresh_machine(cmd, cwd.path());
    let mut serve = Command::new(BIN);
    clean(&mut serve);
    let mut child = serve
        .arg("serve")
        .env("STEPGATE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = Vec::new();
    let mut addr = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = Some(rest.split_whitespace().next().unwrap().to_owned());
            break;
        }
        output.push(line);
    }
    let addr = addr.expect("the server announced its address");
    let printed = output.join("\n");
    assert!(
        printed.contains("stepgate api-keys create --scope admin"),
        "{printed}"
    );

    let data = cwd.path().join("data");
    for file in [
        "stepgate.toml",
        "stepgate.db",
        "signing-keys.json",
        "secrets.key",
    ] {
        assert!(data.join(file).exists(), "{file} was not created");
    }
    use std::os::unix::fs::PermissionsExt;
    for secret in ["signing-keys.json", "secrets.key"] {
        let mode = std::fs::metadata(data.join(secret))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{secret} is readable by others");
    }
    let dev_config = std::fs::read_to_string(data.join("stepgate.toml")).unwrap();
    for purpose in [
        "admin:resources:delete",
        "factors:delete",
        "payroll:transmit",
    ] {
        assert!(dev_config.contains(purpose));
    }
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        data.join("stepgate.db").display()
    ))
    .await
    .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    // The database holds sessions, hashed secrets and the audit: owner only, like the
    // key files, and so are the WAL and shared-memory files beside it (both exist while
    // the server runs).
    for file in ["stepgate.db", "stepgate.db-wal", "stepgate.db-shm"] {
        let mode = std::fs::metadata(data.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {mode:o}");
    }

    // The CLI run from the same place writes into the same database.
    let mut create = Command::new(BIN);
    clean(&mut create);
    let out = create
        .args(["api-keys", "create", "--scope", "service"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/users"))
        .bearer_auth(&key)
        .json(&json!({"username": "first", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let check = |toml: &str, env: &[(&str, &str)]| {
        std::fs::write(&path, toml).unwrap();
        let mut cmd = common::stepgate(&path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(["config", "check"]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _) = check("listen = \"127.0.0.1:9000\"\n", &[]);
    assert!(ok);
    let (ok, stderr) = check(
        "listen = \"[::1]:9000\"\n[testing]\nclock_control = true\n",
        &[],
    );
    assert!(ok, "{stderr}");
    // The SPEC's forward-auth rules, and the older `[[forward_auth.routes]]` spelling.
    for rules in [
        "[[forward_auth]]\nmethod = \"DELETE\"\npath = \"/resources/*\"\npurpose = \"factors:delete\"\n\
         [[forward_auth]]\nmethod = \"*\"\npath = \"/reports\"\naction = \"read\"\nresource = \"r:{path}\"\n",
        "[[forward_auth.routes]]\nmethods = [\"DELETE\"]\npath_prefix = \"/resources/\"\npurpose = \"factors:delete\"\n",
    ] {
        let (ok, stderr) = check(rules, &[]);
        assert!(ok, "{rules}: {stderr}");
    }

    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Env, &str)] = &[
        ("listen = \"nowhere\"\n", &[], "listen"),
        ("lissen = \"127.0.0.1:1\"\n", &[], "lissen"),
        ("", &[("STEPGATE_LISTEN", "nowhere")], "STEPGATE_LISTEN"),
        ("[session]\nttl_seconds = -5\n", &[], "session.ttl_seconds"),
        (
            "trusted_proxies = [\"10.0.0.0/33\"]\n",
            &[],
            "trusted_proxies",
        ),
        ("database_url = \"mysql://x\"\n", &[], "database_url"),
        (
            "[[purposes]]\nname = \"a:b\"\ntitle = \"A\"\nfactor = \"strong\"\nttl_seconds = 60\n",
            &[],
            "purposes[0].factor",
        ),
        ("listen = ", &[], "TOML"),
        // The test clock: never from the environment, never off loopback.
        (
            "",
            &[("STEPGATE_TESTING__CLOCK_CONTROL", "true")],
            "STEPGATE_TESTING__CLOCK_CONTROL: testing settings are read from the config file only",
        ),
        (
            "listen = \"0.0.0.0:9000\"\n[testing]\nclock_control = true\n",
            &[],
            "testing.clock_control: lets an admin key move the clock",
        ),
        // Forward-auth rules: the key, and the shape expected.
        (
            "forward_auth = 3\n",
            &[],
            "forward_auth: invalid type: found signed int `3`, expected an array of [[forward_auth]] tables",
        ),
        (
            "[[forward_auth]]\nmethod = \"DELETE\"\npath = \"resources/*\"\npurpose = \"factors:delete\"\n",
            &[],
            "forward_auth[0].path: \"resources/*\" must start with /",
        ),
        (
            "[[forward_auth]]\npath = \"/a/../b/*\"\npurpose = \"factors:delete\"\n",
            &[],
            "write \"/b/\" instead",
        ),
        (
            "[[forward_auth]]\npath = \"/resources/*\"\npurpose = \"nope:nope\"\n",
            &[],
            "forward_auth[0].purpose: no purpose named \"nope:nope\"",
        ),
        (
            "[[forward_auth]]\npath = \"/resources/*\"\naction = \"delete\"\n",
            &[],
            "forward_auth[0]: give either purpose, or both action and resource",
        ),
        (
            "[[forward_auth]]\nmethod = 7\npath = \"/r\"\npurpose = \"factors:delete\"\n",
            &[],
            "expected an HTTP method such as \"DELETE\"",
        ),
    ];
    for (toml, env, key) in cases {
        let (ok, stderr) = check(toml, env);
        assert!(!ok, "{toml} was accepted");
        assert!(
            stderr.contains(key),
            "error for {toml:?} does not name {key}: {stderr}"
        );
    }
    let missing = dir.path().join("missing.toml");
    let (ok, _, stderr) = run_cli(&missing, &["config", "check"]);
    assert!(!ok);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn health_discovery_metrics_and_openapi() {
    let s = Server::start().await;
    assert_eq!(s.get("/healthz", None).await.body["status"], "ok");
    assert_eq!(s.get("/readyz", None).await.body["status"], "ready");

    let d = s.get("/.well-known/openid-configuration", None).await.body;
    assert_eq!(d["issuer"], "http://localhost:8080");
    assert_eq!(d["jwks_uri"], "http://localhost:8080/.well-known/jwks.json");
    assert!(
        d["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:stepgate:acr:pwd"))
    );

    s.login("nobody", PASSWORD).await;
    let metrics = s.send(s.http.get(s.url("/metrics"))).await.text;
    assert!(
        metrics.contains(
            r#"stepgate_http_requests_total{method="POST",route="/v1/sessions",status="401"} 1"#
        ),
        "{metrics}"
    );

    let api = s.get("/openapi.json", None).await.body;
    assert!(api["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/v1/users", "post"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/current", "get"),
        ("/v1/sessions/current", "delete"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys/{id}", "delete"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/factors/totp", "post"),
        ("/v1/factors/totp/{id}/confirm", "post"),
        ("/v1/factors/recovery-codes", "post"),
        ("/v1/factors", "get"),
        ("/v1/factors/{id}", "delete"),
        ("/v1/stepup/challenges", "post"),
        ("/v1/stepup/challenges/{id}/verify", "post"),
        ("/v1/stepup/redeem", "post"),
        ("/v1/stepup/elevations", "get"),
        ("/v1/stepup/elevations/{id}", "delete"),
        ("/v1/policy", "get"),
        ("/v1/policy/purposes/{purpose}", "put"),
        ("/v1/audit", "get"),
    ] {
        assert!(
            api["paths"][path][method].is_object(),
            "{method} {path} is undocumented"
        );
    }
    assert!(api["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away() {
    let s = Server::start().await;
    assert_eq!(s.get("/readyz", None).await.status, 200);
    if s.database_url.starts_with("postgres") {
        use sqlx::Connection;
        let admin = std::env::var("STEPGATE_TEST_DATABASE_URL").unwrap();
        let name = s.database_url.rsplit('/').next().unwrap().to_owned();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
        s.get("/readyz", None)
            .await
            .assert_problem(503, "UNAVAILABLE");
        // Anything else that needs the database fails cleanly, without details.
        let r = s.login("anyone", PASSWORD).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.body["code"], "INTERNAL");
        assert!(!r.text.contains("database"), "{}", r.text);
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let direct = Server::start().await;
    let proxied = Server::with_config("trusted_proxies = [\"127.0.0.1/32\"]\n").await;
    for (s, expected) in [(&direct, "127.0.0.1"), (&proxied, "203.0.113.7")] {
        s.create_user("trent").await;
        let r = s
            .send(
                s.http
                    .post(s.url("/v1/sessions"))
                    .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
                    .json(&json!({"username": "trent", "password": PASSWORD})),
            )
            .await;
        let token = r.body["access_token"].as_str().unwrap().to_owned();
        let current = s.get("/v1/sessions/current", Some(&token)).await;
        assert_eq!(current.body["ip"], expected);
    }
}

#[tokio::test]
async fn logs_are_json_when_asked_and_never_hold_secrets() {
    let s = Server::with_config("log_format = \"json\"\nlog_filter = \"debug\"\n").await;
    let token = s.user_token("walter").await;
    s.login("walter", "a wrong password").await;
    s.get("/v1/sessions/current", Some(&token)).await;
    s.get("/v1/sessions/current", Some("garbage.token.here"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = s.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.iter().any(|l| l.contains("listening on")));
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
    }
    for secret in [
        PASSWORD,
        "a wrong password",
        token.as_str(),
        s.service_key.as_str(),
        s.admin_key.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

/// Issue 11, defect 8: the test clock is off by default (the route is a 404 even to an
/// admin key), and a server that has it on says so at every start.
#[tokio::test]
async fn the_test_clock_is_off_by_default_and_announced_when_on() {
    let move_clock = async |s: &Server| {
        let req = s
            .http
            .put(s.url("/v1/testing/clock"))
            .bearer_auth(&s.admin_key)
            .json(&json!({"offset_seconds": 86_400}));
        s.send(req).await
    };
    let off = Server::start().await;
    move_clock(&off).await.assert_problem(404, "NOT_FOUND");
    assert!(!off.logs().contains("testing.clock_control is on"));

    let on = Server::with_config("[testing]\nclock_control = true\n").await;
    assert!(
        on.logs().contains("testing.clock_control is on"),
        "{}",
        on.logs()
    );
    let r = move_clock(&on).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Reads from a raw connection until the server closes it; `None` if it is still open
/// after `within` (or the read fails otherwise).
fn read_until_closed(tcp: &mut std::net::TcpStream, within: Duration) -> Option<String> {
    use std::io::Read;
    tcp.set_read_timeout(Some(within)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&seen).into_owned());
            }
            Err(_) => return None,
        }
    }
}

fn connect(s: &Server) -> std::net::TcpStream {
    std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap()
}

/// Issue 11, defect 9: a connection that sends half a request head, sits idle on
/// keep-alive, or sends half a body is closed by the server (the body with a 408
/// problem), instead of holding a descriptor for ever.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    use std::io::Write;
    let s = Server::with_config(
        "[http]\nheader_read_timeout_seconds = 1\nbody_read_timeout_seconds = 1\n",
    )
    .await;
    // Well past the timeouts, well short of for ever.
    let within = Duration::from_secs(20);

    let mut half_head = connect(&s);
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let seen = read_until_closed(&mut half_head, within);
    assert!(seen.is_some(), "a half-sent head kept its connection open");

    let mut idle = connect(&s);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let seen = read_until_closed(&mut idle, within).expect("an idle keep-alive stayed open");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");

    let mut half_body = connect(&s);
    half_body
        .write_all(
            b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\"",
        )
        .unwrap();
    let seen = read_until_closed(&mut half_body, within).expect("a half-sent body stayed open");
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("REQUEST_TIMEOUT"), "{seen}");
    // The server still answers everyone else.
    assert_eq!(s.get("/healthz", None).await.status, 200);
}

/// Issue 11, defect 9: past `http.max_connections` open connections, new ones are
/// closed at once and the refusal is logged; once the others go, the server answers.
#[tokio::test]
async fn connections_past_the_limit_are_refused_and_logged() {
    let s = Server::with_config("[http]\nmax_connections = 3\n").await;
    let held: Vec<_> = (0..3).map(|_| connect(&s)).collect();
    let mut extra = connect(&s);
    let seen = read_until_closed(&mut extra, Duration::from_secs(10));
    assert_eq!(
        seen.as_deref(),
        Some(""),
        "the connection past the limit was served"
    );
    assert!(
        eventually(Duration::from_secs(5), async || s
            .logs()
            .contains("refusing connections"))
        .await,
        "{}",
        s.logs()
    );
    drop(held);
    assert!(
        eventually(Duration::from_secs(10), async || {
            let http = reqwest::Client::new();
            http.get(s.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    );
}

/// Issue 11, defect 10: SIGTERM while a client holds a half-sent request: the server
/// stops accepting, waits `http.shutdown_grace_seconds`, closes what is left and exits
/// cleanly, with the decisions it answered recorded.
#[tokio::test]
async fn sigterm_exits_within_the_grace_even_with_a_half_sent_request() {
    use std::io::Write;
    let mut s = Server::with_config(&format!(
        "{PURPOSES}\n[http]\nheader_read_timeout_seconds = 600\nshutdown_grace_seconds = 2\n"
    ))
    .await;
    s.create_user("ada").await;
    let token = s.session_token("ada").await;
    let body = json!({"access_token": token, "purpose": "reports:export"});
    let r = s.post("/v1/decisions", Some(&s.service_key), body).await;
    assert_eq!(r.body["decision"], "step_up", "{}", r.text);
    let mut stalled = connect(&s);
    stalled
        .write_all(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    // The server must have read the partial head before the signal: a connection whose
    // bytes it has not read yet is idle to it, and idle connections close at once.
    std::thread::sleep(Duration::from_millis(500));
    s.terminate();
    let status = s.wait_for_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?}\n{}",
        s.logs()
    );
    assert!(read_until_closed(&mut stalled, Duration::from_secs(5)).is_some());
    assert!(
        s.logs().contains("closing the connections still open"),
        "{}",
        s.logs()
    );
    assert_eq!(s.db_snapshot().await["decision_records"], 1);
}
