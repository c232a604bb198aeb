//! Running a predefined query against its target database: values bound (never spliced), in a
//! read-only transaction that is always rolled back, under a statement time limit enforced by
//! the database (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`, a SQLite progress
//! handler) and by a client-side backstop, reading at most `max_rows` rows.
//!
//! Invariant: nothing here commits, and no error message carries a URL or a password.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;
use sqlx::mysql::MySqlPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Column, Connection, Database, Executor, Row, SqlSafeStr, Statement};

use super::cell;
use super::file::QueryFile;
use super::pools::{ACQUIRE_TIMEOUT, Pool, Pools, Target, mysql_timeout};
use crate::command::Params;
use crate::param::ParamValue;
use crate::store::redact;
use crate::workspace::Workspace;

/// The client-side backstop: the database's own limit should always fire first.
const BACKSTOP: Duration = Duration::from_secs(2);
/// After the row cap, the rest is counted for this long so the reply can say "of 51".
const COUNT_REST_FOR: Duration = Duration::from_millis(50);
const COUNT_REST_MAX: usize = 100_000;
/// How often (in SQLite VM steps) the progress handler checks the clock.
const SQLITE_PROGRESS_OPS: i32 = 10_000;

/// A query's result, ready to show.
#[derive(Debug)]
pub struct Outcome {
    pub target: Target,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Set when the query had more rows than its `max_rows`.
    pub more: Option<More>,
    pub elapsed: Duration,
}

/// How many rows a capped query had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    /// The rest was counted: the query returns this many in all.
    Exactly(usize),
    /// The rest was abandoned unread.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database `{database}` is not in the config's `[databases]`")]
    UnknownDatabase { database: String },
    #[error("database `{}` has no URL for environment `{}`; it has {available}", target.database, target.env)]
    NoUrl { target: Target, available: String },
    #[error("cannot use database {target}: {reason}")]
    Url { target: Target, reason: String },
    #[error("cannot connect to database {target}: {reason}")]
    Connect { target: Target, reason: String },
    #[error("database {target} refused the login: {reason}")]
    Login { target: Target, reason: String },
    #[error("all connections to database {target} are busy; try again in a moment")]
    Busy { target: Target },
    #[error(
        "query `{query}` was stopped at its {ms} ms time limit; narrow it with parameters, or ask an admin to raise `timeout_ms` in the query file"
    )]
    Timeout { query: String, ms: u64 },
    #[error("database {target} could not run query `{query}`: {reason}")]
    Database { target: Target, query: String, reason: String },
    #[error("query `{query}` has no value for its param `{param}`")]
    MissingParam { query: String, param: String },
    #[error("query `{query}` is not run on database {target}: {reason}")]
    Unsafe { target: Target, query: String, reason: String },
}

impl QueryError {
    /// Whether the user can act on the message; the others are bugs.
    pub fn is_internal(&self) -> bool {
        matches!(self, QueryError::MissingParam { .. })
    }
}

/// Runs `q` with checked `params` in `env`, after checking its SQL again for the dialect of
/// the URL it resolves to now: an `env:NAME` URL may name another engine than the one the
/// file was last checked for.
pub async fn checked(
    pools: &Pools,
    ws: &Workspace,
    q: &QueryFile,
    params: &Params,
    env: &str,
) -> Result<Outcome, QueryError> {
    let target = Target { database: q.database.clone(), env: env.to_string() };
    let dialect = pools.get(ws, &target)?.dialect();
    if let Err(e) = super::safety::check(q, dialect, ws.config.bot.functions()) {
        return Err(QueryError::Unsafe { target, query: q.name.clone(), reason: e.to_string() });
    }
    run(pools, ws, q, params, env).await
}

