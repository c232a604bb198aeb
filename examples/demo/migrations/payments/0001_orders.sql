-- payments owns orders and payments. Columns are listed in another order than the live demo
-- database has them: column order is not a difference.
CREATE TABLE orders (
    id          BIGINT PRIMARY KEY,
    status      VARCHAR(32) NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    currency    VARCHAR(3) NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
