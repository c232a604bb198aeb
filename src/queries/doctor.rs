//! `lazyops check --connect`: connects to every configured target database and says whether
//! the user lazyops logs in as could write.
//!
//! The static check, the read-only transaction and the timeouts keep lazyops' own queries from
//! writing; a read-only role is the layer that holds when all of those have a hole. This is
//! how an admin learns that the role they gave lazyops is not one.

use std::fmt;

use super::pools::{Pool, Pools, Target};
use super::run::QueryError;
use crate::workspace::Workspace;

/// What one target database lets lazyops' user do.
#[derive(Debug)]
pub enum Verdict {
    /// Nothing found that writes; how that was established.
    ReadOnly(String),
    /// What the user may change, each item a privilege and where.
    CanWrite { user: String, what: Vec<String> },
    /// The target could not be reached or asked.
    Unreachable(String),
    /// Not asked: its URL comes from an unset variable.
    Skipped(String),
}

#[derive(Debug)]
pub struct Finding {
    pub target: Target,
    pub verdict: Verdict,
}

impl Finding {
    /// Whether `check` should fail on this finding.
    pub fn is_problem(&self) -> bool {
        matches!(self.verdict, Verdict::CanWrite { .. } | Verdict::Unreachable(_))
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Target { database, env } = &self.target;
        match &self.verdict {
            Verdict::ReadOnly(how) => write!(f, "database `{database}` ({env}): read-only ({how})"),
            Verdict::CanWrite { user, what } => write!(
                f,
                "database `{database}` ({env}): WARNING: user `{user}` can write: {}; give lazyops a read-only role (README, \"A read-only database role\")",
                what.join("; ")
            ),
            Verdict::Unreachable(why) => write!(f, "database `{database}` ({env}): cannot check: {why}"),
            Verdict::Skipped(why) => write!(f, "database `{database}` ({env}): skipped: {why}"),
        }
    }
}

/// Asks every configured target, one after another (each within the pools' time limits).
pub async fn inspect(ws: &Workspace, pools: &Pools) -> Vec<Finding> {
    let mut out = Vec::new();
    for (database, urls) in &ws.config.databases {
        for env in urls.keys() {
            let target = Target { database: database.clone(), env: env.clone() };
            let verdict = match pools.get(ws, &target) {
                Ok(pool) => ask(&pool).await.unwrap_or_else(|e| Verdict::Unreachable(e.to_string())),
                Err(QueryError::Url { reason, .. }) if reason.contains("is not set") => Verdict::Skipped(reason),
                Err(e) => Verdict::Unreachable(e.to_string()),
            };
            out.push(Finding { target, verdict });
        }
    }
    out
}

/// Privileges that only read or only show server state.
const MYSQL_READ_ONLY: &[&str] = &[
    "SELECT",
    "USAGE",
    "SHOW VIEW",
    "SHOW DATABASES",
    "PROCESS",
    "REPLICATION CLIENT",
    "BINLOG MONITOR",
    "SLAVE MONITOR",
    "REPLICA MONITOR",
];

async fn ask(pool: &Pool) -> Result<Verdict, sqlx::Error> {
    match pool {
        Pool::Sqlite(p) => {
            sqlx::query("SELECT 1").execute(p).await?;
            Ok(Verdict::ReadOnly("SQLite file opened read-only, with query_only".into()))
        }
        Pool::Postgres(p) => {
            let (user, superuser, tables, schemas, database): (String, bool, Option<String>, Option<String>, bool) =
                sqlx::query_as(POSTGRES_PRIVILEGES).fetch_one(p).await?;
            let mut what = Vec::new();
            if superuser {
                what.push("superuser (or bypasses row security)".to_string());
            }
            if let Some(t) = tables {
                what.push(format!("INSERT/UPDATE/DELETE/TRUNCATE on {t}"));
            }
            if let Some(s) = schemas {
                what.push(format!("CREATE in schema {s}"));
            }
            if database {
                what.push("CREATE in the database".to_string());
            }
            Ok(if what.is_empty() {
                Verdict::ReadOnly(format!("PostgreSQL user `{user}` has no write privilege"))
            } else {
                Verdict::CanWrite { user, what }
            })
        }
        Pool::Mysql(p) => {
            let (user,): (String,) = sqlx::query_as("SELECT CURRENT_USER()").fetch_one(p).await?;
            let grants: Vec<(String,)> = sqlx::query_as("SHOW GRANTS").fetch_all(p).await?;
            let what: Vec<String> = grants.iter().filter_map(|(g,)| mysql_writes(g)).collect();
            Ok(if what.is_empty() {
                Verdict::ReadOnly(format!("MySQL/MariaDB user `{user}` has only read privileges"))
            } else {
                Verdict::CanWrite { user, what }
            })
        }
    }
}

/// The current user's name, whether it is a superuser (or bypasses row security), up to five
/// tables it may change, the schemas it may create in, and whether it may create in the database.
const POSTGRES_PRIVILEGES: &str = "
SELECT current_user::text,
       r.rolsuper OR r.rolbypassrls,
       (SELECT string_agg(t, ', ') FROM (
           SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
             AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
             AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                  OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
           ORDER BY 1 LIMIT 5) w),
       (SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname) FROM pg_namespace
        WHERE has_schema_privilege(oid, 'CREATE') AND nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'),
       has_database_privilege(current_database(), 'CREATE')
FROM pg_roles r WHERE r.rolname = current_user";

/// The privileges of one `SHOW GRANTS` line that are not read-only, with where they apply:
/// `GRANT SELECT, INSERT ON `db`.* TO …` is `INSERT on `db`.*`.
fn mysql_writes(grant: &str) -> Option<String> {
    let rest = grant.strip_prefix("GRANT ")?;
    let (privileges, rest) = rest.split_once(" ON ")?;
    let on = rest.split(" TO ").next().unwrap_or(rest).trim();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut parts = Vec::new();
    for c in privileges.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    parts.push(current);
    let writes: Vec<String> = parts
        .iter()
        .map(|p| p.trim().to_ascii_uppercase())
        .filter(|p| !p.is_empty() && !MYSQL_READ_ONLY.contains(&p.as_str()))
        .collect();
    (!writes.is_empty()).then(|| format!("{} on {on}", writes.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grant: &str, expected: Option<&str>) {
        assert_eq!(mysql_writes(grant).as_deref(), expected, "{grant}");
    }

    #[test]
    fn mysql_grants_are_read_by_privilege() {
        check("GRANT USAGE ON *.* TO `ro`@`%`", None);
        check("GRANT SELECT, SHOW VIEW ON `shop`.* TO `ro`@`%`", None);
        check("GRANT SELECT (`id`, `email`) ON `shop`.`users` TO `ro`@`%`", None);
        check("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", Some("ALL PRIVILEGES on *.*"));
        check(
            "GRANT SELECT, INSERT, UPDATE (`email`) ON `shop`.`users` TO `app`@`%`",
            Some("INSERT, UPDATE on `shop`.`users`"),
        );
        check("GRANT FILE ON *.* TO `x`@`%`", Some("FILE on *.*"));
        // A role granted to the user: its own privileges are listed on their own lines.
        check("GRANT `reader` TO `ro`@`%`", None);
    }
}
