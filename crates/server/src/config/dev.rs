//! The development config: what `serve` writes on a first start with no config file.

use std::path::Path;

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
consequence = "The resource and its data are deleted for good."
factor = "any"
ttl_seconds = 300
single_use = true
bind_ip = true
approvals = 0
sensitivity = 60                    # destructive: high risk on its own

[[purposes]]
name = "factors:delete"
title = "Remove a sign-in factor"
consequence = "The factor stops working for this account at once."
factor = "any"
ttl_seconds = 300
single_use = true
bind_ip = false
approvals = 0

[[purposes]]
name = "payroll:transmit"
title = "Transmit payroll"
consequence = "Real money moves: the payroll file goes to the bank."
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
