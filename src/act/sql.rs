//! `db sql`: ad-hoc read-only SQL, the 5% the predefined queries do not cover. Before anyone
//! is asked to approve it, the statement passes the same static read-only check as query
//! files for every dialect its database may use (a write is refused with the reason, never
//! sent for approval), and the review shows the tables it reads (from the parser's AST) and
//! the server's own `EXPLAIN` estimate, which plans without running it. Once approved it runs
//! exactly like a predefined query (`queries::run`: read-only transaction, statement timeout,
//! row cap), after the static check once more for the dialect of the pool it runs on.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::PathBuf;

use serde_json::Value;
use sqlparser::ast::{ObjectName, Query, Visit, Visitor};
use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use super::{ActError, Ctx};
use crate::queries::file::{Dialect, QueryFile, rewrite_placeholders};
use crate::queries::pools::Pools;
use crate::queries::run::{self, Outcome};
use crate::queries::safety;
use crate::render::{Block, Reply};
use crate::workspace::Workspace;

/// Rows an ad-hoc statement may return; the rest is counted, not shown.
pub const MAX_ROWS: usize = 500;
/// Rows of an `EXPLAIN` read for the estimate.
const MAX_PLAN_ROWS: usize = 50;

/// What approvers are shown besides the SQL itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub dialect: Dialect,
    /// The tables (and views) the statement reads, as written, sorted.
    pub tables: Vec<String>,
    /// The server's estimate, or why there is none.
    pub estimate: String,
}

impl Review {
    /// The card's facts: database, environment, tables, estimate; then the full SQL.
    pub fn blocks(&self, database: &str, env: &str, sql: &str) -> Vec<Block> {
        let tables = if self.tables.is_empty() { "(none)".to_string() } else { self.tables.join(", ") };
        vec![
            Block::Fields {
                fields: vec![
                    ("database".into(), format!("{database} ({env}, {})", dialect_name(self.dialect))),
                    ("reads".into(), tables),
                    ("estimate".into(), self.estimate.clone()),
                ],
            },
            Block::Code { lang: Some("sql".into()), text: sql.to_string() },
        ]
    }
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
        Dialect::Mysql => "MySQL/MariaDB",
    }
}

