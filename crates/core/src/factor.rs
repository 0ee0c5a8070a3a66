//! Factors: the ways a user proves presence, and one-time codes.

use subtle::ConstantTimeEq;

use crate::Error;
use crate::purpose::FactorClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorKind {
    Password,
    Totp,
    EmailOtp,
    Webauthn,
    RecoveryCode,
}

impl FactorKind {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "password" => Ok(Self::Password),
            "totp" => Ok(Self::Totp),
            "email_otp" => Ok(Self::EmailOtp),
            "webauthn" => Ok(Self::Webauthn),
            "recovery_code" => Ok(Self::RecoveryCode),
            _ => Err(Error::validation(
                "factor must be one of totp, email_otp, webauthn, recovery_code",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::EmailOtp => "email_otp",
            Self::Webauthn => "webauthn",
            Self::RecoveryCode => "recovery_code",
        }
    }

    /// The order a user is offered their factors in: the strongest and quickest first,
    /// recovery codes (the last resort) last.
    pub fn offer_rank(self) -> u8 {
        match self {
            Self::Webauthn => 0,
            Self::Totp => 1,
            Self::EmailOtp => 2,
            Self::RecoveryCode => 3,
            Self::Password => 4,
        }
    }

    /// The user's active factor kinds, each once, in the order they are offered.
    pub fn offered(active: impl IntoIterator<Item = Self>) -> Vec<Self> {
        let mut kinds: Vec<Self> = active.into_iter().collect();
        kinds.sort_by_key(|k| k.offer_rank());
        kinds.dedup();
        kinds
    }

    /// The class an enrolled factor of this kind reaches. stepgate registers WebAuthn
    /// credentials with user verification required and refuses assertions without it,
    /// so an enrolled WebAuthn factor is phishing-resistant; nothing else is.
    pub fn class(self) -> FactorClass {
        match self {
            Self::Webauthn => FactorClass::PhishingResistant,
            _ => FactorClass::Any,
        }
    }
}

/// What a passed second factor proved, as tokens and elevations name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    pub kind: FactorKind,
    /// WebAuthn: the credential cannot leave its authenticator (not backup-eligible: a
    /// security key or a device-bound passkey), as opposed to a synced passkey.
    pub hardware_bound: bool,
}

impl Proof {
    /// A passed factor of `kind` that is not a WebAuthn credential.
    pub fn of(kind: FactorKind) -> Self {
        Self {
            kind,
            hardware_bound: false,
        }
    }

    pub fn class(self) -> FactorClass {
        self.kind.class()
    }

    /// The `acr` of a session or elevation that this factor (after the password)
    /// authenticated: `phrh` for a hardware-bound WebAuthn credential, `phr` for a synced
    /// passkey, the MFA value for the rest.
    pub fn acr(self) -> &'static str {
        match (self.kind, self.hardware_bound) {
            (FactorKind::Webauthn, true) => crate::session::acr::PHRH,
            (FactorKind::Webauthn, false) => crate::session::acr::PHR,
            _ => crate::session::acr::MFA,
        }
    }

    /// RFC 8176 method references of the factor (the password's `pwd` comes first, from
    /// the caller): `hwk` or `swk` and `user` (user verification) for WebAuthn, `otp`
    /// for TOTP and email codes, `kba` for a recovery code.
    pub fn amr(self) -> &'static [&'static str] {
        match (self.kind, self.hardware_bound) {
            (FactorKind::Webauthn, true) => &["hwk", "user"],
            (FactorKind::Webauthn, false) => &["swk", "user"],
            (FactorKind::Totp | FactorKind::EmailOtp, _) => &["otp"],
            (FactorKind::RecoveryCode, _) => &["kba"],
            (FactorKind::Password, _) => &["pwd"],
        }
    }
}

/// Where an enrolled factor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorStatus {
    /// Enrolled, waiting for its first code (TOTP).
    Pending,
    /// Confirmed: it can answer challenges.
    Active,
}

impl FactorStatus {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            _ => Err(Error::validation("factor status must be pending or active")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }
}

/// A TOTP code as typed: exactly 6 ASCII digits (spaces are tolerated and dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(Error::validation("a TOTP code is 6 digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode(***)")
    }
}

