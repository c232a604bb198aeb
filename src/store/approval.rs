//! Pending approvals: a command that a team's rule says colleagues must approve waits here.
//! Like confirmations, every change is one conditional statement in the database, so two
//! approvers pressing at once, or two instances sharing one PostgreSQL, count each person
//! once and move a request out of `pending` once: a vote is a row keyed by (approval,
//! approver), and the move to `approved` is one `UPDATE … WHERE state = 'pending' AND
//! (votes) >= needed RETURNING …` that only one caller can win.
//!
//! Who may approve is decided by the pipeline against today's config (`decide::approval`);
//! the store only guarantees distinct approvers, never the requester, before expiry.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::confirm::ago;
use super::{Store, StoreError};

/// Crockford's base32 without I, L, O, U, as confirmation codes.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Longer than a confirmation's: anyone in the place may type an approval code, not only the
/// requester, so it is harder to guess (30 bits).
const CODE_LEN: usize = 6;
const COLUMNS: &str = "id, code, requester, place, command, command_hash, shown, approvers, needed, tier, intent, \
                       confidence, state, reason, outcome, created_at, expires_at, decided_at, decided_by";

#[derive(Clone, Debug)]
pub struct NewApproval<'a> {
    pub requester: &'a str,
    pub place: &'a str,
    /// The canonical command text.
    pub command: &'a str,
    /// The same with secret parameter values masked: what people are shown.
    pub shown: &'a str,
    /// The rule's approvers as configured, for display.
    pub approvers: &'a [String],
    pub needed: u32,
    pub tier: &'a str,
    pub intent: Option<&'a str>,
    pub confidence: f64,
    pub ttl_ms: i64,
}

/// A request just stored: what the requester and approvers are shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Asked {
    pub id: String,
    pub code: String,
    pub expires_at: i64,
}

/// One approval request as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    pub id: String,
    pub code: String,
    pub requester: String,
    pub place: String,
    pub command: String,
    pub command_hash: String,
    /// The command with secret parameter values masked, for every message and list.
    pub shown: String,
    pub approvers: Vec<String>,
    pub needed: u32,
    pub tier: String,
    pub intent: Option<String>,
    pub confidence: f64,
    pub state: String,
    pub reason: Option<String>,
    /// The headline of what running it answered.
    pub outcome: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

impl Approval {
    fn from_row(row: &AnyRow) -> Result<Approval, sqlx::Error> {
        let approvers: String = row.try_get("approvers")?;
        Ok(Approval {
            id: row.try_get("id")?,
            code: row.try_get("code")?,
            requester: row.try_get("requester")?,
            place: row.try_get("place")?,
            command: row.try_get("command")?,
            command_hash: row.try_get("command_hash")?,
            shown: row.try_get("shown")?,
            approvers: approvers.lines().map(str::to_string).collect(),
            needed: u32::try_from(row.try_get::<i64, _>("needed")?).unwrap_or(u32::MAX),
            tier: row.try_get("tier")?,
            intent: row.try_get("intent")?,
            confidence: row.try_get("confidence")?,
            state: row.try_get("state")?,
            reason: row.try_get("reason")?,
            outcome: row.try_get("outcome")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            decided_at: row.try_get("decided_at")?,
            decided_by: row.try_get("decided_by")?,
        })
    }
}

