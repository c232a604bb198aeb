-- Approvals: a command a rule says must be approved by colleagues waits here until enough
-- distinct approvers (never the requester) say yes, someone says no, or it expires. Bound to
-- the canonical command (and its SHA-256) and the place it was asked. Votes have their own
-- table so one person is counted once (primary key), whatever instance they press on. Runs
-- unchanged on SQLite and PostgreSQL: times are Unix milliseconds, ids are text.

CREATE TABLE approvals (
    id           VARCHAR(64)  PRIMARY KEY,
    code         VARCHAR(16)  NOT NULL,
    requester    VARCHAR(200) NOT NULL,
    place        VARCHAR(400) NOT NULL,
    command      TEXT         NOT NULL,
    command_hash VARCHAR(64)  NOT NULL,
    -- the command as shown to people: secret parameter values masked
    shown        TEXT         NOT NULL,
    -- the rule's approvers as configured (identities, role:NAME), one per line, for display
    approvers    TEXT         NOT NULL,
    needed       BIGINT       NOT NULL,
    tier         VARCHAR(16)  NOT NULL,
    intent       VARCHAR(100),
    confidence   DOUBLE PRECISION NOT NULL,
    -- pending, approved, rejected, expired, refused (approved, then refused by today's policy)
    state        VARCHAR(16)  NOT NULL,
    reason       TEXT,
    -- the headline of what running it answered
    outcome      TEXT,
    created_at   BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL,
    decided_at   BIGINT,
    decided_by   VARCHAR(200)
);
CREATE INDEX approvals_by_code ON approvals (code);
CREATE INDEX approvals_by_state ON approvals (state, expires_at);
CREATE INDEX approvals_by_requester ON approvals (requester, created_at);

CREATE TABLE approval_votes (
    approval_id VARCHAR(64)  NOT NULL,
    approver    VARCHAR(200) NOT NULL,
    at          BIGINT       NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

-- Who approved what the row ran (one identity per line), next to who asked (`who`).
ALTER TABLE audit ADD COLUMN approved_by TEXT;
