//! Local verification of access tokens against stepgate's published keys.
//!
//! A locally verified token had a valid signature, issuer and expiry when it was
//! checked; it may still name a session that has ended since (logout, revocation,
//! session expiry), which only stepgate knows. Use this for cheap, offline reads of the
//! claims; for anything that matters, ask [`Client::decide`] — that answer is
//! authoritative.
//!
//! A DPoP-bound token (one with `cnf.jkt`) is worth nothing without a proof of its key:
//! [`TokenVerifier::verify`] refuses it, [`TokenVerifier::verify_dpop`] takes the
//! request's `DPoP` proof with the method and URL it must be made for.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::client::Client;
use crate::error::Error;

pub use stepgate_api::{AccessClaims, Confirmation};

/// Why a token did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWT, or its header is unreadable.
    #[error("the token is malformed")]
    Malformed,
    /// Signed with anything but EdDSA.
    #[error("the token's algorithm is not EdDSA")]
    Algorithm,
    /// No key of the JWKS (even after a refetch) has the token's `kid`.
    #[error("the token names an unknown key")]
    UnknownKey,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// `iss` is not the expected issuer.
    #[error("the token is from another issuer")]
    Issuer,
    /// `exp` has passed (no leeway).
    #[error("the token has expired")]
    Expired,
    /// Missing or mistyped claims, or a `nbf` in the future.
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    /// The token is DPoP-bound (`cnf.jkt`): it counts only with a proof of its key,
    /// checked by [`TokenVerifier::verify_dpop`]. A stolen bound token presented as a
    /// plain bearer token gets this.
    #[error("the token is DPoP-bound; verify it with its DPoP proof")]
    ProofRequired,
    /// [`TokenVerifier::verify_dpop`] got a token that is not DPoP-bound.
    #[error("the token is not DPoP-bound")]
    NotBound,
    /// The DPoP proof is invalid for this token and request (signature, key, `htm`,
    /// `htu`, `iat`, `ath`).
    #[error("the DPoP proof is invalid: {0}")]
    Proof(String),
    /// This proof's `jti` was seen already by this verifier.
    #[error("the DPoP proof was used already")]
    ProofReplayed,
    /// The JWKS could not be fetched or read.
    #[error("the signing keys could not be fetched: {0}")]
    Jwks(#[source] Box<Error>),
}

/// How long after a fetch an unknown `kid` cannot trigger another.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

struct Remote {
    client: Client,
    /// When the keys were last fetched; the lock also makes concurrent refetches wait
    /// for one another instead of piling up.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
}

struct Inner {
    issuer: String,
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    remote: Option<Remote>,
    validation: Validation,
    /// DPoP proofs seen, by `jkt` and `jti`, with the time after which their `iat` is
    /// too old to be accepted anyway (then they are forgotten).
    seen_proofs: std::sync::Mutex<HashMap<(String, String), i64>>,
}

/// Most DPoP proofs a verifier remembers for replay detection; past it, expired ones
/// are forgotten first, and a proof that still finds no room is refused.
pub const MAX_REMEMBERED_PROOFS: usize = 100_000;

/// Verifies stepgate access tokens locally with the keys of its JWKS, cached.
///
/// Checks the EdDSA signature by the key the token's `kid` names, the issuer, and the
/// expiry with no leeway. A `kid` it does not know makes it refetch the JWKS once (at
/// most once per [`DEFAULT_REFETCH_INTERVAL`]), so rotated keys are picked up.
///
/// Local verification cannot see server-side revocation: a logged-out session's token
/// verifies here until it expires. [`Client::decide`] is authoritative.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.keys().keys().cloned().collect();
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.inner.issuer)
            .field("kids", &kids)
            .finish()
    }
}

