-- Answers being checked against a challenge right now. Each holds one of the
-- challenge's attempts from before its code is checked until it is settled (counted
-- as a failure, or completing the challenge, or given back unchecked), so no more codes
-- are checked than the challenge has attempts left, however many arrive at once.
ALTER TABLE challenges ADD COLUMN checking INTEGER NOT NULL DEFAULT 0;

-- A step-up for a session and purpose that already has a live pending challenge gets
-- that challenge back instead of a new one.
CREATE INDEX challenges_session_purpose ON challenges(session_id, purpose);

-- Pruning: challenges and elevations after they can no longer matter, failures once
-- outside every budget window.
CREATE INDEX challenges_expires_at ON challenges(expires_at);
CREATE INDEX elevations_expires_at ON elevations(expires_at);
CREATE INDEX stepup_failures_at ON stepup_failures(at);
