//! Access tokens: JWTs naming a server-side session, signed by the active key of the
//! key set, verified by whichever key their `kid` names.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use jsonwebtoken::{Header, Validation};

use crate::keys::{ALG, KeySet};

pub use stepgate_api::{AccessClaims, Confirmation};

/// Why a token was refused. Callers only ever see `UNAUTHENTICATED`; this is for logs.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token header unreadable")]
    Header,
    #[error("token names an unknown key")]
    UnknownKey,
    #[error("token invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

pub struct Tokens {
    issuer: String,
    path: PathBuf,
    keys: RwLock<Arc<KeySet>>,
    loaded_mtime: Mutex<Option<SystemTime>>,
}

impl Tokens {
    pub fn new(issuer: String, path: PathBuf, keys: KeySet) -> Self {
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        Self {
            issuer,
            path,
            keys: RwLock::new(Arc::new(keys)),
            loaded_mtime: Mutex::new(mtime),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().expect("key lock poisoned").clone()
    }

    pub fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let keys = self.keys();
        let key = keys.active();
        let mut header = Header::new(ALG);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Checks signature, issuer and expiry (no leeway: an expired token is refused at
    /// once). Whether its session is still live is the caller's next check.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Header)?;
        if header.alg != ALG {
            return Err(TokenError::Header);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = self.keys();
        let key = keys.find(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(ALG);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)?.claims)
    }

    /// Reloads the key set if its file changed since the last load (after `keys rotate`).
    /// A file that cannot be read keeps the current keys and is reported.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let mtime = std::fs::metadata(&self.path)?.modified()?;
        let mut loaded = self.loaded_mtime.lock().expect("mtime lock poisoned");
        if *loaded == Some(mtime) {
            return Ok(false);
        }
        let keys = KeySet::load(&self.path)?;
        *self.keys.write().expect("key lock poisoned") = Arc::new(keys);
        *loaded = Some(mtime);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.test".into(),
            sub: "user".into(),
            sid: "session".into(),
            iat: 0,
            exp,
            auth_time: 0,
            acr: stepgate_core::session::acr::PASSWORD.into(),
            amr: vec!["pwd".into()],
            su: None,
            su_time: None,
            su_purpose: None,
            cnf: None,
        }
    }

    fn tokens(dir: &std::path::Path) -> Tokens {
        let path = dir.join("keys.json");
        let keys = KeySet::load_or_create(&path, 0).unwrap();
        Tokens::new("https://issuer.test".into(), path, keys)
    }

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let c = claims(i64::MAX / 2);
        let token = t.sign(&c).unwrap();
        assert_eq!(t.verify(&token).unwrap(), c);
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(t.verify(&tampered).is_err());
    }

    #[test]
    fn expired_tokens_are_refused_without_leeway() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let token = t.sign(&claims(now - 1)).unwrap();
        assert!(t.verify(&token).is_err());
    }

    #[test]
    fn tokens_of_a_rotated_out_key_still_verify_after_reload() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let old = t.sign(&claims(i64::MAX / 2)).unwrap();
        KeySet::rotate(&dir.path().join("keys.json"), 10, 900).unwrap();
        // Force a reload even if the mtime granularity hid the change.
        *t.loaded_mtime.lock().unwrap() = None;
        assert!(t.reload_if_changed().unwrap());
        let new = t.sign(&claims(i64::MAX / 2)).unwrap();
        assert_ne!(
            jsonwebtoken::decode_header(&old).unwrap().kid,
            jsonwebtoken::decode_header(&new).unwrap().kid
        );
        assert!(t.verify(&old).is_ok());
        assert!(t.verify(&new).is_ok());
    }
}
