//! Configuration: a TOML file plus `STEPGATE_*` environment variables (env wins), with
//! defaults that make a fresh `stepgate serve` work with no file at all.
//!
//! Nested keys map to env vars with `__`: `session.ttl_seconds` ↔
//! `STEPGATE_SESSION__TTL_SECONDS`. Errors name the offending key and where it came from.
//!
//! `mod.rs` holds the settings' root (`Config`), where they come from (`ConfigSource`,
//! `Config::load`) and what is derived from them; `sections.rs` the tables (`[risk]`,
//! `[stepup]`, `[[purposes]]`, …), `check.rs` the semantic checks serde cannot express,
//! and `dev.rs` the development config a first start writes.

mod check;
mod dev;
mod sections;

pub use dev::{DEV_CONFIG, write_dev_config_if_missing};
pub use sections::*;

use std::net::SocketAddr;
use std::path::PathBuf;

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
    "smtp",
    "email",
    "pages",
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
    /// Absent: mails go to `DATA_DIR/mail/`.
    pub smtp: Option<SmtpConfig>,
    pub email: EmailConfig,
    pub pages: PagesConfig,
    pub audit: AuditConfig,
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
        let built_in = |ttl_seconds, single_use, bind_ip| Requirement {
            factor: FactorClass::Any,
            ttl_seconds,
            single_use,
            bind_ip,
            approvals: 0,
        };
        for (name, title, consequence, minimum) in [
            (
                FACTORS_DELETE,
                "Remove a sign-in factor",
                "The factor stops working for this account at once.",
                built_in(300, true, false),
            ),
            (
                FACTORS_ENROLL,
                "Add a sign-in factor",
                "The new factor can sign in and pass step-ups for this account.",
                built_in(300, true, false),
            ),
            (
                ADMIN_CONSOLE,
                "Open the admin console",
                "For the next 15 minutes you can change the step-up policy, read the audit \
                 log, reset users' factors and revoke step-ups.",
                built_in(900, false, true),
            ),
        ] {
            if purposes.iter().any(|p| p.name.as_str() == name) {
                continue;
            }
            purposes.push(Purpose {
                name: PurposeName::parse(name).expect("a valid name"),
                title: title.into(),
                consequence: Some(consequence.into()),
                minimum,
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
/// The purpose an admin steps up for to use the admin console (a session-mode
/// elevation that lasts its TTL).
pub const ADMIN_CONSOLE: &str = "admin:console";

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
            smtp: None,
            email: EmailConfig::default(),
            pages: PagesConfig::default(),
            audit: AuditConfig::default(),
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

/// Refuses a key in `[risk]` that no setting has (a misspelt weight would otherwise be
/// ignored): the known keys are those the defaults serialize to, the engine's and the
/// shell's alike.
fn unknown_risk_keys(figment: &Figment) -> Result<(), String> {
    let Ok(figment::value::Value::Dict(_, given)) = figment.find_value("risk") else {
        return Ok(());
    };
    let known = serde_json::to_value(RiskSettings::default()).map_err(|e| e.to_string())?;
    match given.keys().find(|key| known.get(key.as_str()).is_none()) {
        None => Ok(()),
        Some(key) => {
            let origin = figment
                .find_metadata(&format!("risk.{key}"))
                .map_or_else(|| "defaults".to_owned(), |m| m.name.to_string());
            Err(format!("risk.{key}: unknown field `{key}` (in {origin})"))
        }
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
        let figment = Figment::new()
            .merge(Serialized::defaults(Config::default()))
            .merge(Toml::file(&source.path))
            .merge(env);
        let config: Config = figment
            .extract()
            .map_err(|e| e.into_iter().map(describe).collect::<Vec<_>>().join("\n"))?;
        unknown_risk_keys(&figment)?;
        config.check()?;
        Ok(config)
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

    #[test]
    fn risk_takes_the_engines_keys_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stepgate.toml");
        let load = |risk: &str| {
            std::fs::write(&path, format!("[risk]\n{risk}")).unwrap();
            Config::load(&ConfigSource {
                path: path.clone(),
                explicit: true,
            })
        };
        let config = load("weight_new_ip = 33\nblock_high = true\n").unwrap();
        assert_eq!(config.risk.engine.weight_new_ip, 33);
        assert!(config.risk.block_high);
        assert_eq!(
            config.risk.engine.weight_new_device,
            stepgate_core::risk::RiskConfig::default().weight_new_device
        );
        let e = load("weight_new_ipp = 33\n").unwrap_err();
        assert!(e.starts_with("risk.weight_new_ipp: unknown field"), "{e}");
    }
}
