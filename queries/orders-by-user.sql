-- name: orders-by-user
-- description: All orders placed by one user, newest first
-- database: users
-- param: user_id int  "the numeric id of the user who placed the orders"
-- max_rows: 100
-- example: show orders for user 42
-- example: what did user {user_id} order?
-- example: list all orders of user id 7
-- example: could you pull the order history for user {user_id}
-- example: orders by user 1337 pls
-- example: has user {user_id} placed any orders
-- example: show me user 815's ordres
-- example: get the orders placed by customer {user_id}
-- example: recent purchases for user 99 on staging
-- example: what did user 12 buy
-- example: purchases of user {user_id}
-- example: has user {user_id} ordered anything?
SELECT id, user_id, total_cents, currency, status, created_at
FROM orders
WHERE user_id = :user_id
ORDER BY created_at DESC, id DESC
