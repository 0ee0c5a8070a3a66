//! The `stepgate` command line. Every subcommand reads the same settings as `serve`
//! (`--config` / `STEPGATE_*`), so a key created here works in the server.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{App, now, open_store};
use crate::audit::chain;
use crate::config::{Config, ConfigSource, write_dev_config_if_missing};
use crate::keys::KeySet;
use crate::passwords::Passwords;
use crate::users::{self, NewUser};
use crate::{api_keys, http, telemetry};

#[derive(Parser)]
#[command(
    name = "stepgate",
    version,
    about = "Risk-based step-up authentication and authorization"
)]
struct Cli {
    /// TOML config file [env: STEPGATE_CONFIG; default: ./data/stepgate.toml]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (creates the data dir, database, keys and a dev config).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage API keys.
    #[command(name = "api-keys")]
    ApiKeys {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The Cedar authorization policies.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check the hash chain (the database's, or an NDJSON export's with --file); print
    /// `{"ok": true, "checked": N}` or the first bad seq and why, and exit 1 when broken.
    Verify {
        /// An export (`GET /v1/audit?format=ndjson` or `stepgate audit export`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Parse the policy file (and validate it against the schema, if one is set); on
    /// error print where and why, and exit 1.
    Check,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Check the config; on error name the offending key and exit 1.
    Check,
}

#[derive(Subcommand)]
enum ApiKeyAction {
    /// Create a key; it is printed once, on the last line, and stored hashed.
    Create {
        #[arg(long, value_parser = ["service", "admin"])]
        scope: String,
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// A role (Cedar's `User.roles`); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Add a new signing key; tokens signed by earlier keys keep verifying until they
    /// expire. Running servers pick the new key up within `keys_reload_seconds`.
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = ConfigSource::locate(cli.config);
    if matches!(cli.command, Command::Serve) && !source.explicit {
        match write_dev_config_if_missing(&source.path) {
            Ok(true) => println!("Wrote a development config to {}", source.path.display()),
            Ok(false) => {}
            Err(e) => {
                eprintln!("cannot write {}: {e}", source.path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let config = match Config::load(&source) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("invalid configuration ({}):\n{e}", source.path.display());
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    telemetry::init(config.log_format, &config.log_filter, serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config, &source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config, source: &ConfigSource) -> anyhow::Result<()> {
    match command {
        Command::Serve => http::serve(App::open(config).await?).await,
        Command::Migrate => {
            open_store(&config).await?.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::Policy {
            action: PolicyAction::Check,
        } => check_policy(&config),
        Command::Audit {
            action: AuditAction::Verify { file },
        } => verify_audit(&config, file.as_deref()).await,
        Command::Config {
            action: ConfigAction::Check,
        } => check_config(&config, source),
        Command::ApiKeys {
            action: ApiKeyAction::Create { scope, label },
        } => create_api_key(&config, &scope, label.as_deref()).await,
        Command::Users {
            action:
                UserAction::Create {
                    username,
                    email,
                    roles,
                },
        } => create_user(&config, &username, email.as_deref(), &roles).await,
        Command::Keys {
            action: KeyAction::Rotate,
        } => {
            let path = config.signing_key_file();
            KeySet::load_or_create(&path, now())?;
            // A key must stay while any token it signed can be live.
            let kid = KeySet::rotate(&path, now(), config.session.access_token_ttl_seconds)?;
            println!("{kid}");
            Ok(())
        }
    }
}

/// `stepgate audit verify [--file]`: the verdict on standard output; an error (exit 1)
/// when the chain is broken.
async fn verify_audit(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let verdict = match file {
        Some(path) => {
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            chain::verify_lines(std::io::BufReader::new(f))?
        }
        None => {
            let path = config.signing_key_file();
            let keys = KeySet::load(&path)
                .with_context(|| format!("reading the signing keys {}", path.display()))?;
            let store = open_store(config).await?;
            let verdict = chain::verify_store(&store, &keys).await;
            store.close().await;
            verdict?
        }
    };
    println!("{}", serde_json::to_string(&verdict)?);
    match verdict.first_bad_seq {
        Some(seq) if !verdict.ok => anyhow::bail!("the audit chain is broken at seq {seq}"),
        _ => Ok(()),
    }
}

/// `stepgate policy check`.
fn check_policy(config: &Config) -> anyhow::Result<()> {
    let policies = config.load_policies()?;
    match &config.policy_file {
        None => println!("no policy_file is set: action decisions are all deny"),
        Some(path) => println!(
            "policies OK: {}; {} policies; {}",
            path.display(),
            policies.len(),
            if policies.has_schema() {
                "validated against the schema"
            } else {
                "parsed (no schema set)"
            }
        ),
    }
    Ok(())
}

/// `stepgate config check`: the settings (already checked on load), the risk sources and
/// the policies.
fn check_config(config: &Config, source: &ConfigSource) -> anyhow::Result<()> {
    crate::risk::RiskSources::check(&config.risk)?;
    config.load_policies()?;
    let file = if source.path.exists() {
        source.path.display().to_string()
    } else {
        format!(
            "{} (absent: defaults and environment only)",
            source.path.display()
        )
    };
    println!(
        "configuration OK: {file}; listen {}; {} purposes",
        config.listen,
        config.purposes.len()
    );
    Ok(())
}

/// `stepgate api-keys create`: the key on standard output, shown once.
async fn create_api_key(config: &Config, scope: &str, label: Option<&str>) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let key = api_keys::create(&store, scope, label, "cli", now())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    store.close().await;
    eprintln!(
        "Created {} API key {}. It is shown once:",
        key.record.scope, key.record.id
    );
    println!("{}", key.plain);
    Ok(())
}

/// `stepgate users create`: the password from standard input, the new id on standard
/// output.
async fn create_user(
    config: &Config,
    username: &str,
    email: Option<&str>,
    roles: &[String],
) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let store = open_store(config).await?;
    let new = NewUser {
        username,
        password: line.trim_end_matches(['\r', '\n']),
        email,
        roles,
    };
    let record = users::create(&store, &Passwords::new(1)?, new, "cli", now())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    store.close().await;
    println!("{}", record.id);
    Ok(())
}
