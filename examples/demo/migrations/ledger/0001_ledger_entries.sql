CREATE TABLE ledger_entries (
    id           BIGINT PRIMARY KEY,
    payment_id   VARCHAR(32) NOT NULL REFERENCES payments(id),
    account      VARCHAR(64) NOT NULL,
    direction    VARCHAR(6) NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
