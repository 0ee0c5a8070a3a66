//! The hash chain over the audit log: how an event is encoded for hashing, how one
//! event links to the one before it, and the streaming check of a whole log.
//!
//! The encoding is the event as `GET /v1/audit` and the export show it, so an export
//! verifies on its own with nothing but SHA-256 and a JSON library:
//!
//! - `canonical(event)`: the JSON object with exactly the members `seq`, `type`, `at`,
//!   `user_id`, `session_id`, `purpose`, `ip`, `factor`, `policy_version`,
//!   `challenge_id`, `elevation_id` and `data` (an absent value is `null`; `prev_hash`
//!   and `hash` are not part of it), members sorted by name at every depth, no
//!   whitespace, strings in UTF-8 with only `"`, `\` and U+0000 to U+001F escaped
//!   (`\b \f \n \r \t`, the others as `\u00xx` in lower case), numbers as integers.
//!   Python's `json.dumps(event, sort_keys=True, separators=(",", ":"),
//!   ensure_ascii=False)` writes the same bytes.
//! - `hash(event) = SHA-256(prev_hash || canonical(event))`, `prev_hash` being the 32
//!   bytes of the previous event's hash; the first event's `prev_hash` is 32 zero bytes
//!   (or, after pruning, the hash of the signed checkpoint that marks the new start).
//! - A signed checkpoint covers `checkpoint_message(seq, hash)`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use stepgate_api::AuditEvent;

pub type Hash = [u8; 32];

/// The `prev_hash` of the first event of a log that was never pruned.
pub const GENESIS: Hash = [0; 32];

/// The bytes that are hashed for `event`.
pub fn canonical(event: &AuditEvent) -> Vec<u8> {
    let mut object = Map::new();
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    object.insert("seq".into(), event.seq.into());
    object.insert("type".into(), event.kind.clone().into());
    object.insert("at".into(), event.at.clone().into());
    object.insert("user_id".into(), text(&event.user_id));
    object.insert("session_id".into(), text(&event.session_id));
    object.insert("purpose".into(), text(&event.purpose));
    object.insert("ip".into(), text(&event.ip));
    object.insert("factor".into(), text(&event.factor));
    object.insert(
        "policy_version".into(),
        event.policy_version.map_or(Value::Null, Value::from),
    );
    object.insert("challenge_id".into(), text(&event.challenge_id));
    object.insert("elevation_id".into(), text(&event.elevation_id));
    object.insert("data".into(), event.data.clone().unwrap_or(Value::Null));
    serde_json::to_vec(&sorted(Value::Object(object))).expect("a JSON value serializes")
}

/// `value` with every object's members in name order (serde_json keeps insertion
/// order in this build, so the order is made, not assumed).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(String, Value)> = map.into_iter().collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(members.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The hash of `event` following `prev`.
pub fn link(prev: &Hash, event: &AuditEvent) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(event));
    h.finalize().into()
}

/// What a checkpoint's signature covers: the chain head at `seq` is `hash`.
pub fn checkpoint_message(seq: i64, hash: &Hash) -> Vec<u8> {
    format!("stepgate audit checkpoint\n{seq}\n{}\n", hex(hash)).into_bytes()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits as a hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A checkpoint whose signature the caller has already checked: the chain head at `seq`
/// was `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Hash,
}

/// Why a log does not verify, at the first `seq` that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// Checks a log event by event, in the order it is stored, in constant memory: feed
/// every event to [`ChainCheck::next`], then call [`ChainCheck::finish`].
#[derive(Debug)]
pub struct ChainCheck {
    expected_seq: i64,
    prev: Hash,
    checked: u64,
    /// Checkpoints not reached yet, latest first.
    checkpoints: Vec<Checkpoint>,
}

impl ChainCheck {
    /// A check of a log that starts after `start` (`(0, GENESIS)` for a log never
    /// pruned), against signed checkpoints (any order).
    pub fn new(start: (i64, Hash), mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.retain(|c| c.seq > start.0);
        checkpoints.sort_by_key(|c| std::cmp::Reverse(c.seq));
        Self {
            expected_seq: start.0 + 1,
            prev: start.1,
            checked: 0,
            checkpoints,
        }
    }

