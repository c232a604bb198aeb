//! `db query` end to end through the binary: the demo queries give the same rows on a real
//! SQLite file, PostgreSQL and MariaDB, and every bad input of issue 5 is refused or harmless,
//! with the database checksummed before and after.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lazyops::demo::{self, Data, DemoDb};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::support::{Run, Ws, mysql_url, postgres_url, unique_name};

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

/// A database loaded with the demo rows, known to the test, dropped at the end.
pub(crate) struct Db {
    engine: Engine,
    pub(crate) url: String,
    /// The server's own database, for CREATE/DROP DATABASE.
    admin: Option<String>,
    name: String,
    data: Data,
    _dir: Option<tempfile::TempDir>,
}

const SEED: u64 = 42;
const USERS: usize = 60;

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("users.db");
        let data = demo::generate(OffsetDateTime::now_utc(), SEED, USERS);
        block_on(async {
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.expect("open sqlite");
            demo::seed(&DemoDb::Sqlite(pool.clone()), &data).await.expect("seed sqlite");
            pool.close().await;
        });
        let url = format!("sqlite://{}", path.display());
        Db { engine: Engine::Sqlite, url, admin: None, name: String::new(), data, _dir: Some(dir) }
    }

    fn postgres() -> Option<Db> {
        let admin = postgres_url()?;
        let name = unique_name("lazyops_t");
        let url = with_database(&admin, &name);
        let data = demo::generate(OffsetDateTime::now_utc(), SEED, USERS);
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let pool = sqlx::PgPool::connect(&url).await.expect("connect test database");
            demo::seed(&DemoDb::Postgres(pool.clone()), &data).await.expect("seed postgres");
            pool.close().await;
        });
        Some(Db { engine: Engine::Postgres, url, admin: Some(admin), name, data, _dir: None })
    }

    fn mysql() -> Option<Db> {
        let admin = mysql_url()?;
        let name = unique_name("lazyops_t");
        let url = with_database(&admin, &name);
        let data = demo::generate(OffsetDateTime::now_utc(), SEED, USERS);
        block_on(async {
            let mut conn = sqlx::MySqlConnection::connect(&admin).await.expect("connect mariadb");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let pool = sqlx::MySqlPool::connect(&url).await.expect("connect test database");
            demo::seed(&DemoDb::Mysql(pool.clone()), &data).await.expect("seed mariadb");
            pool.close().await;
        });
        Some(Db { engine: Engine::Mysql, url, admin: Some(admin), name, data, _dir: None })
    }

    pub(crate) fn of(engine: Engine) -> Option<Db> {
        match engine {
            Engine::Sqlite => Some(Db::sqlite()),
            Engine::Postgres => Db::postgres(),
            Engine::Mysql => Db::mysql(),
        }
    }

    /// Everything the database holds, hashed: tables, and every row of each.
    pub(crate) fn checksum(&self) -> String {
        match self.engine {
            Engine::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                hex::encode(Sha256::digest(std::fs::read(path).expect("read sqlite file")))
            }
            Engine::Postgres => block_on(async {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("connect");
                let (tables,): (Option<String>,) = sqlx::query_as(
                    "SELECT string_agg(table_name::text, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_one(&mut conn)
                .await
                .expect("list tables");
                let mut sums = vec![tables.unwrap_or_default()];
                for t in ["users", "orders", "payments", "ledger_entries"] {
                    let sql = format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t");
                    let (sum,): (Option<String>,) =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(&mut conn).await.expect("table checksum");
                    sums.push(sum.unwrap_or_default());
                }
                sums.join(" ")
            }),
            Engine::Mysql => block_on(async {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.expect("connect");
                let tables: Vec<(String,)> =
                    sqlx::query_as("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name")
                        .fetch_all(&mut conn)
                        .await
                        .expect("list tables");
                let sums: Vec<(String, Option<i64>)> =
                    sqlx::query_as("CHECKSUM TABLE users, orders, payments, ledger_entries EXTENDED")
                        .fetch_all(&mut conn)
                        .await
                        .expect("checksum tables");
                format!("{tables:?} {sums:?}")
            }),
        }
    }

    /// A demo workspace whose `users` database in prod is this one.
    pub(crate) fn workspace(&self) -> Ws {
        let ws = Ws::new();
        ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", &format!("prod = \"{}\"", self.url));
        ws
    }

    /// A demo workspace whose `users` database is this one in every environment, so its
    /// queries are checked for this engine alone.
    fn workspace_everywhere(&self) -> Ws {
        let ws = self.workspace();
        for env in ["staging", "dev"] {
            ws.edit(
                "lazyops.toml",
                &format!("{env} = \"sqlite://demo/users-{env}.db\""),
                &format!("{env} = \"{}\"", self.url),
            );
        }
        ws
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some(admin) = self.admin.clone() else { return };
        let (engine, name) = (self.engine, self.name.clone());
        block_on(async move {
            let sql = match engine {
                Engine::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => format!("DROP DATABASE IF EXISTS {name}"),
            };
            let dropped = match engine {
                Engine::Postgres => match sqlx::PgConnection::connect(&admin).await {
                    Ok(mut c) => sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.map(drop),
                    Err(e) => Err(e),
                },
                _ => match sqlx::MySqlConnection::connect(&admin).await {
                    Ok(mut c) => sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.map(drop),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = dropped {
                eprintln!("could not drop test database {name}: {e}");
            }
        });
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("server URL has a database path");
    format!("{base}/{name}")
}

fn ts(t: &PrimitiveDateTime) -> Value {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    Value::from(t.format(fmt).expect("format timestamp"))
}

/// `lazyops run --json <text>` as alice; the reply as JSON.
fn query(ws: &Ws, text: &str) -> (Run, Value) {
    let r = ws.run("alice", &["run", "--json", text]);
    let v = if r.stdout.trim_start().starts_with('{') { r.json() } else { Value::Null };
    (r, v)
}

fn table(v: &Value) -> (Vec<String>, Vec<Vec<Value>>) {
    let t = v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "table")).unwrap_or(&Value::Null);
    let columns = t["columns"].as_array().map(|c| c.iter().map(|c| c.as_str().unwrap_or("").to_string()).collect());
    let rows = t["rows"].as_array().map(|r| r.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect());
    (columns.unwrap_or_default(), rows.unwrap_or_default())
}

