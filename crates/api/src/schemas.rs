//! Schemas for request fields that the server reads as text and checks itself: the
//! OpenAPI document states the same rule, so a generated client sends only what is
//! taken. Only with the `openapi` feature; no value of these types is ever made.
#![allow(dead_code)]

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};

/// An API key's scope.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ScopeName {
    Service,
    Admin,
}

/// Where a passed step-up's elevation goes: `token` (an elevation token for the RP
/// to redeem) or `session` (onto the asking session, with a fresh access token).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ModeName {
    Token,
    Session,
}

/// The factor class a purpose requires.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FactorClassName {
    Any,
    PhishingResistant,
}

/// The factor an answer is given with.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FactorName {
    Totp,
    RecoveryCode,
}

/// Hex SHA-256 (64 hex digits, either case).
#[derive(ToSchema)]
#[schema(pattern = r"^[0-9a-fA-F]{64}$")]
pub struct Sha256Hex(String);

/// A role name: 1–64 characters of letters, digits and `: _ . -`.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9:_.-]{1,64}$")]
pub struct RoleName(String);

/// A name (purpose, action, resource): 1–256 characters, without control characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,256}$")]
pub struct Name(String);

/// What a client says about its device: at most 512 characters, without control
/// characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,512}$")]
pub struct DeviceText(String);

/// A device fingerprint: 1–512 characters, without control characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,512}$")]
pub struct Fingerprint(String);

/// A credential's name: 1–64 characters, without control characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,64}$")]
pub struct CredentialName(String);

/// An audit event's severity.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SeverityName {
    Info,
    Warning,
    Critical,
}

/// The factors a challenge can send a code for.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SendFactorName {
    EmailOtp,
}

/// Bytes as unpadded base64url (RFC 4648 section 5), canonically encoded.
#[derive(ToSchema)]
#[schema(
    pattern = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$"
)]
pub struct Base64Url(String);

/// The browser's `PublicKeyCredential` from `navigator.credentials.create()`, as its
/// `toJSON()` writes it.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct RegistrationCredential {
    /// The credential id, base64url.
    id: String,
    #[schema(value_type = Base64Url)]
    rawId: String,
    /// `public-key`.
    r#type: String,
    response: AttestationResponse,
    /// The client's extension outputs.
    #[schema(value_type = Option<Object>)]
    extensions: Option<String>,
}

/// `AuthenticatorAttestationResponse`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AttestationResponse {
    /// CBOR: the authenticator data and attestation statement.
    #[schema(value_type = Base64Url)]
    attestationObject: String,
    #[schema(value_type = Base64Url)]
    clientDataJSON: String,
    /// How the browser can reach the authenticator (`usb`, `nfc`, `internal`, …).
    transports: Option<Vec<String>>,
}

/// The browser's `PublicKeyCredential` from `navigator.credentials.get()`, as its
/// `toJSON()` writes it.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AssertionCredential {
    /// The credential id, base64url.
    id: String,
    #[schema(value_type = Base64Url)]
    rawId: String,
    /// `public-key`.
    r#type: String,
    response: AssertionResponse,
    /// The client's extension outputs.
    #[schema(value_type = Option<Object>)]
    extensions: Option<String>,
}

/// `AuthenticatorAssertionResponse`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct AssertionResponse {
    #[schema(value_type = Base64Url)]
    authenticatorData: String,
    #[schema(value_type = Base64Url)]
    clientDataJSON: String,
    #[schema(value_type = Base64Url)]
    signature: String,
    #[schema(value_type = Option<Base64Url>)]
    userHandle: Option<String>,
}

/// The answer to a challenge: the factor, and a code of that factor's shape (or, for
/// `webauthn`, the browser's assertion).
pub struct ChallengeAnswer;

impl utoipa::PartialSchema for ChallengeAnswer {
    fn schema() -> RefOr<Schema> {
        let answer = |factor: &str, code: &str, description: &str| {
            ObjectBuilder::new()
                .property(
                    "factor",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([factor])),
                )
                .property(
                    "code",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(code))
                        .description(Some(description)),
                )
                .required("factor")
                .required("code")
        };
        OneOfBuilder::new()
            .item(answer(
                "totp",
                r"^\s*([0-9]\s*){6}$",
                "The 6 digits the authenticator shows (white space is ignored)",
            ))
            .item(answer(
                "recovery_code",
                r"^[\s-]*([0-9a-tv-zA-TV-Z][\s-]*){10}$",
                "One of the user's recovery codes: 10 letters and digits (case, \
                 dashes and white space are ignored; o reads as 0, i and l as 1)",
            ))
            .item(answer(
                "email_otp",
                r"^\s*([0-9]\s*){6,8}$",
                "The code from the mail (6 to 8 digits, as configured)",
            ))
            .item(
                ObjectBuilder::new()
                    .property(
                        "factor",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["webauthn"])),
                    )
                    .property("credential", AssertionCredential::schema())
                    .required("factor")
                    .required("credential"),
            )
            .into()
    }
}

impl ToSchema for ChallengeAnswer {}

/// An IPv4 or IPv6 address.
pub struct IpText;

impl utoipa::PartialSchema for IpText {
    fn schema() -> RefOr<Schema> {
        let address = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        OneOfBuilder::new()
            .item(address(KnownFormat::Ipv4))
            .item(address(KnownFormat::Ipv6))
            .description(Some("An IPv4 or IPv6 address"))
            .into()
    }
}

impl ToSchema for IpText {}
