//! One module per resource.

pub mod api_keys;
pub mod audit;
pub mod factors;
pub mod ops;
pub mod policy;
pub mod sessions;
pub mod stepup;
pub mod users;
pub mod wellknown;
