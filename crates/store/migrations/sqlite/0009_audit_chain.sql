-- The audit log becomes a hash chain. A request's transaction writes its events into
-- the inbox (no lock, no sequence number); one appender at a time moves them into
-- audit_events in batches, giving each its seq, prev_hash and hash.
CREATE TABLE audit_inbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    type           TEXT NOT NULL,
    at             INTEGER NOT NULL,
    user_id        TEXT,
    session_id     TEXT,
    purpose        TEXT,
    ip             TEXT,
    factor         TEXT,
    policy_version INTEGER,
    challenge_id   TEXT,
    elevation_id   TEXT,
    data           TEXT
);

-- The events logged so far are chained again from seq 1, in their order.
INSERT INTO audit_inbox (type, at, user_id, session_id, purpose, ip, factor,
    policy_version, challenge_id, elevation_id, data)
SELECT type, at, user_id, session_id, purpose, ip, factor, policy_version,
    challenge_id, elevation_id, data FROM audit_events ORDER BY seq;
DELETE FROM audit_events;

ALTER TABLE audit_events ADD COLUMN prev_hash BLOB NOT NULL DEFAULT x'';
ALTER TABLE audit_events ADD COLUMN hash BLOB NOT NULL DEFAULT x'';

-- Signed chain heads: the head at seq had this hash, signed by key_id (Ed25519, base64url).
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    at        INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