/// Runs `q` with checked `params` in `env`: the database's layers of read-only (transaction,
/// timeout, row cap) without the static check, which [`checked`] adds.
pub async fn run(
    pools: &Pools,
    ws: &Workspace,
    q: &QueryFile,
    params: &Params,
    env: &str,
) -> Result<Outcome, QueryError> {
    let started = Instant::now();
    let target = Target { database: q.database.clone(), env: env.to_string() };
    let pool = pools.get(ws, &target)?;
    let prepared = q.prepare(pool.dialect()).map_err(|reason| QueryError::Database {
        target: target.clone(),
        query: q.name.clone(),
        reason,
    })?;
    let values = prepared
        .binds
        .iter()
        .map(|name| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .or_else(|| q.param(name).and_then(|p| p.default.as_ref()))
                .ok_or_else(|| QueryError::MissingParam { query: q.name.clone(), param: name.clone() })
        })
        .collect::<Result<Vec<&ParamValue>, _>>()?;
    let session_ms = ws.config.bot.query_timeout_ms;
    let job = Job {
        sql: prepared.sql.into(),
        values,
        max_rows: q.max_rows,
        timeout_ms: q.timeout_ms.unwrap_or(session_ms),
        session_ms,
        target,
        query: &q.name,
    };
    let table = match &pool {
        Pool::Sqlite(p) => on_sqlite(p, &job).await,
        Pool::Postgres(p) => on_postgres(p, &job).await,
        Pool::Mysql(p) => on_mysql(p, &job).await,
    }?;
    Ok(Outcome {
        target: job.target,
        columns: table.columns,
        rows: table.rows,
        more: table.more,
        elapsed: started.elapsed(),
    })
}

/// One execution: the SQL in the driver's style and its values in bind order.
struct Job<'a> {
    sql: std::sync::Arc<str>,
    values: Vec<&'a ParamValue>,
    max_rows: usize,
    timeout_ms: u64,
    /// The limit every pooled session already has.
    session_ms: u64,
    target: Target,
    query: &'a str,
}

impl Job<'_> {
    fn sql(&self) -> sqlx::SqlStr {
        AssertSqlSafe(self.sql.clone()).into_sql_str()
    }

    fn backstop(&self) -> Duration {
        Duration::from_millis(self.timeout_ms) + BACKSTOP
    }

    fn failed(&self, e: sqlx::Error) -> QueryError {
        if is_timeout(&e) {
            return QueryError::Timeout { query: self.query.to_string(), ms: self.timeout_ms };
        }
        let reason = match &e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        };
        QueryError::Database { target: self.target.clone(), query: self.query.to_string(), reason: redact(&reason) }
    }
}

#[derive(Default)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    more: Option<More>,
    /// The result was read to its end, so the connection is ready for the next command.
    finished: bool,
}

/// Reads up to `max_rows` rows; one more means the query was capped.
async fn collect<R: Row>(
    mut stream: BoxStream<'_, Result<R, sqlx::Error>>,
    max_rows: usize,
    cells: fn(&R) -> Vec<Value>,
) -> Result<Table, sqlx::Error> {
    let mut table = Table::default();
    while let Some(row) = stream.try_next().await? {
        if table.rows.is_empty() {
            table.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
        }
        if table.rows.len() == max_rows {
            let (more, finished) = count_rest(&mut stream, max_rows + 1).await;
            table.more = Some(more);
            table.finished = finished;
            return Ok(table);
        }
        table.rows.push(cells(&row));
    }
    table.finished = true;
    Ok(table)
}

/// After the cap, counts what still comes for a moment; a query with millions more rows is
/// abandoned instead of read to its end.
async fn count_rest<R>(stream: &mut BoxStream<'_, Result<R, sqlx::Error>>, seen: usize) -> (More, bool) {
    let deadline = tokio::time::sleep(COUNT_REST_FOR);
    tokio::pin!(deadline);
    let mut total = seen;
    while total <= COUNT_REST_MAX {
        tokio::select! {
            biased;
            _ = &mut deadline => break,
            next = stream.try_next() => match next {
                Ok(Some(_)) => total += 1,
                Ok(None) => return (More::Exactly(total), true),
                Err(_) => break,
            },
        }
    }
    (More::Unknown, false)
}

async fn acquire<DB: Database>(pool: &sqlx::Pool<DB>, target: &Target) -> Result<PoolConnection<DB>, QueryError> {
    match pool.acquire().await {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::PoolTimedOut) => Err(why_no_connection(pool, target).await),
        Err(e) => Err(connect_failed(e, target)),
    }
}