/// The Ed25519 verification keys of a JWK Set, by `kid`. Keys of other types, other
/// uses or without a `kid` are skipped; a document that is not a JWK Set is an error.
fn parse_jwks(jwks: &serde_json::Value) -> Result<HashMap<String, DecodingKey>, String> {
    let keys = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("the JWKS has no \"keys\" array")?;
    let mut out = HashMap::new();
    for key in keys {
        let text = |name: &str| key.get(name).and_then(|v| v.as_str());
        let usable = text("kty") == Some("OKP")
            && text("crv") == Some("Ed25519")
            && text("alg").is_none_or(|a| a == "EdDSA")
            && text("use").is_none_or(|u| u == "sig");
        let (Some(kid), Some(x)) = (text("kid"), text("x")) else {
            continue;
        };
        // An Ed25519 public key is 32 bytes; anything else could never verify.
        if !usable || URL_SAFE_NO_PAD.decode(x).map(|b| b.len()) != Ok(32) {
            continue;
        }
        if let Ok(decoding) = DecodingKey::from_ed_components(x) {
            out.insert(kid.to_owned(), decoding);
        }
    }
    Ok(out)
}

impl TokenVerifier {
    fn build(issuer: String, keys: HashMap<String, DecodingKey>, remote: Option<Remote>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        // No leeway: an expired token is refused at once, as stepgate itself does.
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Self {
            inner: Arc::new(Inner {
                issuer,
                keys: RwLock::new(Arc::new(keys)),
                remote,
                validation,
                seen_proofs: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A verifier that trusts the issuer of the server's discovery document and fetches
    /// the keys from `{base_url}/.well-known/jwks.json` now (the base URL the client
    /// reaches, not the document's `jwks_uri`, which names the server's public URL).
    pub async fn discover(client: &Client) -> Result<Self, Error> {
        let issuer = client.openid_configuration().await?.issuer;
        Self::new(client, issuer).await
    }

    /// A verifier for tokens of `issuer`, with keys fetched from the client's server now.
    pub async fn new(client: &Client, issuer: impl Into<String>) -> Result<Self, Error> {
        let keys = fetch_keys(client).await?;
        Ok(Self::build(
            issuer.into(),
            keys,
            Some(Remote {
                client: client.clone(),
                last_fetch: tokio::sync::Mutex::new(Some(Instant::now())),
                min_interval: DEFAULT_REFETCH_INTERVAL,
            }),
        ))
    }

    /// A verifier with a fixed JWK Set document and no server to refetch from (tests,
    /// benchmarks, air-gapped setups).
    pub fn from_jwks(
        issuer: impl Into<String>,
        jwks: &serde_json::Value,
    ) -> Result<Self, VerifyError> {
        let keys = parse_jwks(jwks).map_err(|message| {
            VerifyError::Jwks(Box::new(Error::Decode {
                status: 200,
                message,
            }))
        })?;
        Ok(Self::build(issuer.into(), keys, None))
    }

    /// The same verifier, refetching on an unknown `kid` at most once per `interval`.
    /// Only before the verifier is shared (clones made earlier keep the old interval).
    pub fn with_refetch_interval(self, interval: Duration) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                if let Some(remote) = &mut inner.remote {
                    remote.min_interval = interval;
                }
                Self {
                    inner: Arc::new(inner),
                }
            }
            Err(shared) => Self { inner: shared },
        }
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    fn keys(&self) -> Arc<HashMap<String, DecodingKey>> {
        // A poisoned lock still holds a complete map (it is replaced whole).
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Verifies a bearer token with the cached keys only, never touching the network:
    /// an unknown `kid` is [`VerifyError::UnknownKey`] at once. A DPoP-bound token is
    /// [`VerifyError::ProofRequired`].
    pub fn verify_cached(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let kid = token_kid(token)?;
        let keys = self.keys();
        let key = keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        bearer(self.check(token, key)?)
    }

    /// Verifies a bearer token (`Authorization: Bearer …`); on an unknown `kid`,
    /// refetches the JWKS once (rate-limited) and tries again. A DPoP-bound token is
    /// [`VerifyError::ProofRequired`]: use [`TokenVerifier::verify_dpop`].
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        bearer(self.verify_signed(token).await?)
    }

    /// Verifies a DPoP-bound token (`Authorization: DPoP …`) with the request's `DPoP`
    /// header (RFC 9449 section 7.1): the token as [`TokenVerifier::verify`] does, then
    /// the proof, which must be signed by the key `cnf.jkt` names, be made for this
    /// `method` and `url` (scheme, host and path as the client addressed them; a query
    /// is ignored), carry an `iat` within a minute of this machine's clock and the
    /// token's hash as `ath`, and not have been seen by this verifier before.
    ///
    /// Replay is remembered in this verifier's memory: share one verifier across the
    /// process, and ask [`Client::decide`] (with the proof) where several processes must
    /// agree.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify_signed(token).await?;
        let jkt = claims
            .cnf
            .as_ref()
            .map(|c| c.jkt.as_str())
            .ok_or(VerifyError::NotBound)?;
        let now = unix_now();
        let proof = stepgate_dpop::verify_for_token(proof, method, url, now, token, jkt)
            .map_err(VerifyError::Proof)?;
        self.remember_proof(proof, now)?;
        Ok(claims)
    }

    /// A token whose signature, issuer and expiry hold, bound or not.
    async fn verify_signed(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let kid = token_kid(token)?;
        if let Some(key) = self.keys().get(&kid) {
            return self.check(token, key);
        }
        self.refetch_for(&kid).await?;
        let keys = self.keys();
        let key = keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        self.check(token, key)
    }

    /// Records a checked proof; one seen before is [`VerifyError::ProofReplayed`].
    fn remember_proof(&self, proof: stepgate_dpop::Proof, now: i64) -> Result<(), VerifyError> {
        // A proof older than the skew is refused by the check, so it need not be kept.
        let forget_after = proof.iat.saturating_add(stepgate_dpop::MAX_SKEW_SECONDS);
        let mut seen = self
            .inner
            .seen_proofs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_REMEMBERED_PROOFS {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= MAX_REMEMBERED_PROOFS {
                return Err(VerifyError::Proof(
                    "too many recent proofs to remember; try again shortly".into(),
                ));
            }
        }
        match seen.entry((proof.jkt, proof.jti)) {
            std::collections::hash_map::Entry::Occupied(_) => Err(VerifyError::ProofReplayed),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(forget_after);
                Ok(())
            }
        }
    }

