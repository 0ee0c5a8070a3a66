//! stepgate's shell around the core: the HTTP API (axum), caller authentication, access
//! tokens and keys, configuration, telemetry and the CLI. It turns requests into domain
//! types, asks the core, has the store persist, and renders the answer.
//!
//! Not here: decisions (the core) and SQL (the store).

pub mod api_keys;
pub mod app;
pub mod cli;
pub mod config;
pub mod decisions;
pub mod dpop;
pub mod elevations;
pub mod forward_auth;
pub mod fresh;
pub mod http;
pub mod keys;
pub mod passwords;
pub mod policy;
pub mod risk;
pub mod telemetry;
pub mod tokens;
pub mod users;
