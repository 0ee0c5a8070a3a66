//! WebAuthn credentials (passkeys and security keys) with `webauthn-rs`: the relying
//! party (RP id and origin from `public_url`), the registration ceremony (its state in
//! the store, so any node finishes it, once) and the assertion ceremony that rides on a
//! challenge (options and state stored with it; the answer checked in
//! `stepup::answers`).
//!
//! Every credential is registered with user verification required, and an assertion
//! without it is refused, so an enrolled WebAuthn factor is phishing-resistant. A
//! credential that is not backup-eligible cannot leave its authenticator (a security
//! key, or a device-bound passkey): it earns `acr` `phrh` and `amr` `hwk`; a synced
//! passkey earns `phr` and `swk`.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use stepgate_api::{Factor, WebauthnRegistration};
use stepgate_core::ErrorCode;
use stepgate_core::factor::{FactorKind, FactorStatus};
use stepgate_store::{CredentialFacts, FactorRecord, RegistrationRecord};
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::{Presented, enrolled_event, first_factor_codes, guard_enrollment, shown};
use crate::app::SharedApp;
use crate::caller::UserCaller;
use crate::error::AppError;
use crate::limits::limit_per_minute;
use crate::time_format::rfc3339;

/// How long a registration ceremony may take, in seconds.
const REGISTRATION_TTL: i64 = 300;
/// Credentials one user may register.
const MAX_CREDENTIALS: usize = 20;
/// Longest credential name, in characters.
const MAX_NAME: usize = 64;

/// The relying party of `public_url`: its host is the RP id and the URL's origin the
/// only origin accepted. An IP address or a URL without a host cannot be an RP id.
pub fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
    let rp_id = origin
        .domain()
        .ok_or("public_url has no domain name (an IP address cannot be a WebAuthn RP id)")?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("stepgate").build())
        .map_err(|e| format!("WebAuthn relying party for {public_url}: {e}"))
}

fn rp(app: &SharedApp) -> Result<&Webauthn, AppError> {
    app.webauthn.as_ref().ok_or_else(unavailable)
}

/// Without a relying party (public_url names no domain) no passkey works.
pub fn unavailable() -> AppError {
    AppError::new(
        ErrorCode::Unavailable,
        "passkeys need public_url to name this server by a domain name",
    )
}

/// The WebAuthn user handle: the user id when it is a UUID (as stepgate makes them),
/// else derived from it. It names no one outside this server.
fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let digest = Sha256::digest(user_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

fn parse_name(name: Option<String>) -> Result<String, AppError> {
    let name = name.unwrap_or_else(|| "Passkey".to_owned());
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AppError::validation(format!(
            "name must be 1 to {MAX_NAME} characters, without control characters"
        )));
    }
    Ok(name)
}

/// A credential as the browser's JSON, with `extensions: null` read as absent (as
/// some clients write it).
fn without_null_extensions(mut credential: serde_json::Value) -> serde_json::Value {
    if let Some(object) = credential.as_object_mut()
        && object
            .get("extensions")
            .is_some_and(serde_json::Value::is_null)
    {
        object.remove("extensions");
    }
    credential
}

/// Why webauthn-rs refused a credential, in words for the caller.
pub fn refusal(e: &WebauthnError) -> String {
    let why = match e {
        WebauthnError::InvalidRPOrigin => "it was made for another origin than this server's",
        WebauthnError::InvalidRPIDHash => "it was made for another relying party id",
        WebauthnError::MismatchedChallenge => "it answers another ceremony",
        WebauthnError::UserNotVerified => {
            "the authenticator did not verify the user (PIN or biometrics)"
        }
        WebauthnError::UserNotPresent => "the authenticator saw no user presence",
        WebauthnError::CredentialPossibleCompromise => {
            "its signature counter went backwards: the credential may have been cloned"
        }
        WebauthnError::AuthenticationFailure => "its signature does not verify",
        WebauthnError::CredentialNotFound => "it is not one of this account's credentials",
        _ => "it does not verify",
    };
    format!("the WebAuthn credential was refused: {why} ({e})")
}

