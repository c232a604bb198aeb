//! Connection pools to the target databases: one small pool per (database, environment),
//! created on first use, whose every session is read-only and time-limited before a query
//! runs. A URL lives only inside its pool's connect options: it is never logged, never put in
//! an error, and a changed URL (hot reload, a new `env:` value) gets a fresh pool.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{Connection, Database};

use super::file::Dialect;
use super::run::QueryError;
use crate::store::redact;
use crate::workspace::Workspace;

/// Small: these are for a handful of people's lookups, not for load.
const MAX_CONNECTIONS: u32 = 4;
/// How long a query waits for a connection, connecting included.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A connection idle longer than this is pinged before use; a warm one is not, to keep the
/// overhead per query low.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// A target database in one environment, as replies and errors name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub database: String,
    pub env: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({})", self.database, self.env)
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

impl Pool {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::Mysql(_) => Dialect::Mysql,
        }
    }
}

struct Entry {
    /// A hash of the URL and session settings the pool was made with.
    fingerprint: u64,
    pool: Pool,
}

/// The bot's pools, shared by every message.
#[derive(Default)]
pub struct Pools {
    pools: Mutex<HashMap<Target, Entry>>,
}

impl Pools {
    pub fn new() -> Pools {
        Pools::default()
    }

    /// Closes every pool gracefully, for shutdown.
    pub async fn close(&self) {
        let pools: Vec<Pool> = match self.pools.lock() {
            Ok(mut p) => p.drain().map(|(_, e)| e.pool).collect(),
            Err(poisoned) => poisoned.into_inner().drain().map(|(_, e)| e.pool).collect(),
        };
        for pool in pools {
            match pool {
                Pool::Sqlite(p) => p.close().await,
                Pool::Postgres(p) => p.close().await,
                Pool::Mysql(p) => p.close().await,
            }
        }
    }

    /// The pool for `target`, made on first use; no connection is opened here.
    pub(crate) fn get(&self, ws: &Workspace, target: &Target) -> Result<Pool, QueryError> {
        let urls = ws
            .config
            .databases
            .get(&target.database)
            .ok_or_else(|| QueryError::UnknownDatabase { database: target.database.clone() })?;
        let configured = urls.get(&target.env).ok_or_else(|| QueryError::NoUrl {
            target: target.clone(),
            available: urls.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let url = ws
            .resolve_url(configured)
            .map_err(|e| QueryError::Url { target: target.clone(), reason: e.to_string() })?;
        let timeout_ms = ws.config.bot.query_timeout_ms;
        let fingerprint = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&url, timeout_ms).hash(&mut h);
            h.finish()
        };
        let mut pools = match self.pools.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(e) = pools.get(target)
            && e.fingerprint == fingerprint
        {
            return Ok(e.pool.clone());
        }
        let pool = open(&url, timeout_ms).map_err(|reason| QueryError::Url { target: target.clone(), reason })?;
        pools.insert(target.clone(), Entry { fingerprint, pool: pool.clone() });
        Ok(pool)
    }
}

fn pool_options<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// A lazy pool for a resolved URL. The reason on failure never contains the URL.
fn open(url: &str, timeout_ms: u64) -> Result<Pool, String> {
    let bad = |e: sqlx::Error| format!("the URL is not valid: {}", redact(&e.to_string()));
    match Dialect::of_url(url) {
        Some(Dialect::Sqlite) => {
            // Opened read-only by SQLite itself, and `query_only` refuses writes on top.
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(bad)?
                .read_only(true)
                .create_if_missing(false)
                .pragma("query_only", "ON")
                .busy_timeout(Duration::from_millis(timeout_ms.min(5000)));
            Ok(Pool::Sqlite(pool_options().connect_lazy_with(opts)))
        }
        Some(Dialect::Postgres) => {
            // Every transaction of these sessions is read-only unless it says otherwise, and
            // every statement has a time limit, from the first byte on.
            let timeout = timeout_ms.to_string();
            let opts = PgConnectOptions::from_str(url).map_err(bad)?.application_name("lazyops").options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", timeout.as_str()),
                ("idle_in_transaction_session_timeout", "60000"),
                ("TimeZone", "UTC"),
                // The static check reads '…' strings with backslashes as plain characters.
                ("standard_conforming_strings", "on"),
            ]);
            Ok(Pool::Postgres(pool_options().connect_lazy_with(opts)))
        }
        Some(Dialect::Mysql) => {
            let opts = MySqlConnectOptions::from_str(url).map_err(bad)?;
            let pool = pool_options()
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET SESSION TRANSACTION READ ONLY").execute(&mut *conn).await?;
                        // The static check reads strings with backslash escapes, as MySQL does
                        // by default: a server-wide NO_BACKSLASH_ESCAPES would end a string
                        // where the check sees none, and run what it took for string text.
                        sqlx::query("SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')")
                            .execute(&mut *conn)
                            .await?;
                        mysql_timeout(conn, timeout_ms).await
                    })
                })
                .connect_lazy_with(opts);
            Ok(Pool::Mysql(pool))
        }
        None => Err("the URL must start with sqlite:, postgres: or mysql:".into()),
    }
}

/// Sets the session's statement time limit: MariaDB's `max_statement_time` (seconds), else
/// MySQL's `max_execution_time` (milliseconds).
pub(crate) async fn mysql_timeout(conn: &mut MySqlConnection, ms: u64) -> Result<(), sqlx::Error> {
    let mariadb = sqlx::query("SET SESSION max_statement_time = ?").bind(ms as f64 / 1000.0).execute(&mut *conn).await;
    match mariadb {
        Ok(_) => Ok(()),
        // 1193: unknown system variable, so this is MySQL rather than MariaDB.
        Err(sqlx::Error::Database(e))
            if e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|m| m.number() == 1193) =>
        {
            sqlx::query("SET SESSION max_execution_time = ?").bind(ms).execute(&mut *conn).await.map(drop)
        }
        Err(e) => Err(e),
    }
}
