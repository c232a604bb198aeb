//! The `db` plugin: the predefined queries a team may see (`db list`, `db describe`) and run
//! (`db query`), and approved ad-hoc SQL (`db sql`, in `act::sql`).

use serde_json::Value;

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::{Command, Params};
use crate::decide::policy::{memberships, query_allowed};
use crate::queries::file::QueryFile;
use crate::queries::run::{self, More, Outcome};
use crate::render::{Block, Reply};

pub struct Db;

impl Plugin for Db {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            match cmd {
                Command::DbList => Ok(list(ctx)),
                Command::DbDescribe { query } => describe(ctx, query),
                Command::DbQuery { query: name, params, env } => query(ctx, name, params, env.as_deref()).await,
                Command::DbSchemaCheck { service, env } => crate::schema::run(ctx, service, env).await,
                Command::DbSql { database, sql, env } => super::sql::run(ctx, database, sql, env).await,
                other => {
                    Err(ActError::User(format!("`{}` is not built in this version of lazyops", other.spec().name())))
                }
            }
        })
    }
}

/// The queries the requester may run: allowed by a team of theirs that enables `db`.
fn visible<'w>(ctx: &Ctx<'_>, ws: &'w crate::workspace::Workspace) -> Vec<&'w QueryFile> {
    let teams = memberships(&ws.config, ctx.who);
    ws.catalog
        .queries
        .values()
        .filter(|q| teams.iter().any(|m| m.team.plugins.iter().any(|p| p == "db") && query_allowed(m.team, &q.name)))
        .collect()
}

fn signature(q: &QueryFile) -> String {
    q.params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} {} = {d}", p.name, p.ty.name()),
            None => format!("{} {}", p.name, p.ty.name()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(ctx: &Ctx<'_>) -> Reply {
    let ws = ctx.bot.workspace();
    let queries = visible(ctx, &ws);
    if queries.is_empty() {
        return Reply::done("no queries you may run").text("Your teams allow no predefined queries; see `whoami`.");
    }
    let rows: Vec<Vec<Value>> = queries
        .iter()
        .map(|q| {
            vec![
                Value::from(q.name.as_str()),
                Value::from(signature(q)),
                Value::from(q.database.as_str()),
                Value::from(q.description.as_str()),
            ]
        })
        .collect();
    Reply::done(format!("{} queries you may run", queries.len()))
        .with(Block::Table {
            columns: ["query", "parameters", "database", "description"].map(String::from).to_vec(),
            rows: rows.into(),
            note: None,
        })
        .text("Run one with `db query <name> name=value`, or `db describe <name>` for details.")
}

fn describe(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let Some(q) = visible(ctx, &ws).into_iter().find(|q| q.name == name) else {
        return Err(ActError::User(format!("you may not see the query `{name}`")));
    };
    let mut fields = vec![
        ("description".to_string(), q.description.clone()),
        ("database".to_string(), q.database.clone()),
        ("max rows".to_string(), q.max_rows.to_string()),
    ];
    let usage: Vec<String> = q.params.iter().map(|p| format!("{}=<{}>", p.name, p.ty.name())).collect();
    fields.push(("usage".to_string(), format!("db query {} {}", q.name, usage.join(" ")).trim_end().to_string()));
    let rows: Vec<Vec<Value>> = q
        .params
        .iter()
        .map(|p| {
            vec![
                Value::from(p.name.as_str()),
                Value::from(p.ty.name()),
                Value::from(p.default.as_ref().map_or_else(|| "required".to_string(), |d| d.to_string())),
                Value::from(if p.values.is_empty() {
                    p.help.clone()
                } else {
                    format!("{} (one of {})", p.help, p.values.join(", "))
                }),
            ]
        })
        .collect();
    let mut reply = Reply::done(format!("query {}", q.name)).with(Block::Fields { fields });
    if !q.params.is_empty() {
        reply = reply.with(Block::Table {
            columns: ["param", "type", "default", "help"].map(String::from).to_vec(),
            rows: rows.into(),
            note: None,
        });
    }
    // Examples as a person would type them: the training sentences with `{param}` holes (and
    // the deliberate typos that come with them) are for the classifier, not for reading.
    let examples: Vec<String> =
        q.examples.iter().filter(|e| !e.contains('{')).take(MAX_EXAMPLES).map(|e| format!("\"{e}\"")).collect();
    if !examples.is_empty() {
        reply = reply.with(Block::List { items: examples });
    }
    Ok(reply.with(Block::Code { lang: Some("sql".into()), text: q.sql.clone() }))
}

/// How many example sentences `db describe` shows.
const MAX_EXAMPLES: usize = 5;

async fn query(ctx: &Ctx<'_>, name: &str, params: &Params, env: Option<&str>) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let Some(q) = visible(ctx, &ws).into_iter().find(|q| q.name == name) else {
        return Err(ActError::User(format!("you may not run the query `{name}`")));
    };
    let env = env.map_or_else(|| ws.config.default_env(), str::to_string);
    match run::checked(ctx.bot.pools(), &ws, q, params, &env).await {
        Ok(out) if out.rows.is_empty() => {
            let looked = format!("{} ({}), {}", out.target.database, out.target.env, duration(out.elapsed));
            // The empty table keeps the columns for scripts (`--json`); the terminal skips it.
            let table = Block::Table { columns: out.columns, rows: Vec::new().into(), note: None };
            Ok(Reply::done(nothing_found(q, params)).text(format!("The query found no rows in {looked}.")).with(table))
        }
        Ok(out) => Ok(query_reply(out, q.max_rows)),
        Err(e) if e.is_internal() => Err(ActError::Internal(e.to_string())),
        Err(e) => Err(ActError::User(e.to_string())),
    }
}

