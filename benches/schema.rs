//! `db schema check` of a 50-table schema on PostgreSQL, scratch database included: create the
//! temporary database, apply the migrations, introspect both sides, diff, drop (target ≤ 2 s).
//!
//! LAZYOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench schema

use std::fmt::Write as _;
use std::sync::OnceLock;

use sqlx::Connection;

const TABLES: usize = 50;

/// 50 tables of 8 columns: a primary key, a unique email, a default, a foreign key to the
/// table before, and an index; spread over 5 migration files.
fn migrations() -> Vec<String> {
    let mut files = vec![String::new(); 5];
    for i in 0..TABLES {
        let fk = if i == 0 {
            String::new()
        } else {
            format!(", parent_id BIGINT REFERENCES t{:02}(id) ON DELETE CASCADE", i - 1)
        };
        let _ = write!(
            files[i / 10],
            "CREATE TABLE t{i:02} (id BIGSERIAL PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, name TEXT NOT NULL, \
             status VARCHAR(32) NOT NULL DEFAULT 'active', amount_cents BIGINT NOT NULL DEFAULT 0, note TEXT, \
             created_at TIMESTAMPTZ NOT NULL DEFAULT now(){fk});\n\
             CREATE INDEX t{i:02}_by_status ON t{i:02} (status, created_at);\n"
        );
    }
    files
}

struct Setup {
    _dir: tempfile::TempDir,
    ws: lazyops::workspace::Workspace,
    rt: tokio::runtime::Runtime,
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let Ok(admin) = std::env::var("LAZYOPS_TEST_POSTGRES_URL") else {
                eprintln!("skipping: LAZYOPS_TEST_POSTGRES_URL is not set");
                return None;
            };
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let dir = tempfile::tempdir().expect("temp dir");
            let files = migrations();
            std::fs::create_dir_all(dir.path().join("migrations")).expect("mkdir");
            for (i, sql) in files.iter().enumerate() {
                std::fs::write(dir.path().join(format!("migrations/{:04}_tables.sql", i + 1)), sql).expect("write");
            }
            let live_name = "lazyops_bench_schema_live";
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_string();
            let live = format!("{base}/{live_name}");
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {live_name} WITH (FORCE)")))
                    .execute(&mut c)
                    .await
                    .expect("drop");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {live_name}")))
                    .execute(&mut c)
                    .await
                    .expect("create");
                let mut l = sqlx::PgConnection::connect(&live).await.expect("connect live");
                sqlx::raw_sql(sqlx::AssertSqlSafe(files.concat())).execute(&mut l).await.expect("live schema");
            });
            let config = format!(
                "[envs.prod]\n[services.big]\ndatabase = \"big\"\nmigrations = \"migrations\"\n\
                 [services.big.schema]\nscratch_url = \"{admin}\"\n[databases.big]\nprod = \"{live}\"\n"
            );
            std::fs::write(dir.path().join("lazyops.toml"), config).expect("config");
            let ws = lazyops::workspace::Workspace::load(&dir.path().join("lazyops.toml")).expect("workspace");
            Some(Setup { _dir: dir, ws, rt })
        })
        .as_ref()
}

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn schema_check_50_tables_postgres(bencher: divan::Bencher) {
    let Some(s) = setup() else { return };
    bencher.bench(|| {
        let report = s.rt.block_on(lazyops::schema::check(&s.ws, "big", "prod")).expect("schema check");
        assert!(report.matches(), "{}", report.summary());
        assert_eq!(report.tables, TABLES);
    });
}
