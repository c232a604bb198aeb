//! `approvals`: what waits for the requester's approval (today's rules decide who may approve
//! what), and what they asked others to approve. Approving and rejecting are pipeline steps
//! (`pipeline::approval`), since they run commands.

use serde_json::Value;

use super::{ActError, Ctx};
use crate::decide::approval::rule_for;
use crate::message::{Identity, Place};
use crate::pipeline::format_ms;
use crate::render::{Block, Reply};
use crate::store::approval::Approval;
use crate::store::now_ms;
use crate::workspace::Workspace;

/// Requests read at most, per list.
const LIMIT: i64 = 200;
const MINE: i64 = 20;

/// Whether `who` may approve `a` under today's config.
pub fn may_approve(ws: &Workspace, who: &Identity, a: &Approval) -> bool {
    let (Some(requester), Some(place)) = (Identity::parse(&a.requester), Place::from_key(&a.place)) else {
        return false;
    };
    let Ok(cmd) = crate::understand::grammar::parse(&a.command, &ws.catalog) else { return false };
    &requester != who && rule_for(&ws.config, &requester, &place, &cmd).is_some_and(|r| r.may_approve(who))
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let store = ctx.bot.store();
    let now = now_ms();
    let pending = store.pending_approvals(now, LIMIT).await.map_err(|e| ActError::User(e.to_string()))?;
    let waiting: Vec<Vec<Value>> = pending
        .iter()
        .filter(|a| may_approve(&ws, ctx.who, a))
        .map(|a| {
            vec![
                Value::from(a.code.as_str()),
                Value::from(a.shown.as_str()),
                Value::from(a.requester.as_str()),
                Value::from(a.place.as_str()),
                Value::from(format_ms(a.expires_at)),
            ]
        })
        .collect();
    let mine = store.approvals_asked_by(ctx.who.as_str(), MINE).await.map_err(|e| ActError::User(e.to_string()))?;
    let asked: Vec<Vec<Value>> = mine
        .iter()
        .map(|a| {
            let state = if a.state == "pending" && a.expires_at <= now { "expired" } else { a.state.as_str() };
            let detail = match (&a.decided_by, &a.reason) {
                (Some(by), Some(r)) => format!("{by}: {r}"),
                (Some(by), None) => by.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => format!("needs {}: {}", a.needed, a.approvers.join(", ")),
            };
            vec![Value::from(a.code.as_str()), Value::from(a.shown.as_str()), Value::from(state), Value::from(detail)]
        })
        .collect();
    let mut reply = Reply::done(format!(
        "{} waiting for your approval, {} asked by you",
        waiting.len(),
        if asked.is_empty() { "none".to_string() } else { asked.len().to_string() }
    ));
    if !waiting.is_empty() {
        reply = reply.with(Block::Table {
            columns: ["code", "command", "asked by", "where", "expires"].map(String::from).to_vec(),
            rows: waiting.into(),
            note: Some(
                "`approve <code>` runs it once enough approvers agree; `reject <code> \"reason\"` turns it down".into(),
            ),
        });
    }
    if !asked.is_empty() {
        reply = reply.with(Block::Table {
            columns: ["code", "command", "state", "by / reason"].map(String::from).to_vec(),
            rows: asked.into(),
            note: None,
        });
    }
    Ok(reply)
}