/// What an approval vote did.
#[derive(Clone, Debug, PartialEq)]
pub enum Vote {
    /// Counted; more approvals are needed.
    Counted { have: u32, need: u32 },
    /// This vote was the last one needed: the request moved to `approved` in this call, and
    /// no other call will see this variant for it. `approvers` are everyone who approved.
    Approved { approval: Box<Approval>, approvers: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no approval request with code {0}; `approvals` lists the ones waiting for you")]
    NotFound(String),
    #[error("you asked for this yourself; someone else has to approve it")]
    OwnRequest,
    #[error("you have already approved this; it needs someone else")]
    AlreadyVoted,
    #[error("already {state} {ago}")]
    Closed { state: String, ago: String },
    #[error("expired {ago}: ask again")]
    Expired { ago: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApprovalError {
    fn from(e: sqlx::Error) -> ApprovalError {
        ApprovalError::Store(e.into())
    }
}

/// The SHA-256 of a canonical command, hex: what an approval is bound to.
pub fn command_hash(command: &str) -> String {
    hex::encode(Sha256::digest(command.as_bytes()))
}

fn code_of(id: &str) -> String {
    let digest = Sha256::digest(format!("approval:{id}").as_bytes());
    digest.iter().take(CODE_LEN).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Store {
    /// Stores a request; its code is unique among the requests still pending.
    pub async fn create_approval(&self, a: &NewApproval<'_>, now: i64) -> Result<Asked, StoreError> {
        let expires_at = now + a.ttl_ms;
        let approvers = a.approvers.join("\n");
        for _ in 0..8 {
            let id = new_id();
            let code = code_of(&id);
            let done = sqlx::query(
                "INSERT INTO approvals (id, code, requester, place, command, command_hash, approvers, needed, tier, \
                 intent, confidence, state, created_at, expires_at, shown) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14 \
                 WHERE NOT EXISTS (SELECT 1 FROM approvals WHERE code = $2 AND state = 'pending' AND expires_at > $12)",
            )
            .bind(&id)
            .bind(&code)
            .bind(a.requester)
            .bind(a.place)
            .bind(a.command)
            .bind(command_hash(a.command))
            .bind(&approvers)
            .bind(i64::from(a.needed.max(1)))
            .bind(a.tier)
            .bind(a.intent)
            .bind(a.confidence)
            .bind(now)
            .bind(expires_at)
            .bind(a.shown)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Asked { id, code, expires_at });
            }
        }
        Err(StoreError::Query("no unambiguous approval code after 8 tries; too many pending approvals".into()))
    }

    /// How many of `requester`'s requests still wait, to bound them.
    pub async fn pending_approvals_of(&self, requester: &str, now: i64) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM approvals WHERE requester = $1 AND state = 'pending' AND expires_at > $2",
        )
        .bind(requester)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// The newest request with this code (any state, so a late `approve` hears what became of it).
    pub async fn approval_by_code(&self, code: &str) -> Result<Option<Approval>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE code = $1 ORDER BY created_at DESC LIMIT 1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code.to_ascii_uppercase()).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| Approval::from_row(&r)).transpose()?)
    }

    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| Approval::from_row(&r)).transpose()?)
    }

    /// Who approved a request so far, in the order they did.
    pub async fn approval_votes(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT approver FROM approval_votes WHERE approval_id = $1 ORDER BY at, approver")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Records `approver`'s yes and, when `need` distinct people have said yes, moves the
    /// request to `approved`. `need` is today's rule's count (a config change may raise it).
    pub async fn approve(&self, id: &str, approver: &str, need: u32, now: i64) -> Result<Vote, ApprovalError> {
        let need = i64::from(need.max(1));
        let voted = sqlx::query(
            "INSERT INTO approval_votes (approval_id, approver, at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM approvals WHERE id = $1 AND state = 'pending' \
             AND expires_at > $3 AND requester <> $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(approver)
        .bind(now)
        .execute(self.pool())
        .await?;
        if voted.rows_affected() == 0 {
            return Err(self.why_not(id, approver, now).await);
        }
        let sql = format!(
            "UPDATE approvals SET state = 'approved', decided_at = $2, decided_by = $3, needed = $4 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2 \
             AND (SELECT COUNT(*) FROM approval_votes WHERE approval_id = $1) >= $4 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(now)
            .bind(approver)
            .bind(need)
            .fetch_optional(self.pool())
            .await?;
        let approvers = self.approval_votes(id).await?;
        match row {
            Some(row) => Ok(Vote::Approved { approval: Box::new(Approval::from_row(&row)?), approvers }),
            None => Ok(Vote::Counted { have: approvers.len() as u32, need: need as u32 }),
        }
    }

    /// Says no: the request closes for everyone. Any approver but the requester may.
    pub async fn reject(&self, id: &str, who: &str, reason: &str, now: i64) -> Result<Approval, ApprovalError> {
        let sql = format!(
            "UPDATE approvals SET state = 'rejected', decided_at = $2, decided_by = $3, reason = $4 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2 AND requester <> $3 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(now)
            .bind(who)
            .bind(reason)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(Approval::from_row(&row)?),
            None => Err(self.why_not(id, who, now).await),
        }
    }

    /// An approved request that today's policy refuses after all: it never runs.
    pub async fn refuse_approved(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET state = 'refused', reason = $2 WHERE id = $1 AND state = 'approved'")
            .bind(id)
            .bind(reason)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Keeps what running an approved request answered, for a requester who asks later.
    pub async fn approval_outcome(&self, id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET outcome = $2 WHERE id = $1")
            .bind(id)
            .bind(outcome)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Moves requests past their expiry out of `pending` (only those asked in `place`, when
    /// given), at most `limit` at a time, and returns them so their requesters can be told;
    /// each is returned by one call only.
    pub async fn expire_approvals(
        &self,
        now: i64,
        place: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        let sql = format!(
            "UPDATE approvals SET state = 'expired', decided_at = $1 WHERE id IN \
             (SELECT id FROM approvals WHERE state = 'pending' AND expires_at <= $1 AND ($2 = '' OR place = $2) \
             ORDER BY expires_at LIMIT $3) AND state = 'pending' RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(place.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(Approval::from_row).collect::<Result<_, _>>()?)
    }

    /// Requests still pending, oldest first, at most `limit`.
    pub async fn pending_approvals(&self, now: i64, limit: i64) -> Result<Vec<Approval>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE state = 'pending' AND expires_at > $1 ORDER BY created_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(Approval::from_row).collect::<Result<_, _>>()?)
    }

    /// `requester`'s requests, newest first, at most `limit`.
    pub async fn approvals_asked_by(&self, requester: &str, limit: i64) -> Result<Vec<Approval>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE requester = $1 ORDER BY created_at DESC LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(requester).bind(limit).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(Approval::from_row).collect::<Result<_, _>>()?)
    }

    /// `requester`'s requests in `place` decided after `since` (for a terminal that tells its
    /// user what became of them), oldest first, at most `limit`.
    pub async fn approvals_decided_since(
        &self,
        requester: &str,
        place: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE requester = $1 AND place = $2 AND state <> 'pending' \
             AND decided_at > $3 ORDER BY decided_at LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(requester)
            .bind(place)
            .bind(since)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(Approval::from_row).collect::<Result<_, _>>()?)
    }

    /// Nothing changed for `who`: says why.
    async fn why_not(&self, id: &str, who: &str, now: i64) -> ApprovalError {
        let a = match self.approval(id).await {
            Ok(Some(a)) => a,
            Ok(None) => return ApprovalError::NotFound(code_of(id)),
            Err(e) => return e.into(),
        };
        if a.requester == who {
            return ApprovalError::OwnRequest;
        }
        if a.state != "pending" {
            return ApprovalError::Closed { state: a.state, ago: ago(now - a.decided_at.unwrap_or(now)) };
        }
        if a.expires_at <= now {
            return ApprovalError::Expired { ago: ago(now - a.expires_at) };
        }
        match self.approval_votes(id).await {
            Ok(v) if v.iter().any(|v| v == who) => ApprovalError::AlreadyVoted,
            Ok(_) => ApprovalError::Store(StoreError::Query("the vote was not recorded; try again".into())),
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        (dir, s)
    }

    fn new(needed: u32) -> NewApproval<'static> {
        NewApproval {
            requester: "local:alice",
            place: "local:terminal",
            command: "db sql users \"SELECT 1\" --env prod",
            shown: "db sql users \"SELECT 1\" --env prod",
            approvers: &[],
            needed,
            tier: "grammar",
            intent: None,
            confidence: 1.0,
            ttl_ms: 60_000,
        }
    }

    #[tokio::test]
    async fn two_approvals_from_two_people_approve_once() {
        let (_d, s) = store().await;
        let a = s.create_approval(&new(2), 0).await.unwrap();
        assert_eq!(a.code.len(), 6);
        assert!(matches!(s.approve(&a.id, "local:alice", 2, 1).await, Err(ApprovalError::OwnRequest)));
        assert_eq!(s.approve(&a.id, "local:bob", 2, 2).await.unwrap(), Vote::Counted { have: 1, need: 2 });
        assert!(matches!(s.approve(&a.id, "local:bob", 2, 3).await, Err(ApprovalError::AlreadyVoted)));
        let Vote::Approved { approval, approvers } = s.approve(&a.id, "local:carol", 2, 4).await.unwrap() else {
            panic!("the second person's approval approves")
        };
        assert_eq!(approval.command_hash, command_hash(&approval.command));
        assert_eq!(approvers, ["local:bob", "local:carol"]);
        let late = s.approve(&a.id, "local:dave", 2, 5).await.unwrap_err();
        assert_eq!(late.to_string(), "already approved just now");
    }

    #[tokio::test]
    async fn rejected_and_expired_requests_take_no_more_votes() {
        let (_d, s) = store().await;
        let a = s.create_approval(&new(1), 0).await.unwrap();
        assert!(matches!(s.reject(&a.id, "local:alice", "no", 1).await, Err(ApprovalError::OwnRequest)));
        let r = s.reject(&a.id, "local:bob", "too broad", 1).await.unwrap();
        assert_eq!((r.state.as_str(), r.reason.as_deref()), ("rejected", Some("too broad")));
        assert!(matches!(s.approve(&a.id, "local:carol", 1, 2).await, Err(ApprovalError::Closed { .. })));
        let b = s.create_approval(&new(1), 0).await.unwrap();
        let late = s.approve(&b.id, "local:bob", 1, 180_000).await.unwrap_err();
        assert_eq!(late.to_string(), "expired 2 minutes ago: ask again");
        let elsewhere = s.expire_approvals(180_000, Some("slack:C1"), 10).await.unwrap();
        assert!(elsewhere.is_empty(), "only the place asked for");
        let expired = s.expire_approvals(180_000, None, 10).await.unwrap();
        assert_eq!(expired.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [b.id.as_str()]);
        assert!(s.expire_approvals(180_001, None, 10).await.unwrap().is_empty(), "told once");
    }
}
