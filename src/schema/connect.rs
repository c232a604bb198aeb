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

/// A scratch database to drop after use; [`Scratch::drop_now`] must be called (there is no
/// async drop), and a leftover SQLite file is removed on drop anyway.
pub enum Scratch {
    Sqlite(PathBuf),
    Postgres { admin: PgConnection, name: String },
    Mysql { admin: MySqlConnection, name: String },
}

/// Creates the scratch database next to (never inside) the live one: a temporary file for
/// SQLite, `lazyops_scratch_<random>` on the server `server_url` names otherwise.
pub async fn scratch(engine: Dialect, server_url: Option<&str>) -> Result<(Scratch, Conn), String> {
    let name = format!("lazyops_scratch_{}", uuid::Uuid::new_v4().simple());
    match engine {
        Dialect::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
            let conn = within(opts.connect()).await?;
            Ok((Scratch::Sqlite(path), Conn::Sqlite(conn)))
        }
        Dialect::Postgres => {
            let url = server_url.ok_or("no scratch server")?;
            let opts = PgConnectOptions::from_str(url).map_err(|e| redact(&e.to_string()))?;
            let mut admin = within(opts.connect()).await?;
            let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
            sqlx::query(create).execute(&mut admin).await.map_err(|e| redact(&e.to_string()))?;
            let scratch = Scratch::Postgres { admin, name: name.clone() };
            match within(opts.database(&name).connect()).await {
                Ok(conn) => Ok((scratch, Conn::Postgres(conn))),
                Err(e) => {
                    scratch.drop_now().await;
                    Err(e)
                }
            }
        }
        Dialect::Mysql => {
            let url = server_url.ok_or("no scratch server")?;
            let opts = MySqlConnectOptions::from_str(url).map_err(|e| redact(&e.to_string()))?;
            let mut admin = within(opts.connect()).await?;
            let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`"));
            sqlx::query(create).execute(&mut admin).await.map_err(|e| redact(&e.to_string()))?;
            let scratch = Scratch::Mysql { admin, name: name.clone() };
            match within(opts.database(&name).connect()).await {
                Ok(conn) => Ok((scratch, Conn::Mysql(conn))),
                Err(e) => {
                    scratch.drop_now().await;
                    Err(e)
                }
            }
        }
    }
}

impl Scratch {
    pub async fn drop_now(self) {
        match self {
            Scratch::Sqlite(path) => remove_sqlite(&path),
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
