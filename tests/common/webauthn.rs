//! A software WebAuthn authenticator and client, as a browser and a passkey would act
//! (W3C WebAuthn level 3, `none` attestation, ES256), with every knob an attacker or a
//! broken authenticator turns: the origin and RP id it signs for, user verification,
//! the backup flags, the signature counter.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The origin and RP id of the harness's servers (`public_url` is the default
/// `http://localhost:8080`).
pub const ORIGIN: &str = "http://localhost:8080";
pub const RP_ID: &str = "localhost";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One credential on a software authenticator.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The signature counter the next assertion carries (then raised by one).
    pub counter: u32,
    /// What the client writes into `clientDataJSON.origin`.
    pub origin: String,
    /// Whose RP id hash the authenticator data carries.
    pub rp_id: String,
    /// Whether the authenticator says it verified the user (PIN, biometrics).
    pub user_verified: bool,
    /// A synced passkey (backup-eligible and backed up) or a hardware-bound key.
    pub synced: bool,
}

impl SoftPasskey {
    /// A hardware-bound credential (a security key): not backup-eligible.
    pub fn security_key() -> Self {
        Self::new(false)
    }

    /// A synced passkey: backup-eligible and backed up.
    pub fn synced() -> Self {
        Self::new(true)
    }

    fn new(synced: bool) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        Self {
            key,
            credential_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            counter: 1,
            origin: ORIGIN.into(),
            rp_id: RP_ID.into(),
            user_verified: true,
            synced,
        }
    }

    /// The public key, as an uncompressed P-256 point.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    pub fn credential_id_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    fn flags(&self) -> u8 {
        let mut flags = UP;
        if self.user_verified {
            flags |= UV;
        }
        if self.synced {
            flags |= BE | BS;
        }
        flags
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("options carry publicKey.challenge");
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false,
        }))
        .unwrap()
    }

    fn rp_id_hash(&self) -> Vec<u8> {
        Sha256::digest(self.rp_id.as_bytes()).to_vec()
    }

    /// The COSE_Key of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        cbor_map(&[
            (Cbor::Int(1), Cbor::Int(2)),
            (Cbor::Int(3), Cbor::Int(-7)),
            (Cbor::Int(-1), Cbor::Int(1)),
            (Cbor::Int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Int(-3), Cbor::Bytes(point[33..].to_vec())),
        ])
    }

    /// `navigator.credentials.create()` for `options` (the server's creation options):
    /// the `PublicKeyCredential` JSON a browser sends back.
    pub fn register(&self, options: &Value) -> Value {
        let mut auth_data = self.rp_id_hash();
        auth_data.push(self.flags() | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation = cbor_map(&[
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let id = self.credential_id_b64();
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(self.client_data("webauthn.create", options)),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get()` for `options` (a challenge's `webauthn_options`):
    /// the assertion JSON a browser sends back. Raises the counter.
    pub fn assert(&mut self, options: &Value) -> Value {
        let assertion = self.assertion(options, self.counter);
        self.counter += 1;
        assertion
    }

    /// An assertion carrying `counter`, whatever the authenticator's own.
    pub fn assertion(&self, options: &Value, counter: u32) -> Value {
        let mut auth_data = self.rp_id_hash();
        auth_data.push(self.flags());
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", options);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        let id = self.credential_id_b64();
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
                "userHandle": null,
            },
            "extensions": {},
        })
    }
}

/// The little CBOR (RFC 8949) an authenticator writes: integers, byte and text
/// strings, maps.
enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Map(Vec<(Cbor, Cbor)>),
}

fn cbor_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn cbor(value: &Cbor, out: &mut Vec<u8>) {
    match value {
        Cbor::Int(n) if *n >= 0 => cbor_head(0, *n as u64, out),
        Cbor::Int(n) => cbor_head(1, (-1 - *n) as u64, out),
        Cbor::Bytes(b) => {
            cbor_head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Cbor::Text(t) => {
            cbor_head(3, t.len() as u64, out);
            out.extend_from_slice(t.as_bytes());
        }
        Cbor::Map(entries) => {
            cbor_head(5, entries.len() as u64, out);
            for (k, v) in entries {
                cbor(k, out);
                cbor(v, out);
            }
        }
    }
}

fn cbor_map(entries: &[(Cbor, Cbor)]) -> Vec<u8> {
    let mut out = Vec::new();
    cbor_head(5, entries.len() as u64, &mut out);
    for (k, v) in entries {
        cbor(k, &mut out);
        cbor(v, &mut out);
    }
    out
}
