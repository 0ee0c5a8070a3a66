-- WebAuthn credentials are factors of kind 'webauthn': `secret` holds the sealed
-- credential (public key, algorithm, flags), these columns what is judged and listed.
ALTER TABLE factors ADD COLUMN name TEXT;
-- base64url of the credential id; one account per credential.
ALTER TABLE factors ADD COLUMN credential_id TEXT;
-- The authenticator's signature counter as last accepted; an assertion must raise it
-- (unless the authenticator keeps none: 0 stays 0).
ALTER TABLE factors ADD COLUMN sign_count INTEGER NOT NULL DEFAULT 0;
-- Backup eligible: a synced passkey; not eligible: bound to one device (a hardware key).
ALTER TABLE factors ADD COLUMN backup_eligible BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE factors ADD COLUMN backup_state BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE factors ADD COLUMN last_used_at INTEGER;
CREATE UNIQUE INDEX factors_credential_id ON factors(credential_id);

-- A registration ceremony between its options and the browser's credential: any node
-- finishes it, once, before it expires.
CREATE TABLE webauthn_registrations (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    session_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- webauthn-rs's registration state (JSON): the challenge and the policy asked for.
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX webauthn_registrations_expires_at ON webauthn_registrations(expires_at);

-- An assertion ceremony rides on its challenge: the options shown to the browser and
-- the state that checks the answer (JSON), when a passkey may answer it.
ALTER TABLE challenges ADD COLUMN webauthn_options TEXT;
ALTER TABLE challenges ADD COLUMN webauthn_state TEXT;