/// The dialects `database` may be reached with: its URL in `env` first, then its other
/// environments'; a URL that cannot be read yet (`env:NAME` unset) may be any of the three.
fn dialects(ws: &Workspace, database: &str, env: &str) -> Result<Vec<Dialect>, String> {
    let urls =
        ws.config.databases.get(database).ok_or_else(|| format!("database `{database}` is not in `[databases]`"))?;
    if !urls.contains_key(env) {
        let have: Vec<&str> = urls.keys().map(String::as_str).collect();
        return Err(format!("database `{database}` has no URL for environment `{env}`; it has {}", have.join(", ")));
    }
    let mut out = Vec::new();
    let target = urls.get_key_value(env).into_iter();
    for (_, url) in target.chain(urls.iter().filter(|(e, _)| *e != env)) {
        let found = ws.resolve_url(url).ok().and_then(|u| Dialect::of_url(&u));
        let these = match found {
            Some(d) => vec![d],
            None => vec![Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql],
        };
        for d in these {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// The static check for one dialect: one read-only statement, no parameters.
fn check(ws: &Workspace, sql: &str, dialect: Dialect) -> Result<(), String> {
    safety::check_sql(sql, dialect, ws.config.bot.functions())
        .map_err(|e| format!("not run and not sent for approval: {e}"))?;
    let prepared = rewrite_placeholders(sql, dialect).map_err(|e| format!("not run: {e}"))?;
    if let Some(p) = prepared.binds.first() {
        return Err(format!(
            "not run: ad-hoc SQL takes no parameters, found `:{p}`; write the value into the statement"
        ));
    }
    Ok(())
}

/// Checks the statement and asks the server for its estimate; nothing is run. An `Err` is
/// the refusal to show (a write, a statement that does not parse, an unknown database).
pub async fn review(pools: &Pools, ws: &Workspace, database: &str, env: &str, sql: &str) -> Result<Review, String> {
    let dialects = dialects(ws, database, env)?;
    for d in &dialects {
        check(ws, sql, *d)?;
    }
    let dialect = dialects[0];
    let tables = tables(sql, dialect);
    let estimate = match explain_sql(sql, dialect) {
        None => "not available".to_string(),
        Some(explain) => {
            let q = ad_hoc(database, explain, MAX_PLAN_ROWS);
            match run::run(pools, ws, &q, &Vec::new(), env).await {
                Ok(out) => estimate(dialect, &out),
                Err(e) => format!("not available: {e}"),
            }
        }
    };
    Ok(Review { dialect, tables, estimate })
}

/// Runs an approved statement like a predefined query.
pub async fn run(ctx: &Ctx<'_>, database: &str, sql: &str, env: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let dialects = dialects(&ws, database, env).map_err(ActError::User)?;
    for d in &dialects {
        check(&ws, sql, *d).map_err(ActError::User)?;
    }
    let q = ad_hoc(database, sql.to_string(), MAX_ROWS);
    match run::run(ctx.bot.pools(), &ws, &q, &Vec::new(), env).await {
        Ok(out) => Ok(super::db::query_reply(out, MAX_ROWS)),
        Err(e) => Err(ActError::User(e.to_string())),
    }
}

/// An ad-hoc statement dressed as a query file, so it takes the predefined queries' path.
fn ad_hoc(database: &str, sql: String, max_rows: usize) -> QueryFile {
    QueryFile {
        name: "db sql".into(),
        description: String::new(),
        database: database.to_string(),
        params: Vec::new(),
        max_rows,
        timeout_ms: None,
        examples: Vec::new(),
        sql,
        variants: Default::default(),
        path: PathBuf::new(),
        sql_line: 0,
        variant_lines: Default::default(),
    }
}

/// The statement the server plans without running it, per engine.
fn explain_sql(sql: &str, dialect: Dialect) -> Option<String> {
    let body = sql.trim().trim_end_matches(';');
    // An EXPLAIN typed by the user is already a plan; it is not explained again.
    if body.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("explain")) {
        return None;
    }
    Some(match dialect {
        Dialect::Postgres => format!("EXPLAIN (FORMAT JSON) {body}"),
        Dialect::Mysql => format!("EXPLAIN {body}"),
        Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {body}"),
    })
}

/// The estimate in one line: PostgreSQL's rows and total cost, MariaDB/MySQL's rows per
/// table, SQLite's plan steps (it estimates no rows or cost).
fn estimate(dialect: Dialect, out: &Outcome) -> String {
    let col = |name: &str| out.columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    match dialect {
        Dialect::Postgres => {
            let plan = out.rows.first().and_then(|r| r.first()).map(|v| match v {
                Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
                other => other.clone(),
            });
            let top = plan.as_ref().and_then(|p| p.get(0)).and_then(|p| p.get("Plan"));
            match top {
                Some(p) => format!(
                    "about {} rows, cost {} ({})",
                    p.get("Plan Rows").map_or("?".to_string(), Value::to_string),
                    p.get("Total Cost").map_or("?".to_string(), Value::to_string),
                    p.get("Node Type").and_then(Value::as_str).unwrap_or("plan")
                ),
                None => "not available: PostgreSQL returned no plan".into(),
            }
        }
        Dialect::Mysql => {
            let (Some(t), Some(r)) = (col("table"), col("rows")) else {
                return "not available: no rows column in EXPLAIN".into();
            };
            let kind = col("type");
            let parts: Vec<String> = out
                .rows
                .iter()
                .map(|row| {
                    let name = row.get(t).map_or("?".into(), cell);
                    let rows = row.get(r).map_or("?".into(), cell);
                    let how = kind.and_then(|k| row.get(k)).map(cell).unwrap_or_default();
                    format!("{name}: about {rows} rows ({how})")
                })
                .collect();
            format!("{}; MariaDB/MySQL report no cost here", parts.join(", "))
        }
        Dialect::Sqlite => {
            let Some(d) = col("detail") else { return "not available: no plan detail".into() };
            let steps: Vec<String> = out.rows.iter().filter_map(|r| r.get(d)).map(cell).collect();
            format!("plan: {}; SQLite estimates no rows or cost", steps.join(", "))
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

/// The tables and views a statement reads, as written; names a `WITH` defines are not tables.
pub fn tables(sql: &str, dialect: Dialect) -> Vec<String> {
    let parser: Box<dyn SqlDialect> = match dialect {
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Mysql => Box::new(MySqlDialect {}),
    };
    let Ok(statements) = Parser::parse_sql(parser.as_ref(), sql) else { return Vec::new() };
    let mut v = Relations::default();
    let _ = statements.visit(&mut v);
    v.tables.retain(|t| !v.ctes.contains(&t.to_ascii_lowercase()));
    v.tables.into_iter().collect()
}

#[derive(Default)]
struct Relations {
    tables: BTreeSet<String>,
    ctes: BTreeSet<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        self.tables.insert(r.to_string());
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Vec<String> {
        tables(sql, Dialect::Postgres)
    }

    #[test]
    fn tables_are_read_from_the_ast_without_cte_names() {
        assert_eq!(check("SELECT * FROM users u JOIN orders o ON o.user_id = u.id"), ["orders", "users"]);
        assert_eq!(
            check("WITH recent AS (SELECT * FROM public.payments) SELECT count(*) FROM recent"),
            ["public.payments"]
        );
        assert_eq!(check("SELECT (SELECT max(id) FROM ledger_entries)"), ["ledger_entries"]);
        assert!(check("SELECT 1").is_empty());
    }

    #[test]
    fn a_typed_explain_is_not_explained_again() {
        assert_eq!(explain_sql("explain select 1", Dialect::Postgres), None);
        assert_eq!(explain_sql("SELECT 1;", Dialect::Sqlite).as_deref(), Some("EXPLAIN QUERY PLAN SELECT 1"));
    }
}
