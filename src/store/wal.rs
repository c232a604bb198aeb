//! SQLite write-ahead-log checkpoints, off the reply path. With SQLite's automatic checkpoint,
//! the commit that crosses 1,000 WAL pages copies them into the database file and syncs it
//! while every message in that group commit waits for its audit row (measured: p99 latency of
//! a signed slash command 6.5 ms with it, 3.4 ms with no checkpoint at all). So connections
//! turn the automatic checkpoint off, and after commits the audit writer asks for one here,
//! which runs on a pool connection of its own, at most every `EVERY`, while writers go on.
//! Measured p99 (bench/slack.sh): every 100 ms with a restart past 2,048 pages 3.9-4.8 ms;
//! every 250 ms / 4,096 pages 4.4-5.5 ms; every second / 16,384 pages 5.3-5.7 ms; every
//! 50 ms / 1,024 pages 3.4-4.9 ms (no better, more checkpoints).

use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::task::JoinHandle;

/// How often a checkpoint may start.
const EVERY: Duration = Duration::from_millis(100);
/// A passive checkpoint never waits for writers, so under constant load the log may never be
/// caught up with and restarted; past this many pages a checkpoint waits for the writer and
/// restarts the log (a short stall, about every 8 MB of writes under full load).
const RESTART_PAGES: i64 = 2048;

pub(super) struct Checkpoints {
    pool: AnyPool,
    /// When the last checkpoint started, and its task.
    last: Option<(Instant, JoinHandle<()>)>,
}

impl Checkpoints {
    pub(super) fn new(pool: AnyPool) -> Checkpoints {
        Checkpoints { pool, last: None }
    }

    /// Called after each commit: starts a checkpoint when one is due and none is running.
    pub(super) fn after_commit(&mut self) {
        if self.last.as_ref().is_some_and(|(at, task)| at.elapsed() < EVERY || !task.is_finished()) {
            return;
        }
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = checkpoint(&pool).await {
                tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
            }
        });
        self.last = Some((Instant::now(), task));
    }
}

/// A passive checkpoint, then a restarting one when the log is still long.
async fn checkpoint(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // (busy, pages in the log, pages checkpointed); -1s when the database is not in WAL mode.
    let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *conn).await?;
    if log > RESTART_PAGES {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::audit::{AuditStart, Completion};

    /// Commits one after another, three times as many as the restart threshold: without
    /// checkpoints the log holds a page or more per commit; with them it is restarted. A
    /// restarting checkpoint waits out the writer with SQLite's busy back-off, so while the
    /// burst lasts the log can briefly run past twice the threshold; after the burst, commits
    /// at a normal pace start checkpoints that restart the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_and_restarted_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        let commits = 3 * super::RESTART_PAGES;
        let write = |n: i64| {
            let row = AuditStart {
                id: format!("r{n}"),
                at: n,
                who: "w".into(),
                text: "x".repeat(200),
                decision: "allowed".into(),
                ..Default::default()
            };
            s.audit_record(row, Completion { outcome: "ok".into(), duration_ms: 1, error: None })
        };
        for n in 0..commits {
            write(n).await.unwrap();
        }
        // After the burst, commits at a normal pace: each may start a checkpoint, which runs
        // in the background. Reading the log here is itself a (passive) checkpoint, which never
        // restarts the log but can make a restarting one that runs at the same moment give up
        // (busy); the next commit's checkpoint retries, as in production.
        let log_pages = || async {
            let (_, log, done): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(s.pool()).await.unwrap();
            (log, done)
        };
        let (mut log, mut done) = (i64::MAX, 0);
        for n in commits..commits + 10 {
            tokio::time::sleep(2 * super::EVERY).await;
            write(n).await.unwrap();
            tokio::time::sleep(2 * super::EVERY).await;
            (log, done) = log_pages().await;
            if log < 2 * super::RESTART_PAGES {
                break;
            }
        }
        assert!(log < 2 * super::RESTART_PAGES, "{commits} commits left a log of {log} pages ({done} checkpointed)");
    }
}
