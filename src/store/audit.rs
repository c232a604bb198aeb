//! The audit log: one row per message that reaches the pipeline, written before anything runs
//! and completed after, so a crash mid-command leaves "started, no outcome" behind.

use serde::Serialize;

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
}

impl Store {
    pub async fn audit_start(&self, a: &AuditStart) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (id, at, who, transport, place, text, tier, intent, confidence, command, decision, confirmation_id, \
             llm_model, llm_prompt_tokens, llm_completion_tokens, llm_latency_ms, llm_outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
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
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Completes a row: ok, error or timeout, how long it took and what went wrong.
    pub async fn audit_finish(
        &self,
        id: &str,
        outcome: &str,
        duration_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit SET outcome = $1, duration_ms = $2, error = $3 WHERE id = $4")
            .bind(outcome)
            .bind(duration_ms)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
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
        );
        let rows = sqlx::query_as::<_, Tuple>(
            "SELECT id, at, who, transport, place, text, tier, intent, confidence, command, decision, confirmation_id, \
             outcome, duration_ms, error FROM audit \
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

    /// Sentences nobody understood, newest first: (when, who, text), for `intents unmatched`.
    pub async fn unmatched(&self, limit: i64) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT at, who, text FROM audit WHERE decision = 'not_understood' ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
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
        s.audit_start(&start).await.unwrap();
        let rows = s.audit_list(None, None, 10).await.unwrap();
        assert_eq!(rows[0].outcome, None, "started, no outcome yet");
        s.audit_finish("a1", "ok", 12, None).await.unwrap();
        let rows = s.audit_list(Some(5), Some("local:o'brien \"x\""), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome.as_deref(), Some("ok"));
        assert!(s.audit_list(Some(11), None, 10).await.unwrap().is_empty());
        assert_eq!(s.audit_prune(11).await.unwrap(), 1);
    }
}
