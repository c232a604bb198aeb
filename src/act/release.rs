//! The `release` plugin: `release check <service> <env>` runs the service's checklist from
//! config. Items run at the same time, each with its own timeout, and the reply is the list
//! with ✅ / ❌ / ⚠️ per item and a verdict. Manual items are ticked by a person (a button in
//! Slack, a question in `lazyops chat`) through [`tick`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::progress::{self, Step};
use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::Command;
use crate::config::{CheckKind, ChecklistItem};
use crate::decide::policy::{self, Decision};
use crate::deploy::{self, Relation};
use crate::message::{Identity, Place};
use crate::pipeline::Bot;
use crate::render::{Action, Block, Reply, Status};
use crate::store::audit::{AuditStart, Completion};
use crate::store::{Store, now_ms};
use crate::workspace::Workspace;

pub struct Release;

impl Plugin for Release {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            match cmd {
                Command::ReleaseCheck { service, env } => check(ctx, service, env).await,
                other => Err(ActError::Internal(format!("release plugin got `{other}`"))),
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Fail,
    Warn,
}

impl Mark {
    pub fn icon(self) -> &'static str {
        match self {
            Mark::Pass => "✅",
            Mark::Fail => "❌",
            Mark::Warn => "⚠️",
        }
    }
}

const DEFAULT_ITEM_TIMEOUT: u64 = 30;
/// A tick counts for a day: the next day's release is ticked again.
const TICK_VALID_MS: i64 = 24 * 3600 * 1000;
const TICK_PREFIX: &str = "tick:";

async fn check(ctx: &Ctx<'_>, service: &str, env: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let items = ws.config.services.get(service).map(|s| s.checklist.clone()).unwrap_or_default();
    if items.is_empty() {
        return Err(ActError::User(format!(
            "service `{service}` has no release checklist: add [[services.{service}.checklist]] items to the config"
        )));
    }
    let results = run_items(&ws, ctx.bot.store(), service, env, &items).await;
    Ok(reply(service, env, &items, &results))
}

/// Runs every item at once; progress is reported as each one ends.
pub async fn run_items(
    ws: &Arc<Workspace>,
    store: &Store,
    service: &str,
    env: &str,
    items: &[ChecklistItem],
) -> Vec<(Mark, String)> {
    let total = items.len();
    progress::report(&Step { done: 0, total, label: "starting".into() });
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.iter().enumerate() {
        let (ws, store, item) = (ws.clone(), store.clone(), item.clone());
        let (service, env) = (service.to_string(), env.to_string());
        set.spawn(async move {
            let secs = item.timeout_secs.unwrap_or(DEFAULT_ITEM_TIMEOUT);
            let res = tokio::time::timeout(Duration::from_secs(secs), run_item(&ws, &store, &service, &env, &item))
                .await
                .unwrap_or_else(|_| (Mark::Fail, format!("no answer within {secs} s")));
            let res =
                if item.optional && res.0 == Mark::Fail { (Mark::Warn, format!("{} (optional)", res.1)) } else { res };
            // Item details quote URLs and servers' answers: shown to a channel, so no credentials.
            (i, (res.0, crate::redact::redact(&res.1)))
        });
    }
    let mut results: Vec<Option<(Mark, String)>> = vec![None; total];
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        let Ok((i, res)) = joined else { continue };
        done += 1;
        progress::report(&Step { done, total, label: items[i].name.clone() });
        results[i] = Some(res);
    }
    results.into_iter().map(|r| r.unwrap_or((Mark::Fail, "the check stopped unexpectedly".into()))).collect()
}

async fn run_item(ws: &Workspace, store: &Store, service: &str, env: &str, item: &ChecklistItem) -> (Mark, String) {
    match item.check {
        CheckKind::Schema => match crate::schema::check(ws, service, env).await {
            Ok(r) if r.matches() => (Mark::Pass, r.summary()),
            Ok(r) => (Mark::Fail, r.summary()),
            Err(e) => (Mark::Fail, e.to_string()),
        },
        CheckKind::Version => version_item(ws, service, env, item).await,
        CheckKind::Ci => ci_item(ws, service, env, item).await,
        CheckKind::Http => http_item(item).await,
        CheckKind::Manual => match store.checklist_ticked(service, env, &item.name, now_ms() - TICK_VALID_MS).await {
            Ok(Some((who, at))) => (Mark::Pass, format!("ticked by {who} at {}", crate::pipeline::format_ms(at))),
            Ok(None) => (Mark::Warn, "waiting for someone to tick it".into()),
            Err(e) => (Mark::Fail, e.to_string()),
        },
    }
}

