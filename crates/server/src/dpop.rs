//! DPoP proofs (RFC 9449), checked by `stepgate-dpop`; here what a proven key means to
//! the server: a device that proves a key is strongly trusted, since a key does not
//! travel the way a fingerprint can be copied.

pub use stepgate_dpop::{MAX_SKEW_SECONDS, Proof, verify, verify_for_token};

/// Devices known by a DPoP key are stored under `jkt:<thumbprint>` (a public key's hash,
/// nothing secret); devices known by fingerprint under the fingerprint's SHA-256.
pub const DEVICE_PREFIX: &str = "jkt:";

/// The trust a remembered device earns: `key` for a proven key, else `fingerprint`.
pub fn trust_of(device_hash: &str) -> &'static str {
    if device_hash.starts_with(DEVICE_PREFIX) {
        "key"
    } else {
        "fingerprint"
    }
}
