//! A tower layer that asks stepgate before letting a request through, and the axum
//! extractor that hands its answer to the handler.
//!
//! ```no_run
//! use axum::{Router, routing::delete};
//! use stepgate_client::{Client, RequireStepUp, StepUp};
//!
//! async fn delete_resource(step_up: StepUp) -> String {
//!     format!("deleted by {}", step_up.user_id)
//! }
//!
//! let client = Client::new("http://127.0.0.1:8080").with_api_key("sgk_…");
//! let app: Router = Router::new()
//!     .route("/resources/{id}", delete(delete_resource))
//!     .layer(RequireStepUp::purpose("admin:resources:delete").client(client));
//! ```
//!
//! Serve the app with `into_make_service_with_connect_info::<SocketAddr>()` so the
//! user's IP reaches stepgate (or name it with [`RequireStepUp::client_ip`] behind a
//! proxy).
//!
//! The answers (problem+json bodies with a stable `code`):
//!
//! | stepgate says | the user gets |
//! |---|---|
//! | `allow` | the handler's answer; the handler can take [`StepUp`] |
//! | `step_up` | 401 `STEPUP_REQUIRED` with `WWW-Authenticate: Bearer error="insufficient_user_authentication", …` (RFC 9470), `purpose`, `challenge_id`, `allowed_factors` |
//! | `deny` | 403 `FORBIDDEN` |
//! | no token | 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer` |
//! | bad or ended token | 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer error="invalid_token"` |
//! | a bad elevation token | 403 with stepgate's `STEPUP_TOKEN_*` / `STEPUP_IP_MISMATCH` / `STEPUP_SCOPE_MISMATCH` code |
//! | stepgate unreachable | 503 `UNAVAILABLE` |
//! | stepgate refuses the RP itself (bad API key, unknown purpose) | 500 `INTERNAL` |

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::client::{Client, ELEVATION_HEADER};
use crate::error::Error;
use crate::types::{
    Decision, DecisionContext, DecisionKind, DecisionRequest, DpopProof, TokenScheme,
};
use crate::www_authenticate::{Challenge, INSUFFICIENT_USER_AUTHENTICATION};

type PartsFn<T> = Arc<dyn Fn(&Parts) -> T + Send + Sync>;

/// What the protected routes are: a step-up purpose, or a Cedar action on a resource.
#[derive(Clone)]
enum Target {
    Purpose(String),
    Action {
        action: String,
        resource: PartsFn<String>,
    },
}

/// A step-up requirement for routes, to be completed with [`RequireStepUp::client`],
/// which makes it a [`StepUpLayer`].
#[derive(Clone)]
pub struct RequireStepUp {
    target: Target,
    public_url: Option<Arc<str>>,
    client_ip: Option<PartsFn<Option<IpAddr>>>,
}

impl std::fmt::Debug for RequireStepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RequireStepUp");
        match &self.target {
            Target::Purpose(p) => d.field("purpose", p),
            Target::Action { action, .. } => d.field("action", action),
        };
        d.field("public_url", &self.public_url).finish()
    }
}

impl RequireStepUp {
    fn with_target(target: Target) -> Self {
        Self {
            target,
            public_url: None,
            client_ip: None,
        }
    }

    /// Requests must hold an elevation for `purpose` (e.g. `admin:resources:delete`).
    pub fn purpose(purpose: impl Into<String>) -> Self {
        Self::with_target(Target::Purpose(purpose.into()))
    }

    /// Requests are decided by the Cedar policies for `action` on `resource`.
    pub fn action(action: impl Into<String>, resource: impl Into<String>) -> Self {
        let resource: String = resource.into();
        Self::with_target(Target::Action {
            action: action.into(),
            resource: Arc::new(move |_| resource.clone()),
        })
    }

    /// Like [`RequireStepUp::action`], with the resource taken from each request (e.g.
    /// from its path).
    pub fn action_on(
        action: impl Into<String>,
        resource: impl Fn(&Parts) -> String + Send + Sync + 'static,
    ) -> Self {
        Self::with_target(Target::Action {
            action: action.into(),
            resource: Arc::new(resource),
        })
    }

    /// The app's external base URL, e.g. `https://app.example`: DPoP proofs are checked
    /// against it plus the request path. Without it the URL is `http://` + the `Host`
    /// header + path, which is wrong behind a TLS-terminating proxy.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.public_url = Some(url.trim_end_matches('/').into());
        self
    }

    /// How to find the user's IP (e.g. from a header your proxy sets). Without it the
    /// socket peer (`ConnectInfo<SocketAddr>`) is used, when the server provides it.
    pub fn client_ip(
        mut self,
        f: impl Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.client_ip = Some(Arc::new(f));
        self
    }

    /// The layer, asking stepgate through `client` (which needs a service API key).
    pub fn client(self, client: Client) -> StepUpLayer {
        StepUpLayer {
            gate: Arc::new(Gate {
                config: self,
                client,
            }),
        }
    }
}

/// The tower layer built by [`RequireStepUp::client`].
#[derive(Clone, Debug)]
pub struct StepUpLayer {
    gate: Arc<Gate>,
}