/// Starts registering a passkey or security key for the caller (a step-up for
/// `factors:enroll` first when they already have a factor: asked here, once, it
/// carries to the ceremony's finish).
pub async fn start_registration(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    presented: Option<Presented<'_>>,
    name: Option<String>,
) -> Result<WebauthnRegistration, AppError> {
    let webauthn = rp(app)?;
    let name = parse_name(name)?;
    let user_id = &caller.session.user_id;
    let existing = app.store.factors_of_user(user_id).await?;
    let credentials: Vec<&CredentialFacts> = existing
        .iter()
        .filter_map(|f| f.credential.as_ref())
        .collect();
    if credentials.len() >= MAX_CREDENTIALS {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!("at most {MAX_CREDENTIALS} passkeys per user: remove one first"),
        ));
    }
    limit_per_minute(
        app,
        &format!("webauthn-registration:{}", caller.session.id),
        10,
        "this session starts passkey registrations too fast; slow down",
    )
    .await?;
    // The step-up last: a refusal above leaves its elevation unspent.
    guard_enrollment(app, caller, ip, presented, &existing, "a passkey").await?;
    let user = app
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| AppError::unauthenticated("the user no longer exists"))?;
    let exclude = credentials
        .iter()
        .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.credential_id).ok())
        .collect();
    let (options, state) = webauthn
        .start_passkey_registration(
            user_handle(user_id),
            &user.username,
            &user.username,
            Some(exclude),
        )
        .map_err(|e| AppError::internal(format!("starting a WebAuthn registration: {e}")))?;
    let now = app.now();
    let record = RegistrationRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.clone(),
        session_id: caller.session.id.clone(),
        name,
        state: serde_json::to_string(&state).map_err(AppError::internal)?,
        created_at: now,
        expires_at: now + REGISTRATION_TTL,
        finished_at: None,
    };
    app.store.insert_webauthn_registration(&record).await?;
    Ok(WebauthnRegistration {
        registration_id: record.id,
        options: serde_json::to_value(options).map_err(AppError::internal)?,
        expires_at: rfc3339(record.expires_at),
    })
}

/// Finishes registration `id` with the browser's credential: verified against the
/// ceremony's state, then stored as an active factor in the transaction that marks the
/// ceremony finished (a credential that does not verify changes nothing). A user's
/// first factor comes with a first set of recovery codes.
pub async fn finish_registration(
    app: &SharedApp,
    caller: &UserCaller,
    ip: IpAddr,
    id: &str,
    credential: serde_json::Value,
) -> Result<Factor, AppError> {
    let webauthn = rp(app)?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(without_null_extensions(credential)).map_err(|e| {
            AppError::validation(format!("credential is not a PublicKeyCredential: {e}"))
        })?;
    let now = app.now();
    let record = open_registration(app, caller, id, now).await?;
    let state: PasskeyRegistration = serde_json::from_str(&record.state)
        .map_err(|e| AppError::internal(format!("corrupt registration state: {e}")))?;
    let passkey = webauthn
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| AppError::validation(refusal(&e)))?;
    let factor = credential_factor(app, caller, &record, &passkey, now)?;
    let recovery = first_factor_codes(app, caller, now).await?;
    let mut events = vec![enrolled_event(
        caller,
        ip,
        FactorKind::Webauthn,
        &factor.id,
        now,
    )];
    events.extend(recovery.iter().map(|c| c.event(caller, ip, now)));
    let finished = app
        .store
        .finish_webauthn_registration(
            &record.id,
            &caller.session.id,
            now,
            &factor,
            recovery.as_ref().map(|c| (&c.factor, c.hashes.as_slice())),
            &events,
        )
        .await
        .map_err(|e| match e {
            stepgate_store::StoreError::Conflict => {
                AppError::new(ErrorCode::Conflict, "this credential is registered already")
            }
            e => e.into(),
        })?;
    if !finished {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this registration was finished meanwhile",
        ));
    }
    crate::devices::remember_session_device(app, caller, &ip.to_string(), now).await?;
    let mut shown = shown(factor, None);
    shown.recovery_codes = recovery.map(|c| c.codes);
    Ok(shown)
}

/// Registration `id` of the caller's session, still open at `now`.
async fn open_registration(
    app: &SharedApp,
    caller: &UserCaller,
    id: &str,
    now: i64,
) -> Result<RegistrationRecord, AppError> {
    let record = app
        .store
        .webauthn_registration(id)
        .await?
        .filter(|r| r.session_id == caller.session.id)
        .ok_or_else(|| {
            AppError::new(ErrorCode::NotFound, "no such registration for this session")
        })?;
    if record.finished_at.is_some() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this registration is finished: start a new one",
        ));
    }
    if record.expires_at <= now {
        return Err(AppError::new(
            ErrorCode::ChallengeExpired,
            "this registration expired: start a new one",
        ));
    }
    Ok(record)
}

