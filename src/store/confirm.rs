//! Pending confirmations: unguessable ids, short codes to type, single use, requester only,
//! in the place they were asked (a button is bound to it as a typed code is).
//! Confirm and cancel are one conditional UPDATE … RETURNING, so a command runs at most once
//! even when a user double-clicks and two instances share one PostgreSQL.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// Crockford's base32 without I, L, O, U: codes are read aloud and typed.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LEN: usize = 4;

#[derive(Clone, Debug)]
pub struct NewConfirmation<'a> {
    pub requester: &'a str,
    pub place: &'a str,
    pub command: &'a str,
    pub tier: &'a str,
    pub intent: Option<&'a str>,
    pub confidence: f64,
    pub ttl_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub id: String,
    pub code: String,
    pub expires_at: i64,
}

/// A confirmation that this call moved out of `pending`.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub id: String,
    pub command: String,
    pub place: String,
    pub tier: String,
    pub intent: Option<String>,
    pub confidence: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Confirm,
    Cancel,
}

impl Answer {
    fn state(self) -> &'static str {
        match self {
            Answer::Confirm => "confirmed",
            Answer::Cancel => "cancelled",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(
        "no pending command with code {0} for you here; codes work only for the person who asked, where they asked"
    )]
    NotFound(String),
    #[error("only the person who asked can confirm or cancel this")]
    NotYours,
    #[error("this was asked in another channel or thread; confirm or cancel it there")]
    Elsewhere,
    #[error("already {state} by you {ago}")]
    AlreadyDone { state: String, ago: String },
    #[error("expired {ago}: ask again")]
    Expired { ago: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The short code shown for typing, derived from the id so it needs no storage of its own.
pub fn code_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest.iter().take(CODE_LEN).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// "2 minutes ago", "just now": for expired and used confirmations.
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=4 => "just now".into(),
        5..=59 => format!("{s} seconds ago"),
        60..=119 => "1 minute ago".into(),
        120..=3599 => format!("{} minutes ago", s / 60),
        _ => format!("{} hours ago", s / 3600),
    }
}

type Row = (String, String, String, Option<String>, f64);

