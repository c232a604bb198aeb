-- Every recorded delivery first deletes the expired ones (`Store::first_delivery`): without an
-- index that DELETE read the whole table, so each Slack event or GitHub comment cost more than
-- the one before (found by bench/soak.sh, issue 21).
CREATE INDEX events_by_expiry ON events (expires_at);