/// The pool retries a refused connection until its timeout and then only says "timed out";
/// one direct attempt tells a server that is down from a pool that is busy.
async fn why_no_connection<DB: Database>(pool: &sqlx::Pool<DB>, target: &Target) -> QueryError {
    use sqlx::ConnectOptions;
    let opts = pool.connect_options();
    match tokio::time::timeout(ACQUIRE_TIMEOUT, opts.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            QueryError::Busy { target: target.clone() }
        }
        Ok(Err(e)) => connect_failed(e, target),
        Err(_) => QueryError::Connect {
            target: target.clone(),
            reason: format!("no answer within {} s; is the server up and reachable?", ACQUIRE_TIMEOUT.as_secs()),
        },
    }
}

fn connect_failed(e: sqlx::Error, target: &Target) -> QueryError {
    let target = target.clone();
    match &e {
        sqlx::Error::Database(db) => {
            let reason = redact(db.message());
            // SQLSTATE 28000 / 28P01: invalid authorization (PostgreSQL and MySQL alike).
            if matches!(db.code().as_deref(), Some("28000" | "28P01")) {
                QueryError::Login { target, reason }
            } else {
                QueryError::Connect { target, reason }
            }
        }
        sqlx::Error::Io(io) => QueryError::Connect { target, reason: redact(&io.to_string()) },
        other => QueryError::Connect { target, reason: redact(&other.to_string()) },
    }
}

/// The database stopped the statement at its time limit (or SQLite's progress handler did).
fn is_timeout(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1969: MariaDB max_statement_time; 3024: MySQL max_execution_time.
        return matches!(my.number(), 1969 | 3024);
    }
    // 57014: PostgreSQL query_canceled; 9: SQLITE_INTERRUPT.
    matches!(db.code().as_deref(), Some("57014" | "9"))
}

/// Returns the connection to the pool only when it is known to be clean; a timed-out, failed
/// or abandoned one is closed, which also ends whatever the server was still doing.
fn settle<DB: Database>(
    mut conn: PoolConnection<DB>,
    outcome: Result<Result<Table, sqlx::Error>, tokio::time::error::Elapsed>,
    job: &Job<'_>,
) -> Result<Table, QueryError> {
    match outcome {
        Ok(Ok(table)) => {
            if !table.finished {
                conn.close_on_drop();
            }
            Ok(table)
        }
        Ok(Err(e)) => {
            conn.close_on_drop();
            Err(job.failed(e))
        }
        Err(_) => {
            conn.close_on_drop();
            Err(QueryError::Timeout { query: job.query.to_string(), ms: job.timeout_ms })
        }
    }
}

/// Every transaction here ends in a rollback, but the reply need not wait for it: dropping
/// the transaction queues its ROLLBACK on the connection, and the pool sends it (sqlx pings
/// every released connection, flushing what is queued) before anyone else gets that
/// connection. A connection that is closed instead is rolled back by the server.
fn rollback_later<DB: Database>(tx: sqlx::Transaction<'_, DB>) {
    drop(tx);
}

fn names<C: Column>(columns: &[C]) -> Vec<String> {
    columns.iter().map(|c| c.name().to_string()).collect()
}