fn rows_of(ws: &Ws, text: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let (r, v) = query(ws, text);
    assert_eq!(r.code, 0, "{text}: {}\n{}", r.stdout, r.stderr);
    assert_eq!(v["status"], "done");
    table(&v)
}

/// Nothing ran: the text was refused, answered with a question, or is waiting for the user
/// to confirm a command that does not carry `bad`. (Which of these depends on the
/// understanding layer; that no query ran does not.)
fn assert_nothing_ran(text: &str, r: &Run, v: &Value, bad: &str) {
    assert!(matches!(r.code, 2 | 3), "{text}: exit {}: {}{}", r.code, r.stdout, r.stderr);
    assert!(["error", "question", "confirm"].contains(&v["status"].as_str().unwrap_or("")), "{text}: {}", r.stdout);
    assert!(table(v).0.is_empty(), "{text} returned a table: {}", r.stdout);
    if let Some(command) = v["confirm"]["command"].as_str() {
        assert!(!command.contains(bad), "{text} would run `{command}`");
    }
}

// ---------------------------------------------------------------------------------------------
// The demo queries, on all three engines.

fn demo_queries_give_the_expected_rows(engine: Engine) {
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    let d = &db.data;
    let user_cols = ["id", "email", "name", "status", "created_at"];
    let user = |u: &demo::User| vec![json!(u.id), json!(u.email), json!(u.name), json!(u.status), ts(&u.created_at)];

    let (cols, rows) = rows_of(&ws, "db query user-by-id 42");
    assert_eq!(cols, user_cols);
    assert_eq!(rows, vec![user(&d.users[41])]);

    let (r, v) = query(&ws, "db query user-by-id 42");
    assert_eq!(v["command"], "db query user-by-id user_id=42", "{}", r.stdout);
    let headline = v["headline"].as_str().unwrap_or("");
    assert!(headline.starts_with("1 row from users (prod) in "), "{headline}");

    let (_, rows) = rows_of(&ws, "db query user-by-email ALICE@example.com");
    assert_eq!(rows, vec![user(&d.users[0])]);

    let (cols, rows) = rows_of(&ws, "db query orders-by-user 7");
    assert_eq!(cols, ["id", "user_id", "total_cents", "currency", "status", "created_at"]);
    let mut orders: Vec<&demo::Order> = d.orders.iter().filter(|o| o.user_id == 7).collect();
    orders.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
    let expected: Vec<Vec<Value>> = orders
        .iter()
        .map(|o| {
            vec![
                json!(o.id),
                json!(o.user_id),
                json!(o.total_cents),
                json!(o.currency),
                json!(o.status),
                ts(&o.created_at),
            ]
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(rows, expected);

    let payment = |p: &demo::Payment| {
        vec![
            json!(p.id),
            json!(p.order_id),
            json!(p.user_id),
            json!(p.amount_cents),
            json!(p.currency),
            json!(p.status),
            json!(p.failure_reason),
            ts(&p.created_at),
        ]
    };
    let (_, rows) = rows_of(&ws, "db query payment-by-id pay_8f3k2");
    let first = d.payments.iter().find(|p| p.id == "pay_8f3k2").expect("the demo's first payment");
    assert_eq!(rows, vec![payment(first)]);

    let since = (OffsetDateTime::now_utc() - time::Duration::days(60)).date();
    let since_text = since.format(time::macros::format_description!("[year]-[month]-[day]")).expect("date");
    let (cols, rows) = rows_of(&ws, &format!("db query failed-payments-since {since_text}"));
    assert_eq!(cols, ["id", "order_id", "user_id", "amount_cents", "currency", "failure_reason", "created_at"]);
    let mut failed: Vec<&demo::Payment> =
        d.payments.iter().filter(|p| p.status == "failed" && p.created_at.date() >= since).collect();
    failed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let expected: Vec<Vec<Value>> = failed
        .iter()
        .map(|p| {
            vec![
                json!(p.id),
                json!(p.order_id),
                json!(p.user_id),
                json!(p.amount_cents),
                json!(p.currency),
                json!(p.failure_reason),
                ts(&p.created_at),
            ]
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(rows, expected);

    let (cols, rows) = rows_of(&ws, "db query recent-signups");
    assert_eq!(cols, user_cols);
    let week_ago = OffsetDateTime::now_utc() - time::Duration::days(7);
    let week_ago = PrimitiveDateTime::new(week_ago.date(), week_ago.time());
    let mut recent: Vec<&demo::User> = d.users.iter().filter(|u| u.created_at >= week_ago).collect();
    recent.sort_by_key(|u| std::cmp::Reverse((u.created_at, u.id)));
    assert!(!recent.is_empty());
    assert_eq!(rows, recent.into_iter().map(user).collect::<Vec<_>>());

    let (cols, rows) = rows_of(&ws, "db query user-by-id 999999");
    assert_eq!(cols, user_cols, "an empty result still has its columns");
    assert!(rows.is_empty());
}

#[test]
fn demo_queries_give_the_expected_rows_on_sqlite() {
    demo_queries_give_the_expected_rows(Engine::Sqlite);
}

#[test]
fn demo_queries_give_the_expected_rows_on_postgres() {
    demo_queries_give_the_expected_rows(Engine::Postgres);
}

#[test]
fn demo_queries_give_the_expected_rows_on_mariadb() {
    demo_queries_give_the_expected_rows(Engine::Mysql);
}

// ---------------------------------------------------------------------------------------------
// SQL injection in every parameter type: refused as a bad value, or bound and harmless.

const PROBE: &str = "-- name: typed-probe
-- description: echoes one value of every parameter type
-- database: users
-- param: i int
-- param: t text
-- param: d date
-- param: ts timestamp
-- param: b bool
-- param: n decimal
-- param: u uuid
SELECT :i AS i, :t AS t, :d AS d, :ts AS ts, :b AS b, :n AS n, :u AS u,
       (SELECT count(*) FROM users WHERE email = :t) AS matches
";

const GOOD: [&str; 7] = [
    "i=7",
    "t=x",
    "d=2026-11-25",
    "ts=2026-11-25T14:30:00Z",
    "b=true",
    "n=12.50",
    "u=67e55044-10b1-426f-9247-bb680e5fe0c8",
];

fn probe(overrides: &[(&str, &str)]) -> String {
    let mut text = String::from("db query typed-probe");
    for good in GOOD {
        let name = good.split('=').next().unwrap_or_default();
        match overrides.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => text.push_str(&format!(" {name}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))),
            None => text.push_str(&format!(" {good}")),
        }
    }
    text
}

const TEXT_ATTACKS: [&str; 8] = [
    "1 OR 1=1",
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "\u{2019} OR \u{2019}1\u{2019}=\u{2019}1",
    "\u{ff07}; DELETE FROM users; --",
    "x\"; DROP TABLE users; --",
    "1); DELETE FROM payments; --",
    "\\'; SELECT pg_sleep(10); --",
];

/// None of these is a valid value of its parameter's type.
const TYPED_ATTACKS: [(&str, &str); 14] = [
    ("i", "1 OR 1=1"),
    ("i", "42; DROP TABLE users"),
    ("i", "'; DROP TABLE users; --"),
    ("d", "2026-01-01' OR '1'='1"),
    ("d", "\u{2019} OR \u{2019}1\u{2019}=\u{2019}1"),
    ("ts", "2026-11-25T14:30:00Z'; DELETE FROM users; --"),
    ("ts", "1 OR 1=1"),
    ("b", "true; DROP TABLE users"),
    ("b", "1 OR 1=1"),
    ("n", "12.5 UNION SELECT 1"),
    ("n", "1e5"),
    ("n", "'; DROP TABLE users; --"),
    ("u", "67e55044-10b1-426f-9247-bb680e5fe0c8' OR '1'='1"),
    ("u", "\u{ff07}; DELETE FROM users; --"),
];

fn sql_injection_changes_nothing(engine: Engine) {
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    ws.write("queries/typed-probe.sql", PROBE);
    let before = db.checksum();

    // Text is bound: each attack comes back as the very value it was, and matches no row.
    for attack in TEXT_ATTACKS {
        let (cols, rows) = rows_of(&ws, &probe(&[("t", attack)]));
        assert_eq!(cols, ["i", "t", "d", "ts", "b", "n", "u", "matches"]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], json!(attack), "text round trip");
        assert_eq!(rows[0][7], json!(0));
    }
    for text in [
        "db query user-by-email \"'; DROP TABLE users; --\"",
        "db query user-by-email \"alice@example.com' OR '1'='1\"",
        "db query payment-by-id \"pay_8f3k2'; DELETE FROM payments; --\"",
    ] {
        let (_, rows) = rows_of(&ws, text);
        assert!(rows.is_empty(), "{text} found rows: {rows:?}");
    }
    // The other types refuse them before anything connects, the same on every engine.
    if engine == Engine::Sqlite {
        for (name, attack) in TYPED_ATTACKS {
            let text = probe(&[(name, attack)]);
            let (r, v) = query(&ws, &text);
            assert_nothing_ran(&text, &r, &v, attack);
        }
    }

    // Every type round-trips as a bound value.
    let (_, rows) = rows_of(&ws, &probe(&[]));
    let row = &rows[0];
    eprintln!("{engine:?} typed probe: {row:?}");
    assert_eq!(row[0], json!(7));
    assert_eq!(row[1], json!("x"));
    assert_eq!(row[6], json!("67e55044-10b1-426f-9247-bb680e5fe0c8"));
    let n = row[5].to_string();
    assert!(n.trim_matches('"').starts_with("12.5"), "decimal came back as {n}");

    // NUL bytes cannot even be typed on the command line; through stdin they are refused.
    let r = ws.run_stdin("alice", &["run", "--json", "-"], b"db query user-by-email \"alice@example.com\0' OR 1=1\"");
    assert_ne!(r.code, 0, "a NUL byte was accepted: {}", r.stdout);
    let r = ws.run_stdin("alice", &["run", "--json", "-"], probe(&[("t", "a\0b")]).as_bytes());
    assert_ne!(r.code, 0, "a NUL byte was accepted: {}", r.stdout);

    assert_eq!(db.checksum(), before, "the database changed");
}

#[test]
fn sql_injection_in_every_param_type_changes_nothing_on_sqlite() {
    sql_injection_changes_nothing(Engine::Sqlite);
}

#[test]
fn sql_injection_in_every_param_type_changes_nothing_on_postgres() {
    sql_injection_changes_nothing(Engine::Postgres);
}

#[test]
fn sql_injection_in_every_param_type_changes_nothing_on_mariadb() {
    sql_injection_changes_nothing(Engine::Mysql);
}

// ---------------------------------------------------------------------------------------------
// Arguments are checked before anything connects.

#[test]
fn wrong_types_missing_and_unknown_arguments_are_refused_before_connecting() {
    let ws = Ws::new();
    // Nothing listens there: reaching the database would fail differently, and slowly.
    ws.edit(
        "lazyops.toml",
        "prod = \"sqlite://demo/users.db\"",
        "prod = \"postgres://lazyops:hunter2secret@127.0.0.1:1/users\"",
    );
    // (text, the bad part that must not reach a command)
    let cases = [
        ("db query user-by-id abc", "abc"),
        ("db query user-by-id 4.2", "4.2"),
        ("db query user-by-id 99999999999999999999", "99999999999999999999"),
        ("db query failed-payments-since 2026-13-45", "2026-13-45"),
        ("db query failed-payments-since yesterday", "yesterday"),
        ("db query user-by-id", "user-by-id user_id"),
        ("db query failed-payments-since", "since="),
        ("db query user-by-id 42 colour=blue", "colour"),
        ("db query user-by-id 42 43", "43"),
        ("db query user-by-id user_id=1 user_id=2", "user_id=2"),
        ("db query no-such-query", "no-such-query"),
    ];
    for (text, expected) in cases {
        let started = Instant::now();
        let (r, v) = query(&ws, text);
        assert_nothing_ran(text, &r, &v, expected);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains("connect"), "{text} tried to connect: {all}");
        assert!(!all.contains("hunter2secret"), "{text} leaked the password: {all}");
        assert!(started.elapsed() < Duration::from_secs(2), "{text} waited for a connection");
    }
}

// ---------------------------------------------------------------------------------------------
// Query files that write are refused at load, with file and line.

#[test]
fn query_files_that_write_are_refused_at_load_with_file_and_line() {
    let ws = Ws::new();
    // Only `env:` URLs: the files are checked in all three dialects.
    ws.edit(
        "lazyops.toml",
        "[databases.users]",
        "[databases.all]\nprod = \"env:LAZYOPS_TEST_NEVER_SET\"\n\n[databases.users]",
    );
    let writes = [
        ("delete", "DELETE FROM users"),
        ("update", "UPDATE users SET email = 'x'"),
        ("insert", "INSERT INTO users (id) VALUES (1)"),
        ("drop", "DROP TABLE users"),
        ("truncate", "TRUNCATE TABLE users"),
        ("alter", "ALTER TABLE users ADD COLUMN x INT"),
        ("grant", "GRANT ALL ON users TO PUBLIC"),
        ("cte", "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone"),
        ("into", "SELECT * INTO backup FROM users"),
        ("call", "CALL do_things()"),
        ("two", "SELECT 1; DELETE FROM users"),
        ("hidden", "SELECT 1 /* ; */; -- harmless\nDROP TABLE users"),
        ("sleep", "SELECT pg_sleep(10)"),
        ("lock", "SELECT * FROM users FOR UPDATE"),
    ];
    for (name, sql) in writes {
        ws.write(
            &format!("queries/bad-{name}.sql"),
            &format!("-- name: bad-{name}\n-- description: writes\n-- database: all\n-- max_rows: 5\n{sql}\n"),
        );
    }
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    for (name, _) in writes {
        let at = format!("bad-{name}.sql:5: ");
        assert!(r.stdout.lines().any(|l| l.contains(&at)), "bad-{name}.sql not refused at line 5:\n{}", r.stdout);
    }
    for good in ["user-by-id.sql", "recent-signups.sql"] {
        assert!(!r.stdout.contains(good), "{good} was refused:\n{}", r.stdout);
    }
    // Nothing runs on a workspace that does not load.
    let r = ws.run("alice", &["run", "db query user-by-id 42"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad-delete.sql:5"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Limits: the statement timeout and the row cap.

/// Slow everywhere: a long recursive count; MariaDB's recursion is capped, so a cross join.
const SLOW: &str = "-- name: slow
-- description: counts for a very long time
-- database: users
-- timeout_ms: 400
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000000) SELECT count(*) AS c FROM n
-- dialect: mysql
SELECT sum(a.seq * b.seq) AS c FROM seq_1_to_1000000 a, seq_1_to_1000000 b
";

fn a_query_past_its_timeout_is_stopped(engine: Engine) {
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    ws.write("queries/slow.sql", SLOW);
    let before = db.checksum();
    let started = Instant::now();
    let (r, v) = query(&ws, "db query slow");
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(v["status"], "failed");
    let headline = v["headline"].as_str().unwrap_or("");
    assert!(headline.contains("query `slow` was stopped at its 400 ms time limit"), "{headline}");
    eprintln!("{engine:?}: slow query stopped after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(db.checksum(), before);
}

#[test]
fn a_query_past_its_timeout_is_stopped_on_sqlite() {
    a_query_past_its_timeout_is_stopped(Engine::Sqlite);
}

#[test]
fn a_query_past_its_timeout_is_stopped_on_postgres() {
    a_query_past_its_timeout_is_stopped(Engine::Postgres);
}

#[test]
fn a_query_past_its_timeout_is_stopped_on_mariadb() {
    a_query_past_its_timeout_is_stopped(Engine::Mysql);
}

const BIG: &str = "-- name: ten-million
-- description: ten million rows
-- database: users
-- max_rows: 100
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) SELECT i FROM n
-- dialect: mysql
SELECT seq AS i FROM seq_1_to_10000000
";

fn ten_million_rows_are_capped_quickly(engine: Engine) {
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    ws.write("queries/ten-million.sql", BIG);
    let started = Instant::now();
    let (r, v) = query(&ws, "db query ten-million");
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let (cols, rows) = table(&v);
    assert_eq!(cols, ["i"]);
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[0], vec![json!(1)]);
    assert_eq!(rows[99], vec![json!(100)]);
    let headline = v["headline"].as_str().unwrap_or("");
    assert!(headline.starts_with("first 100 rows from users (prod) in"), "{headline}");
    let note = v["blocks"][0]["note"].as_str().unwrap_or("");
    assert_eq!(note, "first 100 of more rows: the query stops at max_rows = 100");
    eprintln!("{engine:?}: ten million rows capped after {took:?}: {headline}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn ten_million_rows_are_capped_quickly_on_sqlite() {
    ten_million_rows_are_capped_quickly(Engine::Sqlite);
}

#[test]
fn ten_million_rows_are_capped_quickly_on_postgres() {
    ten_million_rows_are_capped_quickly(Engine::Postgres);
}

#[test]
fn ten_million_rows_are_capped_quickly_on_mariadb() {
    ten_million_rows_are_capped_quickly(Engine::Mysql);
}

#[test]
fn a_small_overflow_is_counted_exactly() {
    let db = Db::sqlite();
    let ws = db.workspace();
    ws.edit("queries/recent-signups.sql", "-- max_rows: 200", "-- max_rows: 2");
    let (r, v) = query(&ws, "db query recent-signups");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let week_ago = OffsetDateTime::now_utc() - time::Duration::days(7);
    let week_ago = PrimitiveDateTime::new(week_ago.date(), week_ago.time());
    let total = db.data.users.iter().filter(|u| u.created_at >= week_ago).count();
    assert!(total > 2);
    assert_eq!(v["blocks"][0]["note"], format!("first 2 of {total} rows: the query stops at max_rows = 2"));
}

// ---------------------------------------------------------------------------------------------
// Databases that are down, refuse the login, or whose URL is an unset variable.

fn failure(ws: &Ws) -> String {
    let (r, v) = query(ws, "db query user-by-id 42");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(v["status"], "failed");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("hunter2secret"), "the password leaked: {all}");
    v["headline"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_database_that_is_down_gives_a_clear_error_without_secrets() {
    for url in ["postgres://lazyops:hunter2secret@127.0.0.1:1/users", "mysql://lazyops:hunter2secret@127.0.0.1:1/users"]
    {
        let ws = Ws::new();
        ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", &format!("prod = \"{url}\""));
        let headline = failure(&ws);
        assert!(headline.starts_with("cannot connect to database `users` (prod): "), "{headline}");
        assert!(headline.to_lowercase().contains("refused"), "{headline}");
    }
    let ws = Ws::new();
    ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", "prod = \"sqlite://demo/gone.db\"");
    let headline = failure(&ws);
    assert!(headline.starts_with("cannot connect to database `users` (prod): "), "{headline}");
    assert!(!ws.path().join("demo/gone.db").exists(), "a missing SQLite file is never created");
}

#[test]
fn a_refused_login_gives_a_clear_error_without_secrets() {
    let mut urls = Vec::new();
    if let Some(pg) = postgres_url() {
        // Trust auth: a role that does not exist is what PostgreSQL refuses here.
        let (_, rest) = pg.split_once("@").expect("postgres URL has a host");
        urls.push(format!("postgres://nosuchrole:hunter2secret@{rest}"));
    }
    if let Some(my) = mysql_url() {
        let (_, rest) = my.split_once("@").expect("mysql URL has a host");
        urls.push(format!("mysql://root:hunter2secret@{rest}"));
    }
    for url in urls {
        let ws = Ws::new();
        ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", &format!("prod = \"{url}\""));
        let headline = failure(&ws);
        assert!(headline.starts_with("database `users` (prod) refused the login: "), "{headline}");
    }
}

#[test]
fn an_unset_env_variable_is_named_and_a_set_one_is_used() {
    let db = Db::sqlite();
    let ws = db.workspace();
    ws.edit("lazyops.toml", &format!("prod = \"{}\"", db.url), "prod = \"env:LAZYOPS_TEST_USERS_URL\"");
    let r = Run::from(
        ws.cmd("alice", &["run", "--json", "db query user-by-id 42"])
            .env_remove("LAZYOPS_TEST_USERS_URL")
            .output()
            .expect("run lazyops"),
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        r.json()["headline"],
        "cannot use database `users` (prod): environment variable `LAZYOPS_TEST_USERS_URL` is not set (the config says `env:LAZYOPS_TEST_USERS_URL`)"
    );
    let r = Run::from(
        ws.cmd("alice", &["run", "--json", "db query user-by-id 42"])
            .env("LAZYOPS_TEST_USERS_URL", &db.url)
            .output()
            .expect("run lazyops"),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(table(&r.json()).1.len(), 1);
}

#[test]
fn an_environment_without_a_url_is_named() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "staging = \"sqlite://demo/users-staging.db\"\n", "");
    let (r, v) = query(&ws, "db query user-by-id 42 --env staging");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(v["headline"], "database `users` has no URL for environment `staging`; it has prod, dev");
}

