-- name: recent-signups
-- description: Users who signed up in the last N days, newest first
-- database: users
-- param: days int default=7  "how many days back to look"
-- max_rows: 200
-- example: show recent signups
-- example: who signed up in the last {days} days?
-- example: new users in the last 30 days
-- example: how many signups this week
-- example: list new registrations from the past {days} days
-- example: recent sign ups pls
-- example: any new accounts created in the last 14 days?
-- example: latest user signups
-- example: who registered recently
-- example: new signups on staging
-- example: how many new users joined this month
-- example: accounts created over the past 2 weeks
-- example: any new users recently?
-- example: how many people joined lately
-- example: which users joined this month
-- example: which users joined today
-- example: new joiners since monday?
-- example: how many people registered lately
SELECT id, email, name, status, created_at
FROM users
WHERE created_at >= CURRENT_TIMESTAMP - :days * INTERVAL '1' DAY
ORDER BY created_at DESC, id DESC
-- dialect: postgres
SELECT id, email, name, status, created_at
FROM users
WHERE created_at >= now() - make_interval(days => CAST(:days AS integer))
ORDER BY created_at DESC, id DESC
-- dialect: mysql
SELECT id, email, name, status, created_at
FROM users
WHERE created_at >= NOW() - INTERVAL :days DAY
ORDER BY created_at DESC, id DESC
-- dialect: sqlite
SELECT id, email, name, status, created_at
FROM users
WHERE created_at >= datetime('now', '-' || :days || ' days')
ORDER BY created_at DESC, id DESC
