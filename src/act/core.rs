//! The commands every requester has: `help`, `whoami`, `explain`, `approvals`; and `audit`
//! for admins.

use std::sync::{Arc, LazyLock};

use serde_json::Value;

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::decide::policy::memberships;
use crate::render::{Block, Reply};
use crate::spec::{CommandSpec, SPECS};

pub struct Core;

impl Plugin for Core {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            match cmd {
                Command::Help { topic } => Ok(help(topic.as_deref())),
                Command::Whoami => Ok(whoami(ctx)),
                Command::Explain { text } => Ok(explain(ctx, text).await),
                Command::Approvals => super::approval::list(ctx).await,
                other => Err(ActError::Internal(format!("core plugin got `{other}`"))),
            }
        })
    }
}

fn help(topic: Option<&str>) -> Reply {
    let Some(topic) = topic else {
        // The command table never changes: its usage lines are formatted once.
        static ROWS: LazyLock<Arc<[Vec<Value>]>> =
            LazyLock::new(|| SPECS.iter().map(|s| vec![Value::from(s.usage()), Value::from(s.summary)]).collect());
        let rows = ROWS.clone();
        return Reply::done("lazyops commands")
            .with(Block::Table { columns: vec!["command".into(), "what it does".into()], rows, note: None })
            .text("Type a command, or ask in a sentence (\"which version of payments is live?\"). `help <command>` shows its arguments and examples.");
    };
    let words: Vec<&str> = topic.split_whitespace().collect();
    let matching: Vec<&CommandSpec> = SPECS
        .iter()
        .filter(|s| s.words.len() >= words.len() && s.words.iter().zip(&words).all(|(a, b)| a == b))
        .collect();
    let mut reply = Reply::done(format!("help: {topic}"));
    for s in matching {
        let mut fields = vec![("usage".to_string(), s.usage()), ("does".to_string(), s.summary.to_string())];
        for a in s.args {
            fields.push((a.name.to_string(), format!("{}{}", a.help, if a.required { "" } else { " (optional)" })));
        }
        let confirm = match s.confirm {
            crate::spec::ConfirmPolicy::Never => "never",
            crate::spec::ConfirmPolicy::Configurable => "when your team's config says so",
            crate::spec::ConfirmPolicy::Always => "always",
        };
        fields.push(("confirmation".to_string(), confirm.to_string()));
        fields.push(("plugin".to_string(), s.plugin.to_string()));
        reply = reply.with(Block::Fields { fields });
        reply = reply.with(Block::List { items: s.examples.iter().map(|e| format!("e.g. {e}")).collect() });
    }
    reply
}

fn whoami(ctx: &Ctx<'_>) -> Reply {
    let ws = ctx.bot.workspace();
    let teams = memberships(&ws.config, ctx.who);
    let mut reply = Reply::done(format!("you are {}", ctx.who)).with(Block::Fields {
        fields: vec![("identity".into(), ctx.who.to_string()), ("here".into(), ctx.place.key())],
    });
    if teams.is_empty() {
        return reply.text("You are in no team, so you may run only help, whoami and explain. An admin can add you to a team's `members` in lazyops.toml.");
    }
    let rows: Vec<Vec<Value>> = teams
        .iter()
        .map(|m| {
            let here = m.team.channels.iter().any(|c| ctx.place.matches(c));
            vec![
                Value::from(m.name),
                Value::from(if m.roles.is_empty() { "member".to_string() } else { m.roles.join(", ") }),
                Value::from(m.team.plugins.join(", ")),
                Value::from(m.allowed().join(", ")),
                Value::from(if here { "yes" } else { "no" }),
            ]
        })
        .collect();
    reply = reply.with(Block::Table {
        columns: vec!["team".into(), "roles".into(), "plugins".into(), "allowed".into(), "applies here".into()],
        rows: rows.into(),
        note: None,
    });
    reply
}

