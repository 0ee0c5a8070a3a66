//! The example app (`examples/app`, the SDK's `RequireStepUp` layer and local token
//! verification) served in-process in front of the real stepgate binary: the spec's
//! third decision end to end (DELETE → 401 with the RFC 9470 challenge → session-mode
//! step-up → the retry succeeds once), Cedar `allow` and `deny` through the layer, and
//! what the local check cannot see (logout) next to a decision that can.

mod common;

use std::path::Path;

use common::{PASSWORD, PURPOSES, Reply, Server, oathtool, totp_step_now};
use serde_json::{Value, json};
use stepgate_client::www_authenticate::Challenge;

/// The example's own policies, as its README tells operators to use them.
const POLICIES: &str = include_str!("../examples/app/policies.cedar");

/// stepgate with the test purposes and the example's policies.
async fn stepgate(files: &Path) -> Server {
    let path = files.join("policies.cedar");
    std::fs::write(&path, POLICIES).unwrap();
    Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}",
        path.display().to_string()
    ))
    .await
}

/// The example app served on an ephemeral port, asking `s` with its service key.
struct App<'a> {
    s: &'a Server,
    base: String,
}

impl<'a> App<'a> {
    async fn start(s: &'a Server) -> Self {
        let config = stepgate_example::Config::connect(&s.base, &s.service_key)
            .await
            .expect("the app reads stepgate's discovery document and keys");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(stepgate_example::serve(listener, config));
        Self {
            s,
            base: format!("http://{addr}"),
        }
    }

    /// A request to the app, read with the harness (status, headers, JSON body).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.s.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.s.send(req).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(reqwest::Method::DELETE, path, token, None).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }
}

