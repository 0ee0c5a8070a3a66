//! One module per resource.

pub mod api_keys;
pub mod audit;
pub mod decisions;
pub mod devices;
pub mod factors;
pub mod ops;
pub mod policy;
pub mod sessions;
pub mod stepup;
pub mod testing;
pub mod users;
pub mod wellknown;
