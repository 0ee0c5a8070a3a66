//! Configuration: a TOML file plus `STEPGATE_*` environment variables (env wins), with
//! defaults that make a fresh `stepgate serve` work with no file at all.
//!
//! Nested keys map to env vars with `__`: `session.ttl_seconds` ↔
//! `STEPGATE_SESSION__TTL_SECONDS`. Errors name the offending key and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use stepgate_core::purpose::{FactorClass, Purpose, PurposeName, Requirement};
use stepgate_core::stepup::StepupLimits;

/// Top-level keys, so that unrelated `STEPGATE_*` variables (e.g. a test harness's) are
/// not mistaken for settings. `testing` is not among them: a test switch is set in the
/// config file, never by one stray environment variable.
const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "database_url",
    "database_max_connections",
    "public_url",
    "issuer",
    "trusted_proxies",
    "signing_key_file",
    "secrets_key_file",
    "keys_reload_seconds",
    "log_format",
    "log_filter",
    "password_hash_concurrency",
    "max_body_bytes",
    "session",
    "stepup",
    "totp_issuer",
    "risk",
    "lockout",
    "rate_limits",
    "http",
    "purposes",
    "policy_file",
    "policy_schema",
    "decisions",
    "forward_auth",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite file, keys and dev mail go.
    pub data_dir: PathBuf,
    /// Socket address to listen on (port 0 picks a free port; the log line names it).
    pub listen: SocketAddr,
    /// `sqlite:…` or `postgres://…`; default: `sqlite` file `stepgate.db` in the data dir.
    pub database_url: Option<String>,
    /// Pool size (PostgreSQL, and SQLite readers).
    pub database_max_connections: u32,
    /// External base URL: WebAuthn origin, links, and the token issuer by default.
    pub public_url: String,
    /// The `iss` claim; default: `public_url`.
    pub issuer: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed. Env: comma-separated CIDRs.
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// JWT signing key set; default `signing-keys.json` in the data dir, generated.
    pub signing_key_file: Option<PathBuf>,
    /// Key that encrypts factor secrets; default `secrets.key` in the data dir, generated.
    pub secrets_key_file: Option<PathBuf>,
    /// How often the server looks for a rotated signing key file.
    pub keys_reload_seconds: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `stepgate_server=debug`.
    pub log_filter: String,
    /// How many password hashes may run at once (each takes 19 MiB for ~20 ms).
    pub password_hash_concurrency: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub session: SessionConfig,
    pub stepup: StepupConfig,
    /// The issuer name authenticator apps show next to the account.
    pub totp_issuer: String,
    pub risk: RiskSettings,
    pub lockout: LockoutConfig,
    pub rate_limits: RateLimitConfig,
    pub http: HttpConfig,
    pub testing: TestingConfig,
    pub purposes: Vec<PurposeConfig>,
    /// Cedar policies for `POST /v1/decisions` and forward-auth. Without them, every
    /// action/resource decision is `deny` (decisions by purpose still work).
    pub policy_file: Option<PathBuf>,
    /// A Cedar schema (`.cedarschema`); when set, the policies are validated strictly
    /// against it at start and by `stepgate policy check`.
    pub policy_schema: Option<PathBuf>,
    pub decisions: DecisionsConfig,
    pub forward_auth: ForwardAuthConfig,
}

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
    pub challenge_mode: String,
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
            challenge_mode: "session".into(),
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

