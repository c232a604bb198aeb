//! The `test` plugin: `test run` queues a suite as a background job and answers at once;
//! `test status`, `test list` and `test cancel` read and change the job rows, of the runs the
//! requester's teams may see. The run itself belongs to `jobs`.

use serde_json::Value;

use super::{ActError, ActFuture, Ctx, Plugin};
use crate::command::{Command, RunRef};
use crate::decide::policy::memberships;
use crate::jobs::{self, Requester, StartError, TEST_KIND, duration, state_icon};
use crate::message::Identity;
use crate::pipeline::format_ms;
use crate::render::{Block, Reply};
use crate::store::jobs::{Cancel, Job};

pub struct Test;

impl Plugin for Test {
    fn run<'a>(&'a self, cmd: &'a Command, ctx: &'a Ctx<'a>) -> ActFuture<'a> {
        Box::pin(async move {
            if let Err(e) = ctx.bot.jobs().recover(ctx.bot.store()).await {
                tracing::warn!(error = %e, "marking interrupted test runs failed");
            }
            match cmd {
                Command::TestRun { suite, env } => run(ctx, suite, env).await,
                Command::TestStatus { run } => status(ctx, run).await,
                Command::TestList => list(ctx).await,
                Command::TestCancel { id } => cancel(ctx, *id).await,
                other => Err(ActError::Internal(format!("test plugin got `{other}`"))),
            }
        })
    }
}

/// Whether `who` may see a run: their own, or one started by someone who shares a team with
/// them that enables `test`. Other runs answer as not found, so their ids tell nothing.
fn may_see(ctx: &Ctx<'_>, job: &Job) -> bool {
    if job.requester == ctx.who.as_str() {
        return true;
    }
    let ws = ctx.bot.workspace();
    let Some(starter) = Identity::from_key(&job.requester) else { return false };
    let theirs: Vec<&str> = memberships(&ws.config, &starter).iter().map(|m| m.name).collect();
    memberships(&ws.config, ctx.who)
        .iter()
        .any(|m| m.team.plugins.iter().any(|p| p == "test") && theirs.contains(&m.name))
}

fn no_such_run(id: i64) -> ActError {
    ActError::User(format!("there is no test run #{id}; `test list` shows the recent runs"))
}

/// The test run `id`, if the requester may see it.
async fn visible_run(ctx: &Ctx<'_>, id: i64) -> Result<Job, ActError> {
    let job = ctx.bot.store().job_get(id).await.map_err(store_err)?;
    job.filter(|j| j.kind == TEST_KIND && may_see(ctx, j)).ok_or_else(|| no_such_run(id))
}

fn store_err(e: crate::store::StoreError) -> ActError {
    ActError::User(e.to_string())
}

fn job_id(id: u64) -> Result<i64, ActError> {
    i64::try_from(id).map_err(|_| ActError::User(format!("there is no test run #{id}")))
}

async fn run(ctx: &Ctx<'_>, suite: &str, env: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let cfg = ws
        .config
        .suites
        .get(suite)
        .cloned()
        .ok_or_else(|| ActError::User(format!("there is no suite `{suite}` in the config")))?;
    let limit = cfg.max_concurrent.unwrap_or(1).max(1);
    let store = ctx.bot.store();
    let busy = store
        .job_recent(TEST_KIND, 200)
        .await
        .map_err(store_err)?
        .iter()
        .filter(|j| j.name == suite && !j.state.is_final())
        .count();
    let by = Requester { who: ctx.who.as_str(), place: &ctx.place.key() };
    let id = ctx.bot.jobs().start(store, ws.root.clone(), suite, cfg, env, by).await.map_err(|e| match e {
        StartError::Store(s) => store_err(s),
        other => ActError::User(other.to_string()),
    })?;
    let mut reply = Reply::done(format!("started test run #{id}: {suite} on {env}"));
    if busy >= limit as usize {
        reply = reply.text(format!(
            "It waits in the queue: {busy} run(s) of {suite} are ahead of it (at most {limit} at a time)."
        ));
    }
    Ok(reply.text(format!("I'll tell you here when it ends; `test status {id}` shows it meanwhile.")))
}

fn fields(j: &Job) -> Vec<(String, String)> {
    let mut f = vec![
        ("suite".to_string(), j.name.clone()),
        ("environment".to_string(), j.env.clone()),
        ("state".to_string(), format!("{} {}", state_icon(j.state), j.state.words())),
        ("requested by".to_string(), format!("{} in {}", j.requester, j.place)),
        ("queued".to_string(), format_ms(j.created_at)),
    ];
    if let Some(s) = j.started_at {
        f.push(("started".into(), format_ms(s)));
    }
    if let Some(e) = j.finished_at {
        let took = j.started_at.map(|s| format!(" (took {})", duration(e - s))).unwrap_or_default();
        f.push(("finished".into(), format!("{}{took}", format_ms(e))));
    }
    if let Some(c) = j.exit_code {
        f.push(("exit code".into(), c.to_string()));
    }
    if let Some(d) = j.detail.as_deref().filter(|d| !d.is_empty()) {
        f.push(("detail".into(), d.to_string()));
    }
    if let Some(w) = &j.cancel_requested_by
        && !j.state.is_final()
    {
        f.push(("cancel".into(), format!("asked by {w}")));
    }
    f
}

/// The last lines of the output: what a person reads first after a failure.
const OUTPUT_LINES: usize = 40;
/// ... and never more than this, so one endless line cannot flood a chat.
const OUTPUT_CHARS: usize = 4000;

