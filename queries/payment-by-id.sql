-- name: payment-by-id
-- description: One payment by its id (like pay_8f3k2), with its status and failure reason
-- database: users
-- param: payment_id text  "the payment id, like pay_8f3k2"
-- max_rows: 10
-- example: look up payment pay_8f3k2
-- example: what happened to payment {payment_id}?
-- example: show me payment id {payment_id}
-- example: status of pay_x91mq please
-- example: can u check payment pay_2hd81 for me
-- example: why was {payment_id} declined
-- example: find the paymnet {payment_id}
-- example: details of the payment pay_7aa03
-- example: did {payment_id} go through?
-- example: was payment {payment_id} successful?
-- example: did {payment_id} go through
-- example: status of payment pay_77abc please
-- example: find a payment for me
-- example: check on a payment
SELECT id, order_id, user_id, amount_cents, currency, status, failure_reason, created_at
FROM payments
WHERE id = :payment_id
ORDER BY id