    /// Fetches the JWKS again now, whatever the rate limit says.
    pub async fn refresh(&self) -> Result<(), Error> {
        let Some(remote) = &self.inner.remote else {
            return Ok(());
        };
        let mut last = remote.last_fetch.lock().await;
        self.fetch_into(remote, &mut last).await
    }

    async fn fetch_into(&self, remote: &Remote, last: &mut Option<Instant>) -> Result<(), Error> {
        // A failed fetch counts too: a down server is not hammered once per token.
        *last = Some(Instant::now());
        let keys = fetch_keys(&remote.client).await?;
        *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(())
    }

    async fn refetch_for(&self, kid: &str) -> Result<(), VerifyError> {
        let Some(remote) = &self.inner.remote else {
            return Err(VerifyError::UnknownKey);
        };
        let mut last = remote.last_fetch.lock().await;
        // Someone else may have fetched while this task waited for the lock.
        if self.keys().contains_key(kid) {
            return Ok(());
        }
        if last.is_some_and(|at| at.elapsed() < remote.min_interval) {
            return Err(VerifyError::UnknownKey);
        }
        self.fetch_into(remote, &mut last)
            .await
            .map_err(|e| VerifyError::Jwks(Box::new(e)))
    }

    fn check(&self, token: &str, key: &DecodingKey) -> Result<AccessClaims, VerifyError> {
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::InvalidIssuer => VerifyError::Issuer,
                ErrorKind::InvalidSignature => VerifyError::Signature,
                ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                    VerifyError::Malformed
                }
                _ => VerifyError::Claims(e.to_string()),
            })
    }
}

