-- name: user-by-email
-- description: Look up one user by email address (case-insensitive)
-- database: users
-- param: email text  "the user's email address"
-- max_rows: 50
-- example: look up the user with email alice@example.com
-- example: who owns {email}
-- example: find user by email {email}
-- example: which account has the email bob@example.org?
-- example: pls look up {email} in the users table
-- example: can you find the user for carol.smith@example.com
-- example: lookup emial {email}
-- example: is {email} a registered user?
-- example: user with e-mail dave+test@example.net on staging
-- example: is {email} a customer of ours?
-- example: do we have an account for {email}
SELECT id, email, name, status, created_at
FROM users
WHERE LOWER(email) = LOWER(:email)
ORDER BY id
