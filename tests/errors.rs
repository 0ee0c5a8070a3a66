//! Bad input: every refusal is a 4xx problem+json with a stable code, and stores nothing.

mod common;

use common::{PASSWORD, Server};
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_are_refused_and_store_nothing() {
    let s = Server::start().await;
    s.create_user("existing").await;
    let before = s.db_snapshot().await;
    let key = s.service_key.clone();

    let raw = |path: &str, body: &'static str| {
        s.http
            .post(s.url(path))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
    };
    for path in ["/v1/users", "/v1/sessions"] {
        for body in [
            "{",
            "not json",
            "[]",
            "null",
            "{}",
            r#"{"username": "zed"}"#,
            r#"{"password": "correct horse battery"}"#,
            r#"{"username": 7, "password": "correct horse battery"}"#,
            r#"{"username": "zed", "password": ["x"]}"#,
            r#"{"username": "zed", "password": "correct horse battery""#,
        ] {
            let r = s.send(raw(path, body)).await;
            r.assert_problem(400, "VALIDATION_FAILED");
        }
    }

    let invalid_users = [
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "has space", "password": PASSWORD}),
        json!({"username": "x".repeat(65), "password": PASSWORD}),
        json!({"username": "zed", "password": "short"}),
        json!({"username": "zed", "password": "p".repeat(257)}),
        json!({"username": "zed", "password": PASSWORD, "email": "not-an-email"}),
    ];
    for body in invalid_users {
        s.post("/v1/users", Some(&key), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    for body in [
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "existing", "password": ""}),
        json!({"username": "existing", "password": "p".repeat(300)}),
        json!({"username": "existing", "password": PASSWORD, "device": {"fingerprint": "f".repeat(600)}}),
        // Device fields are listed and logged: a forged line or an escape sequence in
        // them is refused (issue 11, defect 8).
        json!({"username": "existing", "password": PASSWORD, "device": {"user_agent": "ok\r\nlevel=error forged"}}),
        json!({"username": "existing", "password": PASSWORD, "device": {"user_agent": "\u{1b}[2Jcleared"}}),
        json!({"username": "existing", "password": PASSWORD, "device": {"fingerprint": "fp\u{0}"}}),
    ] {
        s.post("/v1/sessions", None, body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    assert_eq!(
        s.db_snapshot().await,
        before,
        "a refused request changed stored state"
    );
    // The same in a decision's context, from a service that passes on what it got.
    let token = s.session_token("existing").await;
    let before = s.db_snapshot().await;
    for context in [
        json!({"user_agent": "ok\nforged"}),
        json!({"device_fingerprint": "\u{7f}"}),
        json!({"device_fingerprint": ""}),
    ] {
        let body = json!({"access_token": token, "purpose": "factors:delete", "context": context});
        s.post("/v1/decisions", Some(&key), body)
            .await
            .assert_problem(400, "VALIDATION_FAILED");
    }
    assert_eq!(
        s.db_snapshot().await,
        before,
        "a refused request changed stored state"
    );
    // Nothing was half-created: the name is still free.
    s.create_user("zed").await;
}

#[tokio::test]
async fn oversized_and_non_json_bodies_are_refused() {
    let s = Server::start().await;
    let before = s.db_snapshot().await;
    let huge = json!({"username": "big", "password": "x".repeat(100 * 1024)});
    s.post("/v1/users", Some(&s.service_key), huge.clone())
        .await
        .assert_problem(413, "PAYLOAD_TOO_LARGE");
    s.post("/v1/sessions", None, huge)
        .await
        .assert_problem(413, "PAYLOAD_TOO_LARGE");
    let plain = s
        .send(
            s.http
                .post(s.url("/v1/users"))
                .bearer_auth(&s.service_key)
                .header("content-type", "text/plain")
                .body(r#"{"username":"big","password":"correct horse battery"}"#),
        )
        .await;
    plain.assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(s.db_snapshot().await, before);
}

#[tokio::test]
async fn bad_authorization_headers_are_refused_and_store_nothing() {
    let s = Server::start().await;
    let user_token = s.user_token("mallory").await;
    let before = s.db_snapshot().await;
    let body = json!({"username": "newbie", "password": PASSWORD});
    let unknown_key = format!("sgk_{}_{}", "0".repeat(16), "0".repeat(64));
    let wrong_secret = {
        let (prefix, _) = s.service_key.rsplit_once('_').unwrap();
        format!("{prefix}_{}", "f".repeat(64))
    };
    let headers: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Basic {}", s.service_key)),
        Some(format!("Bearer {} extra", s.service_key)),
        Some(format!("Bearer\t{}", s.service_key)),
        Some("Bearer not a key".into()),
        Some("Bearer \"quoted\"".into()),
        Some(format!("Bearer {unknown_key}")),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!("Bearer {user_token}")),
    ];
    for header in &headers {
        let mut req = s.http.post(s.url("/v1/users")).json(&body);
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = s.send(req).await;
        r.assert_problem(401, "UNAUTHENTICATED");
        assert!(r.headers.get("www-authenticate").is_some(), "{header:?}");
    }
    // A non-UTF-8 header value.
    let r = s
        .send(
            s.http
                .post(s.url("/v1/users"))
                .header(
                    "authorization",
                    reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
                )
                .json(&body),
        )
        .await;
    r.assert_problem(401, "UNAUTHENTICATED");

    // User routes refuse API keys and junk.
    for bearer in [
        s.service_key.as_str(),
        s.admin_key.as_str(),
        "abc",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
    ] {
        s.get("/v1/sessions/current", Some(bearer))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
        s.delete("/v1/sessions/current", Some(bearer))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }
    s.get("/v1/sessions/current", None)
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    assert_eq!(s.db_snapshot().await, before);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_with_request_ids() {
    let s = Server::start().await;
    let r = s.get("/v1/nothing-here", None).await;
    r.assert_problem(404, "NOT_FOUND");
    assert!(r.headers.get("x-request-id").is_some());
    let r = s.send(s.http.put(s.url("/v1/users"))).await;
    r.assert_problem(405, "METHOD_NOT_ALLOWED");
    assert!(r.headers.get("x-request-id").is_some());

    // A caller's request id is echoed back; otherwise one is made up.
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("x-request-id", "trace-me-42"),
        )
        .await;
    assert_eq!(r.headers.get("x-request-id").unwrap(), "trace-me-42");
    let a = s.get("/healthz", None).await;
    let b = s.get("/healthz", None).await;
    assert_ne!(a.headers.get("x-request-id"), b.headers.get("x-request-id"));
}
