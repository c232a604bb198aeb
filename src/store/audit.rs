//! The audit log: one row per message that reaches the pipeline, written before anything runs
//! and completed after, so a crash mid-command leaves "started, no outcome" behind.

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

#[derive(Clone, Debug, Default)]
pub struct AuditStart {
    pub id: String,
    pub at: i64,
    pub who: String,
    pub transport: String,
    pub place: String,
    /// The message text, with secret parameter values already redacted.
    pub text: String,
    pub tier: Option<String>,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub command: Option<String>,
    /// allowed, refused, asked (confirmation), question, not_understood
    pub decision: String,
    pub confirmation_id: Option<String>,
    /// The LLM tier's cost, when the model was asked: which model, tokens, the whole call's
    /// time, and what came of it (command, question, refused, failed, timeout, ...).
    pub llm_model: Option<String>,
    pub llm_prompt_tokens: Option<i64>,
    pub llm_completion_tokens: Option<i64>,
    pub llm_latency_ms: Option<i64>,
    pub llm_outcome: Option<String>,
    /// Everyone who approved the command (`store::approval`), one identity per line.
    pub approved_by: Option<String>,
}

impl AuditStart {
    /// A new row's id. Time-ordered (UUIDv7): new rows append to the primary key's index
    /// instead of landing at random pages of it.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// A row for something `who` did in `place` now, its other fields empty.
    pub fn of(who: &crate::message::Identity, place: &crate::message::Place, text: impl Into<String>) -> AuditStart {
        AuditStart {
            id: AuditStart::new_id(),
            at: super::now_ms(),
            who: who.to_string(),
            transport: place.transport.name().to_string(),
            place: place.key(),
            text: text.into(),
            ..AuditStart::default()
        }
    }
}

/// The LLM tier's part of an audit row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlmUsage {
    pub model: String,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub outcome: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub who: String,
    pub transport: String,
    pub place: String,
    pub text: String,
    pub tier: Option<String>,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub command: Option<String>,
    pub decision: String,
    pub confirmation_id: Option<String>,
    pub outcome: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// Who approved it, one identity per line (`who` asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// A message for `intents unmatched`.
#[derive(Clone, Debug)]
pub struct Unmatched {
    pub at: i64,
    pub who: String,
    pub text: String,
    /// `not_understood`, `refused` or `cancelled`.
    pub decision: String,
    /// For `cancelled`: the command the sentence was understood as.
    pub command: Option<String>,
}

/// How a command ended: ok, error or timeout, how long it took and what went wrong.
#[derive(Clone, Debug)]
pub struct Completion {
    pub outcome: String,
    pub duration_ms: i64,
    pub error: Option<String>,
}

impl Completion {
    fn redacted(self) -> Completion {
        Completion { error: self.error.map(|e| crate::redact::redact(&e)), ..self }
    }
}

/// One write waiting for the writer task, and who to tell when it is committed.
#[derive(Debug)]
pub(super) struct Job {
    write: Write,
    done: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Debug)]
enum Write {
    /// A new row, already complete when the command had nothing to run first.
    Insert(Box<AuditStart>, Option<Completion>),
    /// The completion of a row inserted earlier.
    Complete(String, Completion),
}

/// Most writes one commit takes (20 parameters a row stays far below every driver's limit).
const MAX_BATCH: usize = 64;

/// Starts the writer task: it takes whatever writes have queued up and commits them in one
/// transaction (group commit). Under load dozens of messages share one commit instead of
/// queueing for SQLite's write lock one by one, and each caller still goes on only once its own
/// row is committed. The task ends when the last `Store` clone is dropped, after the queue.
pub(super) fn spawn_writer(pool: AnyPool, postgres: bool) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut checkpoints = (!postgres).then(|| super::wal::Checkpoints::new(pool.clone()));
        while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
            let writes: Vec<&Write> = jobs.iter().map(|j| &j.write).collect();
            let result = write_limited(&pool, postgres, &writes).await;
            if result.is_err() && jobs.len() > 1 {
                // One bad write must not fail the others: retry them one by one.
                for j in jobs.drain(..) {
                    let _ = j.done.send(write_limited(&pool, postgres, &[&j.write]).await);
                }
                continue;
            }
            for j in jobs.drain(..) {
                let _ = j.done.send(result.clone());
            }
            if let Some(c) = &mut checkpoints {
                c.after_commit();
            }
        }
    });
    tx
}

const COLUMNS: &str = "id, at, who, transport, place, text, tier, intent, confidence, command, decision, \
                       confirmation_id, llm_model, llm_prompt_tokens, llm_completion_tokens, llm_latency_ms, \
                       llm_outcome, approved_by, outcome, duration_ms, error";
const WIDTH: usize = 21;

