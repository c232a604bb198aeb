CREATE TABLE payments (
    id             VARCHAR(32) PRIMARY KEY,
    order_id       BIGINT NOT NULL REFERENCES orders(id),
    user_id        BIGINT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    currency       VARCHAR(3) NOT NULL,
    status         VARCHAR(32) NOT NULL,
    failure_reason VARCHAR(255),
    created_at     TIMESTAMP NOT NULL
);
