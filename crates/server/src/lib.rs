//! stepgate's shell around the core, in two layers. `http/` (axum) authenticates the
//! caller, extracts the request into typed input, calls one application service and
//! renders its answer (the wire types are `stepgate-api`'s). The services (`login`,
//! `stepup`, `decisions`, `factors`, `devices`, `users`, `api_keys`, `policy`, `audit`) take that
//! input and `now`, ask the core, have the store persist, and return an `AppError` that
//! `http/` maps in one place. Beside them: configuration, keys and tokens, the risk
//! engine's signal sources, background work, telemetry and the CLI.
//!
//! Not here: the rules themselves (the core) and SQL (the store).

pub mod api_keys;
pub mod app;
pub mod audit;
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
pub mod mail;
pub mod passwords;
pub mod policy;
pub mod risk;
pub mod stepup;
pub mod telemetry;
pub mod time_format;
pub mod tokens;
pub mod users;