impl<S> Layer<S> for StepUpLayer {
    type Service = StepUpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StepUpService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`StepUpLayer`] wraps around a route.
#[derive(Clone, Debug)]
pub struct StepUpService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> Service<Request<B>> for StepUpService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the ready one goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match gate.check(&parts).await {
                Ok(step_up) => {
                    parts.extensions.insert(step_up);
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    Ok(response.into_response())
                }
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}

/// stepgate's `allow`, as the handler sees it: take it as an argument, or read it from
/// the request extensions.
#[derive(Debug, Clone)]
pub struct StepUp {
    /// The user.
    pub user_id: String,
    /// The user's session.
    pub session_id: String,
    /// The purpose that was satisfied, if one was involved.
    pub purpose: Option<String>,
    /// stepgate's whole answer (risk, reasons, policy version, elevation used).
    pub decision: Decision,
}

impl<S: Send + Sync> FromRequestParts<S> for StepUp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<StepUp>().cloned().ok_or_else(|| {
            // A wiring mistake, never the user's: the layer is missing.
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Internal error",
                "this route is not behind a RequireStepUp layer",
                serde_json::Map::new(),
                None,
            )
            .into_response()
        })
    }
}

#[derive(Debug)]
struct Gate {
    config: RequireStepUp,
    client: Client,
}

/// The credential of `Authorization: Bearer <token>` or `DPoP <token>`.
struct Credential {
    scheme: TokenScheme,
    token: String,
}

/// RFC 6750 b64token.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

impl Gate {
    async fn check(&self, parts: &Parts) -> Result<StepUp, Refusal> {
        let credential = credential(parts)?;
        let config = &self.config;
        let mut request = match &config.target {
            Target::Purpose(purpose) => DecisionRequest::purpose(&credential.token, purpose),
            Target::Action { action, resource } => {
                DecisionRequest::action(&credential.token, action, resource(parts))
            }
        };
        if let Some(value) = parts.headers.get(ELEVATION_HEADER) {
            let token = value.to_str().map_err(|_| {
                invalid_request(
                    credential.scheme,
                    "the Stepgate-Elevation header is not text",
                )
            })?;
            // An empty header is no elevation, not an invalid one.
            if !token.trim().is_empty() {
                request = request.elevation_token(token.trim());
            }
        }
        if credential.scheme == TokenScheme::Dpop {
            request = request.dpop(self.dpop_proof(parts)?);
        }
        let ip = match &config.client_ip {
            Some(f) => f(parts),
            None => parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        };
        request = request.context(DecisionContext {
            ip: ip.map(|ip| ip.to_canonical().to_string()),
            device_fingerprint: None,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        match self.client.decide(&request).await {
            Ok(decision) => answer(decision, credential.scheme),
            Err(e) => Err(refusal_for(e, credential.scheme)),
        }
    }

    /// The proof and the request it must have been made for.
    fn dpop_proof(&self, parts: &Parts) -> Result<DpopProof, Refusal> {
        let mut proofs = parts.headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(invalid_request(
                TokenScheme::Dpop,
                "a DPoP token needs exactly one DPoP proof header",
            ));
        };
        let proof = proof
            .to_str()
            .map_err(|_| invalid_request(TokenScheme::Dpop, "the DPoP proof is not text"))?;
        // Nested routers see a shortened path; the proof names the one the client used.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|OriginalUri(u)| u)
            .unwrap_or(&parts.uri);
        let url = match (&self.config.public_url, uri.scheme(), uri.authority()) {
            (Some(base), _, _) => format!("{base}{}", uri.path()),
            (None, Some(scheme), Some(authority)) => {
                format!("{scheme}://{authority}{}", uri.path())
            }
            _ => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .ok_or_else(|| {
                        invalid_request(TokenScheme::Dpop, "the request has no Host header")
                    })?;
                format!("http://{host}{}", uri.path())
            }
        };
        Ok(DpopProof {
            proof: proof.to_owned(),
            method: parts.method.as_str().to_owned(),
            url,
        })
    }
}

/// The access token of the request, or the refusal: no token at all is a bare
/// `Bearer` challenge (RFC 6750 §3.1), a garbled one `invalid_request`.
fn credential(parts: &Parts) -> Result<Credential, Refusal> {
    let missing = || {
        problem(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Unauthenticated",
            "an access token is required",
            serde_json::Map::new(),
            Some(Challenge::bearer()),
        )
    };
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(missing());
    };
    let value = value.to_str().map_err(|_| {
        invalid_request(TokenScheme::Bearer, "the Authorization header is not text")
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        TokenScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        TokenScheme::Dpop
    } else {
        // Some other scheme (Basic, …): no access token was presented.
        return Err(missing());
    };
    let token = token.trim_matches(' ');
    if !is_b64token(token) {
        return Err(invalid_request(
            scheme,
            "the Authorization header must be \"Bearer <token>\" or \"DPoP <token>\"",
        ));
    }
    Ok(Credential {
        scheme,
        token: token.to_owned(),
    })
}