/// The factor a verified registration becomes: the credential sealed (public key,
/// algorithm, flags), its id, counter and backup flags in the clear.
fn credential_factor(
    app: &SharedApp,
    caller: &UserCaller,
    record: &RegistrationRecord,
    passkey: &Passkey,
    now: i64,
) -> Result<FactorRecord, AppError> {
    let id = uuid::Uuid::new_v4().to_string();
    let internals: Credential = passkey.clone().into();
    let sealed = serde_json::to_vec(passkey).map_err(AppError::internal)?;
    Ok(FactorRecord {
        secret: Some(app.secrets.seal(&id, &sealed)?),
        id,
        user_id: caller.session.user_id.clone(),
        kind: FactorKind::Webauthn,
        status: FactorStatus::Active,
        last_step: None,
        created_at: now,
        confirmed_at: Some(now),
        name: Some(record.name.clone()),
        last_used_at: None,
        credential: Some(CredentialFacts {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            sign_count: i64::from(internals.counter),
            backup_eligible: internals.backup_eligible,
            backup_state: internals.backup_state,
        }),
    })
}

/// A user's WebAuthn credential as webauthn-rs judges it, with the counter last
/// accepted (so a ceremony started now refuses a counter at or below it).
fn passkey_of(app: &SharedApp, factor: &FactorRecord) -> Result<Passkey, AppError> {
    let sealed = factor
        .secret
        .as_deref()
        .ok_or_else(|| AppError::internal("WebAuthn factor without its credential"))?;
    let plain = app.secrets.open(&factor.id, sealed)?;
    let passkey: Passkey = serde_json::from_slice(&plain)
        .map_err(|e| AppError::internal(format!("corrupt WebAuthn credential: {e}")))?;
    let mut internals: Credential = passkey.into();
    if let Some(facts) = &factor.credential {
        internals.counter = u32::try_from(facts.sign_count).unwrap_or(u32::MAX);
        internals.backup_state = facts.backup_state;
    }
    Ok(internals.into())
}

/// The options and state of an assertion ceremony over the user's active WebAuthn
/// credentials (`None` when they have none), to store with a challenge.
pub fn assertion_for(
    app: &SharedApp,
    factors: &[FactorRecord],
) -> Result<Option<(String, String)>, AppError> {
    let credentials: Vec<Passkey> = factors
        .iter()
        .filter(|f| f.kind == FactorKind::Webauthn && f.status == FactorStatus::Active)
        .map(|f| passkey_of(app, f))
        .collect::<Result<_, _>>()?;
    if credentials.is_empty() {
        return Ok(None);
    }
    let webauthn = rp(app)?;
    let (options, state) = webauthn
        .start_passkey_authentication(&credentials)
        .map_err(|e| AppError::internal(format!("starting a WebAuthn assertion: {e}")))?;
    Ok(Some((
        serde_json::to_string(&options).map_err(AppError::internal)?,
        serde_json::to_string(&state).map_err(AppError::internal)?,
    )))
}

/// A WebAuthn answer in its checked shape.
pub struct Assertion {
    pub credential: PublicKeyCredential,
    /// base64url of the credential id it names.
    pub credential_id: String,
}

impl Assertion {
    pub fn parse(credential: Option<serde_json::Value>) -> Result<Self, AppError> {
        let credential = credential.ok_or_else(|| {
            AppError::validation("credential is required: the browser's PublicKeyCredential")
        })?;
        let credential: PublicKeyCredential =
            serde_json::from_value(without_null_extensions(credential)).map_err(|e| {
                AppError::validation(format!("credential is not a PublicKeyCredential: {e}"))
            })?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        Ok(Self {
            credential,
            credential_id,
        })
    }
}

/// Checks an assertion against the challenge's stored ceremony state.
pub fn verify_assertion(
    app: &SharedApp,
    state: &str,
    assertion: &Assertion,
) -> Result<AuthenticationResult, WebauthnError> {
    let state: PasskeyAuthentication =
        serde_json::from_str(state).map_err(|_| WebauthnError::MismatchedChallenge)?;
    let webauthn = app.webauthn.as_ref().ok_or(WebauthnError::Configuration)?;
    webauthn.finish_passkey_authentication(&assertion.credential, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rp_id_is_public_urls_domain() {
        assert!(relying_party("https://auth.example.com").is_ok());
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(relying_party("http://127.0.0.1:8080").is_err());
        assert!(relying_party("not a url").is_err());
    }

    #[test]
    fn user_handles_are_the_uuid_or_derived_from_the_id() {
        let id = "0b5d6f1e-8a47-4c3e-9d0a-2f1e3c4b5a69";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("alice"), user_handle("alice"));
        assert_ne!(user_handle("alice"), user_handle("bob"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_name(None).unwrap(), "Passkey");
        assert_eq!(parse_name(Some("YubiKey 5".into())).unwrap(), "YubiKey 5");
        assert!(parse_name(Some(String::new())).is_err());
        assert!(parse_name(Some("a\nb".into())).is_err());
        assert!(parse_name(Some("x".repeat(65))).is_err());
    }
}
