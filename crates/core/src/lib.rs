//! stepgate's pure domain: the spec's vocabulary as types, the stable error codes, and the
//! rules that decide. It does no I/O, reads no clock (callers pass `now`), and has no
//! async. Input becomes a domain type here (`Username::parse`) so the rest of the code
//! cannot hold an invalid value.
//!
//! Not here: HTTP status codes and JSON rendering (the server), SQL (the store).

pub mod api_key;
pub mod audit;
pub mod authz;
pub mod error;
pub mod factor;
pub mod identity;
pub mod lockout;
pub mod purpose;
pub mod risk;
pub mod session;
pub mod stepup;

pub use error::{Error, ErrorCode};

/// Seconds since the Unix epoch. Every time in the core is one of these, passed in.
pub type UnixTime = i64;
