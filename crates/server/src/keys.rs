//! Keys at rest: the JWT signing key set and the key that encrypts factor secrets.
//!
//! Access tokens are signed with Ed25519 (JWS `EdDSA`): on this class of machine it
//! signs and verifies faster than ES256 (see `benches/jwt.rs`), and verification is the
//! cost on every authenticated request. The key set file holds every key still needed to
//! verify live tokens; the newest signs. `stepgate keys rotate` appends a key; servers
//! notice the file changed and reload it, so old tokens keep verifying until they expire.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ALG: jsonwebtoken::Algorithm = jsonwebtoken::Algorithm::EdDSA;

/// One signing key, ready to sign and verify.
pub struct SigningKey {
    pub kid: String,
    pub created_at: i64,
    /// Public key, base64url (the JWK `x`).
    pub x: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

/// The keys that verify; the last one signs.
pub struct KeySet {
    keys: Vec<SigningKey>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<KeyFileEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileEntry {
    kid: String,
    alg: String,
    created_at: i64,
    /// PKCS#8 DER, standard base64.
    private_pkcs8: String,
}

impl KeySet {
    pub fn active(&self) -> &SigningKey {
        self.keys.last().expect("a key set is never empty")
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public JWK Set (RFC 7517), newest key first.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .rev()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": k.x,
                    "kid": k.kid, "alg": "EdDSA", "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Reads the key set file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading signing keys {}", path.display()))?;
        let file: KeyFile = serde_json::from_str(&text)
            .with_context(|| format!("parsing signing keys {}", path.display()))?;
        if file.keys.is_empty() {
            bail!("signing key file {} holds no key", path.display());
        }
        let keys = file
            .keys
            .iter()
            .map(SigningKey::from_entry)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { keys })
    }

    /// Loads the key set, generating a first key if the file does not exist.
    pub fn load_or_create(path: &Path, now: i64) -> anyhow::Result<Self> {
        if !path.exists() {
            let file = KeyFile {
                keys: vec![KeyFileEntry::generate(now)?],
            };
            write_private(path, serde_json::to_string_pretty(&file)?.as_bytes())?;
        }
        Self::load(path)
    }

    /// Appends a new signing key and drops keys that can no longer verify a live token:
    /// those replaced more than `max_token_ttl` seconds ago. Returns the new key's id.
    pub fn rotate(path: &Path, now: i64, max_token_ttl: i64) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading signing keys {}", path.display()))?;
        let mut file: KeyFile = serde_json::from_str(&text)?;
        let replaced_at: Vec<i64> = file
            .keys
            .iter()
            .skip(1)
            .map(|k| k.created_at)
            .chain(std::iter::once(now))
            .collect();
        let mut kept: Vec<KeyFileEntry> = file
            .keys
            .drain(..)
            .zip(replaced_at)
            .filter(|(_, replaced)| now - replaced <= max_token_ttl)
            .map(|(k, _)| k)
            .collect();
        let new = KeyFileEntry::generate(now)?;
        let kid = new.kid.clone();
        kept.push(new);
        file.keys = kept;
        write_private(path, serde_json::to_string_pretty(&file)?.as_bytes())?;
        Ok(kid)
    }
}

impl KeyFileEntry {
    fn generate(now: i64) -> anyhow::Result<Self> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("reading the generated key failed"))?;
        Ok(Self {
            kid: thumbprint(pair.public_key().as_ref()),
            alg: "EdDSA".into(),
            created_at: now,
            private_pkcs8: STANDARD.encode(pkcs8.as_ref()),
        })
    }
}