/// Claims of a token presented as a bearer token: a DPoP-bound one needs its proof.
fn bearer(claims: AccessClaims) -> Result<AccessClaims, VerifyError> {
    match claims.cnf {
        Some(_) => Err(VerifyError::ProofRequired),
        None => Ok(claims),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `kid` of an EdDSA token's header.
fn token_kid(token: &str) -> Result<String, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(VerifyError::Algorithm);
    }
    header.kid.ok_or(VerifyError::UnknownKey)
}

async fn fetch_keys(client: &Client) -> Result<HashMap<String, DecodingKey>, Error> {
    let jwks = client.jwks().await?;
    parse_jwks(&jwks).map_err(|message| Error::Decode {
        status: 200,
        message,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use jsonwebtoken::{EncodingKey, Header};

    pub(crate) const ISSUER: &str = "https://stepgate.test";

    /// A freshly generated Ed25519 key: its JWK and a signer.
    pub(crate) struct TestKey {
        pub kid: String,
        pub encoding: EncodingKey,
        pub x: String,
    }

    impl TestKey {
        pub fn generate(kid: &str) -> Self {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            Self {
                kid: kid.into(),
                encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }
        }

        pub fn jwk(&self) -> serde_json::Value {
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": self.x,
                "kid": self.kid, "alg": "EdDSA", "use": "sig",
            })
        }

        pub fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    pub(crate) fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    pub(crate) fn claims(iss: &str, exp: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": iss, "sub": "user-1", "sid": "session-1", "iat": now(), "exp": exp,
            "auth_time": now(), "acr": "urn:stepgate:acr:mfa", "amr": ["pwd", "otp"],
            "su": true, "su_time": now(), "su_purpose": "admin:resources:delete",
        })
    }

    fn verifier(keys: &[&TestKey]) -> TokenVerifier {
        let jwks = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        TokenVerifier::from_jwks(ISSUER, &jwks).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_all_its_claims() {
        let key = TestKey::generate("k1");
        let v = verifier(&[&key]);
        let c = v
            .verify_cached(&key.sign(&claims(ISSUER, now() + 60)))
            .unwrap();
        assert_eq!(c.sub, "user-1");
        assert_eq!(c.sid, "session-1");
        assert_eq!(c.amr, ["pwd", "otp"]);
        assert_eq!(c.su, Some(true));
        assert_eq!(c.su_purpose.as_deref(), Some("admin:resources:delete"));
        assert_eq!(c.cnf, None);
        // Optional claims may be absent.
        let mut plain = claims(ISSUER, now() + 60);
        for k in ["su", "su_time", "su_purpose"] {
            plain.as_object_mut().unwrap().remove(k);
        }
        let c = v.verify_cached(&key.sign(&plain)).unwrap();
        assert_eq!(c.su, None);
        // A DPoP-bound token is not a bearer token.
        let mut bound = claims(ISSUER, now() + 60);
        bound["cnf"] = serde_json::json!({ "jkt": "thumb" });
        assert!(matches!(
            v.verify_cached(&key.sign(&bound)),
            Err(VerifyError::ProofRequired)
        ));
    }

    #[test]
    fn wrong_issuer_expired_unknown_kid_and_tampering_are_refused() {
        let key = TestKey::generate("k1");
        let v = verifier(&[&key]);
        assert!(matches!(
            v.verify_cached(&key.sign(&claims("https://evil.test", now() + 60))),
            Err(VerifyError::Issuer)
        ));
        // No leeway: one second past is expired.
        assert!(matches!(
            v.verify_cached(&key.sign(&claims(ISSUER, now() - 1))),
            Err(VerifyError::Expired)
        ));
        let other = TestKey::generate("k2");
        assert!(matches!(
            v.verify_cached(&other.sign(&claims(ISSUER, now() + 60))),
            Err(VerifyError::UnknownKey)
        ));
        // A different key claiming the known kid: the signature does not match.
        let impostor = TestKey::generate("k1");
        assert!(matches!(
            v.verify_cached(&impostor.sign(&claims(ISSUER, now() + 60))),
            Err(VerifyError::Signature)
        ));
        // Tampered payload: the user id changed, the signature kept.
        let token = key.sign(&claims(ISSUER, now() + 60));
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = claims(ISSUER, now() + 60);
        payload["sub"] = "admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert!(matches!(
            v.verify_cached(&forged),
            Err(VerifyError::Signature)
        ));
        assert!(matches!(
            v.verify_cached("not.a.jwt"),
            Err(VerifyError::Malformed)
        ));
        assert!(matches!(v.verify_cached(""), Err(VerifyError::Malformed)));
    }

    #[test]
    fn other_algorithms_and_missing_claims_are_refused() {
        let key = TestKey::generate("k1");
        let v = verifier(&[&key]);
        let hs = {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            jsonwebtoken::encode(
                &header,
                &claims(ISSUER, now() + 60),
                &EncodingKey::from_secret(key.x.as_bytes()),
            )
            .unwrap()
        };
        assert!(matches!(v.verify_cached(&hs), Err(VerifyError::Algorithm)));
        let mut no_sid = claims(ISSUER, now() + 60);
        no_sid.as_object_mut().unwrap().remove("sid");
        assert!(matches!(
            v.verify_cached(&key.sign(&no_sid)),
            Err(VerifyError::Claims(_))
        ));
    }

    #[test]
    fn jwks_keeps_only_ed25519_signing_keys() {
        let key = TestKey::generate("good");
        let jwks = serde_json::json!({ "keys": [
            key.jwk(),
            { "kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "enc", "x": key.x, "use": "enc" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA" },
            { "kty": "OKP", "crv": "Ed25519", "x": key.x },
        ]});
        let keys = parse_jwks(&jwks).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
        assert!(parse_jwks(&serde_json::json!({ "nokeys": [] })).is_err());
        assert!(TokenVerifier::from_jwks(ISSUER, &serde_json::json!([])).is_err());
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_then_is_rate_limited() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let first = TestKey::generate("first");
        let second = TestKey::generate("second");
        let served = Arc::new(RwLock::new(serde_json::json!({ "keys": [first.jwk()] })));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = {
            let served = served.clone();
            let fetches = fetches.clone();
            axum::Router::new().route(
                "/.well-known/jwks.json",
                axum::routing::get(move || {
                    let served = served.clone();
                    let fetches = fetches.clone();
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        axum::Json(served.read().unwrap().clone())
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(format!("http://{addr}"));

        let v = TokenVerifier::new(&client, ISSUER).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        v.verify(&first.sign(&claims(ISSUER, now() + 60)))
            .await
            .unwrap();
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "a known kid fetches nothing"
        );

        // Rotation: the server publishes a second key.
        *served.write().unwrap() = serde_json::json!({ "keys": [second.jwk(), first.jwk()] });
        let fresh = second.sign(&claims(ISSUER, now() + 60));
        // Within the interval after the initial fetch: refused without a fetch.
        assert!(matches!(
            v.verify(&fresh).await,
            Err(VerifyError::UnknownKey)
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        let v = v.with_refetch_interval(Duration::ZERO);
        v.verify(&fresh).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        // A kid that exists nowhere: one refetch, then refused.
        let ghost = TestKey::generate("ghost").sign(&claims(ISSUER, now() + 60));
        assert!(matches!(
            v.verify(&ghost).await,
            Err(VerifyError::UnknownKey)
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        // Within a long interval, further unknown kids fetch nothing.
        let v = TokenVerifier::new(&client, ISSUER)
            .await
            .unwrap()
            .with_refetch_interval(Duration::from_secs(3600));
        let before = fetches.load(Ordering::SeqCst);
        assert!(matches!(
            v.verify(&ghost).await,
            Err(VerifyError::UnknownKey)
        ));
        assert!(matches!(
            v.verify(&ghost).await,
            Err(VerifyError::UnknownKey)
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), before);
        v.refresh().await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), before + 1);
    }
}
