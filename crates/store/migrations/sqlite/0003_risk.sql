-- Risk: what the engine remembers per user, sign-in lockout, rate limits.

ALTER TABLE sessions ADD COLUMN enrollment_required BOOLEAN NOT NULL DEFAULT FALSE;
-- JSON of the risk assessment made at login.
ALTER TABLE sessions ADD COLUMN risk TEXT;

-- Devices a user completed a step-up from (fingerprints stored hashed).
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    device_hash  TEXT NOT NULL,
    -- 'fingerprint' or 'key' (holds a device-bound key).
    trust        TEXT NOT NULL,
    user_agent   TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (user_id, device_hash)
);

-- Successful logins: IP, place and time, for the network, location, travel and hour signals.
CREATE TABLE logins (
    -- Insertion order, to order logins within the same second.
    id        INTEGER PRIMARY KEY,
    user_id   TEXT NOT NULL,
    at        INTEGER NOT NULL,
    ip        TEXT NOT NULL,
    country   TEXT,
    latitude  REAL,
    longitude REAL
);
CREATE INDEX logins_user_at ON logins(user_id, at);

-- Failed passwords per account name (also for names that do not exist, so lockout
-- does not reveal which do).
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    ip       TEXT NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX login_failures_username_at ON login_failures(username, at);

-- Fixed-window counters shared by all nodes.
CREATE TABLE rate_counters (
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- DPoP proofs seen, so a proof cannot be replayed while its time window is open.
CREATE TABLE dpop_proofs (
    jkt        TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (jkt, jti)
);
