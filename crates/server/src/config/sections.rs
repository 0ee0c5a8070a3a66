//! The config's tables: each section's settings and defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stepgate_core::purpose::{FactorClass, Purpose, PurposeName, Requirement};
use stepgate_core::risk::RiskConfig;
use stepgate_core::stepup::ElevationMode;

/// `[decisions]`: the decision path's caches and its record queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionsConfig {
    /// Verified access tokens kept (keyed by the token's SHA-256) so that a decision
    /// does not verify a signature per request.
    pub token_cache_entries: usize,
    /// How long a session's decision view (liveness, roles, risk history, elevations)
    /// is reused, in milliseconds; 0 reads it for every decision. Changes made through
    /// this node (logout, step-up, revocation) are seen at once; changes made through
    /// another node within this bound. An allow that relies on an elevation, and every
    /// `step_up`/`deny`, is confirmed against the database.
    pub session_cache_ms: u64,
    /// Decision records waiting to be written; past this, records are dropped (counted
    /// in `stepgate_decision_records_dropped_total`), never the decision.
    pub record_queue: usize,
    /// Records written per transaction.
    pub record_batch: usize,
    /// Cedar outcomes kept by their complete facts (exact: the policies do not change
    /// while the server runs).
    pub outcome_cache_entries: usize,
    /// The elevation mode of the challenge a `step_up` decision opens: `session` (the
    /// verify answer carries a fresh access token) or `token`.
    pub challenge_mode: ElevationMode,
    /// How long decision records are kept, in days (the window a policy simulation can
    /// replay); older ones are pruned.
    pub record_retention_days: u32,
}

impl Default for DecisionsConfig {
    fn default() -> Self {
        Self {
            token_cache_entries: 100_000,
            session_cache_ms: 1000,
            record_queue: 50_000,
            record_batch: 1000,
            outcome_cache_entries: 10_000,
            challenge_mode: ElevationMode::Session,
            record_retention_days: 30,
        }
    }
}

/// `[[forward_auth]]`: how a proxied request becomes a decision. Rules are checked in
/// order; the first match decides. A request no rule matches is decided as action
/// `http:<METHOD>` on resource `<path>`. Written as the SPEC's array of tables
/// (`[[forward_auth]]`); `[[forward_auth.routes]]` is accepted as an older alias.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct ForwardAuthConfig {
    pub routes: Vec<ForwardRoute>,
}

impl<'de> Deserialize<'de> for ForwardAuthConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Rules;
        impl<'de> serde::de::Visitor<'de> for Rules {
            type Value = ForwardAuthConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an array of [[forward_auth]] tables, each with method, path, and \
                     purpose or action + resource",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                let routes =
                    Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ForwardAuthConfig { routes })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Alias {
                    #[serde(default)]
                    routes: Vec<ForwardRoute>,
                }
                let alias = Alias::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ForwardAuthConfig {
                    routes: alias.routes,
                })
            }
        }
        d.deserialize_any(Rules)
    }
}

/// One forward-auth rule: requests whose method is `method` (`"*"`, the default, for
/// any; a list is accepted too) and whose normalised path matches `path` (a prefix
/// ending in `*`, matched on segment boundaries, or an exact path) are decided as
/// `purpose`, or as `action` on `resource` (`{path}` in `resource` is replaced by the
/// normalised request path). `methods` and `path_prefix` (a prefix without the `*`) are
/// the older spellings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRoute {
    #[serde(
        default,
        alias = "methods",
        deserialize_with = "methods",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub method: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

impl ForwardRoute {
    /// The path pattern as written: `path`, or `path_prefix` as a prefix pattern.
    pub fn pattern(&self) -> String {
        match (&self.path, &self.path_prefix) {
            (Some(path), _) => path.clone(),
            (None, Some(prefix)) => format!("{prefix}*"),
            (None, None) => String::new(),
        }
    }

    /// Whether the rule applies to any method or names this one.
    pub fn applies_to(&self, method: &str) -> bool {
        self.method.is_empty() || self.method.iter().any(|m| m.eq_ignore_ascii_case(method))
    }
}

/// `method`: one method, `"*"` for any, or a list of methods. Any is kept as empty.
fn methods<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Methods;
    impl<'de> serde::de::Visitor<'de> for Methods {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an HTTP method such as \"DELETE\", \"*\" for any, or a list of methods")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(if v == "*" {
                Vec::new()
            } else {
                vec![v.to_owned()]
            })
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element::<String>()? {
                if m == "*" {
                    return Ok(Vec::new());
                }
                out.push(m);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Methods)
}

