-- name: failed-payments-since
-- description: Failed payments created on or after a date, oldest first
-- database: users
-- param: since date  "the first day to include (YYYY-MM-DD)"
-- max_rows: 200
-- example: show failed payments since 2026-11-20
-- example: which payments failed since {since}?
-- example: list all failed payments after {since}
-- example: any failed charges since 2026-10-01?
-- example: failed paymnets since {since} pls
-- example: how many payments have failed since 2026-12-01
-- example: could you pull the payment failures from {since} onwards
-- example: declined payments since {since} on staging
-- example: failed charges in the last 2 days
-- example: which payments failed during the past 5 days?
-- example: payment failures over the last week
-- example: any bounced or declined charges since {since}
-- example: payments that errored out this week
-- example: were there payment failures overnight
SELECT id, order_id, user_id, amount_cents, currency, failure_reason, created_at
FROM payments
WHERE status = 'failed'
  AND created_at >= :since
ORDER BY created_at, id
