//! The audit chain at work: the appender that chains what requests wrote into the
//! inbox, the signed checkpoints of the chain head, and verification of the stored log
//! or of an export. The encoding and the check itself are the core's
//! (`stepgate_core::audit::chain`).

use std::io::BufRead;

use stepgate_api::{AuditEvent, AuditVerification};
use stepgate_core::audit::chain::{
    self, Break, ChainCheck, Checkpoint, GENESIS, Hash, checkpoint_message, parse_hash,
};
use stepgate_store::{AuditFilter, AuditRecord, ChainHead, CheckpointRecord, Store, StoreError};

use crate::config::AuditConfig;
use crate::keys::{ALG, KeySet};

/// Inbox events chained per transaction.
const BATCH: i64 = 512;
/// Events read per page while verifying.
const PAGE: i64 = 2000;

/// Chains every event waiting in the inbox, a batch per transaction; the number
/// chained and the head after the last batch.
pub async fn append_pending(store: &Store) -> Result<(usize, Option<ChainHead>), StoreError> {
    let mut total = 0;
    let mut head = None;
    loop {
        let (moved, after) = store.chain_inbox(BATCH, link_record).await?;
        total += moved;
        if after.is_some() {
            head = after;
        }
        if moved < BATCH as usize {
            return Ok((total, head));
        }
    }
}

/// The hash of a stored event following `prev`.
fn link_record(prev: &[u8], record: &AuditRecord) -> Vec<u8> {
    let event = super::to_wire(record.clone());
    chain::link(&hash_of(prev), &event).to_vec()
}

/// 32 stored bytes as a hash; anything else (a tampered column) as one that matches
/// nothing a chain computes.
fn hash_of(bytes: &[u8]) -> Hash {
    <Hash>::try_from(bytes).unwrap_or([0xff; 32])
}

/// Signs the chain head when a checkpoint is due: `checkpoint_every` events since the
/// last one, or `checkpoint_seconds` after it when the head has moved. The seq signed,
/// if any (another node may have signed the same head first: then nothing is stored).
pub async fn checkpoint_if_due(
    store: &Store,
    keys: &KeySet,
    config: &AuditConfig,
    now: i64,
) -> anyhow::Result<Option<i64>> {
    let Some(head) = store.audit_head().await? else {
        return Ok(None);
    };
    let (last_seq, last_at) = store
        .latest_checkpoint()
        .await?
        .map_or((0, i64::MIN), |c| (c.seq, c.at));
    let due = head.seq - last_seq >= i64::from(config.checkpoint_every)
        || (head.seq > last_seq && now.saturating_sub(last_at) >= config.checkpoint_seconds as i64);
    if !due {
        return Ok(None);
    }
    let key = keys.active();
    let signature = jsonwebtoken::crypto::sign(
        &checkpoint_message(head.seq, &hash_of(&head.hash)),
        &key.encoding,
        ALG,
    )?;
    let stored = store
        .insert_checkpoint(&CheckpointRecord {
            seq: head.seq,
            hash: head.hash,
            at: now,
            key_id: key.kid.clone(),
            signature,
        })
        .await?;
    Ok(stored.then_some(head.seq))
}

fn broken(b: Break) -> AuditVerification {
    AuditVerification {
        ok: false,
        checked: None,
        first_bad_seq: Some(b.seq),
        reason: Some(b.reason),
    }
}

fn intact(checked: u64) -> AuditVerification {
    AuditVerification {
        ok: true,
        checked: Some(checked),
        first_bad_seq: None,
        reason: None,
    }
}

/// Verifies the stored log from its first event, page by page (constant memory),
/// against every checkpoint whose signing key the key set still holds (a checkpoint
/// signed by a key since rotated out cannot be checked and is skipped; one whose
/// signature fails breaks the log at its seq).
pub async fn verify_store(store: &Store, keys: &KeySet) -> anyhow::Result<AuditVerification> {
    append_pending(store).await?;
    let mut checkpoints = Vec::new();
    for c in store.checkpoints().await? {
        let Some(key) = keys.find(&c.key_id) else {
            continue;
        };
        let hash = hash_of(&c.hash);
        let message = checkpoint_message(c.seq, &hash);
        if !jsonwebtoken::crypto::verify(&c.signature, &message, &key.decoding, ALG)
            .unwrap_or(false)
        {
            return Ok(broken(Break {
                seq: c.seq,
                reason: format!("the signature of checkpoint {} does not verify", c.seq),
            }));
        }
        checkpoints.push(Checkpoint { seq: c.seq, hash });
    }
    let mut check = ChainCheck::new((0, GENESIS), checkpoints);
    let mut after_seq = 0;
    loop {
        let page = store
            .audit_events(&AuditFilter {
                after_seq,
                limit: PAGE,
                ..AuditFilter::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after_seq = last.seq;
        for record in page {
            let (prev, hash) = (hash_of(&record.prev_hash), hash_of(&record.hash));
            if let Err(b) = check.next(&super::to_wire(record), &prev, &hash) {
                return Ok(broken(b));
            }
        }
    }
    Ok(check.finish().map_or_else(broken, intact))
}

/// Verifies an NDJSON export (one event per line, as `GET /v1/audit?format=ndjson`
/// writes them) line by line. An export starting after seq 1 is checked from its
/// first line's `prev_hash`.
pub fn verify_lines(lines: impl BufRead) -> anyhow::Result<AuditVerification> {
    let mut check: Option<ChainCheck> = None;
    for (n, line) in lines.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {}: not an audit event: {e}", n + 1))?;
        let hashes = parse_hash(&event.prev_hash).zip(parse_hash(&event.hash));
        let Some((prev, hash)) = hashes else {
            return Ok(broken(Break {
                seq: event.seq,
                reason: "altered: prev_hash and hash must be 64 hex digits".into(),
            }));
        };
        let check = check.get_or_insert_with(|| ChainCheck::new((event.seq - 1, prev), vec![]));
        if let Err(b) = check.next(&event, &prev, &hash) {
            return Ok(broken(b));
        }
    }
    Ok(check
        .map_or(Ok(0), ChainCheck::finish)
        .map_or_else(broken, intact))
}