async fn explain(ctx: &Ctx<'_>, text: &str) -> Reply {
    explanation(&ctx.bot.explain(text, ctx.who, ctx.place).await)
}

/// An explanation as a reply: `explain` in chat and `lazyops explain` without `--json`.
pub fn explanation(e: &crate::understand::Explanation) -> Reply {
    let mut fields = vec![
        ("tier".to_string(), e.tier.name().to_string()),
        ("confidence".to_string(), format!("{:.2}", e.confidence)),
    ];
    if let Some(i) = &e.intent {
        fields.push(("intent".into(), i.clone()));
    }
    for (k, v) in &e.slots {
        fields.push((format!("slot {k}"), v.clone()));
    }
    if let Some(l) = &e.llm {
        let cached = if l.cached { ", cached" } else { "" };
        let cost = format!("{} ms{cached}, {} + {} tokens", l.latency_ms, l.prompt_tokens, l.completion_tokens);
        fields.push(("model".into(), format!("{}: {} ({cost})", l.model, l.outcome)));
        if let Some(d) = &l.detail {
            fields.push(("model detail".into(), d.clone()));
        }
    }
    if let Some(local) = &e.local {
        let answer =
            local.command.clone().or_else(|| local.question.clone()).unwrap_or_else(|| "not understood".into());
        fields.push(("local answer".into(), answer));
    }
    let headline = match (&e.command, &e.question) {
        (Some(c), _) => format!("understood as `{c}`"),
        (None, Some(q)) => format!("would ask: {q}"),
        (None, None) => "not understood".to_string(),
    };
    let mut reply = Reply::done(headline).with(Block::Fields { fields });
    if !e.candidates.is_empty() {
        let rows: Vec<Vec<Value>> =
            e.candidates.iter().map(|(i, s)| vec![Value::from(i.as_str()), Value::from(format!("{s:.3}"))]).collect();
        reply =
            reply.with(Block::Table { columns: vec!["intent".into(), "score".into()], rows: rows.into(), note: None });
    }
    if let Some(err) = &e.error {
        reply = reply.text(err.clone());
    }
    reply
}

pub struct Audit;

impl Plugin for Audit {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            let Command::Audit { since, who, limit } = cmd else {
                return Err(ActError::Internal(format!("audit plugin got `{cmd}`")));
            };
            let since_ms = since.map(|s| s.start_ms(time::OffsetDateTime::now_utc()));
            let limit = limit.unwrap_or(crate::command::AUDIT_LIMIT).min(crate::command::AUDIT_MAX_LIMIT);
            let rows = ctx
                .bot
                .store()
                .audit_list(since_ms, who.as_deref(), i64::from(limit))
                .await
                .map_err(|e| ActError::User(e.to_string()))?;
            let table: Vec<Vec<Value>> = rows
                .iter()
                .map(|r| {
                    vec![
                        Value::from(crate::pipeline::format_ms(r.at)),
                        Value::from(r.who.as_str()),
                        Value::from(r.place.as_str()),
                        Value::from(r.command.clone().unwrap_or_else(|| r.text.clone())),
                        Value::from(match &r.approved_by {
                            Some(by) => format!("{} by {}", r.decision, by.replace('\n', ", ")),
                            None => r.decision.clone(),
                        }),
                        // What went wrong is part of the outcome an admin reads.
                        Value::from(match (&r.outcome, &r.error) {
                            (Some(o), Some(e)) => format!("{o}: {}", crate::render::one_line(e)),
                            (Some(o), None) => o.clone(),
                            (None, _) => "no outcome".into(),
                        }),
                    ]
                })
                .collect();
            Ok(Reply::done(format!("{} audit entries, newest first", rows.len())).with(Block::Table {
                columns: ["when", "who", "where", "command", "decision", "outcome"].map(String::from).to_vec(),
                rows: table.into(),
                note: None,
            }))
        })
    }
}
