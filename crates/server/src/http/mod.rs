//! The HTTP shell: routes, middleware, the OpenAPI document, and `serve`.
//! Only this module knows about status codes and JSON bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use stepgate_core::ErrorCode;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, SharedApp};
use crate::background::Background;
use crate::error::AppError;

pub mod connections;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod pages;
pub mod routes;

pub use crate::time_format::rfc3339;

use routes::{
    api_keys, audit, decisions, devices, factors, ops, policy, sessions, stepup, testing, users,
    wellknown,
};

/// The documented routes; the OpenAPI document is generated from exactly these.
fn api_routes() -> OpenApiRouter<SharedApp> {
    OpenApiRouter::with_openapi(openapi::skeleton())
        .routes(routes!(users::create))
        .routes(routes!(users::reset_factors))
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::current, sessions::logout))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(factors::enroll_totp))
        .routes(routes!(factors::confirm_totp))
        .routes(routes!(factors::enroll_email))
        .routes(routes!(factors::confirm_email))
        .routes(routes!(factors::start_webauthn_registration))
        .routes(routes!(factors::finish_webauthn_registration))
        .routes(routes!(factors::create_recovery_codes))
        .routes(routes!(factors::list))
        .routes(routes!(factors::delete))
        .routes(routes!(stepup::create))
        .routes(routes!(stepup::verify))
        .routes(routes!(stepup::state))
        .routes(routes!(stepup::send_code))
        .routes(routes!(stepup::redeem))
        .routes(routes!(stepup::list))
        .routes(routes!(stepup::revoke))
        .routes(routes!(decisions::create))
        .routes(routes!(decisions::forward_auth))
        .routes(routes!(policy::show))
        .routes(routes!(policy::update))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(devices::list))
        .routes(routes!(devices::forget))
        .routes(routes!(testing::set_clock))
        .routes(routes!(wellknown::jwks))
        .routes(routes!(wellknown::openid_configuration))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The routes and the OpenAPI 3.1 document that describes them.
fn documented_routes() -> (Router<SharedApp>, utoipa::openapi::OpenApi) {
    let (routes, mut api) = api_routes().split_for_parts();
    openapi::complete(&mut api);
    (routes, api)
}

/// The OpenAPI 3.1 document as JSON.
pub fn openapi_json() -> String {
    documented_routes()
        .1
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// The whole application router.
pub fn router(app: SharedApp) -> Router {
    let (routes, api) = documented_routes();
    let openapi: Arc<str> = api
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        .into();
    let max_body = app.config.max_body_bytes;
    routes
        .merge(pages::router(app.clone()))
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], openapi.to_string())
            }),
        )
        .fallback(|| async { AppError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            AppError::new(ErrorCode::MethodNotAllowed, "this route does not take this method")
        })
        .layer(middleware::from_fn_with_state(
            Arc::new(HttpMetrics::default()),
            record_metrics,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The path only: query strings may carry tokens.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(app)
}

/// Request ids: a random per-process prefix and a counter. Unique across processes in
/// practice, and free of a system call per request (a v4 UUID reads the OS's randomness).
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 6];
        // A failing random source leaves the prefix zero: ids stay unique per process.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        Self {
            prefix: hex::encode(bytes).into(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _request: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The method as a metric label: the standard ones by name, anything else as `OTHER`
/// (a client can send any token as a method; labels must stay a small set).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .iter()
    .zip(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    .find(|(m, _)| *m == method)
    .map_or("OTHER", |(_, s)| s)
}

/// The request counter and latency histogram of one route, method and status.
#[derive(Clone)]
struct Series {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// The HTTP metric handles by route, so that a request finds its series with one map
/// lookup instead of registering them by name and labels every time. Routes are the
/// router's patterns (and `unmatched`); methods and statuses are small sets.
#[derive(Default)]
struct HttpMetrics {
    series: std::sync::RwLock<std::collections::HashMap<String, Vec<Series>>>,
}

impl HttpMetrics {
    fn series(&self, route: &str, method: &'static str, status: u16) -> Series {
        let found = |all: &std::collections::HashMap<String, Vec<Series>>| {
            all.get(route)?
                .iter()
                .find(|s| s.method == method && s.status == status)
                .cloned()
        };
        if let Some(s) = found(&self.series.read().expect("metrics lock")) {
            return s;
        }
        let mut all = self.series.write().expect("metrics lock");
        if let Some(s) = found(&all) {
            return s;
        }
        let labels = [
            metrics::Label::new("method", method),
            metrics::Label::new("route", route.to_owned()),
            metrics::Label::new("status", status.to_string()),
        ];
        let s = Series {
            method,
            status,
            requests: metrics::counter!("stepgate_http_requests_total", labels.iter()),
            duration: metrics::histogram!("stepgate_http_request_duration_seconds", labels.iter()),
        };
        all.entry(route.to_owned()).or_default().push(s.clone());
        s
    }
}

async fn record_metrics(
    axum::extract::State(http): axum::extract::State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    let series = http.series(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        response.status().as_u16(),
    );
    series.requests.increment(1);
    series.duration.record(start.elapsed().as_secs_f64());
    response
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(mut app: App) -> anyhow::Result<()> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    app.metrics = Some(recorder.clone());
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(app.config.listen).await?;
    let addr = listener.local_addr()?;

    let background = Background::start(&app, recorder);

    if app.store.api_keys().await?.is_empty() {
        println!(
            "No API key exists yet. Create the first one with:\n    stepgate api-keys create --scope admin\n(with the same --config / STEPGATE_* settings as this server)"
        );
    }
    if app.config.testing.clock_control {
        tracing::warn!(
            "testing.clock_control is on: an admin key can move this node's clock \
             (PUT /v1/testing/clock); never run it like this in production"
        );
    }
    tracing::info!(backend = ?app.store.backend(), "listening on http://{addr}");
    let store = app.store.clone();
    let limits = connections::ConnectionLimits::from_config(&app.config);
    connections::serve(listener, router(app), limits, shutdown_signal()).await;
    background.stop().await;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}
