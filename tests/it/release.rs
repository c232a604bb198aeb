//! Release validation end to end: `db schema check` on SQLite, PostgreSQL and MariaDB,
//! `deploy version` from git, HTTP, GitHub and Kubernetes (over HTTPS with a CA made here),
//! `release check`, and test runs as background jobs, through the real binary where the user
//! would type, and the library where a test needs to hold a run in the middle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{Ws, mysql_url, postgres_url, unique_name};

/// A real HTTP server on loopback for the length of the test.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Runs the binary off the async workers, so fake servers keep answering meanwhile.
async fn run(ws: &Ws, args: &[&str]) -> crate::support::Run {
    let mut cmd = ws.cmd("alice", args);
    tokio::task::spawn_blocking(move || crate::support::Run::from(cmd.output().expect("run lazyops")))
        .await
        .expect("join")
}

async fn run_env(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> crate::support::Run {
    let mut cmd = ws.cmd("alice", args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || crate::support::Run::from(cmd.output().expect("run lazyops")))
        .await
        .expect("join")
}

fn append(ws: &Ws, text: &str) {
    let path = ws.config();
    let mut cfg = std::fs::read_to_string(&path).expect("read config");
    cfg.push_str(text);
    std::fs::write(path, cfg).expect("write config");
}

// ---------------------------------------------------------------------------------------------
// db schema check

#[test]
fn demo_schema_check_shows_one_service_that_matches_and_one_that_drifts() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "db schema check payments"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("payments (prod): schema matches (2 tables)"), "{}", r.stdout);
    let r = ws.run("alice", &["run", "db schema check users staging"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("users (staging): migrate before releasing: 2 differences in 1 table"), "{}", r.stdout);
    assert!(r.stdout.contains("column `last_login_at` missing (expected TIMESTAMP NULL)"), "{}", r.stdout);
    assert!(r.stdout.contains("index `users_by_status` (status) missing"), "{}", r.stdout);
}

#[test]
fn a_service_with_no_migrations_directory_is_told_what_to_configure() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "migrations = \"demo/migrations/ledger\"\n", "");
    let r = ws.run("alice", &["run", "db schema check ledger"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("service `ledger` has no migrations directory: add `migrations = \"path/to/migrations\"` to [services.ledger]"),
        "{}",
        r.stdout
    );
    let ws = Ws::new();
    ws.edit("lazyops.toml", "migrations = \"demo/migrations/ledger\"", "migrations = \"demo/migrations/gone\"");
    let r = ws.run("alice", &["run", "db schema check ledger"]);
    assert!(r.stdout.contains("the migrations directory `"), "{}", r.stdout);
    assert!(r.stdout.contains("demo/migrations/gone` does not exist"), "{}", r.stdout);
}

#[test]
fn a_migration_that_fails_on_the_scratch_database_is_named_with_its_error() {
    let ws = Ws::new();
    ws.write("demo/migrations/ledger/0002_broken.sql", "ALTER TABLE no_such_table ADD COLUMN x INT;\n");
    let r = ws.run("alice", &["run", "db schema check ledger"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("migration `0002_broken.sql` failed on the scratch database"), "{}", r.stdout);
    assert!(r.stdout.contains("no_such_table"), "{}", r.stdout);
}

#[test]
fn a_live_database_that_is_down_is_reported_and_nothing_is_compared() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", "prod = \"sqlite://demo/nowhere/users.db\"");
    let r = ws.run("alice", &["run", "db schema check payments"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("cannot read the live database `users` (prod)"), "{}", r.stdout);
    assert!(r.stdout.contains("nothing was compared"), "{}", r.stdout);
}

#[test]
fn a_live_postgres_server_that_is_down_is_reported() {
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "prod = \"sqlite://demo/users.db\"",
        "prod = \"postgres://postgres:secret@127.0.0.1:1/test\"",
    );
    append(&ws, "");
    ws.edit(
        "lazyops.toml",
        "tables = [\"orders\", \"payments\"]",
        "tables = [\"orders\", \"payments\"]\nscratch_url = \"postgres://postgres@127.0.0.1:1/postgres\"",
    );
    let r = ws.run("alice", &["run", "db schema check payments"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("cannot read the live database `users` (prod)"), "{}", r.stdout);
    assert!(!r.stdout.contains("secret"), "the password leaked: {}", r.stdout);
}

/// The migrations: what the code expects. The live schema below differs from it in every
/// way the check knows about, except column order, which must not count.
const PG_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_accounts.sql",
        "CREATE TABLE accounts (id BIGSERIAL PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, plan TEXT NOT NULL DEFAULT 'free', created_at TIMESTAMPTZ NOT NULL DEFAULT now());\n\
         CREATE TABLE invoices (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, cents BIGINT NOT NULL, note TEXT);\n\
         CREATE INDEX invoices_by_account ON invoices (account_id);",
    ),
    ("0002_audit.sql", "CREATE TABLE audit_events (id BIGINT PRIMARY KEY, what TEXT NOT NULL);"),
];

const PG_LIVE_DRIFTED: &str = "CREATE TABLE accounts (created_at TIMESTAMPTZ NOT NULL DEFAULT now(), plan VARCHAR(20) NOT NULL DEFAULT 'basic', email VARCHAR(200), id BIGSERIAL PRIMARY KEY);\n\
     CREATE TABLE invoices (id BIGINT, account_id BIGINT NOT NULL REFERENCES accounts(id), cents BIGINT NOT NULL, note TEXT, legacy_flag BOOLEAN);\n\
     CREATE TABLE old_things (id INT);\n\
     CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);\n\
     INSERT INTO _sqlx_migrations VALUES (1, 'accounts', now(), true, '\\x00', 1), (9, 'from another branch', now(), true, '\\x00', 1);";

