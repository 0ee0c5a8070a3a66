//! Test harness: starts the real `stepgate` binary on a random port with its own data
//! dir and database (SQLite, or a fresh PostgreSQL database when
//! `STEPGATE_TEST_DATABASE_URL` is set), and talks HTTP to it.

#![allow(dead_code)]

pub mod browser;
pub mod smtp;
pub mod webauthn;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

pub const BIN: &str = env!("CARGO_BIN_EXE_stepgate");
pub const PASSWORD: &str = "correct horse battery";

/// The purposes of the spec's acceptance story, plus two for tests.
pub const PURPOSES: &str = r#"
[[purposes]]
name = "admin:resources:delete"
title = "Delete a production resource"
consequence = "The resource and its data are deleted for good."
factor = "any"
ttl_seconds = 300
single_use = true
bind_ip = true
sensitivity = 60

[[purposes]]
name = "factors:delete"
title = "Remove a sign-in factor"
factor = "any"
ttl_seconds = 300
single_use = true

[[purposes]]
name = "payroll:transmit"
title = "Transmit payroll"
consequence = "Real money moves: the payroll file goes to the bank."
factor = "phishing_resistant"
ttl_seconds = 120
single_use = true
bind_ip = true

[[purposes]]
name = "reports:export"
title = "Export reports"
factor = "any"
ttl_seconds = 600
single_use = false

[[purposes]]
name = "test:brief"
title = "A purpose whose elevations last one second"
factor = "any"
ttl_seconds = 1
single_use = true
"#;

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The current RFC 6238 time step.
pub fn totp_step_now() -> i64 {
    unix_now() / 30
}

/// The step before the current one, for a code that must be accepted right away and
/// leave the current and next steps unused. The server accepts one step either side, so
/// a code for the previous step fails if a step boundary passes before the server checks
/// it: when fewer than five seconds of the current step remain, this first waits for the
/// next step to begin.
pub fn previous_totp_step() -> i64 {
    let into_step = unix_now() % 30;
    if into_step >= 25 {
        std::thread::sleep(std::time::Duration::from_secs((31 - into_step) as u64));
    }
    totp_step_now() - 1
}

