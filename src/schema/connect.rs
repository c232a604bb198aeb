//! Connections for a schema check: the live database opened read-only, and a scratch database
//! (a temporary SQLite file, or a temporary database on a PostgreSQL or MariaDB server that
//! config names) that exists only for the duration of one check.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, MySqlConnection, PgConnection};

use super::introspect::Conn;
use crate::config::ScratchKind;
use crate::queries::file::Dialect;
use crate::store::redact;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn within<T>(fut: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(redact(&e.to_string())),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// The live database, opened so that it can only be read: a read-only SQLite handle, a
/// PostgreSQL session whose transactions default to read only, a MariaDB session set to
/// READ ONLY.
pub async fn live(url: &str) -> Result<Conn, String> {
    match Dialect::of_url(url) {
        Some(Dialect::Sqlite) => {
            let opts = SqliteConnectOptions::from_str(url).map_err(|e| redact(&e.to_string()))?.read_only(true);
            Ok(Conn::Sqlite(within(opts.connect()).await?))
        }
        Some(Dialect::Postgres) => {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| redact(&e.to_string()))?
                .options([("default_transaction_read_only", "on"), ("statement_timeout", "30000")]);
            Ok(Conn::Postgres(within(opts.connect()).await?))
        }
        Some(Dialect::Mysql) => {
            let opts = MySqlConnectOptions::from_str(url).map_err(|e| redact(&e.to_string()))?;
            let mut c = within(opts.connect()).await?;
            sqlx::query("SET SESSION TRANSACTION READ ONLY")
                .execute(&mut c)
                .await
                .map_err(|e| redact(&e.to_string()))?;
            Ok(Conn::Mysql(c))
        }
        None => Err("the URL must start with sqlite:, postgres: or mysql:".into()),
    }
}

/// A scratch database to get rid of after use with [`Scratch::finish`] (there is no async
/// drop; a leftover SQLite file is removed anyway, and a rolled-back schema leaves nothing).
pub enum Scratch {
    Sqlite(PathBuf),
    /// A schema created inside a transaction that is rolled back.
    PostgresSchema,
    Postgres {
        admin: PgConnection,
        name: String,
    },
    Mysql {
        admin: MySqlConnection,
        name: String,
    },
}

/// Creates the scratch database next to (never inside) the live one: a temporary file for
/// SQLite; on the server `server_url` names otherwise, a rolled-back schema or a database
/// `lazyops_scratch_<random>`.
pub async fn scratch(engine: Dialect, server_url: Option<&str>, kind: ScratchKind) -> Result<(Scratch, Conn), String> {
    let name = format!("lazyops_scratch_{}", uuid::Uuid::new_v4().simple());
    let err = |e: sqlx::Error| redact(&e.to_string());
    match engine {
        Dialect::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
            let conn = within(opts.connect()).await?;
            Ok((Scratch::Sqlite(path), Conn::Sqlite(conn)))
        }
        Dialect::Postgres if kind == ScratchKind::Schema => {
            let url = server_url.ok_or("no scratch server")?;
            let opts = PgConnectOptions::from_str(url).map_err(err)?;
            let mut conn = within(opts.connect()).await?;
            // Unqualified names land in the scratch schema; functions and types of `public`
            // (extensions) stay reachable.
            let setup = format!("BEGIN; CREATE SCHEMA \"{name}\"; SET LOCAL search_path TO \"{name}\", public");
            sqlx::raw_sql(sqlx::AssertSqlSafe(setup)).execute(&mut conn).await.map_err(err)?;
            Ok((Scratch::PostgresSchema, Conn::Postgres(conn)))
        }
        Dialect::Postgres => {
            let url = server_url.ok_or("no scratch server")?;
            let opts = PgConnectOptions::from_str(url).map_err(err)?;
            let mut admin = within(opts.connect()).await?;
            let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
            sqlx::query(create).execute(&mut admin).await.map_err(err)?;
            let scratch = Scratch::Postgres { admin, name: name.clone() };
            // A scratch database is thrown away: no commit waits for the disk.
            let opts = opts.database(&name).options([("synchronous_commit", "off")]);
            match within(opts.connect()).await {
                Ok(conn) => Ok((scratch, Conn::Postgres(conn))),
                Err(e) => {
                    scratch.drop_database().await;
                    Err(e)
                }
            }
        }
        Dialect::Mysql => {
            let url = server_url.ok_or("no scratch server")?;
            let opts = MySqlConnectOptions::from_str(url).map_err(err)?;
            let mut admin = within(opts.connect()).await?;
            let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`"));
            sqlx::query(create).execute(&mut admin).await.map_err(err)?;
            let scratch = Scratch::Mysql { admin, name: name.clone() };
            match within(opts.database(&name).connect()).await {
                Ok(conn) => Ok((scratch, Conn::Mysql(conn))),
                Err(e) => {
                    scratch.drop_database().await;
                    Err(e)
                }
            }
        }
    }
}

impl Scratch {
    /// Closes the scratch connection and removes what the check created.
    /// A scratch schema needs no ROLLBACK: the server aborts the open transaction when the
    /// socket closes, and the check does not wait for that (it takes as long as the
    /// migrations did).
    pub async fn finish(self, conn: Conn) {
        match self {
            Scratch::PostgresSchema => drop(conn),
            _ => conn.close().await,
        }
        self.drop_database().await;
    }

    async fn drop_database(self) {
        match self {
            Scratch::Sqlite(path) => remove_sqlite(&path),
            Scratch::PostgresSchema => {}
            Scratch::Postgres { mut admin, name } => {
                let sql = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
                if let Err(e) = sqlx::query(sql).execute(&mut admin).await {
                    tracing::warn!(database = %name, error = %e, "scratch database not dropped");
                }
                let _ = admin.close().await;
            }
            Scratch::Mysql { mut admin, name } => {
                let sql = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`"));
                if let Err(e) = sqlx::query(sql).execute(&mut admin).await {
                    tracing::warn!(database = %name, error = %e, "scratch database not dropped");
                }
                let _ = admin.close().await;
            }
        }
    }
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