async fn on_postgres(pool: &PgPool, job: &Job<'_>) -> Result<Table, QueryError> {
    let mut conn = acquire(pool, &job.target).await?;
    let work = async {
        let mut tx = conn.begin_with("BEGIN READ ONLY").await?;
        if job.timeout_ms != job.session_ms {
            // SET LOCAL, with the value bound.
            sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                .bind(job.timeout_ms.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let mut query = sqlx::query(job.sql());
        for v in &job.values {
            query = match v {
                ParamValue::Int(i) => query.bind(*i),
                ParamValue::Bool(b) => query.bind(*b),
                ParamValue::Date(d) => query.bind(*d),
                ParamValue::Timestamp(t) => query.bind(*t),
                // Decimal and uuid travel as text and are cast in the SQL (see `file::prepare`).
                ParamValue::Text(s) | ParamValue::Decimal(s) => query.bind(s.as_str()),
                ParamValue::Uuid(u) => query.bind(u.to_string()),
            };
        }
        let mut table = collect(query.fetch(&mut *tx), job.max_rows, cell::pg_row).await?;
        if table.finished && table.columns.is_empty() {
            table.columns = names((&mut *tx).prepare(job.sql()).await?.columns());
        }
        rollback_later(tx);
        Ok(table)
    };
    let outcome = tokio::time::timeout(job.backstop(), work).await;
    settle(conn, outcome, job)
}

async fn on_mysql(pool: &MySqlPool, job: &Job<'_>) -> Result<Table, QueryError> {
    let mut conn = acquire(pool, &job.target).await?;
    let own_limit = job.timeout_ms != job.session_ms;
    let work = async {
        if own_limit {
            mysql_timeout(&mut conn, job.timeout_ms).await?;
        }
        let mut tx = conn.begin_with("START TRANSACTION READ ONLY").await?;
        let mut query = sqlx::query(job.sql());
        for v in &job.values {
            query = match v {
                ParamValue::Int(i) => query.bind(*i),
                ParamValue::Bool(b) => query.bind(*b),
                ParamValue::Date(d) => query.bind(*d),
                // The session's time zone is UTC (sqlx sets it), and so is the value.
                ParamValue::Timestamp(t) => query.bind(time::PrimitiveDateTime::new(t.date(), t.time())),
                ParamValue::Text(s) | ParamValue::Decimal(s) => query.bind(s.as_str()),
                ParamValue::Uuid(u) => query.bind(u.to_string()),
            };
        }
        let mut table = collect(query.fetch(&mut *tx), job.max_rows, cell::mysql_row).await?;
        if table.finished && table.columns.is_empty() {
            table.columns = names((&mut *tx).prepare(job.sql()).await?.columns());
        }
        if table.finished && own_limit {
            tx.rollback().await?;
            mysql_timeout(&mut conn, job.session_ms).await?;
        } else {
            rollback_later(tx);
        }
        Ok(table)
    };
    let outcome = tokio::time::timeout(job.backstop(), work).await;
    settle(conn, outcome, job)
}

async fn on_sqlite(pool: &SqlitePool, job: &Job<'_>) -> Result<Table, QueryError> {
    let mut conn = acquire(pool, &job.target).await?;
    let work = async {
        // SQLite has no statement timeout: the progress handler interrupts the statement
        // (SQLITE_INTERRUPT) once the deadline has passed.
        let deadline = Instant::now() + Duration::from_millis(job.timeout_ms);
        conn.lock_handle().await?.set_progress_handler(SQLITE_PROGRESS_OPS, move || Instant::now() < deadline);
        let mut tx = conn.begin().await?;
        let mut query = sqlx::query(job.sql());
        for v in &job.values {
            query = match v {
                ParamValue::Int(i) => query.bind(*i),
                ParamValue::Bool(b) => query.bind(*b),
                // SQLite keeps dates and times as text; these are the forms its own date
                // functions produce and compare with.
                ParamValue::Date(_) => query.bind(v.to_string()),
                ParamValue::Timestamp(t) => query.bind(sqlite_timestamp(*t)),
                ParamValue::Text(s) | ParamValue::Decimal(s) => query.bind(s.as_str()),
                ParamValue::Uuid(u) => query.bind(u.to_string()),
            };
        }
        let mut table = collect(query.fetch(&mut *tx), job.max_rows, cell::sqlite_row).await?;
        if table.columns.is_empty() {
            table.columns = names((&mut *tx).prepare(job.sql()).await?.columns());
        }
        rollback_later(tx);
        // A SQLite statement stops when its reader goes away, so the connection is clean
        // even when the rest of a capped result was not read.
        table.finished = true;
        Ok(table)
    };
    let outcome = tokio::time::timeout(job.backstop(), work).await;
    settle(conn, outcome, job)
}

/// `2026-11-25 14:30:00` (UTC), with a fraction only when there is one.
fn sqlite_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = if t.nanosecond() == 0 {
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")
    } else {
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]")
    };
    t.format(fmt).unwrap_or_default()
}