/// An emailed one-time code as typed: 6 to 8 ASCII digits (spaces are tolerated and
/// dropped). A code of another length than the server sends is well-formed, and wrong.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailCode(String);

impl EmailCode {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if (6..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(code))
        } else {
            Err(Error::validation("an email code is 6 to 8 digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EmailCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailCode(***)")
    }
}

/// RFC 6238 parameters stepgate uses: SHA-1, 6 digits, 30-second steps, ±1 step.
pub const TOTP_STEP: u64 = 30;
pub const TOTP_DIGITS: usize = 6;
pub const TOTP_SKEW_STEPS: u64 = 1;

/// The RFC 6238 code for a time step (`unix_time / 30`), with `digits` digits.
pub fn totp_code(secret: &[u8], digits: usize, step: u64) -> String {
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        digits,
        0,
        TOTP_STEP,
        secret.to_vec(),
    )
    .generate(step * TOTP_STEP)
}

/// The time step whose code matches, within ±1 step of `now`, compared in constant
/// time. The caller must then record the step so it is never accepted again.
pub fn totp_matching_step(secret: &[u8], code: &TotpCode, now: i64) -> Option<u64> {
    let current = u64::try_from(now).ok()? / TOTP_STEP;
    let mut found = None;
    for step in current.saturating_sub(TOTP_SKEW_STEPS)..=current + TOTP_SKEW_STEPS {
        let expected = totp_code(secret, TOTP_DIGITS, step);
        if bool::from(expected.as_bytes().ct_eq(code.as_str().as_bytes())) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits, secret "12345678901234567890").
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code(secret, 8, time / TOTP_STEP), code, "T = {time}");
        }
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111_i64;
        let step = now as u64 / TOTP_STEP;
        for offset in [-1i64, 0, 1] {
            let s = (step as i64 + offset) as u64;
            let code = TotpCode::parse(&totp_code(secret, 6, s)).unwrap();
            assert_eq!(totp_matching_step(secret, &code, now), Some(s));
        }
        for offset in [-2i64, 2] {
            let code =
                TotpCode::parse(&totp_code(secret, 6, (step as i64 + offset) as u64)).unwrap();
            assert_eq!(totp_matching_step(secret, &code, now), None);
        }
    }

    #[test]
    fn totp_codes_parse_strictly() {
        assert!(TotpCode::parse("123 456").is_ok());
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_webauthn_is_phishing_resistant() {
        assert_eq!(FactorKind::Webauthn.class(), FactorClass::PhishingResistant);
        for kind in [
            FactorKind::Totp,
            FactorKind::EmailOtp,
            FactorKind::RecoveryCode,
        ] {
            assert_eq!(kind.class(), FactorClass::Any, "{kind:?}");
        }
    }

    #[test]
    fn email_codes_parse_to_their_length() {
        assert_eq!(EmailCode::parse("123 456").unwrap().as_str(), "123456");
        assert!(EmailCode::parse("12345678").is_ok());
        for bad in ["12345", "123456789", "12345a", ""] {
            assert!(EmailCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", EmailCode::parse("123456").unwrap()),
            "EmailCode(***)"
        );
    }

    #[test]
    fn factors_are_offered_strongest_first_and_once() {
        use FactorKind::*;
        assert_eq!(
            FactorKind::offered([RecoveryCode, Totp, Webauthn, Totp]),
            vec![Webauthn, Totp, RecoveryCode]
        );
    }

    #[test]
    fn proofs_name_their_acr_and_amr() {
        let key = Proof {
            kind: FactorKind::Webauthn,
            hardware_bound: true,
        };
        let synced = Proof {
            hardware_bound: false,
            ..key
        };
        assert_eq!((key.acr(), key.amr()), ("phrh", &["hwk", "user"][..]));
        assert_eq!((synced.acr(), synced.amr()), ("phr", &["swk", "user"][..]));
        let totp = Proof::of(FactorKind::Totp);
        assert_eq!(
            (totp.acr(), totp.amr()),
            (crate::session::acr::MFA, &["otp"][..])
        );
        assert_eq!(Proof::of(FactorKind::RecoveryCode).amr(), &["kba"]);
    }
}
