//! API keys for relying-party backends (`service`) and operators (`admin`).
//!
//! Format: `sgk_<id: 16 hex>_<secret: 64 hex>`. The id finds the record; only SHA-256 of
//! the 256-bit secret is stored, compared in constant time.

use sha2::{Digest, Sha256};
use stepgate_core::ErrorCode;
use stepgate_core::api_key::{ApiKeyScope, parse_label};
use stepgate_core::audit::EventType;
use stepgate_store::{ApiKeyRecord, AuditEvent, Revocation, Store};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::AppError;

const PREFIX: &str = "sgk_";

/// A freshly made key: the record to store and the plain key to show once.
pub struct NewApiKey {
    pub record: ApiKeyRecord,
    pub plain: String,
}

pub fn generate(scope: ApiKeyScope, label: Option<String>, now: i64) -> anyhow::Result<NewApiKey> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| anyhow::anyhow!("random source failed"))?;
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| anyhow::anyhow!("random source failed"))?;
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    Ok(NewApiKey {
        plain: format!("{PREFIX}{id}_{secret}"),
        record: ApiKeyRecord {
            id,
            scope: scope.as_str().into(),
            secret_hash: Sha256::digest(secret.as_bytes()).to_vec(),
            label,
            created_at: now,
            revoked_at: None,
        },
    })
}

/// Creates a key of `scope` (`service` or `admin`) with an optional label, stored with
/// its `API_KEY_CREATED` event; `by` is who made it (another key's id, or `cli`). The
/// plain key is in the answer, shown once.
pub async fn create(
    store: &Store,
    scope: &str,
    label: Option<&str>,
    by: &str,
    now: i64,
) -> Result<NewApiKey, AppError> {
    let scope = ApiKeyScope::parse(scope)?;
    let label = label.map(parse_label).transpose()?;
    let key = generate(scope, label, now)?;
    let event = event(EventType::ApiKeyCreated, &key.record, by, now);
    store.insert_api_key(&key.record, &event).await?;
    Ok(key)
}

/// Revokes key `id` (`API_KEY_REVOKED`, by another key's id). On this node it stops
/// working at once; other nodes may accept it for up to their key cache's age. The
/// last live admin key cannot be revoked (`CONFLICT`), so the API is never left
/// without an administrator.
pub async fn revoke(app: &App, id: &str, by: &str, now: i64) -> Result<(), AppError> {
    let not_found = || AppError::new(ErrorCode::NotFound, "no live API key with this id");
    let key = app.store.api_key(id).await?.ok_or_else(not_found)?;
    let event = event(EventType::ApiKeyRevoked, &key, by, now);
    let revoked = app.store.revoke_api_key(id, now, &event).await?;
    app.api_keys.forget(id);
    match revoked {
        Revocation::Revoked => Ok(()),
        Revocation::NotFound => Err(not_found()),
        Revocation::LastAdmin => Err(AppError::new(
            ErrorCode::Conflict,
            "this is the last live admin key: create another admin key first \
             (`stepgate api-keys create --scope admin` on the host makes one)",
        )),
    }
}

/// The audit event of a key's creation or revocation: the key, its scope and label, and
/// who did it (another key's id, or `cli`).
pub fn event(kind: EventType, key: &ApiKeyRecord, by: &str, now: i64) -> AuditEvent {
    AuditEvent {
        data: Some(
            serde_json::json!({
                "api_key_id": key.id, "scope": key.scope, "label": key.label, "by": by,
            })
            .to_string(),
        ),
        ..AuditEvent::new(kind, now)
    }
}

/// Splits a presented key into (id, secret), or None if it is not shaped like one.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some((id, secret))
}

pub fn looks_like_api_key(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// Recently read key records, so that a busy relying party's key is not read from the
/// store on every request (the secret is still compared on every request). Revocation
/// through this node drops the entry at once; through another node it is seen within
/// the TTL (`decisions.session_cache_ms`). Unknown ids are never cached.
pub struct KeyCache {
    entries: quick_cache::sync::Cache<String, (std::time::Instant, std::sync::Arc<ApiKeyRecord>)>,
    ttl: std::time::Duration,
}

impl KeyCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(1024),
            ttl,
        }
    }

    pub fn forget(&self, id: &str) {
        self.entries.remove(id);
    }

    async fn record(
        &self,
        store: &Store,
        id: &str,
    ) -> anyhow::Result<Option<std::sync::Arc<ApiKeyRecord>>> {
        if let Some((at, record)) = self.entries.get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(record));
        }
        let Some(record) = store.api_key(id).await? else {
            return Ok(None);
        };
        let record = std::sync::Arc::new(record);
        if !self.ttl.is_zero() {
            self.entries
                .insert(id.to_owned(), (std::time::Instant::now(), record.clone()));
        }
        Ok(Some(record))
    }
}

/// The id and scope of a valid, unrevoked key; None for anything else.
pub async fn authenticate(
    store: &Store,
    cache: &KeyCache,
    presented: &str,
) -> anyhow::Result<Option<(String, ApiKeyScope)>> {
    let Some((id, secret)) = parse(presented) else {
        return Ok(None);
    };
    let Some(record) = cache.record(store, id).await? else {
        return Ok(None);
    };
    let hash = Sha256::digest(secret.as_bytes());
    let matches: bool = hash.as_slice().ct_eq(&record.secret_hash).into();
    if !matches || record.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(ApiKeyScope::parse(&record.scope)
        .ok()
        .map(|scope| (record.id.clone(), scope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_their_secret() {
        let key = generate(ApiKeyScope::Service, None, 0).unwrap();
        let (id, secret) = parse(&key.plain).unwrap();
        assert_eq!(id, key.record.id);
        assert_eq!(
            Sha256::digest(secret.as_bytes()).as_slice(),
            key.record.secret_hash.as_slice()
        );
        assert!(!key.plain.contains(&hex::encode(&key.record.secret_hash)));
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        for bad in [
            "",
            "sgk_",
            "sgk_abc_def",
            "xyz_0123456789abcdef_00",
            "sgk_zz23456789abcdef_",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