impl SigningKey {
    fn from_entry(entry: &KeyFileEntry) -> anyhow::Result<Self> {
        if entry.alg != "EdDSA" {
            bail!("signing key {}: unsupported alg {}", entry.kid, entry.alg);
        }
        let der = STANDARD
            .decode(&entry.private_pkcs8)
            .with_context(|| format!("signing key {}: bad base64", entry.kid))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| anyhow::anyhow!("signing key {}: not an Ed25519 PKCS#8 key", entry.kid))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Ok(Self {
            kid: entry.kid.clone(),
            created_at: entry.created_at,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_components(&x)?,
            x,
        })
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key: the key id.
fn thumbprint(public_key: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Writes a file readable by its owner only, replacing any previous one atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The 256-bit key that protects factor secrets at rest: TOTP secrets are sealed with
/// AES-256-GCM under it, and recovery codes are stored as HMAC-SHA256 under a key derived
/// from it, so a copy of the database alone reveals neither.
pub struct SecretsKey {
    aead: aws_lc_rs::aead::LessSafeKey,
    recovery_mac: aws_lc_rs::hmac::Key,
    email_mac: aws_lc_rs::hmac::Key,
    page_mac: aws_lc_rs::hmac::Key,
}

const NONCE_LEN: usize = 12;

impl SecretsKey {
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut key = [0u8; 32];
            aws_lc_rs::rand::fill(&mut key)
                .map_err(|_| anyhow::anyhow!("system random source failed"))?;
            write_private(path, format!("{}\n", STANDARD.encode(key)).as_bytes())?;
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading secrets key {}", path.display()))?;
        let bytes = STANDARD
            .decode(text.trim())
            .with_context(|| format!("secrets key {}: not base64", path.display()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("secrets key {}: must be 32 bytes", path.display()))?;
        Ok(Self::from_bytes(&key))
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        use aws_lc_rs::{aead, hmac};
        let aead = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("a 32-byte AES-256 key"),
        );
        // Separate keys per use: the MAC key is derived, never the raw key.
        let master = hmac::Key::new(hmac::HMAC_SHA256, key);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, label).as_ref());
        Self {
            aead,
            recovery_mac: derive(b"stepgate recovery codes v1"),
            email_mac: derive(b"stepgate email codes v1"),
            page_mac: derive(b"stepgate hosted pages v1"),
        }
    }

    /// Seals `plain`, bound to `context` (e.g. the factor id) so a sealed value cannot be
    /// moved to another row. Output: nonce || ciphertext || tag.
    pub fn seal(&self, context: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("random source failed"))?;
        let mut data = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        use aws_lc_rs::aead::{Aad, Nonce};
        if sealed.len() < NONCE_LEN {
            anyhow::bail!("sealed value too short");
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut data = data.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| anyhow::anyhow!("a sealed secret failed to open (wrong secrets key?)"))?;
        Ok(plain.to_vec())
    }

    /// The stored form of an emailed code, bound to what it answers (`owner`: a
    /// challenge id, or the factor id it confirms).
    pub fn email_code_hash(&self, owner: &str, code: &str) -> Vec<u8> {
        let mut message = owner.as_bytes().to_vec();
        message.push(0);
        message.extend_from_slice(code.as_bytes());
        aws_lc_rs::hmac::sign(&self.email_mac, &message)
            .as_ref()
            .to_vec()
    }

    /// A keyed secret for one thing a hosted page acts on (`scope`: e.g. `stepup`, and
    /// `id`: the challenge or the page session). Nothing is stored: any node with the
    /// secrets key derives the same secret, and none can be derived without it.
    pub fn page_secret(&self, scope: &str, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(
            &self.page_mac,
            &page_message(scope, id),
        ))
    }

    /// Whether `given` is [`Self::page_secret`] of `scope` and `id`, compared in
    /// constant time.
    pub fn page_secret_matches(&self, scope: &str, id: &str, given: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(given) else {
            return false;
        };
        aws_lc_rs::hmac::verify(&self.page_mac, &page_message(scope, id), &tag).is_ok()
    }

    /// The stored form of a recovery code.
    pub fn recovery_code_hash(&self, normalized_code: &str) -> Vec<u8> {
        aws_lc_rs::hmac::sign(&self.recovery_mac, normalized_code.as_bytes())
            .as_ref()
            .to_vec()
    }
}

fn page_message(scope: &str, id: &str) -> Vec<u8> {
    let mut message = scope.as_bytes().to_vec();
    message.push(0);
    message.extend_from_slice(id.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_keys_that_may_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let first = KeySet::load_or_create(&path, 1000).unwrap();
        let kid1 = first.active().kid.clone();
        let kid2 = KeySet::rotate(&path, 2000, 900).unwrap();
        let set = KeySet::load(&path).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.active().kid, kid2);
        assert!(set.find(&kid1).is_some());
        // kid1 was replaced at 2000; at 3000 no token it signed can be live any more.
        let kid3 = KeySet::rotate(&path, 3000, 900).unwrap();
        let set = KeySet::load(&path).unwrap();
        assert!(set.find(&kid1).is_none());
        assert!(set.find(&kid2).is_some());
        assert_eq!(set.active().kid, kid3);
    }

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let key = SecretsKey::from_bytes(&[7u8; 32]);
        let sealed = key.seal("factor-1", b"totp secret").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"totp secret"));
        assert_eq!(key.open("factor-1", &sealed).unwrap(), b"totp secret");
        assert!(key.open("factor-2", &sealed).is_err());
        let other = SecretsKey::from_bytes(&[8u8; 32]);
        assert!(other.open("factor-1", &sealed).is_err());
        assert_ne!(
            key.recovery_code_hash("abc"),
            other.recovery_code_hash("abc")
        );
    }

    #[test]
    fn page_secrets_belong_to_one_scope_and_id() {
        let key = SecretsKey::from_bytes(&[7u8; 32]);
        let secret = key.page_secret("stepup", "c1");
        assert!(key.page_secret_matches("stepup", "c1", &secret));
        assert!(!key.page_secret_matches("stepup", "c2", &secret));
        assert!(!key.page_secret_matches("account", "c1", &secret));
        assert!(!key.page_secret_matches("stepup", "c1", &secret[1..]));
        assert!(!key.page_secret_matches("stepup", "c1", "not base64!"));
        let other = SecretsKey::from_bytes(&[8u8; 32]);
        assert!(!other.page_secret_matches("stepup", "c1", &secret));
    }

    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        SecretsKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
}