/// `[risk]`: weights (0–100 each), tier thresholds, signal sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSettings {
    pub weight_no_device: u8,
    pub weight_new_device: u8,
    pub weight_new_ip: u8,
    pub weight_new_country: u8,
    pub weight_impossible_travel: u8,
    pub weight_unusual_hour: u8,
    pub weight_failure_velocity: u8,
    pub weight_stale_session: u8,
    pub medium_at: u8,
    pub high_at: u8,
    pub max_travel_kmh: f64,
    pub usual_hours_min_history: usize,
    pub failure_velocity_threshold: u32,
    pub stale_session_seconds: i64,
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
        let d = stepgate_core::risk::RiskConfig::default();
        Self {
            weight_no_device: d.weight_no_device,
            weight_new_device: d.weight_new_device,
            weight_new_ip: d.weight_new_ip,
            weight_new_country: d.weight_new_country,
            weight_impossible_travel: d.weight_impossible_travel,
            weight_unusual_hour: d.weight_unusual_hour,
            weight_failure_velocity: d.weight_failure_velocity,
            weight_stale_session: d.weight_stale_session,
            medium_at: d.medium_at,
            high_at: d.high_at,
            max_travel_kmh: d.max_travel_kmh,
            usual_hours_min_history: d.usual_hours_min_history,
            failure_velocity_threshold: d.failure_velocity_threshold,
            stale_session_seconds: d.stale_session_seconds,
            block_high: false,
            geoip_database: None,
            ip_lists: Vec::new(),
            reload_seconds: 2,
        }
    }
}

impl RiskSettings {
    pub fn engine(&self) -> stepgate_core::risk::RiskConfig {
        stepgate_core::risk::RiskConfig {
            weight_no_device: self.weight_no_device,
            weight_new_device: self.weight_new_device,
            weight_new_ip: self.weight_new_ip,
            weight_new_country: self.weight_new_country,
            weight_impossible_travel: self.weight_impossible_travel,
            weight_unusual_hour: self.weight_unusual_hour,
            weight_failure_velocity: self.weight_failure_velocity,
            weight_stale_session: self.weight_stale_session,
            medium_at: self.medium_at,
            high_at: self.high_at,
            max_travel_kmh: self.max_travel_kmh,
            usual_hours_min_history: self.usual_hours_min_history,
            failure_velocity_threshold: self.failure_velocity_threshold,
            stale_session_seconds: self.stale_session_seconds,
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
            minimum,
            sensitivity: self.sensitivity,
        })
    }
}

impl Config {
    /// The declared purposes, plus the built-in `factors:delete` (removing a factor is
    /// itself a step-up purpose) when the config does not declare it.
    pub fn purposes(&self) -> Vec<Purpose> {
        let mut purposes: Vec<Purpose> = self
            .purposes
            .iter()
            .filter_map(|p| p.to_purpose().ok())
            .collect();
        for (name, title) in [
            (FACTORS_DELETE, "Remove a sign-in factor"),
            (FACTORS_ENROLL, "Add a sign-in factor"),
        ] {
            if purposes.iter().any(|p| p.name.as_str() == name) {
                continue;
            }
            purposes.push(Purpose {
                name: PurposeName::parse(name).expect("a valid name"),
                title: title.into(),
                minimum: Requirement {
                    factor: FactorClass::Any,
                    ttl_seconds: 300,
                    single_use: true,
                    bind_ip: false,
                    approvals: 0,
                },
                sensitivity: 30,
            });
        }
        purposes
    }

    pub fn stepup_limits(&self) -> StepupLimits {
        StepupLimits {
            challenge_ttl_seconds: self.stepup.challenge_ttl_seconds,
            max_attempts: self.stepup.max_attempts,
            window_failures: self.stepup.max_failures_per_window,
            window_seconds: self.stepup.failure_window_seconds,
        }
    }
}

/// The purpose that guards `DELETE /v1/factors/{id}`.
pub const FACTORS_DELETE: &str = "factors:delete";
/// The purpose that guards adding a factor when the user already has one.
pub const FACTORS_ENROLL: &str = "factors:enroll";

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_max_connections: 16,
            public_url: "http://localhost:8080".into(),
            issuer: None,
            trusted_proxies: Vec::new(),
            signing_key_file: None,
            secrets_key_file: None,
            keys_reload_seconds: 2,
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            password_hash_concurrency: 4,
            max_body_bytes: 64 * 1024,
            session: SessionConfig::default(),
            stepup: StepupConfig::default(),
            totp_issuer: "stepgate".into(),
            risk: RiskSettings::default(),
            lockout: LockoutConfig::default(),
            rate_limits: RateLimitConfig::default(),
            http: HttpConfig::default(),
            testing: TestingConfig::default(),
            purposes: Vec::new(),
            policy_file: None,
            policy_schema: None,
            decisions: DecisionsConfig::default(),
            forward_auth: ForwardAuthConfig::default(),
        }
    }
}

