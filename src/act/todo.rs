//! The `todo` plugin: the team's TODO list, kept in the bot's own database. The team is the
//! one whose rules allowed the command, so one team never sees or changes another's items.
//! Item text is shown so that it can never notify anyone, whatever a person typed into it.

use serde_json::Value;

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::pipeline::format_ms;
use crate::render::{Block, Reply};
use crate::store::now_ms;
use crate::store::todo::{Change, Todo as Item};

/// Longer items are refused, not cut: a TODO is a line, not a document.
pub const MAX_CHARS: usize = 500;

pub struct Todo;

impl Plugin for Todo {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            if ctx.team.is_empty() {
                return Err(ActError::Internal(format!("todo plugin ran `{cmd}` without a team")));
            }
            match cmd {
                Command::TodoAdd { text } => add(ctx, text).await,
                Command::TodoList => list(ctx).await,
                Command::TodoDone { id } => done(ctx, *id).await,
                Command::TodoUndo { id } => undo(ctx, *id).await,
                Command::TodoAssign { id, who } => assign(ctx, *id, who).await,
                other => Err(ActError::Internal(format!("todo plugin got `{other}`"))),
            }
        })
    }
}

fn store_err(e: crate::store::StoreError) -> ActError {
    ActError::User(e.to_string())
}

/// One line of text: newlines and tabs become spaces, other control characters go.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    spaced.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Text from people or the internet, made unable to notify: a word joiner after `@` breaks
/// `@here`, `@channel` and `@user` for Slack's `link_names` and GitHub alike, and Slack's
/// `<!here>`, `<@U123>` and `<#C123>` lose their brackets' meaning the same way. What is
/// stored stays as typed; only what is shown changes.
pub fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let next = chars.peek().copied();
        let mention = match (c, next) {
            ('@', Some(n)) => n.is_alphanumeric() || n == '_',
            ('<', Some(n)) => matches!(n, '!' | '@' | '#'),
            _ => false,
        };
        if mention {
            out.push('\u{2060}');
        }
    }
    out
}

/// `3 d`, `5 h`, `12 min`, `just now`.
pub fn age(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

async fn add(ctx: &Ctx<'_>, text: &str) -> Result<Reply, ActError> {
    let text = one_line(text);
    let chars = text.chars().count();
    if chars == 0 {
        return Err(ActError::User("a TODO item needs some text: todo add \"what needs doing\"".into()));
    }
    if chars > MAX_CHARS {
        return Err(ActError::User(format!(
            "a TODO item is at most {MAX_CHARS} characters and this one has {chars}; put the details in a ticket and link it"
        )));
    }
    let num = ctx.bot.store().todo_add(ctx.team, &text, ctx.who.as_str(), now_ms()).await.map_err(store_err)?;
    Ok(Reply::done(format!("added #{num} to {}'s TODO list", ctx.team)).text(without_mentions(&text)))
}

async fn list(ctx: &Ctx<'_>) -> Result<Reply, ActError> {
    let items = ctx.bot.store().todo_open(ctx.team).await.map_err(store_err)?;
    if items.is_empty() {
        return Ok(Reply::done(format!("{}'s TODO list is empty", ctx.team))
            .text("Add an item with `todo add \"what needs doing\"`."));
    }
    let now = now_ms();
    let rows: Vec<Vec<Value>> = items
        .iter()
        .map(|t| {
            vec![
                Value::from(format!("#{}", t.num)),
                Value::from(without_mentions(&t.text)),
                Value::from(t.added_by.as_str()),
                Value::from(age(now - t.added_at)),
                t.assignee.as_deref().map_or(Value::Null, Value::from),
            ]
        })
        .collect();
    let n = items.len();
    Ok(Reply::done(format!("{n} open item{} on {}'s TODO list, oldest first", if n == 1 { "" } else { "s" }, ctx.team))
        .with(Block::Table {
            columns: ["#", "item", "added by", "age", "assignee"].map(String::from).to_vec(),
            rows: rows.into(),
            note: None,
        })
        .text("`todo done <#>` when one is done, `todo assign <#> <who>` to hand one over."))
}

fn unknown(ctx: &Ctx<'_>, id: u64) -> ActError {
    ActError::User(format!("{}'s TODO list has no item #{id}; `todo list` shows the open ones", ctx.team))
}

fn item_fields(t: &Item) -> Block {
    let mut fields = vec![
        ("item".to_string(), without_mentions(&t.text)),
        ("added".to_string(), format!("by {} at {}", t.added_by, format_ms(t.added_at))),
    ];
    if let Some(a) = &t.assignee {
        fields.push(("assignee".into(), a.clone()));
    }
    if let (Some(by), Some(at)) = (&t.done_by, t.done_at) {
        fields.push(("done".into(), format!("by {by} at {}", format_ms(at))));
    }
    Block::Fields { fields }
}

/// Numbers larger than any item are unknown items, not an overflow.
fn num(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

async fn done(ctx: &Ctx<'_>, id: u64) -> Result<Reply, ActError> {
    match ctx.bot.store().todo_done(ctx.team, num(id), ctx.who.as_str(), now_ms()).await.map_err(store_err)? {
        Change::Changed(t) => Ok(Reply::done(format!("#{id} is done")).with(item_fields(&t))),
        Change::Unchanged(t) => Err(ActError::User(format!(
            "#{id} is already done (by {}, {} ago); `todo undo {id}` reopens it",
            t.done_by.as_deref().unwrap_or("someone"),
            age(now_ms() - t.done_at.unwrap_or_default())
        ))),
        Change::Unknown => Err(unknown(ctx, id)),
    }
}

async fn undo(ctx: &Ctx<'_>, id: u64) -> Result<Reply, ActError> {
    match ctx.bot.store().todo_undo(ctx.team, num(id)).await.map_err(store_err)? {
        Change::Changed(t) => Ok(Reply::done(format!("#{id} is open again")).with(item_fields(&t))),
        Change::Unchanged(_) => Err(ActError::User(format!("#{id} is not done, so there is nothing to undo"))),
        Change::Unknown => Err(unknown(ctx, id)),
    }
}

async fn assign(ctx: &Ctx<'_>, id: u64, who: &str) -> Result<Reply, ActError> {
    match ctx.bot.store().todo_assign(ctx.team, num(id), who).await.map_err(store_err)? {
        Change::Changed(t) | Change::Unchanged(t) => {
            Ok(Reply::done(format!("#{id} is assigned to {who}")).with(item_fields(&t)))
        }
        Change::Unknown => Err(unknown(ctx, id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_made_inert_but_stay_readable() {
        let check = |given: &str, want: &str| assert_eq!(without_mentions(given), want, "{given:?}");
        check("<!channel> rotate @here the key", "<\u{2060}!channel> rotate @\u{2060}here the key");
        check("ping <@U0123> and <#C99|ops>", "ping <\u{2060}@\u{2060}U0123> and <\u{2060}#C99|ops>");
        check("mail ops@example.com", "mail ops@\u{2060}example.com");
        check("a < b, @ noon, x@", "a < b, @ noon, x@");
    }

    #[test]
    fn items_become_one_line() {
        assert_eq!(one_line("  fix\nthe\t\tthing \u{1b}[31m "), "fix the thing [31m");
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        for (ms, want) in [
            (0, "just now"),
            (59_999, "just now"),
            (120_000, "2 min"),
            (7_200_000, "2 h"),
            (3 * 86_400_000, "3 d"),
            (-5, "just now"),
        ] {
            assert_eq!(age(ms), want);
        }
    }
}
