-- Authorization decisions: user roles, decision records, DPoP-bound sessions and elevations.

-- JSON array of role names (Cedar: User.roles).
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';

-- RFC 7638 thumbprint of the DPoP key the session's access tokens are bound to (cnf.jkt).
ALTER TABLE sessions ADD COLUMN jkt TEXT;
-- The DPoP key an elevation is bound to, when the step-up was proven with one.
ALTER TABLE elevations ADD COLUMN jkt TEXT;

-- One row per decision, written in batches off the request path; the facts are what a
-- later simulation replays against a draft policy.
CREATE TABLE decision_records (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    user_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    decision       TEXT NOT NULL,
    purpose        TEXT,
    policy_version BIGINT NOT NULL,
    -- JSON: action, resource, resource_attributes, purpose asked, roles, risk tier and
    -- score, device trust, ip, elevations held, determining policy ids.
    facts          TEXT NOT NULL,
    -- Identical decisions (same session, answer and facts) written in one batch share a
    -- row; `at` is the first of them.
    count          BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX decision_records_at ON decision_records(at);

-- Attempts in flight: a wrong-password or wrong-step-up row is written as a reservation
-- before the answer is checked (under a per-account lock), then confirmed (reservation
-- cleared) or deleted, so that concurrent attempts cannot overrun a budget.
ALTER TABLE login_failures ADD COLUMN reservation TEXT;
CREATE INDEX login_failures_reservation ON login_failures(reservation);
ALTER TABLE stepup_failures ADD COLUMN reservation TEXT;
CREATE INDEX stepup_failures_reservation ON stepup_failures(reservation);