/// `[risk]`: the engine's weights (0–100 each) and thresholds, then the signal sources
/// and what a high-risk login meets. serde cannot refuse unknown keys beside a
/// flattened struct, so `Config::load` does (`unknown_risk_keys`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskSettings {
    /// The engine's settings, written at the top level of `[risk]`.
    #[serde(flatten)]
    pub engine: RiskConfig,
    /// Refuse high-risk logins (`LOGIN_BLOCKED`) instead of demanding the strongest factor.
    pub block_high: bool,
    /// A MaxMind-format City database (GeoLite2/GeoIP2 City layout).
    pub geoip_database: Option<PathBuf>,
    /// IP reputation lists: one CIDR or address per line, `#` comments.
    pub ip_lists: Vec<IpListConfig>,
    /// How often list files and the GeoIP database are checked for changes (also on SIGHUP).
    pub reload_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpListConfig {
    pub name: String,
    pub path: PathBuf,
    #[serde(default = "default_list_weight")]
    pub weight: u8,
}

fn default_list_weight() -> u8 {
    40
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            engine: RiskConfig::default(),
            block_high: false,
            geoip_database: None,
            ip_lists: Vec::new(),
            reload_seconds: 2,
        }
    }
}

/// `[lockout]`: sign-in soft lock per account, decaying with the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    pub max_failures: u32,
    pub window_seconds: i64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window_seconds: 900,
        }
    }
}

/// `[rate_limits]`: requests per minute, counted in the store (so they hold across
/// nodes): logins and answers per client IP, new challenges per session and per user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub login_per_minute: u32,
    pub verify_per_minute: u32,
    /// New step-up challenges one session may open per minute (a request that gets an
    /// existing pending challenge back does not count).
    pub challenges_per_session_per_minute: u32,
    /// New step-up challenges one user may open per minute, over all their sessions.
    pub challenges_per_user_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_minute: 60,
            verify_per_minute: 60,
            challenges_per_session_per_minute: 20,
            challenges_per_user_per_minute: 60,
        }
    }
}

/// `[http]`: how long a connection may take, how many may be open, and how long a
/// shutdown waits for them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request's head (request line and headers) must arrive within this; the clock
    /// also runs while a kept-alive connection waits for its next request, so it is the
    /// idle timeout too.
    pub header_read_timeout_seconds: u64,
    /// A request's body must arrive within this, counted from its head.
    pub body_read_timeout_seconds: u64,
    /// Connections open at once; more are closed as they arrive (and logged). Lowered
    /// at start to fit the process's open-file limit.
    pub max_connections: usize,
    /// On SIGTERM or SIGINT: how long requests in flight may take to finish before the
    /// connections left are closed.
    pub shutdown_grace_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 20,
            body_read_timeout_seconds: 20,
            max_connections: 4096,
            shutdown_grace_seconds: 10,
        }
    }
}

/// `[testing]`: never enable in production.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Enables `PUT /v1/testing/clock` (admin) to move this node's clock, so that tests
    /// can exercise lockout decay and time-of-day signals. Only from the config file
    /// (no environment variable sets it), only with a loopback `listen`, and a warning
    /// is logged at every start while it is on.
    pub clock_control: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepupConfig {
    /// How long a challenge can be answered.
    pub challenge_ttl_seconds: i64,
    /// Wrong answers a challenge allows before it is dead.
    pub max_attempts: u32,
    /// Wrong answers per user and factor allowed within `failure_window_seconds`.
    pub max_failures_per_window: u32,
    pub failure_window_seconds: i64,
}

impl Default for StepupConfig {
    fn default() -> Self {
        let d = stepgate_core::stepup::StepupLimits::default();
        Self {
            challenge_ttl_seconds: d.challenge_ttl_seconds,
            max_attempts: d.max_attempts,
            max_failures_per_window: d.window_failures,
            failure_window_seconds: d.window_seconds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How long a session lasts from login.
    pub ttl_seconds: i64,
    /// How long one access token lasts (never past its session's end).
    pub access_token_ttl_seconds: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 12 * 3600,
            access_token_ttl_seconds: 900,
        }
    }
}

/// A purpose as declared by the operator; its values are the platform minimum.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeConfig {
    pub name: String,
    pub title: String,
    /// What happens once it is authorized, shown under the title on the step-up page.
    #[serde(default)]
    pub consequence: Option<String>,
    pub factor: String,
    pub ttl_seconds: i64,
    #[serde(default = "yes")]
    pub single_use: bool,
    #[serde(default)]
    pub bind_ip: bool,
    #[serde(default)]
    pub approvals: u32,
    /// The action's own risk weight (0–100), added when assessing it.
    #[serde(default)]
    pub sensitivity: u8,
}