async fn user(s: &Server, name: &str, roles: &[&str]) -> String {
    let r = s
        .post(
            "/v1/users",
            Some(&s.service_key),
            json!({"username": name, "password": PASSWORD, "roles": roles}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn login(s: &Server, name: &str) -> String {
    let r = s.login(name, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn www_authenticate(r: &Reply) -> Challenge {
    let raw = r
        .headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {}", r.text))
        .to_str()
        .unwrap();
    Challenge::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

#[tokio::test]
async fn an_admin_deletes_a_production_resource_after_a_step_up_once() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let app = App::start(&s).await;
    let ada_id = user(&s, "ada", &["admin"]).await;
    let ada = login(&s, "ada").await;
    let step = totp_step_now();
    let secret = s.enroll_totp(&ada, step).await;

    // No token: RFC 6750's bare challenge, nothing else.
    let anonymous = app.delete("/resources/db-7", None).await;
    anonymous.assert_problem(401, "UNAUTHENTICATED");
    let c = www_authenticate(&anonymous);
    assert!(c.is_scheme("Bearer"), "{c:?}");
    assert!(c.params.is_empty() && c.token68.is_none(), "{c:?}");

    // A signed-in admin without a fresh step-up: RFC 9470's answer and a ready challenge.
    let asked = app.delete("/resources/db-7", Some(&ada)).await;
    asked.assert_problem(401, "STEPUP_REQUIRED");
    let c = www_authenticate(&asked);
    assert!(c.is_scheme("Bearer"), "{c:?}");
    assert_eq!(c.error(), Some("insufficient_user_authentication"));
    assert_eq!(c.acr_values(), Some("urn:stepgate:acr:mfa"));
    assert_eq!(c.max_age(), Some(300));
    assert!(
        c.error_description()
            .unwrap()
            .contains("Delete a production resource"),
        "{c:?}"
    );
    assert_eq!(asked.body["purpose"], "admin:resources:delete");
    assert_eq!(
        asked.body["allowed_factors"],
        json!(["totp", "recovery_code"])
    );
    let challenge_id = asked.body["challenge_id"].as_str().unwrap().to_owned();

    // The user answers that challenge; the decision's challenges are session mode, so
    // the answer is a fresh access token for the same session.
    let passed = s
        .verify(&ada, &challenge_id, "totp", &oathtool(&secret, step + 1))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    assert_eq!(passed.body["mode"], "session");
    assert_eq!(passed.body["purpose"], "admin:resources:delete");
    assert_eq!(passed.body["single_use"], true);
    assert!(
        passed
            .body
            .get("elevation_token")
            .is_none_or(Value::is_null)
    );
    let elevated = passed.body["access_token"].as_str().unwrap().to_owned();
    let claims = common::jwt_claims(&elevated);
    assert_eq!(claims["su"], true);
    assert_eq!(claims["acr"], "urn:stepgate:acr:mfa");

    // The elevation is bound to the verify request's IP (127.0.0.1), and the app passes
    // the user's IP on: from another address the retry is refused, using nothing up.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let moved = s
        .send(
            elsewhere
                .delete(format!("{}/resources/db-7", app.base))
                .bearer_auth(&elevated),
        )
        .await;
    moved.assert_problem(403, "STEPUP_IP_MISMATCH");

    // From the IP that stepped up, the retry goes through.
    let deleted = app.delete("/resources/db-7", Some(&elevated)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["deleted"], "db-7");
    assert_eq!(deleted.body["by"], ada_id.as_str());
    assert_eq!(
        deleted.body["elevation_id"], passed.body["elevation_id"],
        "{}",
        deleted.text
    );
    app.get("/resources/db-7", &elevated)
        .await
        .assert_problem(404, "NOT_FOUND");

    // Single use: the next delete (of anything) needs a new step-up, with a new challenge.
    let again = app.delete("/resources/db-8", Some(&elevated)).await;
    again.assert_problem(401, "STEPUP_REQUIRED");
    assert_eq!(
        www_authenticate(&again).error(),
        Some("insufficient_user_authentication")
    );
    assert!(again.body["challenge_id"].is_string());
    assert_ne!(again.body["challenge_id"], challenge_id.as_str());
    let redeemed = s
        .audit("type=ACCOUNT_STEPUP_REDEEMED&purpose=admin:resources:delete")
        .await;
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(redeemed[0]["user_id"], ada_id.as_str());
}

#[tokio::test]
async fn cedar_allows_reads_denies_writes_and_only_decisions_see_a_logout() {
    let files = tempfile::tempdir().unwrap();
    let s = stepgate(files.path()).await;
    let app = App::start(&s).await;
    let ada_id = user(&s, "ada", &["admin"]).await;
    let rita_id = user(&s, "rita", &[]).await;
    let ada = login(&s, "ada").await;
    let rita = login(&s, "rita").await;

    // Local check: the token's signature, issuer and expiry against the cached JWKS.
    let list = app.get("/resources", &rita).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["for"], rita_id.as_str());
    assert_eq!(list.body["acr"], "urn:stepgate:acr:pwd");
    let ids: Vec<&str> = list.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["db-7", "db-8"]);

    // A decision: the policy "anyone-reads" allows it.
    let read = app.get("/resources/db-8", &rita).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["resource"]["env"], "dev");
    assert_eq!(read.body["read_by"], rita_id.as_str());

    // Writing is for admins: rita is denied (403, no challenge: a step-up would not help).
    let change = json!({"name": "scratch database (renamed)", "env": "dev"});
    let denied = app.put("/resources/db-8", &rita, change.clone()).await;
    denied.assert_problem(403, "FORBIDDEN");
    assert!(denied.headers.get("www-authenticate").is_none());
    let written = app.put("/resources/db-8", &ada, change).await;
    assert_eq!(written.status, 200, "{}", written.text);
    assert_eq!(written.body["written_by"], ada_id.as_str());
    assert_eq!(
        app.get("/resources/db-8", &rita).await.body["resource"]["name"],
        "scratch database (renamed)"
    );

    // A garbled token is refused by both styles.
    for path in ["/resources", "/resources/db-8"] {
        let garbled = app.get(path, "not-a-jwt").await;
        garbled.assert_problem(401, "UNAUTHENTICATED");
        assert_eq!(www_authenticate(&garbled).error(), Some("invalid_token"));
    }

    // After logout, the decision refuses the token at once; the local check cannot know.
    let out = s.delete("/v1/sessions/current", Some(&rita)).await;
    assert_eq!(out.status, 204, "{}", out.text);
    let after = app.get("/resources/db-8", &rita).await;
    after.assert_problem(401, "UNAUTHENTICATED");
    assert_eq!(www_authenticate(&after).error(), Some("invalid_token"));
    assert_eq!(app.get("/resources", &rita).await.status, 200);
}
