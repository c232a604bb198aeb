//! The Reddit posts already shown in each place, so a channel does not get the same meme
//! twice while it is still on the front page.

use std::collections::HashSet;

use super::{Store, StoreError};

impl Store {
    /// The ids of posts shown in `place` at or after `since` (Unix ms).
    pub async fn memes_shown(&self, place: &str, since: i64) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT post_id FROM meme_posts WHERE place = $1 AND posted_at >= $2")
                .bind(place)
                .bind(since)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Records that `post_id` was shown in `place`, and forgets posts shown before `forget_before`.
    pub async fn meme_shown(&self, place: &str, post_id: &str, now: i64, forget_before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM meme_posts WHERE posted_at < $1").bind(forget_before).execute(self.pool()).await?;
        sqlx::query(
            "INSERT INTO meme_posts (place, post_id, posted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (place, post_id) DO UPDATE SET posted_at = excluded.posted_at",
        )
        .bind(place)
        .bind(post_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shown_posts_are_remembered_per_place_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap();
        s.meme_shown("slack:C1", "abc", 100, 0).await.unwrap();
        s.meme_shown("slack:C1", "abc", 150, 0).await.unwrap();
        assert_eq!(s.memes_shown("slack:C1", 0).await.unwrap(), HashSet::from(["abc".to_string()]));
        assert!(s.memes_shown("slack:C2", 0).await.unwrap().is_empty());
        assert!(s.memes_shown("slack:C1", 151).await.unwrap().is_empty());
        s.meme_shown("slack:C2", "def", 500, 200).await.unwrap();
        assert!(s.memes_shown("slack:C1", 0).await.unwrap().is_empty(), "old rows are deleted");
    }
}
