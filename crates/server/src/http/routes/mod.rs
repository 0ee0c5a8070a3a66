//! One module per resource.

pub mod api_keys;
pub mod ops;
pub mod sessions;
pub mod users;
pub mod wellknown;
