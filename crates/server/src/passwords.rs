//! Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing runs on the blocking pool behind a semaphore, so a flood of logins queues
//! instead of exhausting memory. An unknown user is verified against a dummy hash, so
//! "no such user" and "wrong password" cost the same time.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    argon: Argon2<'static>,
    permits: Semaphore,
    dummy_hash: String,
}

fn argon() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let argon = argon();
        let mut random = [0u8; 24];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| anyhow::anyhow!("random source failed"))?;
        let dummy_hash = argon
            .hash_password(&random, &SaltString::generate(&mut OsRng))
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                argon,
                permits: Semaphore::new(concurrency),
                dummy_hash,
            }),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.inner.permits.acquire().await?;
        let argon = self.inner.argon.clone();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is
    /// no user (and then always answers false). The comparison inside is constant-time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.inner.permits.acquire().await?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| inner.dummy_hash.clone());
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let ok = inner
                .argon
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_pass() {
        let p = Passwords::new(2).unwrap();
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            p.verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
    }
}
