//! Background jobs in the bot's database: the row is the truth about a run, so `test status`
//! answers the same from any instance and after a restart. A job is owned by the process that
//! runs it, which keeps its heartbeat fresh; a job whose owner is gone is marked interrupted,
//! never left running.

use serde::Serialize;

use super::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Passed,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Passed => "passed",
            JobState::Failed => "failed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    /// As a sentence says it: "timed out", not "timed_out".
    pub fn words(self) -> &'static str {
        match self {
            JobState::TimedOut => "timed out",
            other => other.name(),
        }
    }

    pub fn parse(s: &str) -> JobState {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "passed" => JobState::Passed,
            "failed" => JobState::Failed,
            "timed_out" => JobState::TimedOut,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Interrupted,
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub env: String,
    pub state: JobState,
    pub requester: String,
    pub place: String,
    pub owner: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub cancel_requested_by: Option<String>,
    pub exit_code: Option<i64>,
    pub detail: Option<String>,
    pub output: Option<String>,
    pub output_bytes: Option<i64>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const COLUMNS: &str = "id, kind, name, env, state, requester, place, owner, created_at, started_at, finished_at, \
     cancel_requested_by, exit_code, detail, output, output_bytes";

fn job(r: Row) -> Job {
    Job {
        id: r.0,
        kind: r.1,
        name: r.2,
        env: r.3,
        state: JobState::parse(&r.4),
        requester: r.5,
        place: r.6,
        owner: r.7,
        created_at: r.8,
        started_at: r.9,
        finished_at: r.10,
        cancel_requested_by: r.11,
        exit_code: r.12,
        detail: r.13,
        output: r.14,
        output_bytes: r.15,
    }
}

pub struct NewJob<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub env: &'a str,
    pub requester: &'a str,
    pub place: &'a str,
    pub owner: &'a str,
}

/// How a finished run is written down.
pub struct Finished<'a> {
    pub state: JobState,
    pub exit_code: Option<i64>,
    pub detail: &'a str,
    pub output: &'a str,
    pub output_bytes: i64,
}

/// What `test cancel` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancel {
    /// It was still queued: cancelled at once.
    Cancelled,
    /// It runs: its owner stops it within a heartbeat.
    Requested,
    AlreadyFinished(JobState),
    NotFound,
}

/// Two creations at the same moment may pick the same id; the loser takes the next one.
const CREATE_ATTEMPTS: usize = 8;

impl Store {
    pub async fn job_create(&self, j: &NewJob<'_>, now: i64) -> Result<i64, StoreError> {
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            let res: Result<(i64,), sqlx::Error> = sqlx::query_as(
                "INSERT INTO jobs (id, kind, name, env, state, requester, place, owner, created_at, heartbeat_at) \
                 SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, 'queued', $4, $5, $6, $7, $7 FROM jobs \
                 RETURNING id",
            )
            .bind(j.kind)
            .bind(j.name)
            .bind(j.env)
            .bind(j.requester)
            .bind(j.place)
            .bind(j.owner)
            .bind(now)
            .fetch_one(self.pool())
            .await;
            match res {
                Ok((id,)) => return Ok(id),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => last = Some(sqlx::Error::Database(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| StoreError::Query("no job id could be taken".into()), StoreError::from))
    }

    pub async fn job_get(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.map(job))
    }

