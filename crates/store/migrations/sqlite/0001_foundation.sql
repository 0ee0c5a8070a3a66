-- Times are Unix seconds. Ids are UUID strings.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    auth_time   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    ip          TEXT NOT NULL,
    user_agent  TEXT,
    device_hash TEXT,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions(user_id);

-- Only a SHA-256 of the key's secret part is stored.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
