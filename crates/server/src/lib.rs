//! stepgate's shell around the core: the HTTP API (axum), caller authentication, access
//! tokens and keys, configuration, telemetry and the CLI. It turns requests into domain
//! types, asks the core, has the store persist, and renders the answer.
//!
//! Not here: decisions (the core) and SQL (the store).

pub mod api_keys;
pub mod app;
pub mod background;
pub mod caller;
pub mod cli;
pub mod config;
pub mod decisions;
pub mod devices;
pub mod dpop;
pub mod error;
pub mod factors;
pub mod forward_auth;
pub mod fresh;
pub mod http;
pub mod keys;
pub mod limits;
pub mod login;
pub mod passwords;
pub mod policy;
pub mod risk;
pub mod stepup;
pub mod telemetry;
pub mod time_format;
pub mod tokens;
pub mod users;