/// A zero-row answer as a sentence made of the query's name and values: "no failed payments
/// since 2026-12-02" (the value of a parameter the name ends with follows it), "no user by id
/// (user_id 7)". Secret values are not repeated.
fn nothing_found(q: &crate::queries::file::QueryFile, params: &crate::command::Params) -> String {
    let words: Vec<&str> = q.name.split(['-', '_']).filter(|w| !w.is_empty()).collect();
    let mut out = format!("no {}", words.join(" "));
    let mut rest = Vec::new();
    for (name, value) in params {
        let value = if q.param(name).is_some_and(|p| p.secret) { "(secret)".to_string() } else { value.to_string() };
        if words.last().is_some_and(|w| w.eq_ignore_ascii_case(name)) {
            out.push_str(&format!(" {value}"));
        } else {
            rest.push(format!("{name} {value}"));
        }
    }
    if !rest.is_empty() {
        out.push_str(&format!(" ({})", rest.join(", ")));
    }
    out
}

/// `3 rows from users (prod) in 1.2 ms`, the table, and a note when the row cap was hit.
pub(crate) fn query_reply(out: Outcome, max_rows: usize) -> Reply {
    let n = out.rows.len();
    let rows = if n == 1 { "1 row".to_string() } else { format!("{n} rows") };
    let first = if out.more.is_some() { "first " } else { "" };
    let headline =
        format!("{first}{rows} from {} ({}) in {}", out.target.database, out.target.env, duration(out.elapsed));
    let note = out.more.map(|m| match m {
        More::Exactly(total) => format!("first {n} of {total} rows: the query stops at max_rows = {max_rows}"),
        More::Unknown => format!("first {n} of more rows: the query stops at max_rows = {max_rows}"),
    });
    Reply::done(headline).with(Block::Table { columns: out.columns, rows: out.rows.into(), note })
}

/// `0.4 ms`, `12 ms`, `3.1 s`.
fn duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries::pools::Target;
    use std::time::Duration;

    fn check(more: Option<More>, elapsed_us: u64) -> String {
        let out = Outcome {
            target: Target { database: "users".into(), env: "prod".into() },
            columns: vec!["id".into(), "email".into(), "deleted_at".into()],
            rows: vec![
                vec![Value::from(1), Value::from("alice@example.com"), Value::Null],
                vec![Value::from(2), Value::from("bob@example.com"), Value::from("2026-11-25 14:30:00")],
            ],
            more,
            elapsed: Duration::from_micros(elapsed_us),
        };
        crate::render::terminal::render(&query_reply(out, 2), false)
    }

    #[test]
    fn a_query_reply_shows_the_table_count_database_and_time() {
        insta::assert_snapshot!(check(None, 1234));
    }

    #[test]
    fn a_capped_query_reply_says_first_n_of_more() {
        insta::assert_snapshot!(check(Some(More::Unknown), 42_000));
        assert!(check(Some(More::Exactly(3)), 12_345_000).contains("first 2 of 3 rows"));
        assert!(check(Some(More::Exactly(3)), 12_345_000).starts_with("first 2 rows from users (prod) in 12.3 s"));
    }
}
