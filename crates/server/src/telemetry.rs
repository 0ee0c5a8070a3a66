//! Structured logging with `tracing`, as text or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `serve` logs to stdout; other commands log warnings
/// only, to stderr, so that what they print on stdout stays machine-readable.
pub fn init(format: LogFormat, filter: &str, serving: bool) {
    let filter = if serving {
        EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"))
    } else {
        EnvFilter::new("warn")
    };
    let ansi = if serving {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let result = match (format, serving) {
        (LogFormat::Json, true) => builder.json().with_writer(std::io::stdout).try_init(),
        (LogFormat::Text, true) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Json, false) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogFormat::Text, false) => builder.with_writer(std::io::stderr).try_init(),
    };
    let _ = result;
}
