//! The typed HTTP client: one async method per route.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::types::*;

/// The header an elevation token travels in, from the user's client to the RP and to
/// stepgate's own step-up-protected routes.
pub use stepgate_api::ELEVATION_HEADER;

/// A client of one stepgate server. Cheap to clone (it shares its connection pool).
///
/// Service and admin routes authenticate with the API key set by
/// [`Client::with_api_key`]; user routes take the end user's access token as an argument.
/// Every error answer becomes [`Error::Problem`] with its stable `code`.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Arc<str>,
    api_key: Option<Arc<str>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Characters a path segment may carry unencoded (RFC 3986 unreserved, plus `:` and
/// `@`, so purposes like `admin:resources:delete` stay readable).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client of the stepgate at `base_url`, e.g. `http://127.0.0.1:8080`. Requests
    /// time out after 10 s (connect: 5 s); use [`Client::with_http_client`] for others.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self::with_http_client(base_url, http)
    }

    /// A client that sends its requests through `http`.
    pub fn with_http_client(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        let base: String = base_url.into();
        Self {
            http,
            base_url: base.trim_end_matches('/').into(),
            api_key: None,
        }
    }

    /// The same client, authenticating service and admin calls with `key` (`sgk_…`).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into().into());
        self
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base_url` + the segments, each percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> String {
        let mut url = self.base_url.to_string();
        for s in segments {
            url.push('/');
            url.push_str(&encode_segment(s));
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.http.request(method, self.url(segments))
    }

    /// A request authenticated with the API key (if none was set, stepgate will answer
    /// `UNAUTHENTICATED`).
    fn keyed(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let rb = self.request(method, segments);
        match &self.api_key {
            Some(key) => rb.bearer_auth(key),
            None => rb,
        }
    }

    /// A request authenticated with a user's access token.
    fn user(&self, method: Method, segments: &[&str], access_token: &str) -> RequestBuilder {
        self.request(method, segments).bearer_auth(access_token)
    }

    /// Sends and reads the status and body; a transport failure is an error.
    async fn exchange(rb: RequestBuilder) -> Result<(u16, Vec<u8>), Error> {
        let response = rb.send().await.map_err(Error::Transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(Error::Transport)?;
        Ok((status, body.to_vec()))
    }

    fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| Error::Decode {
            status,
            message: e.to_string(),
        })
    }

    /// Sends, and decodes a 2xx body as `T`; anything else is an error.
    async fn send<T: DeserializeOwned>(rb: RequestBuilder) -> Result<T, Error> {
        let (status, body) = Self::exchange(rb).await?;
        if (200..300).contains(&status) {
            Self::decode(status, &body)
        } else {
            Err(Error::from_response_body(status, &body))
        }
    }

    /// Sends, and expects a 2xx answer whose body does not matter (204 and the like).
    async fn send_empty(rb: RequestBuilder) -> Result<(), Error> {
        let (status, body) = Self::exchange(rb).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Error::from_response_body(status, &body))
        }
    }

    fn with_elevation(rb: RequestBuilder, elevation_token: Option<&str>) -> RequestBuilder {
        match elevation_token {
            Some(t) => rb.header(ELEVATION_HEADER, t),
            None => rb,
        }
    }

    // --- users and sessions ---------------------------------------------------------

    /// `POST /v1/users` (service key): creates a user.
    pub async fn create_user(&self, user: &CreateUser) -> Result<CreatedUser, Error> {
        Self::send(self.keyed(Method::POST, &["v1", "users"]).json(user)).await
    }

    /// `DELETE /v1/users/{id}/factors` (admin key): removes every factor of a user who
    /// lost them all and ends their sessions; audited as critical.
    pub async fn reset_factors(&self, user_id: &str) -> Result<FactorsReset, Error> {
        Self::send(self.keyed(Method::DELETE, &["v1", "users", user_id, "factors"])).await
    }

    /// `POST /v1/sessions`: logs in with a password. A risky login is not an error but
    /// [`LoginOutcome::StepUpRequired`]; a wrong password is `INVALID_CREDENTIALS`.
    pub async fn login(&self, login: &Login) -> Result<LoginOutcome, Error> {
        self.login_request(login, None).await
    }

    /// [`Client::login`] with a DPoP proof (RFC 9449) for `POST {public_url}/v1/sessions`:
    /// the device is then known by its key.
    pub async fn login_with_dpop(
        &self,
        login: &Login,
        dpop_proof: &str,
    ) -> Result<LoginOutcome, Error> {
        self.login_request(login, Some(dpop_proof)).await
    }

    async fn login_request(
        &self,
        login: &Login,
        dpop_proof: Option<&str>,
    ) -> Result<LoginOutcome, Error> {
        let mut rb = self.request(Method::POST, &["v1", "sessions"]).json(login);
        if let Some(proof) = dpop_proof {
            rb = rb.header("DPoP", proof);
        }
        let (status, body) = Self::exchange(rb).await?;
        if (200..300).contains(&status) {
            return Self::decode(status, &body).map(LoginOutcome::Session);
        }
        let error = Error::from_response_body(status, &body);
        if status == 401 && error.is("STEPUP_REQUIRED") {
            return Self::decode(status, &body).map(LoginOutcome::StepUpRequired);
        }
        Err(error)
    }

    /// `GET /v1/sessions/current`: the caller's session.
    pub async fn current_session(&self, access_token: &str) -> Result<CurrentSession, Error> {
        Self::send(self.user(Method::GET, &["v1", "sessions", "current"], access_token)).await
    }

    /// `DELETE /v1/sessions/current`: logs out; the session's tokens stop working.
    pub async fn logout(&self, access_token: &str) -> Result<(), Error> {
        Self::send_empty(self.user(Method::DELETE, &["v1", "sessions", "current"], access_token))
            .await
    }

    // --- devices and API keys -------------------------------------------------------

    /// `GET /v1/devices`: the caller's remembered devices.
    pub async fn devices(&self, access_token: &str) -> Result<DeviceList, Error> {
        Self::send(self.user(Method::GET, &["v1", "devices"], access_token)).await
    }

    /// `DELETE /v1/devices/{id}`: forgets a device.
    pub async fn forget_device(&self, access_token: &str, device_id: &str) -> Result<(), Error> {
        Self::send_empty(self.user(Method::DELETE, &["v1", "devices", device_id], access_token))
            .await
    }

    /// `POST /v1/api-keys` (admin key).
    pub async fn create_api_key(&self, key: &CreateApiKey) -> Result<CreatedApiKey, Error> {
        Self::send(self.keyed(Method::POST, &["v1", "api-keys"]).json(key)).await
    }

    /// `GET /v1/api-keys` (admin key).
    pub async fn api_keys(&self) -> Result<ApiKeyList, Error> {
        Self::send(self.keyed(Method::GET, &["v1", "api-keys"])).await
    }

    /// `DELETE /v1/api-keys/{id}` (admin key): revokes a key at once.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), Error> {
        Self::send_empty(self.keyed(Method::DELETE, &["v1", "api-keys", id])).await
    }

    // --- factors --------------------------------------------------------------------

    /// `POST /v1/factors/totp`: starts a TOTP enrollment. When the user already has a
    /// factor this needs a `factors:enroll` elevation (token mode: `elevation_token`;
    /// session mode: a token with `su`), else the error is `STEPUP_REQUIRED` with a ready
    /// `challenge_id`.
    pub async fn enroll_totp(
        &self,
        access_token: &str,
        elevation_token: Option<&str>,
    ) -> Result<TotpEnrollment, Error> {
        let rb = self.user(Method::POST, &["v1", "factors", "totp"], access_token);
        Self::send(Self::with_elevation(rb, elevation_token)).await
    }

    /// `POST /v1/factors/totp/{id}/confirm`: confirms an enrollment with a code.
    pub async fn confirm_totp(
        &self,
        access_token: &str,
        factor_id: &str,
        code: &str,
    ) -> Result<Factor, Error> {
        let rb = self.user(
            Method::POST,
            &["v1", "factors", "totp", factor_id, "confirm"],
            access_token,
        );
        Self::send(rb.json(&serde_json::json!({ "code": code }))).await
    }

    /// `POST /v1/factors/recovery-codes`: ten new one-time codes, replacing earlier ones
    /// (a `factors:enroll` step-up when the user already has a factor).
    pub async fn create_recovery_codes(
        &self,
        access_token: &str,
        elevation_token: Option<&str>,
    ) -> Result<RecoveryCodes, Error> {
        let rb = self.user(
            Method::POST,
            &["v1", "factors", "recovery-codes"],
            access_token,
        );
        Self::send(Self::with_elevation(rb, elevation_token)).await
    }

    /// `POST /v1/factors/webauthn/registrations`: starts registering a passkey or
    /// security key (a `factors:enroll` step-up, asked here once, when the user already
    /// has a factor). Pass `options` to `navigator.credentials.create()`.
    pub async fn start_webauthn_registration(
        &self,
        access_token: &str,
        registration: &NewWebauthnRegistration,
        elevation_token: Option<&str>,
    ) -> Result<WebauthnRegistration, Error> {
        let rb = self.user(
            Method::POST,
            &["v1", "factors", "webauthn", "registrations"],
            access_token,
        );
        Self::send(Self::with_elevation(rb, elevation_token).json(registration)).await
    }

    /// `POST /v1/factors/webauthn/registrations/{id}`: finishes it with the browser's
    /// credential (a user's first factor comes with `recovery_codes`).
    pub async fn finish_webauthn_registration(
        &self,
        access_token: &str,
        registration_id: &str,
        credential: serde_json::Value,
    ) -> Result<Factor, Error> {
        let rb = self.user(
            Method::POST,
            &[
                "v1",
                "factors",
                "webauthn",
                "registrations",
                registration_id,
            ],
            access_token,
        );
        Self::send(rb.json(&FinishWebauthnRegistration { credential })).await
    }

    /// `POST /v1/factors/email`: enrolls an address; a code is sent to it.
    pub async fn enroll_email(
        &self,
        access_token: &str,
        email: &str,
        elevation_token: Option<&str>,
    ) -> Result<EmailEnrollment, Error> {
        let rb = self.user(Method::POST, &["v1", "factors", "email"], access_token);
        let body = NewEmailFactor {
            email: email.to_owned(),
        };
        Self::send(Self::with_elevation(rb, elevation_token).json(&body)).await
    }

    /// `POST /v1/factors/email/{id}/confirm`: confirms the address with the mailed code.
    pub async fn confirm_email(
        &self,
        access_token: &str,
        factor_id: &str,
        code: &str,
    ) -> Result<Factor, Error> {
        let rb = self.user(
            Method::POST,
            &["v1", "factors", "email", factor_id, "confirm"],
            access_token,
        );
        Self::send(rb.json(&ConfirmEmail {
            code: code.to_owned(),
        }))
        .await
    }

    /// `GET /v1/factors`: the caller's factors.
    pub async fn factors(&self, access_token: &str) -> Result<FactorList, Error> {
        Self::send(self.user(Method::GET, &["v1", "factors"], access_token)).await
    }

    /// `DELETE /v1/factors/{id}`: removes a factor, a `factors:delete` step-up.
    pub async fn delete_factor(
        &self,
        access_token: &str,
        factor_id: &str,
        elevation_token: Option<&str>,
    ) -> Result<(), Error> {
        let rb = self.user(Method::DELETE, &["v1", "factors", factor_id], access_token);
        Self::send_empty(Self::with_elevation(rb, elevation_token)).await
    }

    // --- step-up --------------------------------------------------------------------

    /// `POST /v1/stepup/challenges`: opens a step-up challenge for a purpose.
    pub async fn create_challenge(
        &self,
        access_token: &str,
        challenge: &NewChallenge,
    ) -> Result<StepUpChallenge, Error> {
        let rb = self.user(Method::POST, &["v1", "stepup", "challenges"], access_token);
        Self::send(rb.json(challenge)).await
    }

    /// `POST /v1/stepup/challenges/{id}/send`: has an email code sent for a challenge
    /// (`access_token` for an action challenge; `None` for a login challenge).
    pub async fn send_challenge_code(
        &self,
        access_token: Option<&str>,
        challenge_id: &str,
    ) -> Result<CodeSent, Error> {
        let path = ["v1", "stepup", "challenges", challenge_id, "send"];
        let rb = match access_token {
            Some(token) => self.user(Method::POST, &path, token),
            None => self.request(Method::POST, &path),
        };
        Self::send(rb.json(&SendCode {
            factor: "email_otp".into(),
        }))
        .await
    }

    /// `POST /v1/stepup/challenges/{id}/verify` with the session's token: answers an
    /// action challenge and gets its elevation.
    pub async fn verify_challenge(
        &self,
        access_token: &str,
        challenge_id: &str,
        answer: &VerifyChallenge,
    ) -> Result<Verified, Error> {
        let rb = self.user(
            Method::POST,
            &["v1", "stepup", "challenges", challenge_id, "verify"],
            access_token,
        );
        Self::send(rb.json(answer)).await
    }

    /// `POST /v1/stepup/challenges/{id}/verify` without a token: answers a login
    /// challenge and gets the session.
    pub async fn verify_login_challenge(
        &self,
        challenge_id: &str,
        answer: &VerifyChallenge,
    ) -> Result<LoginResponse, Error> {
        let rb = self.request(
            Method::POST,
            &["v1", "stepup", "challenges", challenge_id, "verify"],
        );
        Self::send(rb.json(answer)).await
    }

    /// `POST /v1/stepup/redeem` (service key): relies on an elevation token right before
    /// the action; a single-use token works once (`STEPUP_TOKEN_REUSED` after).
    pub async fn redeem(&self, redeem: &Redeem) -> Result<Redeemed, Error> {
        Self::send(
            self.keyed(Method::POST, &["v1", "stepup", "redeem"])
                .json(redeem),
        )
        .await
    }

    /// `GET /v1/stepup/elevations`: the caller's live elevations.
    pub async fn elevations(&self, access_token: &str) -> Result<ElevationList, Error> {
        Self::send(self.user(Method::GET, &["v1", "stepup", "elevations"], access_token)).await
    }

    /// `DELETE /v1/stepup/elevations/{id}` as the elevation's user.
    pub async fn revoke_elevation(
        &self,
        access_token: &str,
        elevation_id: &str,
    ) -> Result<(), Error> {
        Self::send_empty(self.user(
            Method::DELETE,
            &["v1", "stepup", "elevations", elevation_id],
            access_token,
        ))
        .await
    }

    /// `DELETE /v1/stepup/elevations/{id}` as the RP's backend (service key).
    pub async fn revoke_elevation_as_service(&self, elevation_id: &str) -> Result<(), Error> {
        Self::send_empty(self.keyed(
            Method::DELETE,
            &["v1", "stepup", "elevations", elevation_id],
        ))
        .await
    }

    // --- decisions ------------------------------------------------------------------

    /// `POST /v1/decisions` (service key): allow, step up or deny, with reasons.
    ///
    /// This is the authoritative check: it sees logout, session expiry and revoked
    /// elevations, which [`TokenVerifier`](crate::TokenVerifier) cannot.
    pub async fn decide(&self, request: &DecisionRequest) -> Result<Decision, Error> {
        Self::send(self.keyed(Method::POST, &["v1", "decisions"]).json(request)).await
    }

    /// `GET /v1/forward-auth`, as a reverse proxy calls it (nginx `auth_request`,
    /// Traefik ForwardAuth). 200, 401 and 403 are answers; anything else is an error.
    pub async fn forward_auth(
        &self,
        request: &ForwardAuthRequest,
    ) -> Result<ForwardAuthAnswer, Error> {
        let mut rb = self
            .request(Method::GET, &["v1", "forward-auth"])
            .header("X-Original-Method", &request.method)
            .header("X-Original-URL", &request.url);
        for (name, value) in [
            ("Authorization", &request.authorization),
            ("DPoP", &request.dpop),
            (ELEVATION_HEADER, &request.elevation_token),
        ] {
            if let Some(v) = value {
                rb = rb.header(name, v);
            }
        }
        let response = rb.send().await.map_err(Error::Transport)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut answer = ForwardAuthAnswer {
            status,
            user_id: header("x-stepgate-user"),
            session_id: header("x-stepgate-session"),
            elevation_id: header("x-stepgate-elevation"),
            challenge_id: header("stepgate-challenge"),
            purpose: header("stepgate-purpose"),
            www_authenticate: header("www-authenticate"),
            problem: None,
        };
        let body = response.bytes().await.map_err(Error::Transport)?;
        match status {
            200 => Ok(answer),
            401 | 403 => {
                answer.problem = serde_json::from_slice(&body).ok();
                Ok(answer)
            }
            _ => Err(Error::from_response_body(status, &body)),
        }
    }

    // --- policy and audit -----------------------------------------------------------

    /// `GET /v1/policy` (admin key).
    pub async fn policy(&self) -> Result<Policy, Error> {
        Self::send(self.keyed(Method::GET, &["v1", "policy"])).await
    }

    /// `PUT /v1/policy/purposes/{purpose}` (admin key): a new policy version, or
    /// `POLICY_BELOW_MINIMUM`.
    pub async fn update_purpose(
        &self,
        purpose: &str,
        change: &PurposeChange,
    ) -> Result<PurposeUpdated, Error> {
        let rb = self.keyed(Method::PUT, &["v1", "policy", "purposes", purpose]);
        Self::send(rb.json(change)).await
    }

    /// `GET /v1/audit` (admin key): events, oldest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditList, Error> {
        Self::send(self.keyed(Method::GET, &["v1", "audit"]).query(query)).await
    }

    // --- discovery and operations ---------------------------------------------------

    /// `GET /.well-known/jwks.json`: the signing keys, as a JWK Set document.
    pub async fn jwks(&self) -> Result<serde_json::Value, Error> {
        Self::send(self.request(Method::GET, &[".well-known", "jwks.json"])).await
    }

    /// `GET /.well-known/openid-configuration`.
    pub async fn openid_configuration(&self) -> Result<OpenIdConfiguration, Error> {
        Self::send(self.request(Method::GET, &[".well-known", "openid-configuration"])).await
    }

    /// `GET /healthz`: the process answers.
    pub async fn healthz(&self) -> Result<(), Error> {
        Self::send_empty(self.request(Method::GET, &["healthz"])).await
    }

    /// `GET /readyz`: the database answers (else `UNAVAILABLE`).
    pub async fn readyz(&self) -> Result<(), Error> {
        Self::send_empty(self.request(Method::GET, &["readyz"])).await
    }

    /// `PUT /v1/testing/clock` (admin key; tests only, `NOT_FOUND` unless the server
    /// runs with `testing.clock_control = true`): moves the server's clock.
    pub async fn set_clock_offset(&self, offset_seconds: i64) -> Result<ClockNow, Error> {
        let rb = self.keyed(Method::PUT, &["v1", "testing", "clock"]);
        Self::send(rb.json(&serde_json::json!({ "offset_seconds": offset_seconds }))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_segments_and_keep_purposes_readable() {
        let c = Client::new("http://127.0.0.1:8080/");
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            c.url(&["v1", "policy", "purposes", "admin:resources:delete"]),
            "http://127.0.0.1:8080/v1/policy/purposes/admin:resources:delete"
        );
        assert_eq!(
            c.url(&["v1", "devices", "a/b?c d%"]),
            "http://127.0.0.1:8080/v1/devices/a%2Fb%3Fc%20d%25"
        );
    }

    #[test]
    fn debug_hides_the_api_key() {
        let c = Client::new("http://x").with_api_key("sgk_secret");
        assert!(!format!("{c:?}").contains("sgk_secret"));
    }

    /// A fake stepgate answering login the three ways it can, and forward-auth.
    async fn fake() -> Client {
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;
        use axum::routing::{get, post};

        let risk = serde_json::json!({ "score": 45, "tier": "medium", "device_trust": "none",
            "reasons": [{ "signal": "new_device", "observed": "new device for this user", "weight": 30 }] });
        let problem = |status: StatusCode, body: serde_json::Value| {
            (
                status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                body.to_string(),
            )
                .into_response()
        };
        let login = move |axum::Json(body): axum::Json<serde_json::Value>| {
            let risk = risk.clone();
            async move {
                match body["username"].as_str() {
                    Some("low") => (
                        StatusCode::CREATED,
                        axum::Json(serde_json::json!({ "access_token": "eyJ.a.b",
                            "token_type": "Bearer", "session_id": "s1", "expires_in": 900,
                            "enrollment_required": false, "risk": risk })),
                    )
                        .into_response(),
                    Some("medium") => problem(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({ "type": "urn:stepgate:problem:STEPUP_REQUIRED",
                            "title": "Step-up required", "status": 401,
                            "detail": "this sign-in needs a second factor",
                            "code": "STEPUP_REQUIRED", "challenge_id": "c1", "purpose": "login",
                            "allowed_factors": ["totp"], "expires_at": "2030-01-01T00:00:00Z",
                            "risk": risk }),
                    ),
                    _ => problem(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({ "status": 401, "code": "INVALID_CREDENTIALS",
                            "detail": "the username or password is wrong" }),
                    ),
                }
            }
        };
        let forward = move |headers: axum::http::HeaderMap| async move {
            assert_eq!(headers["x-original-method"], "DELETE");
            assert_eq!(headers["x-original-url"], "https://app.example/r/1");
            match headers.get("authorization").map(|v| v.to_str().unwrap()) {
                Some("Bearer ok") => (
                    StatusCode::OK,
                    [("x-stepgate-user", "u1"), ("x-stepgate-session", "s1")],
                )
                    .into_response(),
                Some(_) => problem(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({ "status": 401, "code": "STEPUP_REQUIRED", "detail": "d" }),
                ),
                None => problem(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "status": 400, "code": "VALIDATION_FAILED", "detail": "d" }),
                ),
            }
        };
        let app = axum::Router::new()
            .route("/v1/sessions", post(login))
            .route("/v1/forward-auth", get(forward));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Client::new(format!("http://{addr}"))
    }

    fn login(username: &str) -> Login {
        Login {
            username: username.into(),
            password: "correct horse".into(),
            device: None,
        }
    }

    #[tokio::test]
    async fn login_answers_a_session_a_challenge_or_an_error() {
        let c = fake().await;
        match c.login(&login("low")).await.unwrap() {
            LoginOutcome::Session(s) => {
                assert_eq!((s.session_id.as_str(), s.expires_in), ("s1", 900));
                assert_eq!(s.risk.reasons[0].weight, 30);
            }
            other => panic!("{other:?}"),
        }
        match c.login(&login("medium")).await.unwrap() {
            LoginOutcome::StepUpRequired(s) => {
                assert_eq!(s.challenge_id, "c1");
                assert_eq!(s.allowed_factors, ["totp"]);
                assert_eq!(s.risk.tier, "medium");
                assert_eq!(s.detail, "this sign-in needs a second factor");
            }
            other => panic!("{other:?}"),
        }
        let e = c.login(&login("nobody")).await.unwrap_err();
        assert!(e.is("INVALID_CREDENTIALS"), "{e:?}");
        assert_eq!(e.status(), Some(401));
    }

    #[tokio::test]
    async fn forward_auth_reads_allow_and_refusals() {
        let c = fake().await;
        let request = |auth: Option<&str>| ForwardAuthRequest {
            authorization: auth.map(str::to_owned),
            method: "DELETE".into(),
            url: "https://app.example/r/1".into(),
            ..ForwardAuthRequest::default()
        };
        let a = c.forward_auth(&request(Some("Bearer ok"))).await.unwrap();
        assert_eq!((a.status, a.user_id.as_deref()), (200, Some("u1")));
        assert_eq!(a.session_id.as_deref(), Some("s1"));
        let a = c.forward_auth(&request(Some("Bearer no"))).await.unwrap();
        assert_eq!(a.status, 401);
        assert_eq!(a.problem.unwrap()["code"], "STEPUP_REQUIRED");
        let e = c.forward_auth(&request(None)).await.unwrap_err();
        assert!(e.is("VALIDATION_FAILED"));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let e = Client::new(format!("http://{addr}"))
            .healthz()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
    }

    #[test]
    fn decision_requests_carry_exactly_one_question() {
        let by_purpose = DecisionRequest::purpose("t", "p").elevation_token("sge_x");
        assert_eq!(
            serde_json::to_value(&by_purpose).unwrap(),
            serde_json::json!({ "access_token": "t", "purpose": "p", "elevation_token": "sge_x" })
        );
        let by_action = DecisionRequest::action("t", "delete", "doc:1").context(DecisionContext {
            ip: Some("10.0.0.1".into()),
            ..DecisionContext::default()
        });
        assert_eq!(
            serde_json::to_value(&by_action).unwrap(),
            serde_json::json!({ "access_token": "t", "action": "delete", "resource": "doc:1",
                "context": { "ip": "10.0.0.1" } })
        );
        let d: Decision = serde_json::from_value(serde_json::json!({
            "decision": "step_up", "user_id": "u", "session_id": "s", "purpose": "p",
            "challenge_id": "c", "title": "T", "allowed_factors": ["totp"],
            "acr_values": "urn:stepgate:acr:mfa", "max_age": 0, "token_scheme": "DPoP",
            "risk": { "score": 0, "tier": "low", "device_trust": "key", "reasons": [] },
            "reasons": [], "policy_ids": [], "policy_version": 1,
        }))
        .unwrap();
        assert_eq!(d.decision, DecisionKind::StepUp);
        assert_eq!(d.token_scheme, TokenScheme::Dpop);
        assert_eq!(d.max_age, Some(0));
    }
}
