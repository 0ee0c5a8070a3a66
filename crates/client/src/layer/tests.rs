//! The layer's answers, against a tiny in-process fake of stepgate's `/v1/decisions`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::*;
use crate::www_authenticate::Challenge;

const API_KEY: &str = "sgk_test";

/// What the fake saw: the last decision request and its Authorization header.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<(String, Value)>>>);

impl Seen {
    fn last(&self) -> (String, Value) {
        self.0.lock().unwrap().clone().expect("no decision request")
    }
}

fn decision(kind: &str) -> Value {
    json!({
        "decision": kind, "user_id": "user-1", "session_id": "session-1",
        "purpose": "admin:resources:delete", "token_scheme": "Bearer",
        "risk": { "score": 35, "tier": "medium", "device_trust": "none", "reasons": [
            { "signal": "new_ip", "observed": "IP not seen before for this user", "weight": 15 },
        ]},
        "reasons": ["purpose admin:resources:delete needs a step-up"],
        "policy_ids": ["policy0"], "policy_version": 3,
    })
}

fn problem(status: StatusCode, code: &str, extra: Value) -> axum::response::Response {
    let mut body = json!({ "type": format!("urn:stepgate:problem:{code}"), "title": code,
        "status": status.as_u16(), "code": code, "detail": format!("fake {code}") });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn fake_decide(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> axum::response::Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    *seen.0.lock().unwrap() = Some((auth.clone(), request.clone()));
    if auth != format!("Bearer {API_KEY}") {
        return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", json!({}));
    }
    match request["access_token"].as_str().unwrap_or_default() {
        "tok-allow" => Json(decision("allow")).into_response(),
        "tok-stepup" => {
            let mut d = decision("step_up");
            d["challenge_id"] = "ch-1".into();
            d["title"] = "Ressource «prod» löschen \"jetzt\"".into();
            d["allowed_factors"] = json!(["totp", "recovery_code"]);
            d["acr_values"] = "urn:stepgate:acr:mfa".into();
            d["max_age"] = 300.into();
            Json(d).into_response()
        }
        "tok-enroll" => {
            let mut d = decision("step_up");
            d["enrollment_required"] = true.into();
            Json(d).into_response()
        }
        "tok-deny" => Json(decision("deny")).into_response(),
        "tok-ended" => problem(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            json!({ "subject": "access_token" }),
        ),
        "tok-reused" => problem(StatusCode::FORBIDDEN, "STEPUP_TOKEN_REUSED", json!({})),
        "tok-unknown-purpose" => problem(StatusCode::NOT_FOUND, "NOT_FOUND", json!({})),
        "tok-garbled" => "{\"decision\": \"maybe\"}".into_response(),
        "tok-crash" => problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", json!({})),
        _ => problem(StatusCode::BAD_REQUEST, "VALIDATION_FAILED", json!({})),
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

async fn fake_stepgate() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/decisions", post(fake_decide))
        .with_state(seen.clone());
    (format!("http://{}", serve(app).await), seen)
}

async fn handler(step_up: StepUp) -> String {
    format!(
        "{} {} {:?} {}",
        step_up.user_id, step_up.session_id, step_up.purpose, step_up.decision.policy_version
    )
}

/// The relying party's app, protected by the layer; returns its base URL.
async fn rp_app(client: Client) -> String {
    let app = Router::new()
        .route("/resources/{id}", delete(handler))
        .layer(RequireStepUp::purpose("admin:resources:delete").client(client.clone()))
        .merge(
            Router::new().route("/docs/{id}", get(handler)).layer(
                RequireStepUp::action_on("read", |parts: &Parts| {
                    format!("doc:{}", parts.uri.path().trim_start_matches("/docs/"))
                })
                .public_url("https://app.example/")
                .client(client),
            ),
        )
        .route("/unprotected", get(handler));
    format!("http://{}", serve(app).await)
}

struct Answer {
    status: u16,
    www_authenticate: Option<Challenge>,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn call(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut rb = reqwest::Client::new().request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let response = rb.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap())
    };
    Answer {
        status: response.status().as_u16(),
        www_authenticate: header(header::WWW_AUTHENTICATE)
            .map(|v| Challenge::parse(&v).unwrap_or_else(|e| panic!("{v:?}: {e}"))),
        content_type: header(header::CONTENT_TYPE),
        body: response.text().await.unwrap(),
    }
}

async fn delete_resource(base: &str, headers: &[(&str, &str)]) -> Answer {
    call(
        reqwest::Method::DELETE,
        &format!("{base}/resources/42"),
        headers,
    )
    .await
}

async fn setup() -> (String, Seen) {
    let (stepgate, seen) = fake_stepgate().await;
    let base = rp_app(Client::new(stepgate).with_api_key(API_KEY)).await;
    (base, seen)
}

#[tokio::test]
async fn allow_reaches_the_handler_with_the_decision() {
    let (base, seen) = setup().await;
    let a = delete_resource(
        &base,
        &[
            ("authorization", "Bearer tok-allow"),
            ("stepgate-elevation", "sge_elevation"),
            ("user-agent", "test-agent/1"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        "user-1 session-1 Some(\"admin:resources:delete\") 3"
    );
    let (auth, request) = seen.last();
    assert_eq!(auth, format!("Bearer {API_KEY}"));
    assert_eq!(
        request,
        json!({
            "access_token": "tok-allow",
            "purpose": "admin:resources:delete",
            "elevation_token": "sge_elevation",
            "context": { "ip": "127.0.0.1", "user_agent": "test-agent/1" },
        })
    );
    // An empty elevation header is no elevation.
    let a = delete_resource(
        &base,
        &[
            ("authorization", "Bearer tok-allow"),
            ("stepgate-elevation", ""),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(seen.last().1.get("elevation_token").is_none());
}

#[tokio::test]
async fn step_up_is_an_rfc9470_challenge_with_a_problem_body() {
    let (base, _) = setup().await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-stepup")]).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.content_type.as_deref(), Some("application/problem+json"));
    let c = a.www_authenticate.as_ref().unwrap();
    assert!(c.is_scheme("Bearer"));
    assert_eq!(c.error(), Some("insufficient_user_authentication"));
    // Non-ASCII and quotes survive the header (as obs-text and quoted-pairs).
    assert_eq!(
        c.error_description(),
        Some(
            "Ressource «prod» löschen \"jetzt\" needs a step-up: answer the challenge, then retry"
        )
    );
    assert_eq!(c.acr_values(), Some("urn:stepgate:acr:mfa"));
    assert_eq!(c.max_age(), Some(300));
    let body = a.json();
    assert_eq!(body["status"], 401);
    assert_eq!(body["code"], "STEPUP_REQUIRED");
    assert_eq!(body["type"], "urn:stepgate:problem:STEPUP_REQUIRED");
    assert_eq!(body["purpose"], "admin:resources:delete");
    assert_eq!(body["challenge_id"], "ch-1");
    assert_eq!(body["allowed_factors"], json!(["totp", "recovery_code"]));
    assert!(body["title"].is_string() && body["detail"].is_string());

    // Enrollment first: no challenge yet, and no acr_values/max_age to claim.
    let a = delete_resource(&base, &[("authorization", "Bearer tok-enroll")]).await;
    assert_eq!(a.status, 401);
    let c = a.www_authenticate.clone().unwrap();
    assert_eq!(c.error(), Some("insufficient_user_authentication"));
    assert_eq!((c.acr_values(), c.max_age()), (None, None));
    let body = a.json();
    assert_eq!(body["enrollment_required"], true);
    assert!(body.get("challenge_id").is_none(), "{body}");
}

#[tokio::test]
async fn deny_is_forbidden() {
    let (base, _) = setup().await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-deny")]).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["code"], "FORBIDDEN");
    assert!(a.www_authenticate.is_none());
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let (base, seen) = setup().await;
    for headers in [&[][..], &[("authorization", "Basic dXNlcjpwYXNz")][..]] {
        let a = delete_resource(&base, headers).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.www_authenticate, Some(Challenge::bearer()));
        assert_eq!(a.json()["code"], "UNAUTHENTICATED");
    }
    assert!(seen.0.lock().unwrap().is_none(), "stepgate was not asked");
    // A garbled credential is a bad request.
    let a = delete_resource(&base, &[("authorization", "Bearer a b")]).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.www_authenticate.unwrap().error(), Some("invalid_request"));
}

#[tokio::test]
async fn an_invalid_or_ended_token_is_invalid_token() {
    let (base, _) = setup().await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-ended")]).await;
    assert_eq!(a.status, 401);
    let c = a.www_authenticate.clone().unwrap();
    assert!(c.is_scheme("bearer"));
    assert_eq!(c.error(), Some("invalid_token"));
    assert_eq!(a.json()["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn elevation_errors_pass_through_and_rp_errors_fail_closed() {
    let (base, _) = setup().await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-reused")]).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["code"], "STEPUP_TOKEN_REUSED");
    for (token, status, code) in [
        ("tok-unknown-purpose", 500, "INTERNAL"),
        ("tok-garbled", 503, "UNAVAILABLE"),
        ("tok-crash", 503, "UNAVAILABLE"),
        ("tok-other", 400, "VALIDATION_FAILED"),
    ] {
        let a = delete_resource(&base, &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(
            (a.status, a.json()["code"].as_str()),
            (status, Some(code)),
            "{token}"
        );
    }
    // The RP's own API key is refused: not the user's fault, so not a 401.
    let (stepgate, _) = fake_stepgate().await;
    let base = rp_app(Client::new(stepgate).with_api_key("sgk_wrong")).await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-allow")]).await;
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (500, Some("INTERNAL"))
    );
}

#[tokio::test]
async fn stepgate_unreachable_is_503() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let base = rp_app(Client::new(format!("http://{addr}")).with_api_key(API_KEY)).await;
    let a = delete_resource(&base, &[("authorization", "Bearer tok-allow")]).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["code"], "UNAVAILABLE");
}

#[tokio::test]
async fn actions_and_dpop_proofs_reach_stepgate() {
    let (base, seen) = setup().await;
    let a = call(
        reqwest::Method::GET,
        &format!("{base}/docs/7?q=1"),
        &[
            ("authorization", "DPoP tok-allow"),
            ("dpop", "proof.jwt.sig"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        "user-1 session-1 Some(\"admin:resources:delete\") 3"
    );
    let (_, request) = seen.last();
    assert_eq!(request["action"], "read");
    assert_eq!(request["resource"], "doc:7");
    assert!(request.get("purpose").is_none());
    assert_eq!(
        request["dpop"],
        json!({ "proof": "proof.jwt.sig", "method": "GET", "url": "https://app.example/docs/7" })
    );
    // A DPoP token without its proof never reaches stepgate.
    let a = call(
        reqwest::Method::GET,
        &format!("{base}/docs/7"),
        &[("authorization", "DPoP tok-stepup")],
    )
    .await;
    assert_eq!(a.status, 400);
    let c = a.www_authenticate.clone().unwrap();
    assert!(c.is_scheme("DPoP"));
    assert_eq!(c.error(), Some("invalid_request"));
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_wiring_error() {
    let (base, _) = setup().await;
    let a = call(reqwest::Method::GET, &format!("{base}/unprotected"), &[]).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.json()["code"], "INTERNAL");
}
