-- name: user-by-id
-- description: Look up one user by numeric id
-- database: users
-- param: user_id int  "the user's numeric id"
-- max_rows: 50
-- example: look up user 42
-- example: who is user {user_id}
-- example: can you pull up user id 1337 please
-- example: show me the user record for id {user_id}
-- example: lookup usr 42
-- example: whats the status of user {user_id}, is it suspended?
-- example: pls fetch user 815 from the users db
-- example: find the account with user id {user_id}
-- example: could you check who user 2001 is
-- example: get user {user_id} on staging
-- example: show me user 15 in dev
-- example: user 42 on prod please
SELECT id, email, name, status, created_at
FROM users
WHERE id = :user_id
ORDER BY id
