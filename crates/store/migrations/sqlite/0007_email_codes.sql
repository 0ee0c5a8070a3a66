-- One-time codes sent by email. `owner` is what the code answers: a challenge (its id)
-- or a pending email factor's confirmation (the factor's id). One live code per owner:
-- sending again replaces it. Codes are stored as keyed hashes only.
CREATE TABLE email_codes (
    owner      TEXT PRIMARY KEY,
    factor_id  TEXT NOT NULL,
    code_hash  BLOB NOT NULL,
    sent_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Wrong confirmations of a pending factor (a challenge's answers count in its own
    -- attempts and the failure budget).
    failures   INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER
);
CREATE INDEX email_codes_expires_at ON email_codes(expires_at);