/// The same schema as the migrations build, columns in another order, all versions applied.
const PG_LIVE_SAME: &str = "CREATE TABLE accounts (created_at TIMESTAMPTZ NOT NULL DEFAULT now(), plan TEXT NOT NULL DEFAULT 'free', email VARCHAR(200) NOT NULL UNIQUE, id BIGSERIAL PRIMARY KEY);\n\
     CREATE TABLE invoices (note TEXT, cents BIGINT NOT NULL, account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, id BIGINT PRIMARY KEY);\n\
     CREATE INDEX invoices_by_account ON invoices (account_id);\n\
     CREATE TABLE audit_events (what TEXT NOT NULL, id BIGINT PRIMARY KEY);\n\
     CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);\n\
     INSERT INTO _sqlx_migrations VALUES (1, 'accounts', now(), true, '\\x00', 1), (2, 'audit', now(), true, '\\x00', 1);";

/// A database on a server, created for one test and dropped at the end.
struct ServerDb {
    admin_url: String,
    name: String,
    url: String,
    mysql: bool,
}

impl ServerDb {
    async fn create(admin_url: &str, mysql: bool, ddl: &str) -> ServerDb {
        use sqlx::Connection;
        let name = unique_name("lazyops_t");
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b).to_string();
        let url = format!("{base}/{name}");
        if mysql {
            let mut c = sqlx::MySqlConnection::connect(admin_url).await.expect("connect mariadb");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
                .execute(&mut c)
                .await
                .expect("create db");
            let mut d = sqlx::MySqlConnection::connect(&url).await.expect("connect new db");
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.to_string())).execute(&mut d).await.expect("live ddl");
        } else {
            let mut c = sqlx::PgConnection::connect(admin_url).await.expect("connect postgres");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut c)
                .await
                .expect("create db");
            let mut d = sqlx::PgConnection::connect(&url).await.expect("connect new db");
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.to_string())).execute(&mut d).await.expect("live ddl");
        }
        ServerDb { admin_url: admin_url.to_string(), name, url, mysql }
    }

    async fn drop_db(self) {
        use sqlx::Connection;
        if self.mysql {
            let mut c = sqlx::MySqlConnection::connect(&self.admin_url).await.expect("connect");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{}`", self.name)))
                .execute(&mut c)
                .await;
        } else {
            let mut c = sqlx::PgConnection::connect(&self.admin_url).await.expect("connect");
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
        }
    }
}

/// A workspace whose service `billing` lives in `live_url` with migrations `files`.
fn billing_ws(live_url: &str, scratch_url: &str, files: &[(&str, &str)]) -> Ws {
    let ws = Ws::new();
    for (name, sql) in files {
        ws.write(&format!("migrations/billing/{name}"), sql);
    }
    ws.edit(
        "lazyops.toml",
        "[databases.users]",
        &format!(
            "[services.billing]\ndatabase = \"billing\"\nmigrations = \"migrations/billing\"\n\n\
             [services.billing.schema]\nscratch_url = \"{scratch_url}\"\n\n\
             [databases.billing]\nprod = \"{live_url}\"\n\n[databases.users]"
        ),
    );
    ws
}

fn assert_all(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_check_reports_every_kind_of_difference_and_the_versions() {
    let Some(admin) = postgres_url() else { return };
    let live = ServerDb::create(&admin, false, PG_LIVE_DRIFTED).await;
    let ws = billing_ws(&live.url, &admin, PG_MIGRATIONS);
    let r = run(&ws, &["run", "--json", "db schema check billing"]).await;
    live.drop_db().await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &[
            "billing (prod): migrate before releasing:",
            "1 migration not applied, 1 migration applied that the code does not have",
            "2 recorded in _sqlx_migrations; not applied: 2; unknown to the code: 9",
            "PostgreSQL",
            "table missing from the live database (2 columns)",
            "table in the live database that no migration creates",
            "column `plan` type: expected text, live character varying(20)",
            "column `plan` default: expected 'free'::text, live 'basic'::character varying",
            "column `email`: expected NOT NULL, live NULL",
            "unique constraint (email) missing",
            "column `legacy_flag` (boolean NULL) is not in the migrations",
            "primary key: expected (id), live ()",
            "index `invoices_by_account` (account_id) missing",
            "foreign key (account_id) → accounts(id) on delete cascade missing",
            "foreign key (account_id) → accounts(id) is not in the migrations",
        ],
    );
    assert!(!r.stdout.contains("created_at"), "an unchanged column was reported:\n{}", r.stdout);
    assert!(!r.stdout.contains("lazyops_scratch"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_identical_schemas_in_another_column_order_match() {
    let Some(admin) = postgres_url() else { return };
    let live = ServerDb::create(&admin, false, PG_LIVE_SAME).await;
    let ws = billing_ws(&live.url, &admin, PG_MIGRATIONS);
    let r = run(&ws, &["run", "db schema check billing"]).await;
    live.drop_db().await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("billing (prod): schema matches (3 tables)"), "{}", r.stdout);
    assert!(r.stdout.contains("2 recorded in _sqlx_migrations"), "{}", r.stdout);
    // The scratch database is gone afterwards. Other tests' schema checks share this server and
    // may hold a scratch database of their own for a moment: none may remain for long.
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left: Vec<(String,)> = sqlx::query_as(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'lazyops_scratch_%' \
             UNION ALL SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lazyops_scratch_%'",
        )
        .fetch_all(&mut c)
        .await
        .expect("list databases");
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scratch databases left behind: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_check_never_writes_to_the_live_database() {
    let Some(admin) = postgres_url() else { return };
    // A live database whose only difference needs a write to "fix": the check must not try.
    let live = ServerDb::create(&admin, false, "CREATE TABLE audit_events (id BIGINT PRIMARY KEY);").await;
    let ws = billing_ws(
        &live.url,
        &admin,
        &[("0001_a.sql", "CREATE TABLE audit_events (id BIGINT PRIMARY KEY, what TEXT);")],
    );
    ws.edit("lazyops.toml", "[services.billing.schema]\n", "[services.billing.schema]\nscratch = \"database\"\n");
    let r = run(&ws, &["run", "db schema check billing"]).await;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&live.url).await.expect("connect");
    let cols: Vec<(String,)> =
        sqlx::query_as("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'audit_events'")
            .fetch_all(&mut c)
            .await
            .expect("columns");
    drop(c);
    live.drop_db().await;
    assert!(r.stdout.contains("column `what` missing"), "{}", r.stdout);
    assert_eq!(cols.len(), 1, "the live database was changed");
}

const MY_MIGRATIONS: &[(&str, &str)] = &[(
    "0001_accounts.sql",
    "CREATE TABLE accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL, plan VARCHAR(20) NOT NULL DEFAULT 'free', UNIQUE KEY accounts_email (email)) ENGINE=InnoDB;\n\
         CREATE TABLE invoices (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, cents BIGINT NOT NULL, CONSTRAINT invoices_account FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE) ENGINE=InnoDB;\n\
         CREATE INDEX invoices_by_cents ON invoices (cents);",
)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_schema_check_finds_drift_and_accepts_column_order() {
    let Some(admin) = mysql_url() else { return };
    let same = "CREATE TABLE accounts (plan VARCHAR(20) NOT NULL DEFAULT 'free', email VARCHAR(200) NOT NULL, id BIGINT AUTO_INCREMENT PRIMARY KEY, UNIQUE KEY accounts_email (email)) ENGINE=InnoDB;\n\
         CREATE TABLE invoices (cents BIGINT NOT NULL, account_id BIGINT NOT NULL, id BIGINT PRIMARY KEY, CONSTRAINT invoices_account FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE) ENGINE=InnoDB;\n\
         CREATE INDEX invoices_by_cents ON invoices (cents);";
    let live = ServerDb::create(&admin, true, same).await;
    let ws = billing_ws(&live.url, &admin, MY_MIGRATIONS);
    let r = run(&ws, &["run", "db schema check billing"]).await;
    live.drop_db().await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("billing (prod): schema matches (2 tables)"), "{}", r.stdout);

    let drifted = "CREATE TABLE accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NULL, plan VARCHAR(20) NOT NULL DEFAULT 'pro') ENGINE=InnoDB;\n\
         CREATE TABLE invoices (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, cents INT NOT NULL) ENGINE=InnoDB;\n\
         CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL);\n\
         INSERT INTO schema_migrations VALUES (1, 1);";
    let live = ServerDb::create(&admin, true, drifted).await;
    let ws = billing_ws(&live.url, &admin, MY_MIGRATIONS);
    let r = run(&ws, &["run", "--json", "db schema check billing"]).await;
    live.drop_db().await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &[
            "migrate before releasing",
            "MariaDB/MySQL",
            "column `email` type: expected varchar(200), live varchar(100)",
            "column `email`: expected NOT NULL, live NULL",
            "column `plan` default: expected 'free', live 'pro'",
            "unique constraint (email) missing",
            "column `cents` type: expected bigint(20), live int(11)",
            "index `invoices_by_cents` (cents) missing",
            "foreign key (account_id) → accounts(id) on delete cascade on update restrict missing",
            "the last migration failed half-way (dirty)",
        ],
    );
}

#[test]
fn a_postgres_service_without_a_scratch_server_is_told_to_configure_one() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "prod = \"sqlite://demo/users.db\"", "prod = \"postgres://postgres@127.0.0.1:5432/test\"");
    let r = ws.run("alice", &["run", "db schema check payments"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("set `scratch_url` in [services.payments.schema]"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// deploy version

#[test]
fn deploy_version_reads_the_newest_git_tag_and_compares_with_the_next_environment() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "deploy version payments prod"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &[
            "payments (prod): v1.2.0",
            "git tag payments/prod/v1.2.0 in demo/releases",
            "(18 days ago)",
            "staging is 2 versions ahead of prod",
        ],
    );
    let r = ws.run("alice", &["run", "--json", "deploy version users staging"]);
    let text = r.json().to_string();
    assert!(text.contains("staging and prod run the same version (v2.3.1)"), "{text}");
}

#[test]
fn a_git_repository_with_no_matching_tags_says_which_pattern_found_nothing() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "pattern = \"ledger/prod/*\"", "pattern = \"ledger/production/*\"");
    let r = ws.run("alice", &["run", "deploy version ledger prod"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("no tag in `demo/releases` matches `ledger/production/*`"), "{}", r.stdout);
}

#[test]
fn a_missing_git_program_is_named_as_the_problem() {
    let ws = Ws::new();
    let r = Run::from(
        ws.cmd("alice", &["run", "deploy version payments prod"]).env("PATH", "/nonexistent").output().expect("run"),
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the `git` program is not installed or not on PATH"), "{}", r.stdout);
}

use crate::support::Run;

fn version_source(ws: &Ws, service: &str, env: &str, toml: &str) {
    let marker = format!(
        "[services.{service}.version.{env}]\nsource = \"git\"\nrepo = \"demo/releases\"\npattern = \"{service}/{env}/*\"\n"
    );
    ws.edit("lazyops.toml", &marker, &format!("[services.{service}.version.{env}]\n{toml}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_version_is_read_by_json_pointer_or_regex_and_bad_answers_are_explained() {
    let app = Router::new()
        .route(
            "/json",
            get(|| async {
                axum::Json(json!({"build": {"version": "v1.3.0", "sha": "abc123", "at": "2026-11-20T10:00:00Z"}}))
            }),
        )
        .route("/text", get(|| async { "service ledger, release 0.9.1-hotfix (built by ci)" }))
        .route("/html", get(|| async { Html("<!DOCTYPE html><html><body>Login</body></html>") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let base = serve(app).await;
    let ws = Ws::new();
    version_source(
        &ws,
        "payments",
        "prod",
        &format!(
            "source = \"http\"\nurl = \"{base}/json\"\npointer = \"/build/version\"\ncommit_pointer = \"/build/sha\"\ndeployed_at_pointer = \"/build/at\""
        ),
    );
    version_source(
        &ws,
        "ledger",
        "prod",
        &format!("source = \"http\"\nurl = \"{base}/text\"\nregex = 'release (\\S+)'"),
    );
    version_source(&ws, "ledger", "staging", &format!("source = \"http\"\nurl = \"{base}/html\""));
    version_source(&ws, "users", "prod", &format!("source = \"http\"\nurl = \"{base}/slow\"\ntimeout_secs = 1"));

    let r = run(&ws, &["run", "deploy version payments prod"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &["payments (prod): v1.3.0", "abc123", "2026-11-20 10:00 UTC", "staging is 1 version ahead of prod"],
    );

    let r = run(&ws, &["run", "deploy version ledger prod"]).await;
    assert!(r.stdout.contains("ledger (prod): 0.9.1-hotfix"), "{}", r.stdout);

    let r = run(&ws, &["run", "deploy version ledger staging"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("/html did not answer with JSON (text/html; charset=utf-8, starting \"<!DOCTYPE html>"),
        "{}",
        r.stdout
    );

    let started = Instant::now();
    let r = run(&ws, &["run", "deploy version users prod"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("/slow did not answer within 1 s"), "{}", r.stdout);
    assert!(started.elapsed() < Duration::from_secs(4), "the timeout was not kept");
}

fn github_fake() -> Router {
    Router::new()
        .route(
            "/repos/acme/payments/releases",
            get(|headers: HeaderMap| async move {
                assert_eq!(headers.get("x-github-api-version").and_then(|v| v.to_str().ok()), Some("2022-11-28"));
                axum::Json(json!([
                    {"tag_name": "v2.0.0-beta", "draft": false, "prerelease": true, "published_at": "2026-11-24T09:00:00Z"},
                    {"tag_name": "v1.9.0", "draft": false, "prerelease": false, "published_at": "2026-11-20T09:00:00Z",
                     "target_commitish": "main", "html_url": "https://github.com/acme/payments/releases/tag/v1.9.0"},
                    {"tag_name": "v1.8.0", "draft": false, "prerelease": false, "published_at": "2026-11-10T09:00:00Z"},
                    {"tag_name": "v1.7.0", "draft": false, "prerelease": false, "published_at": "2026-11-01T09:00:00Z"}
                ]))
            }),
        )
        .route(
            "/repos/acme/payments/deployments",
            get(|axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                assert_eq!(q.get("environment").map(String::as_str), Some("production"));
                axum::Json(json!([
                    {"id": 3, "ref": "v1.8.1", "sha": "ccccccccccccccccccccccccccccccccccccccc3", "environment": "production"},
                    {"id": 2, "ref": "v1.8.0", "sha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2", "environment": "production"},
                    {"id": 1, "ref": "v1.7.0", "sha": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", "environment": "production"}
                ]))
            }),
        )
        .route(
            "/repos/acme/payments/deployments/{id}/statuses",
            get(|axum::extract::Path(id): axum::extract::Path<i64>| async move {
                let state = if id == 3 { "failure" } else { "success" };
                axum::Json(json!([{"state": state, "created_at": "2026-11-11T12:00:00Z"}]))
            }),
        )
        .route(
            "/repos/acme/payments/commits/{r}/status",
            get(|axum::extract::Path(r): axum::extract::Path<String>| async move {
                let state = if r == "main" { "success" } else { "failure" };
                axum::Json(json!({"state": state, "total_count": 1, "statuses": [{"context": "ci/build", "state": state}]}))
            }),
        )
        .route(
            "/repos/acme/payments/commits/{r}/check-runs",
            get(|| async { axum::Json(json!({"total_count": 1, "check_runs": [{"name": "lint", "status": "completed", "conclusion": "success"}]})) }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_releases_and_deployments_are_read_through_the_rest_api() {
    let base = serve(github_fake()).await;
    let ws = Ws::new();
    version_source(&ws, "payments", "staging", "source = \"github\"\nrepo = \"acme/payments\"");
    version_source(
        &ws,
        "payments",
        "prod",
        "source = \"github\"\nrepo = \"acme/payments\"\nenvironment = \"production\"",
    );
    let env = [("LAZYOPS_GITHUB_API_URL", base.as_str())];
    let r = run_env(&ws, &["run", "deploy version payments staging"], &env).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(&r.stdout, &["payments (staging): v1.9.0", "GitHub release of acme/payments", "2026-11-20 09:00 UTC"]);
    let r = run_env(&ws, &["run", "deploy version payments prod"], &env).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Deployment 3 failed, so 2 (v1.8.0) is live; staging's releases say it is one ahead.
    assert_all(
        &r.stdout,
        &[
            "payments (prod): v1.8.0",
            "GitHub deployment 2 of acme/payments to production",
            "bbbbbbbbbbbb",
            "staging is 1 version ahead of prod",
        ],
    );
}

mod tls {
    //! A loopback HTTPS server with a certificate from a CA made for the test.

    use std::sync::Arc;

    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::server::TlsStream;

    pub struct Pki {
        pub ca_pem: String,
        pub cert_der: Vec<u8>,
        pub key_der: Vec<u8>,
    }

    pub fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "test cluster CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("ca cert");
        let key = rcgen::KeyPair::generate().expect("server key");
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
        let cert = params.signed_by(&key, &ca).expect("server cert");
        Pki { ca_pem: ca.pem(), cert_der: cert.der().to_vec(), key_der: key.serialize_der() }
    }

    pub struct TlsListener {
        tcp: TcpListener,
        acceptor: TlsAcceptor,
    }

    impl axum::serve::Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = std::net::SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
                // A client that does not trust us ends the handshake: wait for the next one.
                if let Ok(tls) = self.acceptor.accept(tcp).await {
                    return (tls, addr);
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            self.tcp.local_addr()
        }
    }

    pub async fn serve(pki: &Pki, app: axum::Router) -> String {
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
            )
            .expect("server config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(config)) };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("https://127.0.0.1:{}", addr.port())
    }
}

/// The parts of a `apps/v1` Deployment lazyops reads, as the API server sends them.
fn deployment_json() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "payments", "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": "7"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "istio-proxy", "image": "istio/proxyv2:1.20.0"},
            {"name": "app", "image": "registry.example.com:5000/shop/payments:v1.4.2"}
        ]}}},
        "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": "2026-11-20T08:00:00Z"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": "2026-11-22T08:30:00Z"}
        ]}
    })
}

fn kube_fake() -> Router {
    Router::new().route(
        "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
        get(|axum::extract::Path((ns, name)): axum::extract::Path<(String, String)>, headers: HeaderMap| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer k8s-token-123") {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "deployments.apps \"payments\" is forbidden: User \"system:anonymous\" cannot get resource", "reason": "Forbidden", "code": 403});
                return (StatusCode::FORBIDDEN, axum::Json(status)).into_response();
            }
            if ns != "shop" || name != "payments" {
                let status = json!({"kind": "Status", "status": "Failure", "message": format!("deployments.apps \"{name}\" not found"), "reason": "NotFound", "code": 404});
                return (StatusCode::NOT_FOUND, axum::Json(status)).into_response();
            }
            axum::Json(deployment_json()).into_response()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_image_tag_is_read_over_https_trusting_only_the_cluster_ca() {
    let pki = tls::pki();
    let api = tls::serve(&pki, kube_fake()).await;
    let ws = Ws::new();
    ws.write("cluster-ca.pem", &pki.ca_pem);
    let source = |token: &str, deployment: &str| {
        format!(
            "source = \"kubernetes\"\napi_url = \"{api}\"\ntoken = \"{token}\"\nca_file = \"cluster-ca.pem\"\nnamespace = \"shop\"\ndeployment = \"{deployment}\"\ncontainer = \"app\""
        )
    };
    version_source(&ws, "payments", "prod", &source("env:K8S_TOKEN", "payments"));
    version_source(&ws, "payments", "staging", &source("env:K8S_TOKEN", "gone"));
    version_source(&ws, "payments", "dev", &source("wrong-token", "payments"));
    let env = [("K8S_TOKEN", "k8s-token-123")];
    let r = run_env(&ws, &["run", "deploy version payments prod"], &env).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &[
            "payments (prod): v1.4.2",
            "deployment shop/payments",
            "2026-11-22 08:30 UTC",
            "3/3 replicas ready, revision 7",
        ],
    );
    assert!(r.stdout.contains("staging: cannot read its version (deployment `shop/gone` not found"), "{}", r.stdout);

    let r = run_env(&ws, &["run", "deploy version payments dev"], &env).await;
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the API server refused the token (403 Forbidden)"), "{}", r.stdout);

    // Another CA: the server's certificate is not trusted, whatever the system roots say.
    ws.write("cluster-ca.pem", &tls::pki().ca_pem);
    let r = run_env(&ws, &["run", "deploy version payments prod"], &env).await;
    assert_eq!(r.code, 1);
    assert!(r.stdout.to_lowercase().contains("certificate"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// release check

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_check_runs_items_at_once_with_their_own_timeouts() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new()
        .route(
            "/health",
            get(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "ok: all good"
                }
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .merge(github_fake());
    let base = serve(app).await;
    let ws = Ws::new();
    append(
        &ws,
        &format!(
            "\n[[services.ledger.checklist]]\nname = \"health a\"\ncheck = \"http\"\nurl = \"{base}/health\"\ncontains = \"all good\"\n\
             \n[[services.ledger.checklist]]\nname = \"health b\"\ncheck = \"http\"\nurl = \"{base}/health\"\nstatus = 200\n\
             \n[[services.ledger.checklist]]\nname = \"hangs\"\ncheck = \"http\"\nurl = \"{base}/hang\"\ntimeout_secs = 1\n\
             \n[[services.ledger.checklist]]\nname = \"ci of main\"\ncheck = \"ci\"\nrepo = \"acme/payments\"\nref = \"main\"\n\
             \n[[services.ledger.checklist]]\nname = \"ci of the release\"\ncheck = \"ci\"\nrepo = \"acme/payments\"\nref = \"version:staging\"\n\
             \n[[services.ledger.checklist]]\nname = \"schema\"\ncheck = \"schema\"\n\
             \n[[services.ledger.checklist]]\nname = \"version\"\ncheck = \"version\"\n"
        ),
    );
    let started = Instant::now();
    let r = run_env(&ws, &["run", "release check ledger prod"], &[("LAZYOPS_GITHUB_API_URL", base.as_str())]).await;
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(
        &r.stdout,
        &[
            "❌ ledger is not ready to release to prod: 2 of 7 failed",
            "✅ health a: GET ",
            "✅ health b: GET ",
            "❌ hangs: no answer within 1 s",
            "✅ ci of main: 2 checks passed on main",
            "❌ ci of the release: 1 of 2 checks failed on ",
            "✅ schema: schema matches (1 table)",
            "✅ version: staging has v0.9.2: staging (v0.9.2) is ahead of prod (v0.9.0)",
        ],
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Two 1.5 s checks and a 1 s timeout, all at once: well under their 4 s sum.
    assert!(took < Duration::from_millis(3500), "items did not run at once: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_item_waits_for_a_tick_and_passes_after_one() {
    let ws = Ws::new();
    let workspace = lazyops::workspace::Workspace::load(&ws.config()).expect("load");
    let state = format!("sqlite://{}/state.db", ws.path().display());
    let store = lazyops::store::Store::open(&state).await.expect("store");
    let bot = lazyops::pipeline::Bot::new(workspace, store);
    let who = lazyops::message::Identity::new(lazyops::message::Transport::Local, "alice");
    let here = lazyops::message::Place::terminal();
    let msg = |text: &str| lazyops::message::Message { who: who.clone(), place: here.clone(), text: text.to_string() };
    let reply = bot.handle(&msg("release check payments prod"), Default::default()).await;
    let text = lazyops::render::terminal::render(&reply, false);
    assert!(text.contains("⚠️ changelog reviewed: waiting for someone to tick it"), "{text}");
    assert_eq!(reply.actions.len(), 1);
    assert_eq!(reply.actions[0].id, "tick:payments:prod:changelog reviewed");

    let stranger = lazyops::message::Identity::new(lazyops::message::Transport::Slack, "U999");
    let refused = lazyops::act::release::tick(&bot, &stranger, &here, &reply.actions[0].id).await;
    assert_eq!(refused.status, lazyops::render::Status::Refused, "{refused:?}");

    let ticked = lazyops::act::release::tick(&bot, &who, &here, &reply.actions[0].id).await;
    assert_eq!(ticked.headline, "✅ ticked “changelog reviewed” for payments (prod)");
    let reply = bot.handle(&msg("release check payments prod"), Default::default()).await;
    let text = lazyops::render::terminal::render(&reply, false);
    assert!(text.contains("✅ changelog reviewed: ticked by local:alice"), "{text}");
    assert!(reply.actions.is_empty());
    let audit = bot.store().audit_list(None, None, 100).await.expect("audit");
    let mut ticks: Vec<_> = audit.iter().filter(|r| r.text == "(tick) changelog reviewed").collect();
    ticks.sort_by(|a, b| a.id.cmp(&b.id));
    let rows: Vec<(&str, &str, Option<&str>)> =
        ticks.iter().map(|r| (r.who.as_str(), r.decision.as_str(), r.outcome.as_deref())).collect();
    assert_eq!(rows, [("slack:U999", "refused", None), ("local:alice", "allowed", Some("ok"))]);
}

// ---------------------------------------------------------------------------------------------
// test runs

fn suite(ws: &Ws, name: &str, script: &str, extra: &str) {
    ws.write(&format!("suites/{name}.sh"), script);
    append(ws, &format!("\n[suites.{name}]\ncommand = [\"sh\", \"suites/{name}.sh\", \"{{env}}\"]\n{extra}\n"));
}

fn status_of(ws: &Ws, id: u64) -> String {
    let r = ws.run("alice", &["run", &format!("test status {id}")]);
    r.stdout
}

#[test]
fn a_test_run_is_confirmed_runs_in_the_background_and_reports_its_end() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "test run smoke staging"]);
    assert_eq!(r.code, 3, "test run always asks first: {}", r.stdout);
    let r = ws.run("alice", &["run", "--yes", "test run smoke staging"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_all(&r.stdout, &["started test run #1: smoke on staging", "✅ test run #1 (smoke on staging) passed after"]);
    let s = status_of(&ws, 1);
    assert_all(
        &s,
        &[
            "test run #1: smoke on staging passed",
            "local:alice in local:terminal",
            "running smoke suite against staging",
            "3 passed, 0 failed",
        ],
    );
    let r = ws.run("alice", &["run", "test list"]);
    assert_all(&r.stdout, &["regression", "e2e", "✅ passed"]);
}

#[test]
fn a_suite_command_that_does_not_exist_is_refused_before_anything_is_queued() {
    let ws = Ws::new();
    append(&ws, "\n[suites.ghost]\ncommand = [\"no-such-test-runner-xyz\", \"--all\"]\n");
    let r = ws.run("alice", &["run", "--yes", "test run ghost"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("suite `ghost`: the program `no-such-test-runner-xyz` was not found"), "{}", r.stdout);
    let r = ws.run("alice", &["run", "test status 1"]);
    assert!(r.stdout.contains("there is no test run #1"), "{}", r.stdout);
}

#[test]
fn test_status_of_an_unknown_id_says_there_is_no_such_run() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "test status 424242"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("there is no test run #424242; `test list` shows the recent runs"), "{}", r.stdout);
}

fn process_alive_with(arg: &str) -> bool {
    std::fs::read_dir("/proc").expect("/proc").flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(arg))
    })
}

#[test]
fn a_suite_that_hangs_past_its_timeout_is_timed_out_with_its_children() {
    let ws = Ws::new();
    let marker = format!("{}", 40_000 + std::process::id() % 10_000);
    suite(&ws, "hang", &format!("echo starting\nsleep {marker}\n"), "timeout_secs = 1");
    let started = Instant::now();
    let r = ws.run("alice", &["run", "--yes", "test run hang"]);
    assert_eq!(r.code, 1, "a timed-out run is a failure: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("error: test run #1 (hang on prod) timed out after"), "{}", r.stdout);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let s = status_of(&ws, 1);
    assert_all(&s, &["timed out", "stopped after the 1 s timeout", "starting"]);
    assert!(!process_alive_with(&format!("sleep {marker}")), "the suite's child process survived");
}

#[test]
fn a_suite_that_prints_100_mb_keeps_only_the_end_of_its_output() {
    let ws = Ws::new();
    suite(&ws, "loud", "head -c 100000000 /dev/zero | tr '\\0' 'x'\necho\necho THE-END\n", "timeout_secs = 60");
    let r = ws.run("alice", &["run", "--yes", "test run loud"]);
    assert!(r.stdout.contains("✅ test run #1 (loud on prod) passed"), "{}", r.stdout);
    let s = status_of(&ws, 1);
    assert_all(
        &s,
        &[
            "THE-END",
            "output (100000009 bytes), the last 4000 bytes:",
            "output was 100000009 bytes, the last 65536 kept",
        ],
    );
    assert!(s.len() < 20_000, "the status printed too much: {} bytes", s.len());
}

#[test]
fn lazyops_killed_while_a_suite_runs_leaves_the_run_interrupted_not_running() {
    let ws = Ws::new();
    suite(&ws, "slow", "echo begin\nsleep 5\necho end\n", "timeout_secs = 60");
    let log = ws.path().join("killed.log");
    let err = std::fs::File::create(&log).expect("log file");
    let mut child = ws
        .cmd("alice", &["run", "--yes", "test run slow"])
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn");
    // On a loaded machine the run may take a while to start; a child that already ended has
    // nothing to show and says why.
    let started = Instant::now();
    let s = loop {
        let s = status_of(&ws, 1);
        if s.contains("running") || started.elapsed() > Duration::from_secs(30) {
            break s;
        }
        if let Ok(Some(code)) = child.try_wait() {
            panic!(
                "lazyops ended ({code}) before the run started: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(s.contains("⏳ running"), "{s}");
    child.kill().expect("kill lazyops");
    let _ = child.wait();
    let s = status_of(&ws, 1);
    assert_all(&s, &["interrupted", "lazyops stopped while the run was going; its result is unknown"]);
}

/// A bot on the workspace's own state database, for tests that watch a run in the middle.
async fn bot(ws: &Ws) -> lazyops::pipeline::Bot {
    let workspace = lazyops::workspace::Workspace::load(&ws.config()).expect("load");
    let store =
        lazyops::store::Store::open(&format!("sqlite://{}/state.db", ws.path().display())).await.expect("store");
    lazyops::pipeline::Bot::new(workspace, store)
}

async fn say(bot: &lazyops::pipeline::Bot, text: &str) -> lazyops::render::Reply {
    let who = lazyops::message::Identity::new(lazyops::message::Transport::Local, "alice");
    let msg = lazyops::message::Message { who, place: lazyops::message::Place::terminal(), text: text.into() };
    bot.handle(&msg, lazyops::pipeline::Options { assume_yes: true, ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_the_same_suite_run_one_after_the_other_and_cancel_works() {
    let ws = Ws::new();
    // Each run says when it starts and ends; runs that overlapped would interleave the lines.
    let log = ws.path().join("runs.log");
    let script = format!("echo start >> '{0}'\nsleep 1\necho end >> '{0}'\n", log.display());
    suite(&ws, "one", &script, "max_concurrent = 1");
    let bot = bot(&ws).await;
    let mut finished = bot.jobs().subscribe();
    let a = say(&bot, "test run one").await;
    let b = say(&bot, "test run one").await;
    let c = say(&bot, "test run one").await;
    assert_eq!(a.headline, "started test run #1: one on prod");
    assert!(b.plain().contains("It waits in the queue: 1 run(s) of one are ahead of it"), "{}", b.plain());
    assert!(c.plain().contains("2 run(s)"), "{}", c.plain());
    let cancelled = say(&bot, "test cancel 3").await;
    assert_eq!(cancelled.headline, "cancelled test run #3 before it started");
    let mut outcomes = Vec::new();
    while outcomes.len() < 3 {
        let o =
            tokio::time::timeout(Duration::from_secs(20), finished.recv()).await.expect("a run ends").expect("recv");
        outcomes.push(o);
    }
    outcomes.sort_by_key(|o| o.id);
    let states: Vec<&str> = outcomes.iter().map(|o| o.state.name()).collect();
    assert_eq!(states, ["passed", "passed", "cancelled"]);
    // Not the rows' timestamps: each is taken before its own write, so a run that starts as
    // the one before it finishes can carry a start a few ms before the other's end.
    let lines = std::fs::read_to_string(&log).expect("the runs wrote their log");
    assert_eq!(lines.lines().collect::<Vec<_>>(), ["start", "end", "start", "end"], "the limit of 1 was not kept");
    let again = say(&bot, "test cancel 1").await;
    assert!(again.headline.contains("test run #1 already ended: passed"), "{}", again.headline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_suite_is_cancelled_and_its_process_stopped() {
    let ws = Ws::new();
    suite(&ws, "long", "echo started\nsleep 30\n", "");
    let bot = bot(&ws).await;
    let mut finished = bot.jobs().subscribe();
    say(&bot, "test run long").await;
    let started = Instant::now();
    loop {
        let j = bot.store().job_get(1).await.unwrap().unwrap();
        if j.state == lazyops::store::jobs::JobState::Running {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = say(&bot, "test cancel 1").await;
    assert_eq!(r.headline, "stopping test run #1");
    let o = tokio::time::timeout(Duration::from_secs(10), finished.recv()).await.expect("ends").expect("recv");
    assert_eq!(o.state.name(), "cancelled");
    assert_eq!(o.place, "local:terminal");
    let note = lazyops::jobs::notification(&o);
    assert!(note.headline.starts_with("test run #1 (long on prod) cancelled after"), "{}", note.headline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_suite_is_triggered_and_polled_until_the_ci_says_done() {
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let app = Router::new()
        .route(
            "/ci/runs",
            post(|headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer ci-secret"));
                assert_eq!(body["suite"], "remote");
                assert_eq!(body["env"], "staging");
                axum::Json(json!({"run": {"id": 991}}))
            }),
        )
        .route(
            "/ci/runs/{id}",
            get(move |axum::extract::Path(id): axum::extract::Path<u64>| {
                let p = p.clone();
                async move {
                    assert_eq!(id, 991);
                    let n = p.fetch_add(1, Ordering::SeqCst);
                    let state = if n < 1 { "in_progress" } else { "success" };
                    axum::Json(json!({"state": state, "log_url": "https://ci.example/991"}))
                }
            }),
        );
    let base = serve(app).await;
    let ws = Ws::new();
    append(
        &ws,
        &format!(
            "\n[suites.remote]\ntimeout_secs = 20\n[suites.remote.http]\ntrigger = \"{base}/ci/runs\"\npoll = \"{base}/ci/runs/{{id}}\"\n\
             id_pointer = \"/run/id\"\nstate_pointer = \"/state\"\noutput_pointer = \"/log_url\"\npoll_secs = 1\ntoken = \"env:CI_TOKEN\"\n"
        ),
    );
    // SAFETY of the test: the variable is read by the run this test starts, in this process.
    unsafe { std::env::set_var("CI_TOKEN", "ci-secret") };
    let bot = bot(&ws).await;
    let mut finished = bot.jobs().subscribe();
    let r = say(&bot, "test run remote staging").await;
    assert_eq!(r.headline, "started test run #1: remote on staging");
    let o = tokio::time::timeout(Duration::from_secs(15), finished.recv()).await.expect("ends").expect("recv");
    assert_eq!(o.state.name(), "passed", "{o:?}");
    assert_eq!(o.detail, "CI run 991: success");
    let j = bot.store().job_get(1).await.unwrap().unwrap();
    assert_eq!(j.output.as_deref(), Some("https://ci.example/991"));
    assert!(polls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_rows_work_on_postgres_with_two_instances_claiming_slots() {
    let Some(admin) = postgres_url() else { return };
    let db = ServerDb::create(&admin, false, "SELECT 1;").await;
    let a = lazyops::store::Store::open(&db.url).await.expect("store a");
    let b = lazyops::store::Store::open(&db.url).await.expect("store b");
    use lazyops::store::jobs::{Cancel, NewJob};
    let new = |owner: &'static str| NewJob {
        kind: "test",
        name: "smoke",
        env: "prod",
        requester: "local:a",
        place: "local:terminal",
        owner,
    };
    let (na, nb) = (new("host:1:a"), new("host:2:b"));
    let (x, y) = tokio::join!(a.job_create(&na, 1000), b.job_create(&nb, 1000));
    let (x, y) = (x.expect("create x"), y.expect("create y"));
    assert_ne!(x, y, "two instances took the same id");
    let (cx, cy) = tokio::join!(
        a.job_claim(x, "test", "smoke", 1, "host:1:a", 2000),
        b.job_claim(y, "test", "smoke", 1, "host:2:b", 2000)
    );
    assert_eq!(u8::from(cx.unwrap()) + u8::from(cy.unwrap()), 1, "exactly one run may start with a limit of 1");
    let gone = a.job_interrupt_gone(100_000, |owner, _| owner == "host:2:b").await.expect("interrupt");
    assert_eq!(gone, vec![y]);
    assert_eq!(
        a.job_cancel(y, "local:a", 100_001).await.unwrap(),
        Cancel::AlreadyFinished(lazyops::store::jobs::JobState::Interrupted)
    );
    drop((a, b));
    db.drop_db().await;
}