/// The environment a release to `env` takes its version from: `env` of the item, else the
/// one listed after `env` in `[envs]` (staging for prod).
fn source_env(ws: &Workspace, env: &str, item: &ChecklistItem) -> Option<String> {
    if let Some(e) = &item.env {
        return Some(e.clone());
    }
    let envs: Vec<&String> = ws.config.envs.keys().collect();
    let at = envs.iter().position(|e| *e == env)?;
    envs.get(at + 1).map(|e| e.to_string())
}

async fn version_item(ws: &Workspace, service: &str, env: &str, item: &ChecklistItem) -> (Mark, String) {
    // A release to the first environment takes its version from a build, not from another
    // environment: there is nothing to compare (an item's own `env` says otherwise).
    let Some(from) = source_env(ws, env, item) else {
        return (Mark::Pass, format!("{env} is the first environment in [envs]: no earlier one to compare with"));
    };
    let (src, dst) = tokio::join!(deploy::read(ws, service, &from), deploy::read(ws, service, env));
    let (src, dst) = match (src, dst) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) => return (Mark::Fail, format!("{from}: {e}")),
        (_, Err(e)) => return (Mark::Fail, format!("{env}: {e}")),
    };
    let sentence = deploy::sentence(&from, &src, env, &dst);
    match deploy::relation(&src, &dst) {
        Relation::Ahead(_) => (Mark::Pass, format!("{from} has {}: {sentence}", src.version)),
        Relation::Same => (Mark::Warn, format!("{sentence}: nothing new to release")),
        Relation::Behind(_) => (Mark::Fail, sentence),
        Relation::Differs => (Mark::Warn, sentence),
    }
}

/// GitHub's combined status and check runs of a commit: ❌ when any failed, ⚠️ while any
/// runs or when there are none, ✅ otherwise.
async fn ci_item(ws: &Workspace, service: &str, env: &str, item: &ChecklistItem) -> (Mark, String) {
    let Some(repo) = &item.repo else { return (Mark::Fail, "set `repo = \"owner/name\"` on this item".into()) };
    let wanted = item.git_ref.clone().unwrap_or_else(|| "main".into());
    let git_ref = match wanted.strip_prefix("version:") {
        Some(e) => {
            let e = if e.is_empty() { env } else { e };
            match deploy::read(ws, service, e).await {
                Ok(d) => d.commit.unwrap_or(d.version),
                Err(err) => return (Mark::Fail, format!("{e}: {err}")),
            }
        }
        None => wanted,
    };
    let secs = item.timeout_secs.unwrap_or(DEFAULT_ITEM_TIMEOUT);
    let client = match deploy::http::client(Duration::from_secs(secs)) {
        Ok(c) => c,
        Err(e) => return (Mark::Fail, e.to_string()),
    };
    let status_path = format!("/repos/{repo}/commits/{git_ref}/status");
    let runs_path = format!("/repos/{repo}/commits/{git_ref}/check-runs?per_page=100");
    let (status, runs) = tokio::join!(
        deploy::http::github_get(&client, &status_path, secs),
        deploy::http::github_get(&client, &runs_path, secs),
    );
    let (status, runs) = match (status, runs) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => return (Mark::Fail, e.to_string()),
    };
    ci_verdict(&git_ref, &status, &runs)
}