fn yes() -> bool {
    true
}

impl PurposeConfig {
    /// The declared purpose as a domain value; on error, the field and why.
    pub fn to_purpose(&self) -> Result<Purpose, (&'static str, String)> {
        let name = PurposeName::parse(&self.name).map_err(|e| ("name", e.detail.into_owned()))?;
        if self.title.trim().is_empty() {
            return Err(("title", "must not be empty".into()));
        }
        if self.title.chars().count() > 120 {
            return Err(("title", "must be at most 120 characters".into()));
        }
        if self
            .consequence
            .as_ref()
            .is_some_and(|c| c.trim().is_empty() || c.chars().count() > 300)
        {
            return Err(("consequence", "must be 1 to 300 characters".into()));
        }
        let minimum = Requirement {
            factor: FactorClass::parse(&self.factor)
                .map_err(|e| ("factor", e.detail.into_owned()))?,
            ttl_seconds: self.ttl_seconds,
            single_use: self.single_use,
            bind_ip: self.bind_ip,
            approvals: self.approvals,
        };
        minimum
            .validate_fields()
            .map_err(|(field, e)| (field, e.detail.into_owned()))?;
        if self.sensitivity > 100 {
            return Err(("sensitivity", "must be 0 to 100".into()));
        }
        Ok(Purpose {
            name,
            title: self.title.clone(),
            consequence: self.consequence.clone(),
            minimum,
            sensitivity: self.sensitivity,
        })
    }
}

/// `[smtp]`: the mail server that email one-time codes are sent through. Without it,
/// mails are written to `DATA_DIR/mail/` as `.eml` files (development).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `none` (plain, for a local relay), `starttls` or `tls` (implicit TLS).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender address.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    #[default]
    Starttls,
    Tls,
}

/// `[email]`: email one-time codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Digits per code, 6 to 8.
    pub code_digits: u8,
    /// How long a code may be used after it is sent.
    pub code_ttl_seconds: i64,
    /// Codes sent per user per minute (over all their addresses and challenges).
    pub sends_per_user_per_minute: u32,
    /// Codes sent to one address per minute.
    pub sends_per_address_per_minute: u32,
    /// The sender address when mails go to files (without `[smtp]`).
    pub from: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            code_digits: 6,
            code_ttl_seconds: 300,
            sends_per_user_per_minute: 3,
            sends_per_address_per_minute: 3,
            from: "stepgate@localhost".into(),
        }
    }
}

/// `[pages]`: the hosted pages (`/stepup/{id}`, `/account`, `/admin`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// Where the step-up page may send the person back to once they pass (its
    /// `return_to` parameter): URL prefixes, each an `http(s)://host[:port]/path`. A
    /// `return_to` must have the same origin as one of them and a path under its path;
    /// any other is refused. Empty: the page never redirects.
    pub return_to: Vec<String>,
}

impl PagesConfig {
    /// `raw` as a `return_to` the allow-list admits, normalised (the URL the page
    /// redirects to), or why not. This server's own account page and admin console
    /// (`/account`, `/admin` under `public_url`) are always admitted.
    pub fn return_target(&self, public_url: &str, raw: &str) -> Result<url::Url, &'static str> {
        let target = url::Url::parse(raw).map_err(|_| "return_to is not an absolute URL")?;
        if !target.username().is_empty() || target.password().is_some() {
            return Err("return_to must not carry credentials");
        }
        let own_pages = url::Url::parse(public_url).ok().map_or_else(Vec::new, |u| {
            ["/account", "/admin"]
                .into_iter()
                .filter_map(|p| u.join(p).ok())
                .collect()
        });
        let admitted = own_pages
            .into_iter()
            .chain(
                self.return_to
                    .iter()
                    .filter_map(|e| url::Url::parse(e).ok()),
            )
            .any(|entry| {
                entry.origin() == target.origin() && path_under(entry.path(), target.path())
            });
        if admitted {
            Ok(target)
        } else {
            Err("return_to is not in this server's allow-list ([pages] return_to)")
        }
    }
}

/// Whether `path` is `prefix` or below it (`/app` admits `/app` and `/app/x`, never
/// `/application`).
fn path_under(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// `[audit]`: the hash chain's signed checkpoints. The chain head is signed with the
/// active signing key once `checkpoint_every` events were appended since the last
/// checkpoint, or `checkpoint_seconds` after it when any were.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub checkpoint_every: u32,
    pub checkpoint_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_seconds: 60,
        }
    }
}
