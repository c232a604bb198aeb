-- Background jobs (test runs) and the ticks of manual release-checklist items. Runs unchanged
-- on SQLite and PostgreSQL: times are Unix milliseconds, the job id is the number people type
-- (`test status 12`), taken as MAX + 1 with a retry when two instances collide.

CREATE TABLE jobs (
    id                  BIGINT       PRIMARY KEY,
    kind                VARCHAR(32)  NOT NULL,
    name                VARCHAR(100) NOT NULL,
    env                 VARCHAR(100) NOT NULL,
    -- queued, running, passed, failed, timed_out, cancelled, interrupted
    state               VARCHAR(16)  NOT NULL,
    requester           VARCHAR(200) NOT NULL,
    place               VARCHAR(400) NOT NULL,
    -- host:pid:instance of the lazyops process that runs it
    owner               VARCHAR(200) NOT NULL,
    created_at          BIGINT       NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    heartbeat_at        BIGINT       NOT NULL,
    cancel_requested_by VARCHAR(200),
    exit_code           BIGINT,
    detail              TEXT,
    output              TEXT,
    output_bytes        BIGINT
);
CREATE INDEX jobs_by_state ON jobs (kind, name, state);

CREATE TABLE checklist_ticks (
    service    VARCHAR(100) NOT NULL,
    env        VARCHAR(100) NOT NULL,
    item       VARCHAR(200) NOT NULL,
    ticked_by  VARCHAR(200) NOT NULL,
    ticked_at  BIGINT       NOT NULL,
    PRIMARY KEY (service, env, item)
);
