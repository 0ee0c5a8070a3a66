//! Forward-auth end to end: real nginx (`auth_request`) in front of a small upstream,
//! stepgate deciding each proxied request, and the RFC 9470 step-up round trip. The
//! `WWW-Authenticate` answers are read with a parser (the SDK's RFC 7235 one), never
//! compared as strings. The rules are the SPEC's `[[forward_auth]]` form, and the path is
//! matched as the upstream will read it, however the client spelled it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{DpopKey, PASSWORD, PURPOSES, Reply, Server, oathtool, totp_step_now};
use serde_json::json;
use stepgate_client::www_authenticate::Challenge;

const POLICIES: &str = r#"
@id("admins-manage")
permit (principal, action, resource) when { principal.roles.contains("admin") };

@id("anyone-reads-reports")
permit (principal, action == Action::"read", resource);
"#;

/// The first rule is SPEC section 6's example as written; the second decides by Cedar.
const ROUTES: &str = r#"
[[forward_auth]]
method = "DELETE"
path = "/resources/*"
purpose = "admin:resources:delete"

[[forward_auth]]
path = "/reports/*"
action = "read"
resource = "report:{path}"
"#;

/// stepgate behind a trusted loopback proxy, with the policies and routes above.
async fn stepgate(files: &Path) -> Server {
    let path = files.join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    Server::with_config(&format!(
        "policy_file = {:?}\ntrusted_proxies = [\"127.0.0.1\"]\n{PURPOSES}{ROUTES}",
        path.display().to_string()
    ))
    .await
}