    /// The newest jobs of a kind, newest first, without their output.
    pub async fn job_recent(&self, kind: &str, limit: i64) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {} FROM jobs WHERE kind = $1 ORDER BY id DESC LIMIT $2",
            COLUMNS.replace("output, output_bytes", "CAST(NULL AS TEXT), output_bytes")
        );
        let rows: Vec<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind).bind(limit).fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(job).collect())
    }

    /// Moves a queued job to running when fewer than `limit` jobs of its name run; false when
    /// it must keep waiting. On PostgreSQL a transaction-scoped advisory lock per job name makes
    /// the count and the update one step across instances; SQLite has a single writer anyway.
    pub async fn job_claim(
        &self,
        id: i64,
        kind: &str,
        name: &str,
        limit: i64,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if self.is_postgres() {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("lazyops-job:{kind}:{name}"))
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "UPDATE jobs SET state = 'running', started_at = $1, heartbeat_at = $1, owner = $2 \
             WHERE id = $3 AND state = 'queued' \
               AND (SELECT COUNT(*) FROM jobs WHERE kind = $4 AND name = $5 AND state = 'running') < $6",
        )
        .bind(now)
        .bind(owner)
        .bind(id)
        .bind(kind)
        .bind(name)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Keeps the owner's claim fresh; returns who asked to cancel, if anyone did. `None` in
    /// the outer option when the job is no longer this owner's (someone marked it interrupted).
    pub async fn job_heartbeat(&self, id: i64, owner: &str, now: i64) -> Result<Option<Option<String>>, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET heartbeat_at = $1 WHERE id = $2 AND owner = $3 AND state IN ('queued', 'running')",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row: Option<(Option<String>,)> = sqlx::query_as("SELECT cancel_requested_by FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(Some(row.and_then(|r| r.0)))
    }

    /// Writes the end of a run. A run that another instance wrongly marked interrupted gets
    /// its real outcome.
    pub async fn job_finish(&self, id: i64, owner: &str, f: &Finished<'_>, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = $1, finished_at = $2, exit_code = $3, detail = $4, output = $5, output_bytes = $6 \
             WHERE id = $7 AND owner = $8 AND state IN ('queued', 'running', 'interrupted')",
        )
        .bind(f.state.name())
        .bind(now)
        .bind(f.exit_code)
        .bind(f.detail)
        .bind(f.output)
        .bind(f.output_bytes)
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn job_cancel(&self, id: i64, who: &str, now: i64) -> Result<Cancel, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, cancel_requested_by = $2, detail = $3 \
             WHERE id = $4 AND state = 'queued'",
        )
        .bind(now)
        .bind(who)
        .bind(format!("cancelled by {who} before it started"))
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Cancel::Cancelled);
        }
        let done = sqlx::query("UPDATE jobs SET cancel_requested_by = $1 WHERE id = $2 AND state = 'running'")
            .bind(who)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 1 {
            return Ok(Cancel::Requested);
        }
        Ok(match self.job_get(id).await? {
            Some(j) => Cancel::AlreadyFinished(j.state),
            None => Cancel::NotFound,
        })
    }

    /// Marks as interrupted every unfinished job whose owner `is_gone` says is gone; returns
    /// their ids.
    pub async fn job_interrupt_gone(
        &self,
        now: i64,
        is_gone: impl Fn(&str, i64) -> bool,
    ) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64, String, i64, String)> =
            sqlx::query_as("SELECT id, owner, heartbeat_at, state FROM jobs WHERE state IN ('queued', 'running')")
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::new();
        for (id, owner, heartbeat, state) in rows {
            if !is_gone(&owner, heartbeat) {
                continue;
            }
            let detail = if state == "queued" {
                "lazyops stopped before the run started"
            } else {
                "lazyops stopped while the run was going; its result is unknown"
            };
            let done = sqlx::query(
                "UPDATE jobs SET state = 'interrupted', finished_at = $1, detail = $2 \
                 WHERE id = $3 AND owner = $4 AND state IN ('queued', 'running')",
            )
            .bind(now)
            .bind(detail)
            .bind(id)
            .bind(&owner)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Ticks a manual checklist item for a service and environment.
    pub async fn checklist_tick(
        &self,
        service: &str,
        env: &str,
        item: &str,
        who: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checklist_ticks (service, env, item, ticked_by, ticked_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (service, env, item) DO UPDATE SET ticked_by = excluded.ticked_by, ticked_at = excluded.ticked_at",
        )
        .bind(service)
        .bind(env)
        .bind(item)
        .bind(who)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Who ticked an item and when, if anyone did since `since`.
    pub async fn checklist_ticked(
        &self,
        service: &str,
        env: &str,
        item: &str,
        since: i64,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT ticked_by, ticked_at FROM checklist_ticks WHERE service = $1 AND env = $2 AND item = $3 AND ticked_at >= $4",
        )
        .bind(service)
        .bind(env)
        .bind(item)
        .bind(since)
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }
}
