-- Not applied to the demo databases yet: `db schema check users` shows the drift.
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMP;
CREATE INDEX users_by_status ON users (status);
