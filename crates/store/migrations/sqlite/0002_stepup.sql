-- Step-up: policy versions, factors, challenges, elevations, failure budget, audit.

-- Every change of the run-time policy is a new immutable row. `purposes` is a JSON
-- object: purpose name -> requirement set by an admin (the config's minimum applies on top).
CREATE TABLE policy_versions (
    version    INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    purposes   TEXT NOT NULL
);

CREATE TABLE factors (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    -- AES-256-GCM: 12-byte nonce || ciphertext+tag, under the secrets key (TOTP only).
    secret       BLOB,
    -- TOTP: the last accepted time step; a code of that step or earlier is refused.
    last_step    INTEGER,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER
);
CREATE INDEX factors_user_id ON factors(user_id);

-- HMAC-SHA256 of each code under a key derived from the secrets key.
CREATE TABLE recovery_codes (
    factor_id TEXT NOT NULL REFERENCES factors(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (factor_id, code_hash)
);

CREATE TABLE challenges (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    -- NULL for a login challenge: the session is created when it passes.
    session_id     TEXT,
    purpose        TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    factor_class   TEXT NOT NULL,
    ttl_seconds    INTEGER NOT NULL,
    single_use     BOOLEAN NOT NULL,
    bind_ip        BOOLEAN NOT NULL,
    approvals      INTEGER NOT NULL,
    mode           TEXT NOT NULL,
    status         TEXT NOT NULL,
    failures       INTEGER NOT NULL,
    max_attempts   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    action_digest  TEXT,
    action_summary TEXT,
    -- Login challenges: JSON of the pending login (ip, user agent, device, risk).
    login_context  TEXT
);

CREATE TABLE elevations (
    id            TEXT PRIMARY KEY,
    -- SHA-256 of the elevation token; NULL in session mode.
    token_hash    BLOB UNIQUE,
    challenge_id  TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id),
    session_id    TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    factor        TEXT NOT NULL,
    factor_class  TEXT NOT NULL,
    mode          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    ip            TEXT,
    single_use    BOOLEAN NOT NULL,
    consumed_at   INTEGER,
    revoked_at    INTEGER,
    action_digest TEXT
);
CREATE INDEX elevations_user_id ON elevations(user_id);
CREATE INDEX elevations_session_id ON elevations(session_id);

CREATE TABLE stepup_failures (
    user_id TEXT NOT NULL,
    factor  TEXT NOT NULL,
    purpose TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX stepup_failures_budget ON stepup_failures(user_id, factor, at);

-- Append-only; seq starts at 1 with no gaps (appends are serialized).
CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY,
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
CREATE INDEX audit_events_type ON audit_events(type);
