//! lazyops' overhead around a predefined 1-row query, pool warm, against the same query run
//! with bare sqlx: `user-by-id user_id=42` on the demo data, on SQLite and PostgreSQL.
//!
//! `LAZYOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench query`
//!
//! The lazyops side adds: URL resolution and the pool lookup, placeholder rewriting, the
//! read-only transaction (BEGIN READ ONLY … ROLLBACK), the SQLite progress handler, and
//! decoding every cell to a display value.

use std::path::Path;

use divan::Bencher;
use lazyops::command::Params;
use lazyops::demo::{self, DemoDb};
use lazyops::param::ParamValue;
use lazyops::queries::pools::Pools;
use lazyops::workspace::{self, Workspace};
use sqlx::Connection;

fn main() {
    divan::main();
}

const SQL: &str = "SELECT id, email, name, status, created_at FROM users WHERE id = ? ORDER BY id";
const PG_SQL: &str = "SELECT id, email, name, status, created_at FROM users WHERE id = $1 ORDER BY id";

type UserRow = (i64, String, String, String, time::PrimitiveDateTime);

struct Setup {
    rt: tokio::runtime::Runtime,
    ws: Workspace,
    pools: Pools,
    params: Params,
    _dir: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.rt.block_on(self.pools.close());
    }
}

impl Setup {
    /// The demo workspace, its `users` prod database replaced by `url` when given.
    fn new(url: Option<&str>) -> Setup {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        rt.block_on(workspace::write_demo(dir.path(), true)).expect("demo workspace");
        let config = dir.path().join("lazyops.toml");
        if let Some(url) = url {
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text.replacen("prod = \"sqlite://demo/users.db\"", &format!("prod = \"{url}\""), 1);
            std::fs::write(&config, text).expect("config");
        }
        let ws = Workspace::load(&config).expect("workspace loads");
        let params = vec![("user_id".to_string(), ParamValue::Int(42))];
        Setup { rt, ws, pools: Pools::new(), params, _dir: dir }
    }

    fn lazyops(&self) -> usize {
        let q = &self.ws.catalog.queries["user-by-id"];
        let out = self
            .rt
            .block_on(lazyops::queries::run::run(&self.pools, &self.ws, q, &self.params, "prod"))
            .expect("query runs");
        assert_eq!(out.rows.len(), 1);
        out.rows.len()
    }
}

#[divan::bench]
fn sqlite_bare_sqlx(b: Bencher) {
    let s = Setup::new(None);
    let path = s.ws.root.join("demo/users.db");
    let pool = s.rt.block_on(bare_sqlite(&path));
    let run = || {
        let rows: Vec<UserRow> =
            s.rt.block_on(sqlx::query_as::<sqlx::Sqlite, UserRow>(SQL).bind(42i64).fetch_all(&pool))
                .expect("query runs");
        assert_eq!(rows.len(), 1);
        rows.len()
    };
    for _ in 0..20 {
        run();
    }
    b.bench_local(run);
}

async fn bare_sqlite(path: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    sqlx::pool::PoolOptions::<sqlx::Sqlite>::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(opts)
        .await
        .expect("open sqlite")
}

#[divan::bench]
fn sqlite_lazyops(b: Bencher) {
    let s = Setup::new(None);
    for _ in 0..20 {
        s.lazyops();
    }
    b.bench_local(|| s.lazyops());
}

/// A PostgreSQL database with the demo rows, dropped at the end.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    fn new(rt: &tokio::runtime::Runtime) -> Option<PgDb> {
        let admin = std::env::var("LAZYOPS_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!("lazyops_bench_{}", uuid::Uuid::new_v4().simple());
        let (base, _) = admin.rsplit_once('/')?;
        let url = format!("{base}/{name}");
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create database");
            let pool = sqlx::PgPool::connect(&url).await.expect("connect bench database");
            let data = demo::generate(time::OffsetDateTime::now_utc(), 42, 120);
            demo::seed(&DemoDb::Postgres(pool.clone()), &data).await.expect("seed");
            pool.close().await;
        });
        Some(PgDb { admin, name, url })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
            }
        });
    }
}

#[divan::bench]
fn postgres_bare_sqlx(b: Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(db) = PgDb::new(&rt) else {
        eprintln!("skipping: LAZYOPS_TEST_POSTGRES_URL is not set");
        return b.bench(|| ());
    };
    let pool = rt
        .block_on(
            sqlx::pool::PoolOptions::<sqlx::Postgres>::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect(&db.url),
        )
        .expect("pool");
    let run = || {
        let rows: Vec<UserRow> = rt
            .block_on(sqlx::query_as::<sqlx::Postgres, UserRow>(PG_SQL).bind(42i64).fetch_all(&pool))
            .expect("query runs");
        assert_eq!(rows.len(), 1);
        rows.len()
    };
    for _ in 0..20 {
        run();
    }
    b.bench_local(run);
    rt.block_on(pool.close());
}

#[divan::bench]
fn postgres_lazyops(b: Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(db) = PgDb::new(&rt) else {
        eprintln!("skipping: LAZYOPS_TEST_POSTGRES_URL is not set");
        return b.bench(|| ());
    };
    drop(rt);
    let s = Setup::new(Some(&db.url));
    for _ in 0..20 {
        s.lazyops();
    }
    b.bench_local(|| s.lazyops());
}