/// Accepts a TOML array of CIDRs or one comma-separated string (the env var form). A bare
/// address means that single host.
fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(d)? {
        Raw::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Raw::Many(v) => v,
    };
    items
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a CIDR or IP address")))
        })
        .collect()
}

/// One figment error as `key: what is wrong (in where it came from)`, naming the
/// environment variable when the value came from one.
fn describe(e: figment::Error) -> String {
    let key = e.path.join(".").to_ascii_lowercase();
    let origin = match &e.metadata {
        Some(m) if m.name.contains("environment") => format!(
            "environment variable STEPGATE_{}",
            e.path.join("__").to_ascii_uppercase()
        ),
        Some(m) => match &m.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            _ => m.name.to_string(),
        },
        None => "defaults".into(),
    };
    if key.is_empty() {
        format!("{} (in {origin})", e.kind)
    } else {
        format!("{key}: {} (in {origin})", e.kind)
    }
}

/// Where the config file was looked for, and whether it existed.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub explicit: bool,
}

impl ConfigSource {
    /// `--config`, else `STEPGATE_CONFIG`, else `stepgate.toml` in `STEPGATE_DATA_DIR`
    /// (default `./data`).
    pub fn locate(flag: Option<PathBuf>) -> Self {
        if let Some(path) = flag.or_else(|| std::env::var_os("STEPGATE_CONFIG").map(PathBuf::from))
        {
            return Self {
                path,
                explicit: true,
            };
        }
        let dir = std::env::var_os("STEPGATE_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Config::default().data_dir);
        Self {
            path: dir.join("stepgate.toml"),
            explicit: false,
        }
    }
}

impl Config {
    /// Reads the file (if present; a missing explicit file is an error) and the
    /// environment, then checks the values.
    pub fn load(source: &ConfigSource) -> Result<Self, String> {
        if source.explicit && !source.path.exists() {
            return Err(format!(
                "config file {} does not exist",
                source.path.display()
            ));
        }
        if let Some((name, _)) =
            std::env::vars().find(|(k, _)| k.to_ascii_uppercase().starts_with("STEPGATE_TESTING"))
        {
            return Err(format!(
                "{name}: testing settings are read from the config file only, never from \
                 the environment"
            ));
        }
        let env = Env::prefixed("STEPGATE_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let config: Config = Figment::new()
            .merge(Serialized::defaults(Config::default()))
            .merge(Toml::file(&source.path))
            .merge(env)
            .extract()
            .map_err(|e| e.into_iter().map(describe).collect::<Vec<_>>().join("\n"))?;
        config.check()?;
        Ok(config)
    }

    /// Semantic checks serde cannot express. Each message starts with the key.
    fn check(&self) -> Result<(), String> {
        let positive = [
            ("session.ttl_seconds", self.session.ttl_seconds),
            (
                "session.access_token_ttl_seconds",
                self.session.access_token_ttl_seconds,
            ),
        ];
        for (key, value) in positive {
            if value <= 0 {
                return Err(format!("{key}: must be a positive number of seconds"));
            }
        }
        let stepup = [
            (
                "stepup.challenge_ttl_seconds",
                self.stepup.challenge_ttl_seconds,
            ),
            ("stepup.max_attempts", i64::from(self.stepup.max_attempts)),
            (
                "stepup.max_failures_per_window",
                i64::from(self.stepup.max_failures_per_window),
            ),
            (
                "stepup.failure_window_seconds",
                self.stepup.failure_window_seconds,
            ),
        ];
        for (key, value) in stepup {
            if value <= 0 {
                return Err(format!("{key}: must be positive"));
            }
        }
        if self.risk.medium_at == 0
            || self.risk.medium_at > self.risk.high_at
            || self.risk.high_at > 100
        {
            return Err(
                "risk.medium_at / risk.high_at: need 0 < medium_at <= high_at <= 100".into(),
            );
        }
        if self.risk.max_travel_kmh <= 0.0 {
            return Err("risk.max_travel_kmh: must be positive".into());
        }
        if self.lockout.max_failures == 0 || self.lockout.window_seconds <= 0 {
            return Err("lockout: max_failures and window_seconds must be positive".into());
        }
        let limits = &self.rate_limits;
        if [
            limits.login_per_minute,
            limits.verify_per_minute,
            limits.challenges_per_session_per_minute,
            limits.challenges_per_user_per_minute,
        ]
        .contains(&0)
        {
            return Err("rate_limits: limits must be at least 1".into());
        }
        let http = &self.http;
        if http.header_read_timeout_seconds == 0
            || http.body_read_timeout_seconds == 0
            || http.max_connections == 0
        {
            return Err(
                "http: timeouts must be at least 1 second and max_connections at least 1".into(),
            );
        }
        if self.testing.clock_control && !self.listen.ip().is_loopback() {
            return Err(format!(
                "testing.clock_control: lets an admin key move the clock, so it is allowed only \
                 when listen is a loopback address (listen is {})",
                self.listen
            ));
        }
        if self.decisions.record_retention_days == 0 {
            return Err("decisions.record_retention_days: must be at least 1".into());
        }
        for (i, list) in self.risk.ip_lists.iter().enumerate() {
            if list.name.trim().is_empty() {
                return Err(format!("risk.ip_lists[{i}].name: must not be empty"));
            }
        }
        if self.password_hash_concurrency == 0 {
            return Err("password_hash_concurrency: must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("max_body_bytes: must be at least 1024".into());
        }
        if self.database_max_connections == 0 {
            return Err("database_max_connections: must be at least 1".into());
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err("database_url: must start with sqlite: or postgres://".into());
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err("public_url: must be an http:// or https:// URL".into());
        }
        if self.policy_schema.is_some() && self.policy_file.is_none() {
            return Err("policy_schema: needs policy_file".into());
        }
        if !["session", "token"].contains(&self.decisions.challenge_mode.as_str()) {
            return Err("decisions.challenge_mode: must be \"session\" or \"token\"".into());
        }
        if self.decisions.record_queue == 0 || self.decisions.record_batch == 0 {
            return Err("decisions: record_queue and record_batch must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.purposes.iter().enumerate() {
            let purpose = p
                .to_purpose()
                .map_err(|(field, why)| format!("purposes[{i}].{field}: {why}"))?;
            if !names.insert(purpose.name) {
                return Err(format!(
                    "purposes[{i}].name: {:?} is declared twice",
                    p.name
                ));
            }
        }
        for (i, r) in self.forward_auth.routes.iter().enumerate() {
            let key = format!("forward_auth[{i}]");
            if r.path.is_some() == r.path_prefix.is_some() {
                return Err(format!(
                    "{key}.path: give path (a prefix ending in \"*\", or an exact path)"
                ));
            }
            crate::forward_auth::PathPattern::parse(&r.pattern())
                .map_err(|why| format!("{key}.path: {why}"))?;
            if let Some(m) = r.method.iter().find(|m| {
                m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_alphabetic())
            }) {
                return Err(format!(
                    "{key}.method: {m:?} is not an HTTP method (give one such as \"DELETE\", or \"*\" for any)"
                ));
            }
            match (&r.purpose, &r.action, &r.resource) {
                (Some(p), None, None) => {
                    if !self.purposes().iter().any(|d| d.name.as_str() == p) {
                        return Err(format!(
                            "{key}.purpose: no purpose named {p:?} is declared in [[purposes]]"
                        ));
                    }
                }
                (None, Some(_), Some(_)) => {}
                _ => {
                    return Err(format!(
                        "{key}: give either purpose, or both action and resource"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("stepgate.db").display()))
    }

    pub fn issuer(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| self.public_url.trim_end_matches('/').to_owned())
    }

    pub fn signing_key_file(&self) -> PathBuf {
        self.signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing-keys.json"))
    }

    /// Reads and checks the Cedar policies (and schema) against the configured purposes.
    pub fn load_policies(&self) -> anyhow::Result<stepgate_core::authz::Policies> {
        let purposes = self.purposes();
        let names: Vec<&str> = purposes.iter().map(|p| p.name.as_str()).collect();
        let Some(path) = &self.policy_file else {
            return Ok(stepgate_core::authz::Policies::parse("", None, &names)?);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("policy_file {}: {e}", path.display()))?;
        let schema = self
            .policy_schema
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("policy_schema {}: {e}", p.display()))
            })
            .transpose()?;
        stepgate_core::authz::Policies::parse(&text, schema.as_deref(), &names)
            .map_err(|e| anyhow::anyhow!("policy_file {}: {e}", path.display()))
    }

    pub fn secrets_key_file(&self) -> PathBuf {
        self.secrets_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets.key"))
    }
}

/// The config `serve` writes on first start: the three purposes of the spec's acceptance
/// story, so they can be tried at once.
pub const DEV_CONFIG: &str = r#"# stepgate development config, generated on first start.
# Every key can also be set by an environment variable: listen -> STEPGATE_LISTEN,
# session.ttl_seconds -> STEPGATE_SESSION__TTL_SECONDS. `stepgate config check` validates.

# listen = "127.0.0.1:8080"
# public_url = "http://localhost:8080"
# database_url = "postgres://user@host/db"   # default: SQLite in the data dir
# trusted_proxies = ["10.0.0.0/8"]
# log_format = "json"

[session]
ttl_seconds = 43200
access_token_ttl_seconds = 900

[[purposes]]
name = "admin:resources:delete"
title = "Delete a production resource"
factor = "any"
ttl_seconds = 300
single_use = true
bind_ip = true
approvals = 0
sensitivity = 60                    # destructive: high risk on its own

[[purposes]]
name = "factors:delete"
title = "Remove a sign-in factor"
factor = "any"
ttl_seconds = 300
single_use = true
bind_ip = false
approvals = 0

[[purposes]]
name = "payroll:transmit"
title = "Transmit payroll"
factor = "phishing_resistant"
ttl_seconds = 120
single_use = true
bind_ip = true
approvals = 0
"#;

/// Writes the dev config if `path` does not exist yet. Returns whether it wrote.
pub fn write_dev_config_if_missing(path: &Path) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, DEV_CONFIG)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_config_is_valid() {
        let config: Config = Figment::new()
            .merge(Serialized::defaults(Config::default()))
            .merge(Toml::string(DEV_CONFIG))
            .extract()
            .unwrap();
        config.check().unwrap();
        assert_eq!(config.purposes.len(), 3);
    }

    #[test]
    fn bad_purpose_names_its_key() {
        let config: Config = Figment::new()
            .merge(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                "[[purposes]]\nname='a'\ntitle='A'\nfactor='strong'\nttl_seconds=1\n",
            ))
            .extract()
            .unwrap();
        assert!(
            config
                .check()
                .unwrap_err()
                .starts_with("purposes[0].factor")
        );
    }

    #[test]
    fn removing_a_factor_is_always_a_purpose() {
        let config = Config::default();
        let purposes = config.purposes();
        let p = purposes
            .iter()
            .find(|p| p.name.as_str() == FACTORS_DELETE)
            .unwrap();
        assert!(p.minimum.single_use);
    }

    #[test]
    fn trusted_proxies_accept_a_comma_list() {
        let config: Config = Figment::new()
            .merge(Serialized::defaults(Config::default()))
            .merge(Toml::string("trusted_proxies = '10.0.0.0/8, 127.0.0.1'"))
            .extract()
            .unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
    }
}