impl Store {
    pub async fn create_confirmation(&self, c: &NewConfirmation<'_>, now: i64) -> Result<Pending, StoreError> {
        let expires_at = now + c.ttl_ms;
        // One statement: insert unless the code would be ambiguous among the requester's
        // pending ones in this place; then draw another id.
        for _ in 0..8 {
            let id = new_id();
            let code = code_of(&id);
            let done = sqlx::query(
                "INSERT INTO confirmations (id, code, requester, place, command, tier, intent, confidence, state, created_at, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10 \
                 WHERE NOT EXISTS (SELECT 1 FROM confirmations WHERE requester = $3 AND place = $4 AND code = $2 \
                 AND state = 'pending' AND expires_at > $9)",
            )
            .bind(&id)
            .bind(&code)
            .bind(c.requester)
            .bind(c.place)
            .bind(c.command)
            .bind(c.tier)
            .bind(c.intent)
            .bind(c.confidence)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Pending { id, code, expires_at });
            }
        }
        Err(StoreError::Query(
            "no unambiguous confirmation code after 8 tries; too many pending confirmations here".into(),
        ))
    }

    /// Confirms or cancels by the typed code: same requester, same place.
    pub async fn resolve_code(
        &self,
        code: &str,
        requester: &str,
        place: &str,
        answer: Answer,
        now: i64,
    ) -> Result<Resolved, ConfirmError> {
        let code = code.to_ascii_uppercase();
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM confirmations WHERE code = $1 AND requester = $2 AND place = $3 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(&code)
        .bind(requester)
        .bind(place)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::from)?;
        let Some((id,)) = row else { return Err(ConfirmError::NotFound(code)) };
        self.resolve_id(&id, requester, place, answer, now).await
    }

    /// Confirms or cancels by id (a button): only the requester, only in the place it was
    /// asked. A press anywhere else changes nothing, so the confirmation stays usable there.
    pub async fn resolve_id(
        &self,
        id: &str,
        requester: &str,
        place: &str,
        answer: Answer,
        now: i64,
    ) -> Result<Resolved, ConfirmError> {
        let row: Option<Row> = sqlx::query_as(
            "UPDATE confirmations SET state = $1, decided_at = $2, decided_by = $3 \
             WHERE id = $4 AND requester = $3 AND place = $5 AND state = 'pending' AND expires_at > $2 \
             RETURNING command, place, tier, intent, confidence",
        )
        .bind(answer.state())
        .bind(now)
        .bind(requester)
        .bind(id)
        .bind(place)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::from)?;
        if let Some((command, place, tier, intent, confidence)) = row {
            return Ok(Resolved { id: id.to_string(), command, place, tier, intent, confidence });
        }
        // Nothing changed: say why.
        let why: Option<(String, String, String, i64, Option<i64>)> =
            sqlx::query_as("SELECT requester, place, state, expires_at, decided_at FROM confirmations WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::from)?;
        Err(match why {
            None => ConfirmError::NotFound(code_of(id)),
            Some((who, _, _, _, _)) if who != requester => ConfirmError::NotYours,
            Some((_, asked_in, _, _, _)) if asked_in != place => ConfirmError::Elsewhere,
            Some((_, _, state, _, Some(at))) if state != "pending" => {
                ConfirmError::AlreadyDone { state, ago: ago(now - at) }
            }
            Some((_, _, _, expires_at, _)) => ConfirmError::Expired { ago: ago(now - expires_at) },
        })
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

    fn new<'a>(who: &'a str, place: &'a str) -> NewConfirmation<'a> {
        NewConfirmation {
            requester: who,
            place,
            command: "test run smoke staging",
            tier: "local",
            intent: Some("test-run"),
            confidence: 0.9,
            ttl_ms: 600_000,
        }
    }

    #[tokio::test]
    async fn a_confirmation_runs_once_for_its_requester_in_its_place() {
        let (_d, s) = store().await;
        let p = s.create_confirmation(&new("local:alice", "local:terminal"), 1_000).await.unwrap();
        assert_eq!(p.code.len(), 4);
        assert_eq!(p.id.len(), 32, "128 bits of id");
        let other = s.resolve_code(&p.code, "local:mallory", "local:terminal", Answer::Confirm, 2_000).await;
        assert!(matches!(other, Err(ConfirmError::NotFound(_))), "{other:?}");
        let elsewhere = s.resolve_code(&p.code, "local:alice", "slack:C1", Answer::Confirm, 2_000).await;
        assert!(matches!(elsewhere, Err(ConfirmError::NotFound(_))));
        let ok = s
            .resolve_code(&p.code.to_lowercase(), "local:alice", "local:terminal", Answer::Confirm, 3_000)
            .await
            .unwrap();
        assert_eq!(ok.command, "test run smoke staging");
        let again =
            s.resolve_code(&p.code, "local:alice", "local:terminal", Answer::Confirm, 63_000).await.unwrap_err();
        assert_eq!(again.to_string(), "already confirmed by you 1 minute ago");
    }

    #[tokio::test]
    async fn buttons_of_someone_else_and_expired_ones_are_refused() {
        let (_d, s) = store().await;
        let p = s.create_confirmation(&new("slack:U1", "slack:C1"), 0).await.unwrap();
        assert!(matches!(
            s.resolve_id(&p.id, "slack:U2", "slack:C1", Answer::Confirm, 10).await,
            Err(ConfirmError::NotYours)
        ));
        let late = s.resolve_id(&p.id, "slack:U1", "slack:C1", Answer::Confirm, 600_000 + 120_000).await.unwrap_err();
        assert_eq!(late.to_string(), "expired 2 minutes ago: ask again");
        assert!(matches!(
            s.resolve_id("deadbeef", "slack:U1", "slack:C1", Answer::Cancel, 10).await,
            Err(ConfirmError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_button_pressed_in_another_place_changes_nothing_and_works_in_its_own() {
        let (_d, s) = store().await;
        let p = s.create_confirmation(&new("slack:U1", "slack:C1/1700000000.0001"), 0).await.unwrap();
        for elsewhere in ["slack:C2", "slack:C1", "slack:C2/1700000000.0001"] {
            let e = s.resolve_id(&p.id, "slack:U1", elsewhere, Answer::Confirm, 10).await.unwrap_err();
            assert!(matches!(e, ConfirmError::Elsewhere), "{elsewhere}: {e:?}");
        }
        let ok = s.resolve_id(&p.id, "slack:U1", "slack:C1/1700000000.0001", Answer::Confirm, 20).await.unwrap();
        assert_eq!(ok.command, "test run smoke staging");
    }

    #[tokio::test]
    async fn cancel_then_confirm_does_not_run() {
        let (_d, s) = store().await;
        let p = s.create_confirmation(&new("local:a", "local:terminal"), 0).await.unwrap();
        s.resolve_id(&p.id, "local:a", "local:terminal", Answer::Cancel, 5).await.unwrap();
        let e = s.resolve_id(&p.id, "local:a", "local:terminal", Answer::Confirm, 6).await.unwrap_err();
        assert_eq!(e.to_string(), "already cancelled by you just now");
    }
}