pub fn ci_verdict(git_ref: &str, status: &Value, runs: &Value) -> (Mark, String) {
    let mut failed: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut passed = 0;
    for s in status.get("statuses").and_then(Value::as_array).into_iter().flatten() {
        let name = s.get("context").and_then(Value::as_str).unwrap_or("status").to_string();
        match s.get("state").and_then(Value::as_str) {
            Some("success") => passed += 1,
            Some("pending") => pending.push(name),
            _ => failed.push(name),
        }
    }
    for r in runs.get("check_runs").and_then(Value::as_array).into_iter().flatten() {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("check").to_string();
        if r.get("status").and_then(Value::as_str) != Some("completed") {
            pending.push(name);
            continue;
        }
        match r.get("conclusion").and_then(Value::as_str) {
            Some("success" | "neutral" | "skipped") => passed += 1,
            _ => failed.push(name),
        }
    }
    let total = passed + failed.len() + pending.len();
    if !failed.is_empty() {
        return (Mark::Fail, format!("{} of {total} checks failed on {git_ref}: {}", failed.len(), failed.join(", ")));
    }
    if !pending.is_empty() {
        return (
            Mark::Warn,
            format!("{} of {total} checks still running on {git_ref}: {}", pending.len(), pending.join(", ")),
        );
    }
    if total == 0 {
        return (Mark::Warn, format!("no CI status or check run on {git_ref}"));
    }
    (Mark::Pass, format!("{total} checks passed on {git_ref}"))
}

async fn http_item(item: &ChecklistItem) -> (Mark, String) {
    let Some(url) = &item.url else { return (Mark::Fail, "set `url` on this item".into()) };
    let secs = item.timeout_secs.unwrap_or(DEFAULT_ITEM_TIMEOUT);
    let client = match deploy::http::client(Duration::from_secs(secs)) {
        Ok(c) => c,
        Err(e) => return (Mark::Fail, e.to_string()),
    };
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return (Mark::Fail, deploy::http::request_error(url, secs, &e).to_string()),
    };
    let code = resp.status();
    let ok_status = match item.status {
        Some(want) => code.as_u16() == want,
        None => code.is_success(),
    };
    let shown = crate::redact::redact(url);
    if !ok_status {
        return (Mark::Fail, format!("GET {shown} answered {code}"));
    }
    if let Some(needle) = &item.contains {
        let body = match deploy::http::body(url, secs, resp).await {
            Ok(b) => b,
            Err(e) => return (Mark::Fail, e.to_string()),
        };
        if !body.contains(needle.as_str()) {
            return (Mark::Fail, format!("GET {shown} answered {code} without \"{needle}\""));
        }
    }
    (Mark::Pass, format!("GET {shown} answered {code}"))
}

pub fn reply(service: &str, env: &str, items: &[ChecklistItem], results: &[(Mark, String)]) -> Reply {
    let count = |m: Mark| results.iter().filter(|(r, _)| *r == m).count();
    let (fails, warns) = (count(Mark::Fail), count(Mark::Warn));
    let headline = match (fails, warns) {
        (0, 0) => format!("✅ {service} is ready to release to {env}"),
        (0, w) => format!("⚠️ {service} → {env}: {} to look at before releasing", crate::schema::plural(w, "item")),
        (f, _) => format!("❌ {service} is not ready to release to {env}: {} of {} failed", f, items.len()),
    };
    let list = items
        .iter()
        .zip(results)
        .map(|(item, (mark, text))| format!("{} {}: {text}", mark.icon(), item.name))
        .collect();
    let mut reply = Reply::done(headline).with(Block::List { items: list });
    for (item, (mark, _)) in items.iter().zip(results) {
        if item.check == CheckKind::Manual && *mark != Mark::Pass {
            reply.actions.push(Action {
                id: format!("{TICK_PREFIX}{service}:{env}:{}", item.name),
                label: format!("tick “{}”", item.name),
            });
        }
    }
    if !reply.actions.is_empty() {
        reply = reply
            .text(format!("Tick the manual items with their buttons, then run `release check {service} {env}` again."));
    }
    reply
}

