-- A challenge passed on the hosted step-up page yields its elevation token, `su` access
-- token or login session later, to the caller that collects it with GET
-- /v1/stepup/challenges/{id}. `collected_at` is set once, by the verify answer that
-- handed them out or by that first collection: the UPDATE's WHERE on it is the lock.
ALTER TABLE challenges ADD COLUMN collected_at BIGINT;
CREATE INDEX elevations_challenge_id ON elevations(challenge_id);
-- The client IP the challenge was opened for: an elevation passed on the hosted page
-- (perhaps on a phone, on another network) is bound to the network that asked.
ALTER TABLE challenges ADD COLUMN ip TEXT;
