-- The audit log becomes a hash chain. A request's transaction writes its events into
-- the inbox (no lock, no sequence number); one appender at a time moves them into
-- audit_events in batches, giving each its seq, prev_hash and hash.
CREATE TABLE audit_inbox (
    id             BIGSERIAL PRIMARY KEY,
    type           TEXT NOT NULL,
    at             BIGINT NOT NULL,
    user_id        TEXT,
    session_id     TEXT,
    purpose        TEXT,
    ip             TEXT,
    factor         TEXT,
    policy_version BIGINT,
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

ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash BYTEA NOT NULL DEFAULT '';

-- Signed chain heads: the head at seq had this hash, signed by key_id (Ed25519, base64url).
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    at        BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