/// The end of the output: at most `OUTPUT_LINES` lines and `OUTPUT_CHARS` bytes.
fn tail(out: &str) -> &str {
    let out = out.trim_end();
    let by_lines =
        out.char_indices().filter(|(_, c)| *c == '\n').map(|(i, _)| i + 1).rev().nth(OUTPUT_LINES - 1).unwrap_or(0);
    let mut by_size = out.len().saturating_sub(OUTPUT_CHARS);
    while !out.is_char_boundary(by_size) {
        by_size += 1;
    }
    &out[by_lines.max(by_size)..]
}

/// How many of the newest runs `test status last` / `test status <suite>` look through for
/// the newest one the requester may see.
const LATEST_AMONG: i64 = 200;

async fn status(ctx: &Ctx<'_>, run: &RunRef) -> Result<Reply, ActError> {
    let job = match run {
        RunRef::Id(id) => visible_run(ctx, job_id(*id)?).await?,
        RunRef::Last | RunRef::Suite(_) => {
            let suite = match run {
                RunRef::Suite(s) => Some(s.as_str()),
                _ => None,
            };
            let recent = ctx.bot.store().job_recent(TEST_KIND, LATEST_AMONG).await.map_err(store_err)?;
            let latest = recent.into_iter().find(|j| suite.is_none_or(|s| j.name == s) && may_see(ctx, j));
            match (latest, suite) {
                (Some(j), _) => visible_run(ctx, j.id).await?,
                (None, None) => {
                    return Err(ActError::User("no test has run yet; `test run <suite>` starts one".into()));
                }
                (None, Some(s)) => {
                    return Err(ActError::User(format!("{s} has not run yet; `test run {s}` starts it")));
                }
            }
        }
    };
    let id = job.id;
    let mut reply = Reply::done(format!("test run #{id}: {} on {} {}", job.name, job.env, job.state.words()))
        .with(Block::Fields { fields: fields(&job) });
    if let Some(out) = job.output.as_deref().filter(|o| !o.trim().is_empty()) {
        let shown = tail(out);
        // A label above the output: its size, and which part of it is shown when not all.
        let total = job.output_bytes.and_then(|t| usize::try_from(t).ok());
        let label = match total {
            Some(t) if t <= out.len() && shown.len() == out.trim_end().len() => {
                format!("output ({}):", crate::schema::plural(t, "byte"))
            }
            Some(t) => format!("output ({t} bytes), the last {}:", crate::schema::plural(shown.len(), "byte")),
            None => "output:".to_string(),
        };
        reply = reply.text(label).with(Block::Code { lang: None, text: shown.to_string() });
    }
    Ok(reply)
}

async fn list(ctx: &Ctx<'_>) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let suites: Vec<Vec<Value>> = ws
        .config
        .suites
        .iter()
        .map(|(name, s)| {
            let how = match (&s.http, s.command.is_empty()) {
                (Some(h), _) => format!("POST {}", crate::redact::redact(&h.trigger)),
                (None, false) => s.command.join(" "),
                (None, true) => "(no command)".into(),
            };
            vec![
                Value::from(name.as_str()),
                Value::from(s.description.as_str()),
                Value::from(how),
                Value::from(format!("{} s", s.timeout_secs.unwrap_or(jobs::suite::DEFAULT_TIMEOUT_SECS))),
                Value::from(s.max_concurrent.unwrap_or(1)),
            ]
        })
        .collect();
    let mut runs = ctx.bot.store().job_recent(TEST_KIND, 15).await.map_err(store_err)?;
    runs.retain(|j| may_see(ctx, j));
    let mut reply =
        Reply::done(format!("{} suites, {} recent runs", ws.config.suites.len(), runs.len())).with(Block::Table {
            columns: ["suite", "description", "runs", "timeout", "at once"].map(String::from).to_vec(),
            rows: suites.into(),
            note: None,
        });
    if !runs.is_empty() {
        let rows: Vec<Vec<Value>> = runs
            .iter()
            .map(|j| {
                let took = match (j.started_at, j.finished_at) {
                    (Some(s), Some(f)) => duration(f - s),
                    (Some(s), None) => format!("{} so far", duration(crate::store::now_ms() - s)),
                    _ => String::new(),
                };
                vec![
                    Value::from(j.id),
                    Value::from(j.name.as_str()),
                    Value::from(j.env.as_str()),
                    Value::from(format!("{} {}", state_icon(j.state), j.state.words())),
                    Value::from(j.requester.as_str()),
                    Value::from(format_ms(j.created_at)),
                    Value::from(took),
                ]
            })
            .collect();
        reply = reply.with(Block::Table {
            columns: ["run", "suite", "env", "state", "by", "queued", "took"].map(String::from).to_vec(),
            rows: rows.into(),
            note: None,
        });
    }
    Ok(reply.text("Start one with `test run <suite> [env]`."))
}

async fn cancel(ctx: &Ctx<'_>, id: u64) -> Result<Reply, ActError> {
    let id = job_id(id)?;
    visible_run(ctx, id).await?;
    let res = ctx.bot.jobs().cancel(ctx.bot.store(), id, ctx.who.as_str()).await.map_err(store_err)?;
    match res {
        Cancel::Cancelled => Ok(Reply::done(format!("cancelled test run #{id} before it started"))),
        Cancel::Requested => Ok(Reply::done(format!("stopping test run #{id}"))
            .text(format!("Its processes get SIGTERM, then SIGKILL; `test status {id}` shows when it has stopped."))),
        Cancel::AlreadyFinished(s) => Err(ActError::User(format!("test run #{id} already ended: {}", s.words()))),
        Cancel::NotFound => Err(no_such_run(id)),
    }
}
