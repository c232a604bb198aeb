-- The bot's own state. Written to run unchanged on SQLite and PostgreSQL: times are Unix
-- milliseconds in BIGINT columns, ids are text.

CREATE TABLE confirmations (
    id          VARCHAR(64)  PRIMARY KEY,
    code        VARCHAR(16)  NOT NULL,
    requester   VARCHAR(200) NOT NULL,
    place       VARCHAR(400) NOT NULL,
    command     TEXT         NOT NULL,
    tier        VARCHAR(16)  NOT NULL,
    intent      VARCHAR(100),
    confidence  DOUBLE PRECISION NOT NULL,
    state       VARCHAR(16)  NOT NULL,
    created_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL,
    decided_at  BIGINT,
    decided_by  VARCHAR(200)
);
CREATE INDEX confirmations_by_code ON confirmations (requester, code);

CREATE TABLE audit (
    id              VARCHAR(64)  PRIMARY KEY,
    at              BIGINT       NOT NULL,
    who             VARCHAR(200) NOT NULL,
    transport       VARCHAR(16)  NOT NULL,
    place           VARCHAR(400) NOT NULL,
    text            TEXT         NOT NULL,
    tier            VARCHAR(16),
    intent          VARCHAR(100),
    confidence      DOUBLE PRECISION,
    command         TEXT,
    decision        VARCHAR(16)  NOT NULL,
    confirmation_id VARCHAR(64),
    outcome         VARCHAR(16),
    duration_ms     BIGINT,
    error           TEXT
);
CREATE INDEX audit_by_time ON audit (at);

CREATE TABLE events (
    source     VARCHAR(32)  NOT NULL,
    event_id   VARCHAR(200) NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (source, event_id)
);

CREATE TABLE conversations (
    place      VARCHAR(400) NOT NULL,
    who        VARCHAR(200) NOT NULL,
    state      TEXT         NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (place, who)
);

CREATE TABLE todos (
    team       VARCHAR(100) NOT NULL,
    num        BIGINT       NOT NULL,
    text       TEXT         NOT NULL,
    added_by   VARCHAR(200) NOT NULL,
    added_at   BIGINT       NOT NULL,
    assignee   VARCHAR(200),
    done_by    VARCHAR(200),
    done_at    BIGINT,
    PRIMARY KEY (team, num)
);
