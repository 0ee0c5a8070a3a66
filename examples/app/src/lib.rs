//! An example relying party: a tiny "resources" service that puts stepgate in front of
//! its routes with the Rust SDK (`stepgate-client`).
//!
//! | route | who may | how it asks stepgate |
//! |---|---|---|
//! | `GET /resources` | any signed-in user | locally: [`TokenVerifier`] checks the access token against the cached JWKS (no call to stepgate) |
//! | `GET /resources/{id}` | any signed-in user | `RequireStepUp::action_on("read", …)`: the Cedar policies decide `Action::"read"` on `Resource::"{id}"` |
//! | `PUT /resources/{id}` | users the policies permit `write` (the example's: role `admin`) | `RequireStepUp::action_on("write", …)`; others get 403 |
//! | `DELETE /resources/{id}` | a user who just stepped up for `admin:resources:delete` | `RequireStepUp::purpose("admin:resources:delete")`: without a fresh elevation, 401 with the RFC 9470 challenge |
//!
//! The two styles differ in what they can see: the local check is free but cannot see
//! a logout or an ended session until the token expires; a decision asks stepgate,
//! which sees both, the risk of the request, and the session's elevations (and uses up
//! a single-use one).
//!
//! The resources live in memory; this is an example, not a storage layer.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Path, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stepgate_client::www_authenticate::Challenge;
use stepgate_client::{AccessClaims, Client, RequireStepUp, StepUp, TokenVerifier};

/// The purpose that guards deletes (declared in stepgate's config; see `stepgate.toml`).
pub const DELETE_PURPOSE: &str = "admin:resources:delete";

/// A resource of the example service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Its id, also its Cedar resource name (`Resource::"{id}"`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// `prod` or `dev`.
    pub env: String,
}

/// The resources the service starts with.
pub fn sample_resources() -> Vec<Resource> {
    [
        ("db-7", "orders database", "prod"),
        ("db-8", "scratch database", "dev"),
    ]
    .into_iter()
    .map(|(id, name, env)| Resource {
        id: id.into(),
        name: name.into(),
        env: env.into(),
    })
    .collect()
}

/// What the app needs: a stepgate client with a `service` API key, a verifier of
/// stepgate's access tokens, and the initial resources.
#[derive(Clone, Debug)]
pub struct Config {
    /// Asks `POST /v1/decisions` (needs a `service` API key).
    pub client: Client,
    /// Verifies access tokens locally for `GET /resources`.
    pub verifier: TokenVerifier,
    /// The resources the service starts with.
    pub resources: Vec<Resource>,
}

impl Config {
    /// Connects to the stepgate at `url`: reads its discovery document and keys (so it
    /// must be running), and starts with [`sample_resources`].
    pub async fn connect(url: &str, api_key: &str) -> Result<Self, stepgate_client::Error> {
        let client = Client::new(url).with_api_key(api_key);
        let verifier = TokenVerifier::discover(&client).await?;
        Ok(Self {
            client,
            verifier,
            resources: sample_resources(),
        })
    }
}

#[derive(Clone)]
struct AppState {
    verifier: TokenVerifier,
    resources: Arc<RwLock<BTreeMap<String, Resource>>>,
}

