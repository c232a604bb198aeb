//! Each team's TODO list. Items are numbered per team (1, 2, 3 …) and never deleted, so a
//! number a person saw in `todo list` keeps meaning the same item; done items can be reopened.
//! Every change is one conditional statement, so two instances never both complete an item.

use super::{Store, StoreError};

/// One item as stored: who added, assigned and completed it, and when (Unix ms).
#[derive(Clone, Debug, PartialEq)]
pub struct Todo {
    pub num: i64,
    pub text: String,
    pub added_by: String,
    pub added_at: i64,
    pub assignee: Option<String>,
    pub done_by: Option<String>,
    pub done_at: Option<i64>,
}

/// What a change found: the item after the change, or why nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Changed(Todo),
    /// The team has no item with that number.
    Unknown,
    /// `done` of a done item, `undo` of an open one: the item as it is.
    Unchanged(Todo),
}

type Row = (i64, String, String, i64, Option<String>, Option<String>, Option<i64>);

const COLUMNS: &str = "num, text, added_by, added_at, assignee, done_by, done_at";

fn todo(r: Row) -> Todo {
    Todo { num: r.0, text: r.1, added_by: r.2, added_at: r.3, assignee: r.4, done_by: r.5, done_at: r.6 }
}

/// Two adds at the same moment may pick the same number; the loser takes the next one.
const ADD_ATTEMPTS: usize = 5;

impl Store {
    /// Adds an item at the end of the team's list; returns its number.
    pub async fn todo_add(&self, team: &str, text: &str, who: &str, now: i64) -> Result<i64, StoreError> {
        let mut last = None;
        for _ in 0..ADD_ATTEMPTS {
            let res: Result<(i64,), sqlx::Error> = sqlx::query_as(
                "INSERT INTO todos (team, num, text, added_by, added_at) \
                 SELECT $1, COALESCE(MAX(num), 0) + 1, $2, $3, $4 FROM todos WHERE team = $1 \
                 RETURNING num",
            )
            .bind(team)
            .bind(text)
            .bind(who)
            .bind(now)
            .fetch_one(self.pool())
            .await;
            match res {
                Ok((num,)) => return Ok(num),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => last = Some(sqlx::Error::Database(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| StoreError::Query("no TODO number could be taken".into()), StoreError::from))
    }

    /// The team's open items, oldest first.
    pub async fn todo_open(&self, team: &str) -> Result<Vec<Todo>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM todos WHERE team = $1 AND done_at IS NULL ORDER BY added_at, num");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(team).fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(todo).collect())
    }

    pub async fn todo_get(&self, team: &str, num: i64) -> Result<Option<Todo>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM todos WHERE team = $1 AND num = $2");
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(team).bind(num).fetch_optional(self.pool()).await?;
        Ok(row.map(todo))
    }

    /// Marks an open item done by `who`.
    pub async fn todo_done(&self, team: &str, num: i64, who: &str, now: i64) -> Result<Change, StoreError> {
        let done =
            sqlx::query("UPDATE todos SET done_by = $1, done_at = $2 WHERE team = $3 AND num = $4 AND done_at IS NULL")
                .bind(who)
                .bind(now)
                .bind(team)
                .bind(num)
                .execute(self.pool())
                .await?;
        self.change(team, num, done.rows_affected() == 1).await
    }

    /// Reopens a done item.
    pub async fn todo_undo(&self, team: &str, num: i64) -> Result<Change, StoreError> {
        let done = sqlx::query(
            "UPDATE todos SET done_by = NULL, done_at = NULL WHERE team = $1 AND num = $2 AND done_at IS NOT NULL",
        )
        .bind(team)
        .bind(num)
        .execute(self.pool())
        .await?;
        self.change(team, num, done.rows_affected() == 1).await
    }

    pub async fn todo_assign(&self, team: &str, num: i64, assignee: &str) -> Result<Change, StoreError> {
        let done = sqlx::query("UPDATE todos SET assignee = $1 WHERE team = $2 AND num = $3")
            .bind(assignee)
            .bind(team)
            .bind(num)
            .execute(self.pool())
            .await?;
        self.change(team, num, done.rows_affected() == 1).await
    }

    async fn change(&self, team: &str, num: i64, changed: bool) -> Result<Change, StoreError> {
        Ok(match self.todo_get(team, num).await? {
            None => Change::Unknown,
            Some(t) if changed => Change::Changed(t),
            Some(t) => Change::Unchanged(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&format!("sqlite://{}/s.db", dir.path().display())).await.unwrap()
    }

    #[tokio::test]
    async fn items_are_numbered_per_team_and_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        assert_eq!(s.todo_add("oncall", "first", "local:a", 10).await.unwrap(), 1);
        assert_eq!(s.todo_add("web", "other team", "local:b", 11).await.unwrap(), 1);
        assert_eq!(s.todo_add("oncall", "second", "local:a", 12).await.unwrap(), 2);
        let open = s.todo_open("oncall").await.unwrap();
        assert_eq!(open.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    }

    #[tokio::test]
    async fn done_and_undo_change_an_item_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        s.todo_add("oncall", "x", "local:a", 10).await.unwrap();
        let Change::Changed(t) = s.todo_done("oncall", 1, "local:b", 20).await.unwrap() else { panic!("not done") };
        assert_eq!((t.done_by.as_deref(), t.done_at), (Some("local:b"), Some(20)));
        assert!(matches!(s.todo_done("oncall", 1, "local:c", 30).await.unwrap(), Change::Unchanged(_)));
        assert_eq!(s.todo_done("web", 1, "local:c", 30).await.unwrap(), Change::Unknown);
        assert!(matches!(s.todo_undo("oncall", 1).await.unwrap(), Change::Changed(t) if t.done_at.is_none()));
        assert!(matches!(s.todo_undo("oncall", 1).await.unwrap(), Change::Unchanged(_)));
        assert_eq!(s.todo_assign("oncall", 9, "local:a").await.unwrap(), Change::Unknown);
    }
}