#[test]
fn the_requested_environment_is_queried() {
    let ws = Ws::new();
    let (r, v) = query(&ws, "db query recent-signups days=500 --env dev");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(v["command"], "db query recent-signups days=500 --env dev");
    assert!(v["headline"].as_str().unwrap_or("").contains(" from users (dev) in "), "{}", r.stdout);
    // The dev demo database has 15 users.
    assert_eq!(table(&v).1.len(), 15);
}

// ---------------------------------------------------------------------------------------------
// Queries per team.

#[test]
fn a_team_sees_and_runs_only_the_queries_its_config_allows() {
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "members = [\"local:*\", \"slack:U0123ABC\", \"github:octocat\"]",
        "members = [\"local:alice\"]",
    );
    let mut config = std::fs::read_to_string(ws.config()).expect("read config");
    config.push_str("\n[teams.support]\nmembers = [\"local:sam\"]\nplugins = [\"db\"]\nqueries = [\"user-*\"]\n");
    std::fs::write(ws.config(), config).expect("write config");
    let before = std::fs::read(ws.path().join("demo/users.db")).expect("read demo db");

    let r = ws.run("sam", &["run", "--json", "db list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, rows) = table(&r.json());
    let names: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["user-by-email", "user-by-id"]);

    let r = ws.run("sam", &["run", "--json", "db query user-by-id 42"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(table(&r.json()).1.len(), 1);

    for text in ["db query payment-by-id pay_8f3k2", "db describe payment-by-id", "db query recent-signups"] {
        let r = ws.run("sam", &["run", "--json", text]);
        assert_eq!(r.code, 1, "{text}: {}", r.stdout);
        let v = r.json();
        assert_eq!(v["status"], "refused");
        assert!(
            v["headline"].as_str().unwrap_or("").contains("your team (support) may not run the query"),
            "{}",
            r.stdout
        );
    }

    // Alice's team allows every query.
    let r = ws.run("alice", &["run", "--json", "db query payment-by-id pay_8f3k2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run("alice", &["run", "--json", "db list"]);
    assert_eq!(table(&r.json()).1.len(), 6);

    // Someone in no team runs nothing.
    let r = ws.run("mallory", &["run", "--json", "db query user-by-id 42"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["status"], "refused");

    assert_eq!(std::fs::read(ws.path().join("demo/users.db")).expect("read demo db"), before);
}

/// The demo workspace's own SQLite files are opened read-only: a query never changes them.
#[test]
fn the_demo_database_file_is_never_written() {
    let ws = Ws::new();
    let path: PathBuf = ws.path().join("demo/users.db");
    let before = std::fs::read(&path).expect("read demo db");
    for text in
        ["db query user-by-id 42", "db query recent-signups", "db query user-by-email \"'; DROP TABLE users; --\""]
    {
        let (r, _) = query(&ws, text);
        assert_eq!(r.code, 0, "{text}: {}{}", r.stdout, r.stderr);
    }
    assert_eq!(std::fs::read(&path).expect("read demo db"), before);
    assert!(!ws.path().join("demo/users.db-wal").exists());
}

// ---------------------------------------------------------------------------------------------
// Read-only by the database too: a write that got past the parser is refused by the engine.

fn the_database_refuses_a_write_that_slipped_past_the_parser(engine: Engine) {
    use lazyops::queries::file::QueryFile;
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    let workspace = lazyops::workspace::Workspace::load(&ws.config()).expect("workspace loads");
    let before = db.checksum();
    // Never loaded from a file, so the static check never saw them.
    let writes = [
        "DELETE FROM users WHERE id = :id",
        "UPDATE users SET email = 'x' WHERE id = :id",
        "INSERT INTO ledger_entries (id, payment_id, account, direction, amount_cents, created_at) SELECT id + 100000, payment_id, account, direction, amount_cents, created_at FROM ledger_entries WHERE id = :id",
    ];
    for sql in writes {
        let text = format!("-- name: sneaky\n-- database: users\n-- param: id int\n{sql}\n");
        let q = QueryFile::parse(&text, std::path::Path::new("sneaky.sql")).expect("parses");
        let params = vec![("id".to_string(), lazyops::param::ParamValue::Int(1))];
        let pools = lazyops::queries::pools::Pools::new();
        let result = block_on(async {
            let r = lazyops::queries::run::run(&pools, &workspace, &q, &params, "prod").await;
            pools.close().await;
            r
        });
        let err = result.expect_err("the database let a write through").to_string();
        assert!(err.starts_with("database `users` (prod) could not run query `sneaky`: "), "{err}");
        let lower = err.to_lowercase();
        assert!(lower.contains("read-only") || lower.contains("readonly") || lower.contains("read only"), "{err}");
    }
    assert_eq!(db.checksum(), before);
}

#[test]
fn the_database_refuses_a_write_that_slipped_past_the_parser_on_sqlite() {
    the_database_refuses_a_write_that_slipped_past_the_parser(Engine::Sqlite);
}

#[test]
fn the_database_refuses_a_write_that_slipped_past_the_parser_on_postgres() {
    the_database_refuses_a_write_that_slipped_past_the_parser(Engine::Postgres);
}

#[test]
fn the_database_refuses_a_write_that_slipped_past_the_parser_on_mariadb() {
    the_database_refuses_a_write_that_slipped_past_the_parser(Engine::Mysql);
}

/// The rollback is not awaited by the reply, but it happens before the connection is used
/// again: a session setting made by one query is gone for the next one on that connection,
/// and no connection is left idle in a transaction.
#[test]
fn every_query_is_rolled_back_before_its_connection_is_reused_on_postgres() {
    use lazyops::queries::file::QueryFile;
    let Some(db) = Db::postgres() else { return };
    let ws = db.workspace();
    let workspace = lazyops::workspace::Workspace::load(&ws.config()).expect("workspace loads");
    let parse = |sql: &str| {
        let text = format!("-- name: probe\n-- database: users\n{sql}\n");
        QueryFile::parse(&text, std::path::Path::new("probe.sql")).expect("parses")
    };
    // Not a write, but it would outlive a COMMIT (set_config is on the parser's deny list).
    let dirty = parse("SELECT set_config('lazyops.probe', 'dirty', false) AS v, pg_backend_pid() AS pid");
    let look = parse("SELECT current_setting('lazyops.probe', true) AS v, pg_backend_pid() AS pid");
    let pools = lazyops::queries::pools::Pools::new();
    let (first, second, states) = block_on(async {
        let none = Vec::new();
        let run = |q| lazyops::queries::run::run(&pools, &workspace, q, &none, "prod");
        let first = run(&dirty).await.expect("first query");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = run(&look).await.expect("second query");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        let states: Vec<(Option<String>,)> = sqlx::query_as(
            "SELECT state FROM pg_stat_activity WHERE application_name = 'lazyops' AND datname = current_database()",
        )
        .fetch_all(&mut conn)
        .await
        .expect("pg_stat_activity");
        pools.close().await;
        (first, second, states)
    });
    assert_eq!(first.rows[0][0], json!("dirty"));
    assert_eq!(second.rows[0][1], first.rows[0][1], "the pool reused the connection");
    assert_ne!(second.rows[0][0], json!("dirty"), "the first query was committed, not rolled back");
    assert!(!states.is_empty());
    assert!(states.iter().all(|(s,)| s.as_deref() == Some("idle")), "{states:?}");
}

// ---------------------------------------------------------------------------------------------
// Issue 17: query files are checked by what the server will run, against an allow-list.

/// Writes each `(name, sql)` as `queries/x-<name>.sql` with the SQL on line 5, runs `check`,
/// and asserts that every file is refused at `line` (5 unless the SQL says otherwise) with
/// `says` in the message.
fn assert_refused_at_load(ws: &Ws, database: &str, attacks: &[(&str, String, usize, &str)]) {
    for (name, sql, _, _) in attacks {
        ws.write(
            &format!("queries/x-{name}.sql"),
            &format!("-- name: x-{name}\n-- description: an attack\n-- database: {database}\n-- max_rows: 5\n{sql}\n"),
        );
    }
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    for (name, _, line, says) in attacks {
        let at = format!("x-{name}.sql:{line}: ");
        let found = r.stdout.lines().find(|l| l.contains(&at));
        let found = found.unwrap_or_else(|| panic!("x-{name}.sql not refused at line {line}:\n{}", r.stdout));
        assert!(found.contains(says), "x-{name}.sql: {found}");
    }
}

#[test]
fn issue_17_mariadb_executable_comments_are_refused_and_never_run() {
    let Some(db) = Db::mysql() else { return };
    let ws = db.workspace_everywhere();
    let outfile = std::env::temp_dir().join(format!("{}.txt", unique_name("lazyops_outfile")));
    let outfile = outfile.display().to_string();
    let not_a_comment = "is not a comment to MySQL and MariaDB";
    let attacks = [
        ("sleep", "SELECT 1 AS one /*M!, SLEEP(3) */".to_string(), 5, not_a_comment),
        ("outfile", format!("SELECT id FROM users /*M! INTO OUTFILE '{outfile}' */"), 5, not_a_comment),
        ("loadfile", "SELECT 1 AS one\n/*M!100000 , LOAD_FILE('/etc/hostname') */".into(), 6, not_a_comment),
        ("notimeout", "/*M!SET STATEMENT max_statement_time=0 FOR*/ SELECT id FROM users".into(), 5, not_a_comment),
        (
            "gtid",
            "SELECT id,\n  MASTER_GTID_WAIT('0-1-100', 2) AS w FROM users".into(),
            6,
            "`master_gtid_wait` is not on",
        ),
        ("hint", "SELECT /*+ SET_VAR(max_statement_time=0) */ id FROM users".into(), 5, "optimizer hints"),
    ];
    assert_refused_at_load(&ws, "users", &attacks);
    let before = db.checksum();
    let started = Instant::now();
    for (name, ..) in &attacks {
        let (r, _) = query(&ws, &format!("db query x-{name}"));
        assert_eq!(r.code, 1, "x-{name} ran: {}{}", r.stdout, r.stderr);
    }
    assert!(started.elapsed() < Duration::from_secs(3), "something slept: {:?}", started.elapsed());
    assert!(!std::path::Path::new(&outfile).exists(), "the server wrote {outfile}");
    assert_eq!(db.checksum(), before);
}

#[test]
fn issue_17_postgres_names_are_resolved_and_calls_checked_against_the_allow_list() {
    let Some(db) = Db::postgres() else { return };
    let ws = db.workspace_everywhere();
    let escaped = "unicode-escaped identifiers";
    let attacks = [
        ("sleep", r#"SELECT U&"pg\005fsleep"(3)"#.to_string(), 5, escaped),
        ("readfile", r#"SELECT U&"pg\005fread\005ffile"('/etc/hostname')"#.into(), 5, escaped),
        (
            "terminate",
            "SELECT count(*) AS n\nFROM pg_stat_activity\nWHERE U&\"pg\\005fterminate\\005fbackend\"(pid)".into(),
            7,
            escaped,
        ),
        ("setconfig", r#"SELECT U&"set\005fconfig"('statement_timeout', '0', false)"#.into(), 5, escaped),
        ("quoted", r#"SELECT "pg_sleep"(3)"#.into(), 5, "`pg_sleep` is not on the PostgreSQL allow-list"),
        ("qualified", "SELECT pg_catalog.pg_sleep(3)".into(), 5, "`pg_catalog.pg_sleep` is not on"),
        ("statreset", "SELECT pg_stat_reset()".into(), 5, "`pg_stat_reset` is not on"),
        (
            "lock",
            "SELECT pg_try_advisory_lock_shared(42) AS locked".into(),
            5,
            "`pg_try_advisory_lock_shared` is not on",
        ),
        (
            "memory",
            "SELECT pg_log_backend_memory_contexts(pg_backend_pid())".into(),
            5,
            "`pg_log_backend_memory_contexts` is not on",
        ),
        ("lateral", "SELECT id FROM users, LATERAL pg_sleep(3) AS s".into(), 5, "`pg_sleep` is not on"),
    ];
    assert_refused_at_load(&ws, "users", &attacks);
    let started = Instant::now();
    let (r, _) = query(&ws, "db query x-sleep");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(started.elapsed() < Duration::from_secs(3), "it slept");
}

#[test]
fn issue_17_the_allow_list_is_extended_and_narrowed_by_config() {
    let Some(db) = Db::postgres() else { return };
    let ws = db.workspace_everywhere();
    ws.write(
        "queries/ver.sql",
        "-- name: ver\n-- description: server version\n-- database: users\nSELECT split_part(version(), ' ', 1) AS engine\n",
    );
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("ver.sql:4: the function `version` is not on the PostgreSQL allow-list"), "{}", r.stdout);
    ws.edit("lazyops.toml", "[bot]\n", "[bot]\nallow_functions = [\"version\"]\n");
    let (_, rows) = rows_of(&ws, "db query ver");
    assert_eq!(rows, vec![vec![json!("PostgreSQL")]]);
    // A denial wins over the built-in list.
    ws.edit("lazyops.toml", "[bot]\n", "[bot]\ndeny_functions = [\"split_part\"]\n");
    let r = ws.run("alice", &["check"]);
    assert!(
        r.stdout.contains("ver.sql:4: the function `split_part` is on the config's `deny_functions`"),
        "{}",
        r.stdout
    );
}

#[test]
fn issue_17_a_database_with_env_urls_is_checked_in_every_dialect() {
    let ws = Ws::new();
    // prod is a literal SQLite URL; staging comes from a variable and may be any engine.
    ws.edit(
        "lazyops.toml",
        "[databases.users]",
        "[databases.mixed]\nprod = \"sqlite://demo/users.db\"\nstaging = \"env:LAZYOPS_TEST_MIXED_URL\"\n\n[databases.users]",
    );
    ws.write(
        "queries/kill.sql",
        "-- name: kill\n-- description: one\n-- database: mixed\nSELECT 1 AS one\n-- dialect: postgres\nSELECT pg_terminate_backend(pg_backend_pid()) AS killed\n",
    );
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("kill.sql:6: the function `pg_terminate_backend` is not on the PostgreSQL allow-list"),
        "{}",
        r.stdout
    );
}

#[test]
fn issue_17_a_query_is_checked_again_for_the_engine_its_url_resolves_to() {
    use lazyops::queries::file::QueryFile;
    let Some(db) = Db::postgres() else { return };
    let ws = db.workspace();
    let workspace = lazyops::workspace::Workspace::load(&ws.config()).expect("workspace loads");
    // Never loaded from a file (as if checked for another engine): `checked` refuses it for
    // PostgreSQL before any connection is used; `run`, the database layers alone, would sleep.
    let text = "-- name: sneaky\n-- database: users\nSELECT pg_sleep(3) AS s\n";
    let q = QueryFile::parse(text, std::path::Path::new("sneaky.sql")).expect("parses");
    let pools = lazyops::queries::pools::Pools::new();
    let started = Instant::now();
    let result = block_on(async {
        let r = lazyops::queries::run::checked(&pools, &workspace, &q, &Vec::new(), "prod").await;
        pools.close().await;
        r
    });
    let err = result.expect_err("pg_sleep ran").to_string();
    assert_eq!(
        err,
        "query `sneaky` is not run on database `users` (prod): the function `pg_sleep` is not on the PostgreSQL allow-list (aggregates, window, string, date/time, math, JSON, conditional, casts); if it only reads, an admin can add it to `[bot] allow_functions`"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Runs admin statements on the test MariaDB server.
fn mysql_admin(url: &str, statements: &[String]) {
    block_on(async {
        let mut conn = sqlx::MySqlConnection::connect(url).await.expect("connect mariadb");
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.expect("admin statement");
        }
    });
}

#[test]
fn issue_17_check_connect_warns_when_the_database_user_can_write() {
    let (Some(pg), Some(my)) = (Db::postgres(), Db::mysql()) else { return };
    let ws = pg.workspace();
    ws.edit("lazyops.toml", "staging = \"sqlite://demo/users-staging.db\"", &format!("staging = \"{}\"", my.url));
    ws.edit("lazyops.toml", "dev = \"sqlite://demo/users-dev.db\"", "dev = \"env:LAZYOPS_TEST_NEVER_SET\"");
    // The test servers' admin users can write everything.
    let r = ws.run("alice", &["check", "--connect"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let line = |env: &str| r.stdout.lines().find(|l| l.contains(&format!("`users` ({env})"))).unwrap_or("").to_string();
    assert!(line("prod").contains("WARNING: user `postgres` can write: superuser"), "{}", r.stdout);
    assert!(line("staging").contains("WARNING: user `root@"), "{}", r.stdout);
    assert!(line("staging").contains("ALL PRIVILEGES on *.*"), "{}", r.stdout);
    assert!(line("dev").contains("skipped: environment variable `LAZYOPS_TEST_NEVER_SET` is not set"), "{}", r.stdout);

    // The roles the README gives: read-only, and said so.
    let role = unique_name("lazyops_ro");
    let admin = pg.admin.clone().expect("server database");
    crate::support::pg_admin(
        &admin,
        &format!("CREATE ROLE {role} LOGIN; GRANT CONNECT ON DATABASE {} TO {role}", pg.name),
    );
    crate::support::pg_admin(
        &pg.url,
        &format!(
            "GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        ),
    );
    let my_admin = my.admin.clone().expect("server database");
    mysql_admin(
        &my_admin,
        &[
            format!("CREATE USER '{role}'@'%'"),
            format!("CREATE USER '{role}'@'localhost'"),
            format!("GRANT SELECT, SHOW VIEW ON `{}`.* TO '{role}'@'%'", my.name),
            format!("GRANT SELECT, SHOW VIEW ON `{}`.* TO '{role}'@'localhost'", my.name),
        ],
    );
    let as_role = |url: &str| {
        url.replacen("://postgres@", &format!("://{role}@"), 1).replacen("://root@", &format!("://{role}@"), 1)
    };
    ws.edit("lazyops.toml", &format!("prod = \"{}\"", pg.url), &format!("prod = \"{}\"", as_role(&pg.url)));
    ws.edit("lazyops.toml", &format!("staging = \"{}\"", my.url), &format!("staging = \"{}\"", as_role(&my.url)));
    let r = ws.run("alice", &["check", "--connect"]);
    let line = |env: &str| r.stdout.lines().find(|l| l.contains(&format!("`users` ({env})"))).unwrap_or("").to_string();
    assert!(
        line("prod").contains(&format!("read-only (PostgreSQL user `{role}` has no write privilege)")),
        "{}",
        r.stdout
    );
    assert!(line("staging").contains("read-only (MySQL/MariaDB user"), "{}", r.stdout);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // And the demo queries still run as that role.
    let (_, rows) = rows_of(&ws, "db query user-by-id 42");
    assert_eq!(rows.len(), 1);
    drop(pg);
    crate::support::pg_admin(&admin, &format!("DROP ROLE {role}"));
    mysql_admin(&my_admin, &[format!("DROP USER '{role}'@'%'"), format!("DROP USER '{role}'@'localhost'")]);
}

#[test]
fn issue_17_a_mariadb_server_without_backslash_escapes_reads_strings_as_the_check_does() {
    let Some(db) = Db::mysql() else { return };
    let ws = db.workspace_everywhere();
    // With backslash escapes (the check's reading) this is one string named `c`; without them
    // (a server set to NO_BACKSLASH_ESCAPES) the string ends at `\'` and SLEEP runs.
    ws.write(
        "queries/strings.sql",
        "-- name: strings\n-- description: one string\n-- database: users\nSELECT 'x\\' AS a, SLEEP(2) AS b -- ' AS c\n",
    );
    let admin = db.admin.clone().expect("server database");
    let (mode,): (String,) = block_on(async {
        let mut conn = sqlx::MySqlConnection::connect(&admin).await.expect("connect");
        sqlx::query_as("SELECT @@GLOBAL.sql_mode").fetch_one(&mut conn).await.expect("sql_mode")
    });
    mysql_admin(&admin, &["SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')".to_string()]);
    let started = Instant::now();
    let (r, v) = query(&ws, "db query strings");
    let took = started.elapsed();
    mysql_admin(&admin, &[format!("SET GLOBAL sql_mode = '{mode}'")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let (cols, rows) = table(&v);
    assert_eq!(cols, ["c"]);
    assert_eq!(rows, vec![vec![json!("x' AS a, SLEEP(2) AS b -- ")]]);
    assert!(took < Duration::from_secs(2), "the server slept: {took:?}");
}