impl AppState {
    fn resources(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Resource>> {
        self.resources.read().unwrap_or_else(|p| p.into_inner())
    }

    fn resources_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Resource>> {
        self.resources.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The Cedar resource a request is about: the last path segment (`/resources/{id}`).
fn resource_of(parts: &Parts) -> String {
    parts
        .uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The app. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// layer sends the user's IP to stepgate, and an IP-bound elevation (such as
/// `admin:resources:delete`'s) is only good from the IP that stepped up.
pub fn router(config: Config) -> Router {
    let state = AppState {
        verifier: config.verifier,
        resources: Arc::new(RwLock::new(
            config
                .resources
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
        )),
    };
    let client = config.client;
    // Each route asks its own question; the layer answers 401/403 itself, so the
    // handlers only run when stepgate said `allow`.
    let read = RequireStepUp::action_on("read", resource_of).client(client.clone());
    let write = RequireStepUp::action_on("write", resource_of).client(client.clone());
    let delete = RequireStepUp::purpose(DELETE_PURPOSE).client(client);
    Router::new()
        .route("/resources", get(list))
        .route(
            "/resources/{id}",
            get(show.layer(read))
                .put(put.layer(write))
                .delete(remove.layer(delete)),
        )
        .with_state(state)
}

/// Serves `router(config)` on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// A user whose access token verified locally (signature, issuer, expiry).
struct SignedIn(AccessClaims);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(unauthenticated(
                Challenge::bearer(),
                "an access token is required",
            ));
        };
        let invalid = |detail: &str| {
            unauthenticated(
                Challenge::bearer()
                    .param("error", "invalid_token")
                    .param("error_description", detail),
                detail,
            )
        };
        let claims = state
            .verifier
            .verify(token)
            .await
            // A DPoP-bound token is refused here (VerifyError::ProofRequired): this
            // example takes bearer tokens only.
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Self(claims))
    }
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({ "type": format!("urn:stepgate-example:problem:{code}"),
        "title": code, "status": status.as_u16(), "code": code, "detail": detail });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn unauthenticated(challenge: Challenge, detail: &str) -> Response {
    let mut response = problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", detail);
    if let Ok(v) = HeaderValue::from_str(&challenge.to_string()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn not_found(id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("no resource {id:?}"),
    )
}

/// `GET /resources`: the local check. Cheap, and blind to logout until the token expires.
async fn list(
    State(state): State<AppState>,
    SignedIn(claims): SignedIn,
) -> Json<serde_json::Value> {
    let resources: Vec<Resource> = state.resources().values().cloned().collect();
    Json(json!({ "resources": resources, "for": claims.sub, "acr": claims.acr }))
}

/// `GET /resources/{id}`: stepgate allowed `read` on it.
async fn show(State(state): State<AppState>, Path(id): Path<String>, step_up: StepUp) -> Response {
    match state.resources().get(&id) {
        Some(r) => Json(json!({ "resource": r, "read_by": step_up.user_id })).into_response(),
        None => not_found(&id),
    }
}

/// The body of `PUT /resources/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutResource {
    name: String,
    env: String,
}

/// `PUT /resources/{id}`: stepgate allowed `write` on it.
async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    step_up: StepUp,
    Json(body): Json<PutResource>,
) -> Response {
    let resource = Resource {
        id: id.clone(),
        name: body.name,
        env: body.env,
    };
    state.resources_mut().insert(id, resource.clone());
    Json(json!({ "resource": resource, "written_by": step_up.user_id })).into_response()
}

/// `DELETE /resources/{id}`: the user stepped up for `admin:resources:delete`, and this
/// request used that elevation up.
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    step_up: StepUp,
) -> Response {
    match state.resources_mut().remove(&id) {
        Some(_) => Json(json!({
            "deleted": id,
            "by": step_up.user_id,
            "elevation_id": step_up.decision.elevation_id,
        }))
        .into_response(),
        None => not_found(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// The app pointed at a stepgate that is not there.
    async fn app_without_stepgate() -> Router {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        router(Config {
            client: Client::new(url).with_api_key("sgk_test"),
            verifier: TokenVerifier::from_jwks("http://stepgate.test", &json!({ "keys": [] }))
                .unwrap(),
            resources: sample_resources(),
        })
    }

    async fn call(app: Router, method: &str, path: &str, token: Option<&str>) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        app.oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn www_authenticate(r: &Response) -> Challenge {
        Challenge::parse(r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap()).unwrap()
    }

    #[test]
    fn the_resource_is_the_last_path_segment() {
        let (parts, ()) = Request::builder()
            .uri("/resources/db-7?x=1")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(resource_of(&parts), "db-7");
    }

    #[tokio::test]
    async fn every_route_wants_a_token() {
        for (method, path) in [
            ("GET", "/resources"),
            ("GET", "/resources/db-7"),
            ("PUT", "/resources/db-7"),
            ("DELETE", "/resources/db-7"),
        ] {
            let r = call(app_without_stepgate().await, method, path, None).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            let c = www_authenticate(&r);
            assert!(c.is_scheme("Bearer") && c.params.is_empty(), "{c:?}");
        }
    }

    #[tokio::test]
    async fn the_local_check_refuses_what_it_cannot_verify() {
        let r = call(
            app_without_stepgate().await,
            "GET",
            "/resources",
            Some("a.b.c"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www_authenticate(&r).error(), Some("invalid_token"));
    }

    #[tokio::test]
    async fn decisions_fail_closed_when_stepgate_is_unreachable() {
        let r = call(
            app_without_stepgate().await,
            "DELETE",
            "/resources/db-7",
            Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