/// `($1, $2, …), (…)`: `rows` groups of `width` placeholders, numbered for PostgreSQL. SQLite
/// gets plain `?`: it looks each numbered one up by a linear scan, which made binding a batch
/// quadratic.
fn placeholders(rows: usize, width: usize, postgres: bool) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            if postgres {
                sql.push_str(&format!("${}", r * width + c + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// `write_batch` within `STATE_LIMIT`: a database that stopped answering fails the batch
/// instead of stopping the writer, and with it every later write.
async fn write_limited(pool: &AnyPool, postgres: bool, writes: &[&Write]) -> Result<(), StoreError> {
    match tokio::time::timeout(super::STATE_LIMIT, write_batch(pool, postgres, writes)).await {
        Ok(result) => result,
        Err(_) => Err(unanswered()),
    }
}

fn unanswered() -> StoreError {
    StoreError::Unavailable(format!("no answer in {} s", super::STATE_LIMIT.as_secs()))
}

/// New rows first, then completions; one transaction when there are both.
async fn write_batch(pool: &AnyPool, postgres: bool, writes: &[&Write]) -> Result<(), StoreError> {
    let mut inserts = Vec::new();
    let mut completions = Vec::new();
    for w in writes {
        match w {
            Write::Insert(row, done) => inserts.push((row.as_ref(), done.as_ref())),
            Write::Complete(id, done) => completions.push((id.as_str(), done)),
        }
    }
    if !inserts.is_empty() && !completions.is_empty() {
        let mut tx = pool.begin().await?;
        insert_rows(&mut tx, postgres, &inserts).await?;
        complete_rows(&mut tx, postgres, &completions).await?;
        return Ok(tx.commit().await?);
    }
    let mut conn = pool.acquire().await?;
    insert_rows(&mut conn, postgres, &inserts).await?;
    complete_rows(&mut conn, postgres, &completions).await
}

async fn insert_rows(
    conn: &mut AnyConnection,
    postgres: bool,
    rows: &[(&AuditStart, Option<&Completion>)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO audit ({COLUMNS}) VALUES {}", placeholders(rows.len(), WIDTH, postgres));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (a, done) in rows {
        q = q
            .bind(&a.id)
            .bind(a.at)
            .bind(&a.who)
            .bind(&a.transport)
            .bind(&a.place)
            .bind(&a.text)
            .bind(&a.tier)
            .bind(&a.intent)
            .bind(a.confidence)
            .bind(&a.command)
            .bind(&a.decision)
            .bind(&a.confirmation_id)
            .bind(&a.llm_model)
            .bind(a.llm_prompt_tokens)
            .bind(a.llm_completion_tokens)
            .bind(a.llm_latency_ms)
            .bind(&a.llm_outcome)
            .bind(&a.approved_by)
            .bind(done.map(|d| d.outcome.as_str()))
            .bind(done.map(|d| d.duration_ms))
            .bind(done.and_then(|d| d.error.as_deref()));
    }
    q.execute(conn).await?;
    Ok(())
}

/// Completes rows in one UPDATE; a completion whose row does not exist is an error.
async fn complete_rows(
    conn: &mut AnyConnection,
    postgres: bool,
    rows: &[(&str, &Completion)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH done (id, outcome, duration_ms, error) AS (VALUES {}) \
         UPDATE audit SET outcome = done.outcome, duration_ms = done.duration_ms, error = done.error \
         FROM done WHERE audit.id = done.id",
        placeholders(rows.len(), 4, postgres)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, d) in rows {
        q = q.bind(*id).bind(d.outcome.as_str()).bind(d.duration_ms).bind(d.error.as_deref());
    }
    let updated = q.execute(conn).await?.rows_affected();
    if updated < rows.len() as u64 {
        return Err(StoreError::Query(format!(
            "{} of {} audit rows to complete were not found",
            rows.len() as u64 - updated,
            rows.len()
        )));
    }
    Ok(())
}

impl Store {
    /// Writes a new row and returns once it is committed.
    pub async fn audit_start(&self, row: AuditStart) -> Result<(), StoreError> {
        self.audit_write(Write::Insert(Box::new(row), None)).await
    }

    /// Completes a row written by `audit_start`.
    pub async fn audit_finish(&self, id: &str, done: Completion) -> Result<(), StoreError> {
        self.audit_write(Write::Complete(id.to_string(), done)).await
    }

    /// Writes a row that is complete already: for what had nothing to run before it was
    /// recorded (an answer from memory, a failed delivery).
    pub async fn audit_record(&self, row: AuditStart, done: Completion) -> Result<(), StoreError> {
        self.audit_write(Write::Insert(Box::new(row), Some(done))).await
    }

    async fn audit_write(&self, write: Write) -> Result<(), StoreError> {
        // Error texts quote URLs and servers' answers: no credential reaches the audit log.
        let write = match write {
            Write::Insert(row, done) => Write::Insert(row, done.map(Completion::redacted)),
            Write::Complete(id, done) => Write::Complete(id, done.redacted()),
        };
        let stopped = || StoreError::Unavailable("the audit writer has stopped".into());
        let (done, committed) = oneshot::channel();
        // The queue is bounded and the writer gives each batch `STATE_LIMIT`; the caller waits
        // no longer than that either, so a request never outlives a hung database for long.
        // A write given up here may still commit later: then the log holds a row "started, no
        // outcome" for a command that did not run, never a command that ran without a row.
        let queued = async {
            self.audit.send(Job { write, done }).await.map_err(|_| stopped())?;
            committed.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(super::STATE_LIMIT, queued).await.unwrap_or_else(|_| Err(unanswered()))
    }

    /// The newest rows first, optionally since a time and for one identity.
    pub async fn audit_list(
        &self,
        since: Option<i64>,
        who: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        type Tuple = (
            String,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<f64>,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let rows = sqlx::query_as::<_, Tuple>(
            "SELECT id, at, who, transport, place, text, tier, intent, confidence, command, decision, confirmation_id, \
             outcome, duration_ms, error, approved_by FROM audit \
             WHERE at >= $1 AND ($2 = '' OR who = $2) ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(since.unwrap_or(0))
        .bind(who.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRow {
                id: r.0,
                at: r.1,
                who: r.2,
                transport: r.3,
                place: r.4,
                text: r.5,
                tier: r.6,
                intent: r.7,
                confidence: r.8,
                command: r.9,
                decision: r.10,
                confirmation_id: r.11,
                outcome: r.12,
                duration_ms: r.13,
                error: r.14,
                approved_by: r.15,
            })
            .collect())
    }

    /// The LLM tier's usage on the newest rows where the model was asked, newest first.
    pub async fn audit_llm(&self, limit: i64) -> Result<Vec<(String, LlmUsage)>, StoreError> {
        type Tuple = (String, String, Option<i64>, Option<i64>, Option<i64>, Option<String>);
        let rows = sqlx::query_as::<_, Tuple>(
            "SELECT id, llm_model, llm_prompt_tokens, llm_completion_tokens, llm_latency_ms, llm_outcome FROM audit \
             WHERE llm_model IS NOT NULL ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let usage =
                    LlmUsage { model: r.1, prompt_tokens: r.2, completion_tokens: r.3, latency_ms: r.4, outcome: r.5 };
                (r.0, usage)
            })
            .collect())
    }

    /// Messages the bot did not get right, newest first, for `intents unmatched`: those not
    /// understood, requests refused outright (a write; no command), and sentences understood as
    /// a command that their author then cancelled (with that command).
    pub async fn unmatched(&self, limit: i64) -> Result<Vec<Unmatched>, StoreError> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at, who, text, decision, command FROM audit \
             WHERE decision = 'not_understood' OR (decision = 'refused' AND command IS NULL) \
             UNION ALL \
             SELECT a.at, a.who, a.text, 'cancelled', a.command FROM audit a \
             WHERE a.decision = 'asked' AND a.tier <> 'grammar' AND a.confirmation_id IS NOT NULL \
             AND EXISTS (SELECT 1 FROM audit c WHERE c.decision = 'cancelled' AND c.confirmation_id = a.confirmation_id) \
             ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, who, text, decision, command)| Unmatched { at, who, text, decision, command })
            .collect())
    }

    /// Deletes rows older than the retention; returns how many went.
    pub async fn audit_prune(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1").bind(before).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(duration_ms: i64) -> Completion {
        Completion { outcome: "ok".into(), duration_ms, error: None }
    }

    #[tokio::test]
    async fn a_row_is_written_before_and_completed_after() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        let start = AuditStart {
            id: "a1".into(),
            at: 10,
            who: "local:o'brien \"x\"".into(),
            transport: "local".into(),
            place: "local:terminal".into(),
            text: "deploy version payments".into(),
            decision: "allowed".into(),
            command: Some("deploy version payments prod".into()),
            ..AuditStart::default()
        };
        s.audit_start(start).await.unwrap();
        let rows = s.audit_list(None, None, 10).await.unwrap();
        assert_eq!(rows[0].outcome, None, "started, no outcome yet");
        s.audit_finish("a1", ok(12)).await.unwrap();
        let rows = s.audit_list(Some(5), Some("local:o'brien \"x\""), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome.as_deref(), Some("ok"));
        assert!(s.audit_list(Some(11), None, 10).await.unwrap().is_empty());
        assert_eq!(s.audit_prune(11).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_a_bad_row_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        let row =
            |id: String| AuditStart { id, at: 1, who: "w".into(), decision: "allowed".into(), ..Default::default() };
        s.audit_start(row("dup".into())).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..200 {
            let s = s.clone();
            tasks.spawn(async move {
                let id = if n == 100 { "dup".to_string() } else { format!("r{n}") };
                let started = s.audit_start(row(id.clone())).await;
                if started.is_ok() {
                    s.audit_finish(&id, ok(n)).await.unwrap();
                }
                (n, started.is_ok())
            });
        }
        let mut failed = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (n, ok) = done.unwrap();
            if !ok {
                failed.push(n);
            }
        }
        assert_eq!(failed, vec![100], "only the duplicate id fails");
        let rows = s.audit_list(None, Some("w"), 1000).await.unwrap();
        assert_eq!(rows.len(), 200, "199 new rows and the first 'dup'");
        let completed = rows.iter().filter(|r| r.outcome.as_deref() == Some("ok")).count();
        assert_eq!(completed, 199);
        assert!(rows.iter().all(|r| r.id == "dup" || r.duration_ms == r.id[1..].parse().ok()));
    }
}