/// The TOTP code for a time step, from oathtool (an independent implementation).
pub fn oathtool(secret_base32: &str, step: i64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "--now",
            &format!("@{}", step * 30),
            secret_base32,
        ])
        .output()
        .expect("oathtool must be installed (scripts/test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub database_url: String,
    pub admin_key: String,
    pub service_key: String,
    pub http: reqwest::Client,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `Command` for the binary with no inherited `STEPGATE_*` settings.
/// Runs `cmd` as on a fresh machine: no `STEPGATE_*` variable, in `cwd`.
pub fn fresh_machine(cmd: &mut Command, cwd: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("STEPGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(cwd);
}

pub fn stepgate(config: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("STEPGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("STEPGATE_CONFIG", config);
    cmd
}

/// Runs a CLI subcommand to completion; returns (success, stdout, stderr).
pub fn run_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = stepgate(config)
        .args(args)
        .output()
        .expect("running stepgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A database URL for one test: the SQLite file in its data dir, or a new database on
/// the PostgreSQL server named by `STEPGATE_TEST_DATABASE_URL`.
pub async fn test_database_url(dir: &Path) -> String {
    match std::env::var("STEPGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let name = format!("sg_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("connecting to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("creating a test database");
            let (base, _) = url.rsplit_once('/').expect("database URL has a path");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", dir.join("stepgate.db").display()),
    }
}

impl Server {
    pub async fn start() -> Self {
        Self::with_config("").await
    }

    /// Starts a server whose config file is the harness's base settings plus `extra`
    /// (top-level keys and tables, in TOML).
    pub async fn with_config(extra: &str) -> Self {
        Self::on_database(extra, None).await
    }

    /// A server a browser can use passkeys with: on a free port, with `public_url`
    /// `http://localhost:PORT` (a domain, so a WebAuthn RP id, and a secure context).
    pub async fn for_browser(extra: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::with_config(&format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://localhost:{port}\"\n{extra}"
        ))
        .await
    }

    /// The server's address as the browser uses it (`public_url`).
    pub fn page_url(&self, path: &str) -> String {
        let port = self.base.rsplit(':').next().unwrap();
        format!("http://localhost:{port}{path}")
    }

    /// Like `with_config`, on an existing database (a second node beside another server).
    pub async fn on_database(extra: &str, database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match database_url {
            Some(url) => url,
            None => test_database_url(dir.path()).await,
        };
        let config_path = dir.path().join("stepgate.toml");
        let config = format!(
            "data_dir = {dir:?}\n{listen}database_url = {database_url:?}\n{reload}{extra}\n",
            dir = dir.path().display().to_string(),
            listen = if extra.contains("listen =") {
                ""
            } else {
                "listen = \"127.0.0.1:0\"\n"
            },
            reload = if extra.contains("keys_reload_seconds") {
                ""
            } else {
                "keys_reload_seconds = 1\n"
            },
        );
        // Every test talks from 127.0.0.1, so the per-IP limits are raised unless the
        // test sets its own.
        let config = if extra.contains("[rate_limits]") {
            config
        } else {
            config + "\n[rate_limits]\nlogin_per_minute = 100000\nverify_per_minute = 100000\n"
        };
        std::fs::write(&config_path, config).unwrap();
        let admin_key = create_api_key(&config_path, "admin");
        let service_key = create_api_key(&config_path, "service");

        let mut child = stepgate(&config_path)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning stepgate serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        // The address ends where text or JSON punctuation begins.
                        let addr: String = rest
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')
                            })
                            .collect();
                        let _ = tx.send(addr);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; output:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            child,
            base: format!("http://{addr}"),
            dir,
            config_path,
            database_url,
            admin_key,
            service_key,
            http: reqwest::Client::new(),
            logs,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as a service manager stopping the server would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
    }

    /// The server's exit status, if it exits within `within`.
    pub fn wait_for_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().expect("waiting for the server") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        run_cli(&self.config_path, args)
    }

    /// Sends a request; returns status, headers and the body parsed as JSON (Null when
    /// empty or not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request failed");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = self.http.get(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        self.send(req).await
    }

    pub async fn put(&self, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        let mut req = self.http.put(self.url(path)).json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        self.send(req).await
    }

    /// Moves the server's clock to `offset` seconds from real time (the server needs
    /// `[testing] clock_control = true`).
    pub async fn set_clock(&self, offset: i64) {
        let r = self
            .put(
                "/v1/testing/clock",
                Some(&self.admin_key),
                json!({"offset_seconds": offset}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    /// A bodiless POST with an access token and an elevation token in `Stepgate-Elevation`.
    pub async fn post_elevated(&self, path: &str, token: &str, elevation: &str) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .header("stepgate-elevation", elevation),
        )
        .await
    }

    /// Enrolls and confirms TOTP for the token's user (with the code of `step`);
    /// returns the base32 secret.
    pub async fn enroll_totp(&self, token: &str, step: i64) -> String {
        let r = self
            .post("/v1/factors/totp", Some(token), Value::Null)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let secret = r.body["secret"].as_str().unwrap().to_owned();
        let id = r.body["factor_id"].as_str().unwrap();
        let confirm = self
            .post(
                &format!("/v1/factors/totp/{id}/confirm"),
                Some(token),
                json!({"code": oathtool(&secret, step)}),
            )
            .await;
        assert_eq!(confirm.status, 200, "{}", confirm.text);
        secret
    }

    /// Registers `key` for the token's user (with `elevation`, an elevation token for
    /// `factors:enroll`, once they have a factor); returns the finish answer (the
    /// factor).
    pub async fn register_passkey(
        &self,
        token: &str,
        elevation: Option<&str>,
        key: &webauthn::SoftPasskey,
    ) -> Value {
        let mut req = self
            .http
            .post(self.url("/v1/factors/webauthn/registrations"))
            .bearer_auth(token)
            .json(&json!({"name": "test key"}));
        if let Some(e) = elevation {
            req = req.header("stepgate-elevation", e);
        }
        let started = self.send(req).await;
        assert_eq!(started.status, 201, "{}", started.text);
        let id = started.body["registration_id"].as_str().unwrap();
        let finished = self
            .post(
                &format!("/v1/factors/webauthn/registrations/{id}"),
                Some(token),
                json!({"credential": key.register(&started.body["options"])}),
            )
            .await;
        assert_eq!(finished.status, 201, "{}", finished.text);
        finished.body
    }

    /// Creates a user, logs in and makes their recovery codes; returns the access token
    /// and the codes.
    pub async fn recovery_user(&self, name: &str) -> (String, Vec<String>) {
        let token = self.user_token(name).await;
        let r = self
            .post("/v1/factors/recovery-codes", Some(&token), Value::Null)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let codes = r.body["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        (token, codes)
    }

    /// Steps up with a recovery code (`body` opens the challenge); returns the verify
    /// answer's body.
    pub async fn elevate(&self, token: &str, code: &str, body: Value) -> Value {
        let c = self.challenge(token, body).await;
        let r = self
            .verify(
                token,
                c["challenge_id"].as_str().unwrap(),
                "recovery_code",
                code,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Opens a challenge; asserts 201 and returns its body.
    pub async fn challenge(&self, token: &str, body: Value) -> Value {
        let r = self.post("/v1/stepup/challenges", Some(token), body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn verify(&self, token: &str, challenge_id: &str, factor: &str, code: &str) -> Reply {
        self.post(
            &verify_path(challenge_id),
            Some(token),
            json!({"factor": factor, "code": code}),
        )
        .await
    }

    /// Answers a challenge without an access token (a login challenge).
    pub async fn verify_anonymous(&self, challenge_id: &str, factor: &str, code: &str) -> Reply {
        self.post(
            &verify_path(challenge_id),
            None,
            json!({"factor": factor, "code": code}),
        )
        .await
    }

    pub async fn redeem(&self, body: Value) -> Reply {
        self.post("/v1/stepup/redeem", Some(&self.service_key), body)
            .await
    }

    /// Audit events matching a query string such as `type=ACCOUNT_STEPUP_REUSED`.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/v1/audit?{query}"), Some(&self.admin_key))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["events"].as_array().unwrap().clone()
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = self.http.delete(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        self.send(req).await
    }

    pub async fn create_user(&self, username: &str) -> String {
        self.create_user_with_roles(username, &[]).await
    }

    /// Creates a user with `PASSWORD` and these roles; returns the user's id.
    pub async fn create_user_with_roles(&self, username: &str, roles: &[&str]) -> String {
        let r = self
            .post(
                "/v1/users",
                Some(&self.service_key),
                json!({"username": username, "password": PASSWORD, "roles": roles}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/v1/sessions",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs an existing user in with `PASSWORD`; returns the new session's access token.
    pub async fn session_token(&self, username: &str) -> String {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user and logs in; returns the access token.
    pub async fn user_token(&self, username: &str) -> String {
        self.user_token_with_roles(username, &[]).await
    }

    /// Creates a user with roles and logs in; returns the access token.
    pub async fn user_token_with_roles(&self, username: &str, roles: &[&str]) -> String {
        self.create_user_with_roles(username, roles).await;
        self.session_token(username).await
    }

    /// [`Server::db_snapshot`] once the decision records queued so far are written
    /// (they are written in the background every 50 ms): two reads 300 ms apart agree.
    pub async fn settled_snapshot(&self) -> BTreeMap<String, i64> {
        let mut last = self.db_snapshot().await;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.db_snapshot().await;
            if now == last {
                return now;
            }
            last = now;
        }
    }

    /// Row counts of every table (migration bookkeeping and the per-IP request counters
    /// aside: refused requests count against rate limits too), to prove a refused request
    /// stored nothing. The audit inbox and the chained log count as one
    /// (`audit_events`): the appender moves events from one to the other at any moment,
    /// and signs checkpoints on its own schedule (not counted).
    pub async fn db_snapshot(&self) -> BTreeMap<String, i64> {
        let tables: Vec<String> = self
            .sql_strings(if self.database_url.starts_with("sqlite") {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'"
            } else {
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'"
            })
            .await;
        let mut counts = BTreeMap::new();
        for t in tables {
            let count = match t.as_str() {
                "rate_counters" | "audit_inbox" | "audit_checkpoints" => continue,
                // One statement, so one snapshot of both tables.
                "audit_events" => "SELECT (SELECT COUNT(*) FROM audit_events) \
                                   + (SELECT COUNT(*) FROM audit_inbox)"
                    .to_owned(),
                _ => format!("SELECT COUNT(*) FROM {t}"),
            };
            counts.insert(t, self.sql_i64(&count).await);
        }
        counts
    }

    /// Runs one statement on the server's database, behind its back (as an attacker
    /// with database access would); the rows it changed.
    pub async fn sql(&self, statement: &str) -> u64 {
        if self.database_url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
    }

    /// One integer from the server's database.
    pub async fn sql_i64(&self, query: &str) -> i64 {
        if self.database_url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
        }
    }

    /// A column of text from the server's database.
    pub async fn sql_strings(&self, query: &str) -> Vec<String> {
        if self.database_url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(query).fetch_all(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(query).fetch_all(&mut c).await.unwrap()
        }
    }
}

fn create_api_key(config: &Path, scope: &str) -> String {
    let (ok, stdout, stderr) = run_cli(config, &["api-keys", "create", "--scope", scope]);
    assert!(ok, "api-keys create failed: {stderr}");
    stdout
        .lines()
        .last()
        .expect("a key on the last line")
        .trim()
        .to_owned()
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "not problem+json: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
    }
}

/// Decodes a JWT's payload without verifying (tests verify separately).
/// The route that answers a challenge.
pub fn verify_path(challenge_id: &str) -> String {
    format!("/v1/stepup/challenges/{challenge_id}/verify")
}

pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Polls `probe` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A client-held Ed25519 key that signs DPoP proofs (RFC 9449).
pub struct DpopKey {
    encoding: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl DpopKey {
    pub fn new() -> Self {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        use base64::Engine;
        use jsonwebtoken::jwk::{
            AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters,
            OctetKeyPairType,
        };
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        Self {
            encoding: jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: Jwk {
                common: CommonParameters::default(),
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
                }),
            },
        }
    }

    /// A proof for a login (`POST` to `htu`, no access token).
    pub fn proof(&self, htu: &str) -> String {
        self.proof_for("POST", htu, None)
    }

    /// A proof for `method` on `htu`; with `token`, its `ath` binds it to that token.
    pub fn proof_for(&self, method: &str, htu: &str, token: Option<&str>) -> String {
        use base64::Engine;
        use sha2::Digest;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let mut claims = json!({"htm": method, "htu": htu, "iat": unix_now(), "jti": uuid::Uuid::new_v4().to_string()});
        if let Some(t) = token {
            claims["ath"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(t.as_bytes()))
                .into();
        }
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}
