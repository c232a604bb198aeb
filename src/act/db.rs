//! The `db` plugin: the predefined queries a team may see (`db list`, `db describe`) and run
//! (`db query`).

use serde_json::Value;

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::decide::policy::{memberships, query_allowed};
use crate::queries::file::QueryFile;
use crate::render::{Block, Reply};

pub struct Db;

impl Plugin for Db {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            match cmd {
                Command::DbList => Ok(list(ctx)),
                Command::DbDescribe { query } => describe(ctx, query),
                Command::DbQuery { .. } => Err(ActError::User("running queries is not built yet".into())),
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
    let rows = queries
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
            rows,
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
    let rows = q
        .params
        .iter()
        .map(|p| {
            vec![
                Value::from(p.name.as_str()),
                Value::from(p.ty.name()),
                p.default.as_ref().map_or(Value::Null, |d| Value::from(d.to_string())),
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
            rows,
            note: None,
        });
    }
    if !q.examples.is_empty() {
        reply = reply.with(Block::List { items: q.examples.iter().map(|e| format!("\"{e}\"")).collect() });
    }
    Ok(reply.with(Block::Code { lang: Some("sql".into()), text: q.sql.clone() }))
}