/// A tick button pressed (or answered in the terminal): records the tick when the person may
/// run this service's release check here.
pub async fn tick(bot: &Bot, who: &Identity, place: &Place, action: &str) -> Reply {
    let Some(rest) = action.strip_prefix(TICK_PREFIX) else {
        return Reply::failed(format!("unknown action `{action}`"));
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(service), Some(env), Some(item)) = (parts.next(), parts.next(), parts.next()) else {
        return Reply::failed(format!("unknown action `{action}`"));
    };
    let ws = bot.workspace();
    let known = ws
        .config
        .services
        .get(service)
        .is_some_and(|s| s.checklist.iter().any(|i| i.check == CheckKind::Manual && i.name == item));
    if !known || !ws.config.envs.contains_key(env) {
        return Reply::failed(format!("`{item}` is not a manual checklist item of {service} ({env})"));
    }
    let cmd = Command::ReleaseCheck { service: service.to_string(), env: env.to_string() };
    // Every tick of a real item (a button, or y in the terminal) is audited, refused or not.
    let row = AuditStart { command: Some(cmd.to_string()), ..AuditStart::of(who, place, format!("(tick) {item}")) };
    if let Decision::Refused { reason } = policy::decide(&ws.config, who, place, &cmd) {
        let row = AuditStart { decision: "refused".into(), ..row };
        if let Err(e) = bot.store().audit_start(row).await {
            tracing::error!(error = %e, "audit of a refused tick failed");
        }
        return Reply::new(Status::Refused, reason);
    }
    let started = std::time::Instant::now();
    let ticked = bot.store().checklist_tick(service, env, item, who.as_str(), now_ms()).await;
    let done = Completion {
        outcome: if ticked.is_ok() { "ok" } else { "error" }.into(),
        duration_ms: started.elapsed().as_millis() as i64,
        error: ticked.as_ref().err().map(ToString::to_string),
    };
    if let Err(e) = bot.store().audit_record(AuditStart { decision: "allowed".into(), ..row }, done).await {
        tracing::error!(error = %e, "audit of a tick failed");
    }
    match ticked {
        Ok(()) => Reply::done(format!("✅ ticked “{item}” for {service} ({env})")),
        Err(e) => Reply::failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(status: Value, runs: Value, want: (Mark, &str)) {
        let (m, t) = ci_verdict("abc123", &status, &runs);
        assert_eq!((m, t.as_str()), want);
    }

    #[test]
    fn a_checklist_reply_shows_a_mark_per_item_the_verdict_and_tick_buttons() {
        let item = |name: &str, check: CheckKind| ChecklistItem {
            name: name.into(),
            check,
            timeout_secs: None,
            optional: false,
            env: None,
            repo: None,
            git_ref: None,
            url: None,
            status: None,
            contains: None,
        };
        let items = [
            item("schema migrated", CheckKind::Schema),
            item("staging runs the version to release", CheckKind::Version),
            item("CI is green", CheckKind::Ci),
            item("changelog reviewed", CheckKind::Manual),
        ];
        let results = [
            (Mark::Pass, "schema matches (2 tables)".to_string()),
            (Mark::Pass, "staging has v1.4.0: staging is 2 versions ahead of prod".to_string()),
            (Mark::Fail, "1 of 7 checks failed on 60b3f93: lint".to_string()),
            (Mark::Warn, "waiting for someone to tick it".to_string()),
        ];
        let r = reply("payments", "prod", &items, &results);
        assert_eq!(r.actions.len(), 1);
        insta::assert_snapshot!(crate::render::terminal::render(&r, false));
    }

    #[test]
    fn ci_is_red_on_any_failure_amber_while_running_and_green_when_all_pass() {
        let ok = json!({"statuses": [{"context": "ci/build", "state": "success"}]});
        let run = |status: &str, conclusion: Value| json!({"check_runs": [{"name": "lint", "status": status, "conclusion": conclusion}]});
        check(ok.clone(), run("completed", json!("success")), (Mark::Pass, "2 checks passed on abc123"));
        check(ok.clone(), run("completed", json!("failure")), (Mark::Fail, "1 of 2 checks failed on abc123: lint"));
        check(ok.clone(), run("in_progress", Value::Null), (Mark::Warn, "1 of 2 checks still running on abc123: lint"));
        check(
            json!({"state": "pending", "statuses": []}),
            json!({"check_runs": []}),
            (Mark::Warn, "no CI status or check run on abc123"),
        );
    }
}
