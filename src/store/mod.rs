//! The bot's own database: confirmations, approvals, audit, event dedup, conversations and TODOs.
//! One code path for SQLite (the default file) and PostgreSQL (several instances) through
//! sqlx's `Any` driver; the SQL here runs unchanged on both. Times are Unix milliseconds,
//! always passed in so tests can move the clock.

pub mod approval;
pub mod audit;
pub mod confirm;
pub mod jobs;
pub mod meme;
pub mod todo;
mod wal;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};

/// The migrations, embedded in order. Append only: an applied migration is history.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "state", include_str!("../../migrations/0001_state.sql")),
    (2, "chores", include_str!("../../migrations/0002_chores.sql")),
    (3, "jobs", include_str!("../../migrations/0003_jobs.sql")),
    (4, "llm", include_str!("../../migrations/0004_llm.sql")),
    (5, "approvals", include_str!("../../migrations/0005_approvals.sql")),
    (6, "events_expiry", include_str!("../../migrations/0006_events_expiry.sql")),
];

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the bot's state database is unavailable ({0}); nothing was run")]
    Unavailable(String),
    #[error("the bot's state database failed: {0}")]
    Query(String),
    #[error("the bot's state database could not be migrated: {0}")]
    Migrate(String),
}

/// How long one write of the audit log may wait for the state database before it is given up
/// as unavailable. A database that hangs (a network that drops packets and closes nothing)
/// would otherwise hold every request that writes a row, and its place among the commands in
/// flight, for ever. 10 s is far past a write's usual milliseconds even on a loaded machine.
pub(crate) const STATE_LIMIT: Duration = Duration::from_secs(10);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(redact(&e.to_string()))
            }
            // Another process held SQLite's write lock past the busy timeout: the database is
            // there but cannot be written now, which is what the user needs to hear.
            sqlx::Error::Database(db) if sqlite_busy(db.code().as_deref(), db.message()) => {
                StoreError::Unavailable(redact(db.message()))
            }
            other => StoreError::Query(redact(&other.to_string())),
        }
    }
}

/// SQLITE_BUSY and SQLITE_LOCKED with their extended codes (`BUSY_RECOVERY`, `BUSY_SNAPSHOT`,
/// `LOCKED_SHAREDCACHE`).
fn sqlite_busy(code: Option<&str>, message: &str) -> bool {
    matches!(code, Some("5" | "6" | "261" | "517" | "262")) || message.contains("database is locked")
}

/// Passwords in URLs never reach a message or a log line: `crate::redact::redact`, under the
/// name the database code has always called it by.
pub fn redact(text: &str) -> String {
    crate::redact::redact(text)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    postgres: bool,
    /// The audit log's writer task (see `audit::spawn_writer`).
    audit: tokio::sync::mpsc::Sender<audit::Job>,
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(v, name, sql)| {
            Migration::new(*v, Cow::Borrowed(*name), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

impl Store {
    /// Connects and applies migrations (two instances starting at once is safe: sqlx takes an
    /// advisory lock on PostgreSQL, and SQLite serialises writers).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let postgres = url.starts_with("postgres");
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_string()
        };
        if let Some(path) = url.strip_prefix("sqlite://").and_then(|p| p.split('?').next())
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let opts = sqlx::any::AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Unavailable(redact(&e.to_string())))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if postgres { 8 } else { 4 })
            .acquire_timeout(Duration::from_secs(3))
            // A SQLite connection lives in this process and cannot drop: pinging it before each
            // use only doubled the round trips to its worker thread.
            .test_before_acquire(postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !postgres {
                        // Concurrent writers wait instead of failing with SQLITE_BUSY.
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        // With WAL, NORMAL syncs at checkpoints, not on every commit: a crash
                        // keeps the database whole and the reply path skips two fsyncs.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        // Checkpoints run in the background instead (store::wal).
                        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let audit = audit::spawn_writer(pool.clone(), postgres);
        let store = Store { pool, postgres, audit };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies what is not applied yet. Two processes opening a new SQLite file at once both
    /// find it unmigrated (SQLite has no advisory lock): the loser's migration transaction
    /// fails ("table … already exists") and rolls back, and a second look finds the winner's
    /// migrations applied. A real failure fails every try.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tries = 0;
        loop {
            match migrator().run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if !self.postgres && tries < 3 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                Err(e) => return Err(StoreError::Migrate(redact(&e.to_string()))),
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Records a delivery of a retried event; false when it was seen before (drop it).
    pub async fn first_delivery(
        &self,
        source: &str,
        event_id: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM events WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        let expires = now + ttl.as_millis() as i64;
        let done =
            sqlx::query("INSERT INTO events (source, event_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(source)
                .bind(event_id)
                .bind(expires)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The conversation state of a thread for one person, if not expired.
    pub async fn conversation(&self, place: &str, who: &str, now: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM conversations WHERE place = $1 AND who = $2 AND expires_at > $3")
                .bind(place)
                .bind(who)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Replaces a thread's state only if it is still `expected`: one of two presses of the same
    /// choice, on any instance, wins.
    pub async fn swap_conversation(
        &self,
        place: &str,
        who: &str,
        expected: &str,
        state: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE conversations SET state = $1 WHERE place = $2 AND who = $3 AND state = $4 AND expires_at > $5",
        )
        .bind(state)
        .bind(place)
        .bind(who)
        .bind(expected)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_conversation(
        &self,
        place: &str,
        who: &str,
        state: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversations (place, who, state, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (place, who) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at",
        )
        .bind(place)
        .bind(who)
        .bind(state)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_opening_a_new_sqlite_file_at_once_all_start() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/s.db", dir.path().display());
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let url = url.clone();
                    tokio::spawn(async move { Store::open(&url).await.map(drop) })
                })
                .collect();
            for open in opens {
                open.await.unwrap().unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_retried_event_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        let ttl = Duration::from_secs(600);
        assert!(store.first_delivery("slack", "Ev1", ttl, 1000).await.unwrap());
        assert!(!store.first_delivery("slack", "Ev1", ttl, 2000).await.unwrap());
        assert!(store.first_delivery("github", "Ev1", ttl, 2000).await.unwrap());
        // After expiry the id may come back (a new event that reuses it).
        assert!(store.first_delivery("slack", "Ev1", ttl, 1000 + 600_001).await.unwrap());
    }
}