/// The upstream app: says what it was asked and who nginx said the user is.
async fn upstream() -> SocketAddr {
    use axum::http::{HeaderMap, Method, Uri};
    let app =
        axum::Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
            let user = headers
                .get("x-stepgate-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            format!("upstream: {method} {uri} for {user}")
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed: run scripts/test-deps (Debian package nginx-light)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on loopback, started by the test, stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too (SIGKILL would orphan them).
        let stopped = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Nginx {
    async fn start(stepgate: &str, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let port = free_port();
        let stepgate = stepgate.trim_start_matches("http://");
        let conf = format!(
            r#"
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_stepgate;
            auth_request_set $stepgate_user $upstream_http_x_stepgate_user;
            auth_request_set $stepgate_challenge $upstream_http_stepgate_challenge;
            add_header Stepgate-Challenge $stepgate_challenge always;
            proxy_set_header X-Stepgate-User $stepgate_user;
            proxy_pass http://{upstream};
        }}
        location = /_stepgate {{
            internal;
            proxy_pass http://{stepgate}/v1/forward-auth;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nginx");
        let nginx = Self {
            child,
            port,
            _dir: dir,
        };
        let up = common::eventually(Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "nginx did not start: {}", nginx.error_log());
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn through(
    s: &Server,
    nginx: &Nginx,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> Reply {
    let mut req = s.http.request(method, nginx.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    s.send(req).await
}

fn challenge_of(r: &Reply) -> Challenge {
    let value = r
        .headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {} {}", r.status, r.text))
        .to_str()
        .unwrap();
    Challenge::parse(value).unwrap_or_else(|e| panic!("unparsable {value:?}: {e}"))
}

#[tokio::test]
async fn nginx_auth_request_steps_up_with_rfc_9470() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let upstream = upstream().await;
    let nginx = Nginx::start(&s.base, upstream).await;
    let ada = s.user_token_with_roles("ada", &["admin"]).await;
    let rita = s.user_token_with_roles("rita", &[]).await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&ada, step).await;
    let ada_id = common::jwt_claims(&ada)["sub"].as_str().unwrap().to_owned();

    // No token: RFC 6750's bare challenge.
    let r = through(&s, &nginx, reqwest::Method::GET, "/reports/q3", None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let c = challenge_of(&r);
    assert!(c.is_scheme("Bearer"));
    assert_eq!(c.error(), None);

    // A bad token: invalid_token.
    let r = through(
        &s,
        &nginx,
        reqwest::Method::GET,
        "/reports/q3",
        Some("x.y.z"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(challenge_of(&r).error(), Some("invalid_token"));

    // Allowed: the upstream answers, told who the user is.
    let r = through(
        &s,
        &nginx,
        reqwest::Method::GET,
        "/reports/q3?x=1",
        Some(&rita),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rita_id = common::jwt_claims(&rita)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        r.text,
        format!("upstream: GET /reports/q3?x=1 for {rita_id}")
    );

    // Denied: no policy lets rita touch resources.
    let r = through(
        &s,
        &nginx,
        reqwest::Method::GET,
        "/resources/db-7",
        Some(&rita),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // The destructive route needs a step-up: RFC 9470's challenge, through nginx.
    let r = through(
        &s,
        &nginx,
        reqwest::Method::DELETE,
        "/resources/db-7",
        Some(&ada),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let c = challenge_of(&r);
    assert!(c.is_scheme("Bearer"));
    assert_eq!(c.error(), Some("insufficient_user_authentication"));
    assert_eq!(c.acr_values(), Some("urn:stepgate:acr:mfa"));
    assert_eq!(c.max_age(), Some(300));
    assert!(
        c.error_description()
            .unwrap()
            .contains("Delete a production resource")
    );
    let challenge = r
        .headers
        .get("stepgate-challenge")
        .expect("nginx forwards the challenge id")
        .to_str()
        .unwrap()
        .to_owned();

    // The user answers it (session mode) and retries with the fresh token: allowed once.
    let passed = s
        .verify(&ada, &challenge, "totp", &oathtool(&secret, step + 1))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let elevated = passed.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(common::jwt_claims(&elevated)["acr"], "urn:stepgate:acr:mfa");
    let r = through(
        &s,
        &nginx,
        reqwest::Method::DELETE,
        "/resources/db-7",
        Some(&elevated),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.text,
        format!("upstream: DELETE /resources/db-7 for {ada_id}")
    );
    let r = through(
        &s,
        &nginx,
        reqwest::Method::DELETE,
        "/resources/db-7",
        Some(&elevated),
    )
    .await;
    assert_eq!(r.status, 401, "single use: {}", r.text);
    assert_eq!(
        challenge_of(&r).error(),
        Some("insufficient_user_authentication")
    );
}

#[tokio::test]
async fn forward_auth_answers_dpop_bound_tokens_with_the_dpop_scheme() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    s.user_token_with_roles("kim", &["admin"]).await;
    let key = DpopKey::new();
    let r = s
        .send(
            s.http
                .post(s.url("/v1/sessions"))
                .header("dpop", key.proof("http://localhost:8080/v1/sessions"))
                .json(&json!({"username": "kim", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let url = "https://app.example/resources/db-7";
    let ask = |scheme: &str, proof: Option<String>| {
        let mut req = s
            .http
            .get(s.url("/v1/forward-auth"))
            .header("authorization", format!("{scheme} {token}"))
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example")
            .header("x-forwarded-uri", "/resources/db-7");
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req
    };
    // As a bearer token, or without a proof, it is not accepted.
    let r = s.send(ask("Bearer", None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(challenge_of(&r).error(), Some("invalid_token"));
    let r = s.send(ask("DPoP", None)).await;
    assert_eq!(r.status, 401);
    let c = challenge_of(&r);
    assert!(c.is_scheme("DPoP"));
    assert_eq!(c.error(), Some("invalid_token"));
    // With a proof for the original request: the step-up answer uses the DPoP scheme.
    let r = s
        .send(ask(
            "DPoP",
            Some(key.proof_for("DELETE", url, Some(&token))),
        ))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let c = challenge_of(&r);
    assert!(c.is_scheme("DPoP"), "{c}");
    assert_eq!(c.error(), Some("insufficient_user_authentication"));
    assert_eq!(c.max_age(), Some(300));
    // kim has no second factor yet: the answer says to enroll one (no challenge).
    assert_eq!(r.body["enrollment_required"], true, "{}", r.text);
    assert!(r.headers.get("stepgate-challenge").is_none());

    // The proxy must say what the original request was.
    let r = s
        .send(
            s.http
                .get(s.url("/v1/forward-auth"))
                .header("authorization", format!("DPoP {token}")),
        )
        .await;
    r.assert_problem(400, "VALIDATION_FAILED");
}

/// What the proxy says about the original request is checked before anything is
/// decided: each malformed description is a 400 that stores nothing.
#[tokio::test]
async fn bad_proxy_headers_are_refused_and_store_nothing() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let token = s.user_token_with_roles("ada", &["admin"]).await;
    let before = s.settled_snapshot().await;
    let cases: [&[(&str, &str)]; 5] = [
        // No original method.
        &[("x-original-url", "http://app.test/resources/db-7")],
        // No original URL or URI.
        &[("x-original-method", "DELETE")],
        // A relative X-Original-URL.
        &[
            ("x-original-method", "DELETE"),
            ("x-original-url", "/resources/db-7"),
        ],
        // Not an HTTP method.
        &[
            ("x-original-method", "DEL ETE"),
            ("x-original-uri", "/resources/db-7"),
        ],
        // A URI that is not a path.
        &[
            ("x-original-method", "GET"),
            ("x-forwarded-uri", "resources/db-7"),
        ],
    ];
    for headers in cases {
        let mut req = s.http.get(s.url("/v1/forward-auth")).bearer_auth(&token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        s.send(req).await.assert_problem(400, "VALIDATION_FAILED");
    }
    assert_eq!(s.db_snapshot().await, before);
}

/// One raw HTTP/1.1 request (an HTTP library would normalise the path before sending):
/// the status code of the answer.
async fn raw_status(port: u16, method: &str, target: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: app.test\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// Issue 11, defect 3: a path spelled differently (percent-encoded letters, dot
/// segments, doubled slashes) is the same path to the upstream, so it meets the same
/// rule. Before, each missed the `/resources/*` rule and the admin's fallback permit let
/// the delete through without a step-up.
#[tokio::test]
async fn a_path_spelled_differently_meets_the_same_rule() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let upstream = upstream().await;
    let nginx = Nginx::start(&s.base, upstream).await;
    let ada = s.user_token_with_roles("ada", &["admin"]).await;

    for target in [
        "/resources/db-7",
        "/%72esources/db-7",
        "/x/../resources/db-7",
        "/./resources/db-7",
        "//resources//db-7",
        "/resources/%2e/db-7",
    ] {
        assert_eq!(
            raw_status(nginx.port, "DELETE", target, &ada).await,
            401,
            "DELETE {target} must need the step-up"
        );
    }
    // Prefixes end on a segment boundary: /resourcesX is another collection.
    assert_eq!(
        raw_status(nginx.port, "DELETE", "/resourcesX/db-7", &ada).await,
        200
    );

    // Encodings whose meaning upstreams disagree on are refused outright.
    let before = s.settled_snapshot().await;
    for target in [
        "/resources%2Fdb-7",
        "/resources%2fdb-7",
        "/resources%5Cdb-7",
        "/resources/db%00-7",
    ] {
        let r = s
            .send(
                s.http
                    .get(s.url("/v1/forward-auth"))
                    .bearer_auth(&ada)
                    .header("x-original-method", "DELETE")
                    .header("x-original-uri", target),
            )
            .await;
        r.assert_problem(400, "VALIDATION_FAILED");
        assert!(r.text.contains("original path"), "{}", r.text);
    }
    assert_eq!(s.db_snapshot().await, before);
}