    /// Checks the next stored event (`prev_hash` and `hash` as stored).
    pub fn next(&mut self, event: &AuditEvent, prev_hash: &Hash, hash: &Hash) -> Result<(), Break> {
        let seq = self.expected_seq;
        let fail = |reason: String| Err(Break { seq, reason });
        if event.seq > seq {
            return fail(format!("deleted: seq {seq} is missing"));
        }
        if event.seq < seq {
            return fail(format!(
                "reordered: seq {} appears where seq {seq} belongs",
                event.seq
            ));
        }
        if *prev_hash != self.prev {
            return fail(format!(
                "reordered: its prev_hash is not the hash of seq {}",
                seq - 1
            ));
        }
        let computed = link(&self.prev, event);
        if computed != *hash {
            return fail("altered: its hash does not match its content".into());
        }
        if let Some(c) = self.checkpoints.last()
            && c.seq == seq
        {
            if c.hash != computed {
                return fail(format!(
                    "altered: the chain differs from the signed checkpoint at seq {seq}"
                ));
            }
            self.checkpoints.pop();
        }
        self.prev = computed;
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// The number of events checked, or the break a signed checkpoint past the end
    /// reveals (the tail was cut off).
    pub fn finish(self) -> Result<u64, Break> {
        match self.checkpoints.first() {
            Some(latest) => Err(Break {
                seq: self.expected_seq,
                reason: format!(
                    "truncated after checkpoint {}: the log ends at seq {}",
                    latest.seq,
                    self.expected_seq - 1
                ),
            }),
            None => Ok(self.checked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, data: Option<Value>) -> AuditEvent {
        AuditEvent {
            seq,
            kind: "ACCOUNT_STEPUP_REDEEMED".into(),
            at: "2026-12-04T17:00:00Z".into(),
            user_id: Some("u1".into()),
            session_id: None,
            purpose: Some("payroll:transmit".into()),
            ip: None,
            factor: None,
            policy_version: Some(3),
            challenge_id: None,
            elevation_id: None,
            data,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// A log of `n` events with their stored (prev_hash, hash).
    fn log(n: i64) -> Vec<(AuditEvent, Hash, Hash)> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let e = event(seq, Some(serde_json::json!({ "n": seq })));
                let h = link(&prev, &e);
                let out = (e, prev, h);
                prev = h;
                out
            })
            .collect()
    }

    fn check(
        rows: &[(AuditEvent, Hash, Hash)],
        checkpoints: Vec<Checkpoint>,
    ) -> Result<u64, Break> {
        let mut c = ChainCheck::new((0, GENESIS), checkpoints);
        for (e, p, h) in rows {
            c.next(e, p, h)?;
        }
        c.finish()
    }

    #[test]
    fn the_encoding_is_sorted_compact_json_with_nulls() {
        let e = event(
            7,
            Some(serde_json::json!({ "z": [{"b": 1, "a": "é\n"}], "a": true })),
        );
        assert_eq!(
            String::from_utf8(canonical(&e)).unwrap(),
            r#"{"at":"2026-12-04T17:00:00Z","challenge_id":null,"data":{"a":true,"z":[{"a":"é\n","b":1}]},"elevation_id":null,"factor":null,"ip":null,"policy_version":3,"purpose":"payroll:transmit","seq":7,"session_id":null,"type":"ACCOUNT_STEPUP_REDEEMED","user_id":"u1"}"#
        );
        // The bytes a third party hashes, by hand: SHA-256(32 zero bytes || canonical).
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(canonical(&e));
        assert_eq!(link(&GENESIS, &e), <Hash>::from(h.finalize()));
    }

    #[test]
    fn an_intact_log_verifies_and_every_kind_of_tampering_is_found_at_its_seq() {
        let rows = log(6);
        assert_eq!(check(&rows, vec![]), Ok(6));

        let mut altered = rows.clone();
        altered[2].0.ip = Some("203.0.113.9".into());
        let b = check(&altered, vec![]).unwrap_err();
        assert_eq!((b.seq, b.reason.starts_with("altered")), (3, true), "{b:?}");

        let mut deleted = rows.clone();
        deleted.remove(3);
        let b = check(&deleted, vec![]).unwrap_err();
        assert_eq!((b.seq, b.reason.starts_with("deleted")), (4, true), "{b:?}");

        // Two rows swapped, each keeping its own stored seq column.
        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        (swapped[1].0.seq, swapped[2].0.seq) = (2, 3);
        let b = check(&swapped, vec![]).unwrap_err();
        assert_eq!(
            (b.seq, b.reason.starts_with("reordered")),
            (2, true),
            "{b:?}"
        );

        // Rewritten from seq 3 on with fresh hashes: only a checkpoint sees it.
        let mut rewritten = rows[..2].to_vec();
        let mut prev = rows[1].2;
        for (mut e, _, _) in rows[2..].iter().cloned() {
            e.factor = Some("totp".into());
            let h = link(&prev, &e);
            rewritten.push((e, prev, h));
            prev = h;
        }
        assert_eq!(check(&rewritten, vec![]), Ok(6));
        let at4 = Checkpoint {
            seq: 4,
            hash: rows[3].2,
        };
        let b = check(&rewritten, vec![at4.clone()]).unwrap_err();
        assert_eq!(b.seq, 4, "{b:?}");

        let b = check(&rows[..3], vec![at4]).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(
            b.reason.starts_with("truncated after checkpoint 4"),
            "{b:?}"
        );
    }

    #[test]
    fn a_pruned_log_verifies_from_its_start() {
        let rows = log(6);
        let start = (3, rows[2].2);
        let mut c = ChainCheck::new(
            start,
            vec![Checkpoint {
                seq: 3,
                hash: rows[2].2,
            }],
        );
        for (e, p, h) in &rows[3..] {
            c.next(e, p, h).unwrap();
        }
        assert_eq!(c.finish(), Ok(3));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = link(&GENESIS, &event(1, None));
        assert_eq!(parse_hash(&hex(&h)), Some(h));
        assert_eq!(parse_hash("zz"), None);
        assert_eq!(parse_hash(&"é".repeat(32)), None);
    }
}
