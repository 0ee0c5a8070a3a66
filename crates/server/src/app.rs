//! Building the application from a config in one place: data dir, keys, store.

use std::sync::Arc;

use anyhow::Context;
use stepgate_core::session::SessionLifetimes;
use stepgate_core::stepup::StepupLimits;
use stepgate_store::{ConnectOptions, Store};

use crate::config::Config;
use crate::keys::{KeySet, SecretsKey};
use crate::passwords::Passwords;
use crate::policy::Policy;
use crate::risk::RiskSources;
use crate::tokens::Tokens;

/// Everything a request handler may need. Shared behind an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub tokens: Tokens,
    pub passwords: Passwords,
    pub lifetimes: SessionLifetimes,
    pub secrets: SecretsKey,
    pub policy: Policy,
    pub limits: StepupLimits,
    pub risk: stepgate_core::risk::RiskConfig,
    pub risk_sources: RiskSources,
    /// Seconds added to the system clock; only ever non-zero with `testing.clock_control`.
    pub clock_offset: std::sync::atomic::AtomicI64,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The Cedar policies (empty without `policy_file`).
    pub authz: stepgate_core::authz::Policies,
    pub decider: crate::decisions::Decider,
    pub api_keys: crate::api_keys::KeyCache,
    /// The `[[forward_auth]]` rules, parsed once.
    pub forward_rules: crate::forward_auth::Rules,
    /// The WebAuthn relying party of `public_url` (none when it names no domain).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// Where email codes are sent: `[smtp]`, or files in `DATA_DIR/mail/`.
    pub mail: crate::mail::Mailer,
}

pub type SharedApp = Arc<App>;

/// Current time in Unix seconds: the shell's only clock. The core gets it as an argument.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Creates the data dir and opens the database, applying migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = Store::connect(
        &config.database_url(),
        ConnectOptions {
            max_connections: config.database_max_connections,
        },
    )
    .await
    .context("opening the database")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

impl App {
    /// The current time for request handling: the system clock, plus the test offset.
    pub fn now(&self) -> i64 {
        now() + self.clock_offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        let keys = KeySet::load_or_create(&config.signing_key_file(), now())?;
        let secrets = SecretsKey::load_or_create(&config.secrets_key_file())?;
        let policy = Policy::new(config.purposes());
        policy.ensure_initial(&store, now()).await?;
        let limits = config.stepup_limits();
        let risk = config.risk.engine.clone();
        let risk_sources = RiskSources::load(&config.risk)?;
        let authz = config.load_policies()?;
        let decider = crate::decisions::Decider::new(&config.decisions);
        let api_keys = crate::api_keys::KeyCache::new(std::time::Duration::from_millis(
            config.decisions.session_cache_ms,
        ));
        let forward_rules = crate::forward_auth::Rules::new(&config.forward_auth.routes);
        let tokens = Tokens::new(config.issuer(), config.signing_key_file(), keys);
        let passwords = Passwords::new(config.password_hash_concurrency)?;
        let webauthn = crate::factors::webauthn::relying_party(&config.public_url)
            .map_err(|why| tracing::warn!("passkeys are unavailable: {why}"))
            .ok();
        let mail = crate::mail::Mailer::from_config(&config).context("[smtp]")?;
        let lifetimes = SessionLifetimes {
            session_ttl: config.session.ttl_seconds,
            access_token_ttl: config.session.access_token_ttl_seconds,
        };
        Ok(Self {
            config,
            store,
            tokens,
            passwords,
            lifetimes,
            secrets,
            policy,
            limits,
            risk,
            risk_sources,
            clock_offset: std::sync::atomic::AtomicI64::new(0),
            metrics: None,
            authz,
            decider,
            api_keys,
            forward_rules,
            webauthn,
            mail,
        })
    }
}