/// What a decision means for the request.
fn answer(decision: Decision, scheme: TokenScheme) -> Result<StepUp, Refusal> {
    match decision.decision {
        DecisionKind::Allow => Ok(StepUp {
            user_id: decision.user_id.clone(),
            session_id: decision.session_id.clone(),
            purpose: decision.purpose.clone(),
            decision,
        }),
        DecisionKind::Deny => Err(problem(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "Forbidden",
            "this action is not allowed",
            serde_json::Map::new(),
            None,
        )),
        DecisionKind::StepUp => {
            let what = decision
                .title
                .as_deref()
                .or(decision.purpose.as_deref())
                .unwrap_or("this action");
            let detail = if decision.enrollment_required {
                format!("{what} needs a step-up; enroll a second factor first")
            } else {
                format!("{what} needs a step-up: answer the challenge, then retry")
            };
            // The scheme stepgate says the token needs (a DPoP-bound token stays DPoP).
            let token_scheme = if scheme == TokenScheme::Dpop {
                TokenScheme::Dpop
            } else {
                decision.token_scheme
            };
            let mut challenge = Challenge::new(token_scheme.as_str())
                .param("error", INSUFFICIENT_USER_AUTHENTICATION)
                .param("error_description", &detail);
            if let Some(acr) = &decision.acr_values {
                challenge = challenge.param("acr_values", acr);
            }
            if let Some(max_age) = decision.max_age {
                challenge = challenge.param("max_age", max_age.max(0).to_string());
            }
            let mut extra = serde_json::Map::new();
            extra.insert("purpose".into(), decision.purpose.clone().into());
            // No challenge when the user must enroll a factor first.
            if let Some(id) = &decision.challenge_id {
                extra.insert("challenge_id".into(), id.clone().into());
            }
            extra.insert(
                "allowed_factors".into(),
                decision.allowed_factors.clone().into(),
            );
            if decision.enrollment_required {
                extra.insert("enrollment_required".into(), true.into());
            }
            Err(problem(
                StatusCode::UNAUTHORIZED,
                "STEPUP_REQUIRED",
                "Step-up required",
                &detail,
                extra,
                Some(challenge),
            ))
        }
    }
}

/// What an error from stepgate means for the request. Every path fails closed.
fn refusal_for(error: Error, scheme: TokenScheme) -> Refusal {
    let unavailable = || {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "Service unavailable",
            "the authorization service is unavailable; try again later",
            serde_json::Map::new(),
            None,
        )
    };
    let Error::Problem {
        status,
        code,
        detail,
        body,
    } = error
    else {
        // No answer, an answer from something else, or one this SDK cannot read.
        return unavailable();
    };
    let about_access_token = body.get("subject").and_then(|s| s.as_str()) == Some("access_token");
    match (status, code.as_str()) {
        (401, "UNAUTHENTICATED") if about_access_token => problem(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Unauthenticated",
            "the access token is invalid, expired, or its session has ended",
            serde_json::Map::new(),
            Some(
                Challenge::new(scheme.as_str())
                    .param("error", "invalid_token")
                    .param(
                        "error_description",
                        "the access token is invalid, expired, or its session has ended",
                    ),
            ),
        ),
        // The user's elevation token (or its IP or scope) is not good for this.
        (403, c) if c.starts_with("STEPUP_") => {
            let title = body
                .get("title")
                .and_then(|t| t.as_str())
                .unwrap_or("Forbidden")
                .to_owned();
            problem(
                StatusCode::FORBIDDEN,
                c,
                &title,
                &detail,
                serde_json::Map::new(),
                None,
            )
        }
        // Something in the user's request (e.g. a DPoP proof) did not pass.
        (400, "VALIDATION_FAILED") => invalid_request(scheme, &detail),
        (s, _) if s >= 500 => unavailable(),
        // stepgate refuses the RP itself: its API key, or a purpose it does not know.
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error",
            "the authorization check is misconfigured",
            serde_json::Map::new(),
            None,
        ),
    }
}

fn invalid_request(scheme: TokenScheme, detail: &str) -> Refusal {
    problem(
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
        "Validation failed",
        detail,
        serde_json::Map::new(),
        Some(
            Challenge::new(scheme.as_str())
                .param("error", "invalid_request")
                .param("error_description", detail),
        ),
    )
}

/// An RFC 9457 problem document, shaped like stepgate's own.
fn problem(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    extra: serde_json::Map<String, serde_json::Value>,
    challenge: Option<Challenge>,
) -> Refusal {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), format!("urn:stepgate:problem:{code}").into());
    body.insert("title".into(), title.into());
    body.insert("status".into(), status.as_u16().into());
    body.insert("code".into(), code.into());
    body.insert("detail".into(), detail.into());
    for (k, v) in extra {
        body.entry(k).or_insert(v);
    }
    let mut response = (status, serde_json::Value::Object(body).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // from_bytes: a description may carry non-ASCII text (obs-text), which is allowed.
    if let Some(challenge) = challenge
        && let Ok(value) = HeaderValue::from_bytes(challenge.to_string().as_bytes())
    {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    Refusal(Box::new(response))
}

/// The answer to a request the layer does not let through (boxed: it travels in `Err`).
struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

#[cfg(test)]
mod tests;
