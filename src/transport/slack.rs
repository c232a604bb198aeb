//! Slack over HTTP: slash commands, the Events API (mentions and direct messages) and
//! interactivity (Confirm/Cancel buttons). Every request is verified before it is read; each
//! is acknowledged within Slack's 3 seconds, and slower work answers later through the
//! `response_url` or the Web API. Slack payloads never leave this module: the pipeline sees a
//! `Message`, and Block Kit comes from `render::slack`.

pub mod api;
pub mod socket;
pub mod verify;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::http::AppState;
use crate::decide::policy::{self, Decision};
use crate::message::{Identity, Message, Place, Transport};
use crate::pipeline::Options;
use crate::render::slack::{
    self as blocks, APPROVE_ACTION, CANCEL_ACTION, CHOICE_ACTION, CONFIRM_ACTION, REJECT_ACTION, REPLY_ACTION,
    SlackMessage,
};
use crate::render::{Reply, Status};
use crate::spec::CommandKind;
use crate::store::confirm::Answer;
use crate::store::now_ms;

/// Checks the signature: `Some(401)` when it fails. The refusal is logged with its reason,
/// never with the secret or the body.
fn refused(state: &AppState, route: &'static str, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let now = state.settings.clock.now_secs();
    let e = verify::verify(state.settings.slack_signing_secret.as_deref(), headers, body, now).err()?;
    state.metrics.error("signature");
    tracing::warn!(route, reason = %e, "slack request refused");
    Some((StatusCode::UNAUTHORIZED, "invalid slack request signature\n").into_response())
}

fn identity(user: &str) -> Identity {
    Identity::new(Transport::Slack, user)
}

fn place(channel: &str, thread: Option<&str>) -> Place {
    Place { transport: Transport::Slack, channel: channel.to_string(), thread: thread.map(str::to_string) }
}

/// Help and personal answers stay ephemeral, as do errors; results of commands are shown to
/// the channel.
fn for_the_channel(reply: &Reply) -> bool {
    let personal = reply
        .command
        .as_deref()
        .and_then(|c| c.split_whitespace().next())
        .is_some_and(|w| ["help", "whoami", "explain", "audit"].contains(&w));
    // An approval card is for the approvers it mentions.
    reply.status == Status::AwaitingApproval || (reply.public && reply.status == Status::Done && !personal)
}

/// A slash command's answer, serialised straight from the rendered message (no copy of the
/// blocks through a `Value`: this is on every synchronous answer).
#[derive(serde::Serialize)]
struct ResponseBody<'a> {
    response_type: &'static str,
    text: &'a str,
    blocks: &'a [Value],
}

fn response_body<'a>(reply: &Reply, msg: &'a SlackMessage) -> ResponseBody<'a> {
    let response_type = if for_the_channel(reply) { "in_channel" } else { "ephemeral" };
    ResponseBody { response_type, text: &msg.text, blocks: &msg.blocks }
}

/// What a Slack delivery is answered, whichever transport brought it: the HTTP response of
/// a request, or the acknowledgement of a Socket Mode envelope (`socket`). One handler per
/// kind of delivery decides it, after the transport has verified where it came from.
#[derive(Debug)]
pub(crate) enum Ack {
    /// Received; nothing to say in the answer itself.
    Empty,
    /// A slash command's answer (JSON), shown to the user at once.
    Json(Vec<u8>),
    /// The `url_verification` challenge (HTTP only).
    Challenge(String),
    /// The delivery cannot be read; logged and counted where it was decided.
    Malformed(String),
    /// Not acknowledged, so Slack delivers it again later (the state store is down).
    Unavailable,
}

impl Ack {
    fn json(body: &impl serde::Serialize) -> Ack {
        match serde_json::to_vec(body) {
            Ok(bytes) => Ack::Json(bytes),
            Err(e) => Ack::Malformed(format!("answer not serialisable: {e}")),
        }
    }

    fn into_response(self) -> Response {
        match self {
            Ack::Empty => StatusCode::OK.into_response(),
            Ack::Json(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Ack::Challenge(c) => ([(header::CONTENT_TYPE, "text/plain")], c).into_response(),
            Ack::Malformed(reason) => (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response(),
            Ack::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "state database unavailable\n").into_response(),
        }
    }
}

/// A delivery that cannot be read: counted and logged (never with its body).
fn malformed(state: &AppState, reason: String) -> Ack {
    state.metrics.error("bad_request");
    tracing::warn!(transport = "slack", reason = %reason, "malformed request");
    Ack::Malformed(reason)
}

// ---------------------------------------------------------------------------------------------
// Slash commands

#[derive(Deserialize)]
pub(crate) struct SlashCommand {
    user_id: Option<String>,
    channel_id: Option<String>,
    #[serde(default)]
    text: String,
    response_url: Option<String>,
    ssl_check: Option<String>,
}

/// The canonical text of a command that will run at once and reports its progress (a release
/// checklist), so the slash command acknowledges first and the progress replaces that. Any
/// other command answers in the HTTP response when it is done within the ack budget (a 1 ms
/// query is not "working on it…" first), and later only when it is not.
fn answers_later(state: &AppState, msg: &Message) -> Option<String> {
    let ws = state.bot.workspace();
    let cmd = crate::understand::typed_command(msg.text.trim(), &ws.catalog)?;
    let slow = matches!(cmd.kind(), CommandKind::ReleaseCheck);
    let runs_now =
        matches!(policy::decide(&ws.config, &msg.who, &msg.place, &cmd), Decision::Allowed { confirm: false, .. });
    (slow && runs_now).then(|| cmd.to_string())
}

/// How many progress updates a slash command may post: `response_url` takes five posts in
/// all, and the answer needs one.
const PROGRESS_POSTS: usize = 3;

/// Progress of a slow command (a release checklist) replaces the "working on it" message
/// through the `response_url`, at most once a second and `PROGRESS_POSTS` times.
fn progress_sink(state: &AppState, response_url: Option<String>) -> crate::act::progress::Sink {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let posted = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None::<std::time::Instant>));
    let state = state.clone();
    Arc::new(move |step: &crate::act::progress::Step| {
        let Some(url) = response_url.clone() else { return };
        let due = match last.lock() {
            Ok(mut l) => {
                let due = l.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) && step.done < step.total;
                if due {
                    *l = Some(std::time::Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if !due || posted.fetch_add(1, Ordering::SeqCst) >= PROGRESS_POSTS {
            return;
        }
        let text = format!("working… {} of {} done ({})", step.done, step.total, blocks::escape(&step.label));
        let body = json!({"response_type": "ephemeral", "replace_original": true, "text": text});
        let slack = state.slack.clone();
        state.tasks.spawn(async move {
            if let Err(e) = slack.respond(&url, &body).await {
                tracing::warn!(error = %e, "progress update not posted");
            }
        });
    })
}

fn working_on(canonical: &str) -> Ack {
    let text = format!("working on `{}`…", blocks::escape(canonical));
    Ack::json(&json!({"response_type": "ephemeral", "text": text}))
}

pub(crate) async fn commands(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refused(&state, "/slack/commands", &headers, &body) {
        return refusal;
    }
    let form: SlashCommand = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return malformed(&state, format!("malformed slash command form: {e}")).into_response(),
    };
    slash_command(&state, form, true).await.into_response()
}

/// A verified slash command, from a form (HTTP) or an envelope's payload (Socket Mode). With
/// `answer_in_ack`, an answer ready within the ack budget is the acknowledgement itself;
/// otherwise (or later) it goes to the `response_url`.
pub(crate) async fn slash_command(state: &AppState, form: SlashCommand, answer_in_ack: bool) -> Ack {
    if form.ssl_check.as_deref() == Some("1") {
        return Ack::Empty;
    }
    let (Some(user), Some(channel)) = (form.user_id.as_deref(), form.channel_id.as_deref()) else {
        return malformed(state, "slash command without user_id or channel_id".into());
    };
    let text = form.text.trim();
    let msg = Message {
        who: identity(user),
        place: place(channel, None),
        text: if text.is_empty() { "help".to_string() } else { text.to_string() },
    };
    let permit = match state.admit(&msg).await {
        Ok(permit) => permit,
        Err(busy) => return Ack::json(&response_body(&busy, &blocks::render(&busy))),
    };
    let later = answers_later(state, &msg);
    let text = msg.text.clone();
    let mut job = slash_job(state, msg, form.response_url, permit);
    if let Some(canonical) = later {
        job.finish_later();
        return working_on(&canonical);
    }
    // A zero budget always answers later (a timer of zero still lets a fast reply through).
    let budget = state.settings.ack_budget;
    if budget.is_zero() || !answer_in_ack {
        job.finish_later();
        return if answer_in_ack { working_on(&text) } else { Ack::Empty };
    }
    match tokio::time::timeout(budget, job.run()).await {
        Ok(reply) => Ack::json(&response_body(&reply, &blocks::render(&reply))),
        Err(_) => {
            job.finish_later();
            working_on(&text)
        }
    }
}

/// The work of a slash command, and its late delivery through the `response_url`.
fn slash_job(state: &AppState, msg: Message, response_url: Option<String>, permit: OwnedSemaphorePermit) -> Job {
    let sink = progress_sink(state, response_url.clone());
    let msg = Arc::new(msg);
    let (work_state, work_msg) = (state.clone(), msg.clone());
    let work = Box::pin(async move {
        let handling = crate::act::progress::with(sink, work_state.bot.handle(&work_msg, Options::default()));
        // A bug in a plugin answers as an error instead of taking the connection down.
        let reply = match AssertUnwindSafe(handling).catch_unwind().await {
            Ok(reply) => reply,
            Err(_) => {
                work_state.metrics.error("internal");
                tracing::error!(who = %work_msg.who, "a slash command panicked");
                Reply::failed("internal error: the command stopped; see the server log")
            }
        };
        work_state.observe(&reply);
        reply
    });
    let late_state = state.clone();
    let late: Late = Box::new(move |reply| {
        Box::pin(async move { deliver_late(&late_state, &msg, response_url.as_deref(), &reply).await })
    });
    Job::new(work, late, state.tasks.clone(), permit)
}

type Work = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Late = Box<dyn FnOnce(Reply) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A slash command's work. It runs inside the request while Slack waits for the answer, with no
/// task or channel in between on this busiest path. What is left of it when the request stops
/// waiting (the ack budget ran out, or Slack hung up and the request was dropped) moves to a
/// background task that hands the reply to `late`: a command once started always finishes and
/// always answers.
struct Job {
    work: Option<Work>,
    late: Option<Late>,
    tasks: super::http::Tasks,
    /// Its place among the commands in flight, given back when the answer is delivered.
    permit: Option<OwnedSemaphorePermit>,
}

impl Job {
    fn new(work: Work, late: Late, tasks: super::http::Tasks, permit: OwnedSemaphorePermit) -> Job {
        Job { work: Some(work), late: Some(late), tasks, permit: Some(permit) }
    }

    /// Runs the work to its end here. Dropping this future part-way leaves the rest in `work`.
    async fn run(&mut self) -> Reply {
        let Some(work) = self.work.as_mut() else {
            return Reply::failed("internal error: the command was already answered");
        };
        let reply = work.await;
        self.work = None;
        reply
    }

    /// Moves what is left of the work to a background task that delivers the reply late.
    fn finish_later(&mut self) {
        let (Some(work), Some(late)) = (self.work.take(), self.late.take()) else { return };
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!("runtime gone: a slash command's work was abandoned");
            return;
        }
        let permit = self.permit.take();
        self.tasks.spawn(async move {
            let reply = work.await;
            late(reply).await;
            drop(permit);
        });
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.finish_later();
    }
}

/// Delivers a slash command's answer after the HTTP response: the `response_url`, else the
/// Web API, else the failure lands in the log and the audit.
async fn deliver_late(state: &AppState, msg: &Message, response_url: Option<&str>, reply: &Reply) {
    let rendered = blocks::render(reply);
    let mut body = json!(response_body(reply, &rendered));
    body["replace_original"] = json!(false);
    let first = state.slack.respond_if_given(response_url, &body).await;
    let Err(first) = first else { return };
    state.metrics.error("slack_api");
    tracing::warn!(error = %first, "response_url failed; trying the Web API");
    let user = msg.who.as_str().trim_start_matches("slack:");
    let second = if for_the_channel(reply) {
        state.slack.post_message(&msg.place.channel, None, &rendered).await.map(|_| ())
    } else {
        state.slack.post_ephemeral(&msg.place.channel, user, &rendered).await
    };
    if let Err(e) = second {
        state.metrics.error("slack_api");
        let error = format!("{first}; then {e}");
        state.undelivered(&msg.who, &msg.place, reply.command.as_deref(), &error).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Events API

#[derive(Debug, Deserialize)]
struct ChatEvent {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
    text: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
    channel_type: Option<String>,
    bot_id: Option<String>,
    subtype: Option<String>,
}

/// A mention or a direct message from a person; edits, deletions, joins and bot posts are not.
fn addressed_to_us(ev: &ChatEvent) -> bool {
    let from_person = ev.bot_id.is_none() && ev.subtype.is_none();
    let kind = ev.kind == "app_mention" || (ev.kind == "message" && ev.channel_type.as_deref() == Some("im"));
    from_person && kind
}

pub(crate) async fn events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refused(&state, "/slack/events", &headers, &body) {
        return refusal;
    }
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return malformed(&state, format!("event body is not JSON: {e}")).into_response(),
    };
    let retry = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()).unwrap_or("0");
    event(&state, &envelope, retry).await.into_response()
}

/// A verified Events API delivery, from a request body (HTTP) or an envelope's payload
/// (Socket Mode): the same JSON. Deduplicated by `event_id` in the state store, so a retry,
/// or the same event reaching several replicas or connections, is answered once.
pub(crate) async fn event(state: &AppState, envelope: &Value, retry: &str) -> Ack {
    match envelope["type"].as_str() {
        Some("url_verification") => {
            return match envelope["challenge"].as_str() {
                Some(c) => Ack::Challenge(c.to_string()),
                None => malformed(state, "url_verification without a challenge".into()),
            };
        }
        Some("event_callback") => {}
        Some(other) => {
            tracing::info!(kind = other, "slack envelope type ignored");
            return Ack::Empty;
        }
        None => return malformed(state, "event without a `type`".into()),
    }
    let (Some(event_id), Some(event)) = (envelope["event_id"].as_str(), envelope.get("event")) else {
        return malformed(state, "event_callback without event_id or event".into());
    };
    let Some(kind) = event["type"].as_str() else {
        return malformed(state, "event without a `type`".into());
    };
    if kind != "app_mention" && kind != "message" {
        tracing::info!(kind, "slack event type ignored");
        return Ack::Empty;
    }
    let ev: ChatEvent = match serde_json::from_value(event.clone()) {
        Ok(ev) => ev,
        Err(e) => return malformed(state, format!("malformed {kind} event: {e}")),
    };
    if !addressed_to_us(&ev) {
        tracing::debug!(kind, "slack event ignored (bot, edit or not for us)");
        return Ack::Empty;
    }
    let (Some(user), Some(channel), Some(ts)) = (ev.user.clone(), ev.channel.clone(), ev.ts.clone()) else {
        return malformed(state, format!("{kind} event without user, channel or ts"));
    };
    match state.bot.store().first_delivery("slack", event_id, state.settings.dedup_ttl, now_ms()).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(event_id, retry, "duplicate slack event dropped");
            return Ack::Empty;
        }
        Err(e) => {
            // Not acknowledged, so Slack delivers it again once the store is back.
            state.metrics.error("store");
            tracing::error!(error = %e, "cannot record the slack event");
            return Ack::Unavailable;
        }
    }
    let work = state.clone();
    let thread = match ev.kind.as_str() {
        "app_mention" => Some(ev.thread_ts.clone().unwrap_or(ts)),
        _ => ev.thread_ts.clone(),
    };
    let text = ev.text.unwrap_or_default();
    let asked = Message { who: identity(&user), place: place(&channel, thread.as_deref()), text: text.clone() };
    match state.admit(&asked).await {
        Ok(permit) => state.tasks.spawn(async move {
            let _permit = permit;
            answer_event(&work, &user, &channel, thread, &text).await;
        }),
        Err(busy) => {
            if let Some(notice) = state.notice_permit() {
                state.tasks.spawn(async move {
                    let _notice = notice;
                    if let Err(e) = work.slack.post_message(&channel, thread.as_deref(), &blocks::render(&busy)).await {
                        tracing::warn!(error = %e, "busy notice not posted");
                    }
                });
            }
        }
    }
    Ack::Empty
}

async fn answer_event(state: &AppState, user: &str, channel: &str, thread: Option<String>, text: &str) {
    let me = match state.slack.identity().await {
        Ok(me) => Some(me.user_id.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "auth.test failed; cannot tell the bot's own messages by user id");
            None
        }
    };
    if me.as_deref() == Some(user) {
        return;
    }
    let msg = Message {
        who: identity(user),
        place: place(channel, thread.as_deref()),
        text: plain_text(text, me.as_deref()),
    };
    let reply = state.bot.handle(&msg, Options::default()).await;
    state.observe(&reply);
    let rendered = blocks::render(&reply);
    if let Err(e) = state.slack.post_message(channel, thread.as_deref(), &rendered).await {
        state.metrics.error("slack_api");
        state.undelivered(&msg.who, &msg.place, reply.command.as_deref(), &e.to_string()).await;
    }
}

/// What the person typed, from Slack's message text: the bot's mention dropped, other
/// mentions as identities (`slack:U123`), links as their label, entities decoded.
pub fn plain_text(text: &str, me: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut first = true;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        let leading = first && out.trim().is_empty();
        if let Some(user) = target.strip_prefix('@') {
            // The bot's own mention, or any leading mention when we do not know who we are.
            let ours = me.map_or(leading, |m| m == user);
            if !ours {
                out.push_str(&format!("slack:{user}"));
            }
        } else if let Some(chan) = target.strip_prefix('#') {
            out.push('#');
            out.push_str(label.filter(|l| !l.is_empty()).unwrap_or(chan));
        } else if let Some(special) = target.strip_prefix('!') {
            out.push('@');
            out.push_str(label.unwrap_or(special));
        } else {
            out.push_str(label.unwrap_or(target));
        }
        first = false;
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Interactivity

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Container {
    channel_id: Option<String>,
    message_ts: Option<String>,
    #[serde(default)]
    is_ephemeral: bool,
}

#[derive(Debug, Deserialize)]
struct ActionMessage {
    thread_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    /// A button's value.
    value: Option<String>,
    /// A menu's choice (`static_select`).
    selected_option: Option<SelectedOption>,
}

#[derive(Debug, Deserialize)]
struct SelectedOption {
    value: String,
}

#[derive(Debug, Deserialize)]
struct BlockActions {
    user: IdOnly,
    channel: Option<IdOnly>,
    container: Option<Container>,
    message: Option<ActionMessage>,
    response_url: Option<String>,
    actions: Vec<Action>,
}

pub(crate) async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refused(&state, "/slack/interactions", &headers, &body) {
        return refusal;
    }
    let form: InteractionForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return malformed(&state, format!("interaction without a `payload` field: {e}")).into_response(),
    };
    let payload: Value = match serde_json::from_str(&form.payload) {
        Ok(v) => v,
        Err(e) => return malformed(&state, format!("interaction payload is not JSON: {e}")).into_response(),
    };
    interaction(&state, payload).await.into_response()
}

/// A verified interaction payload (a button press), from a form's `payload` (HTTP) or an
/// envelope's payload (Socket Mode). Acknowledged at once; the press's work runs in the
/// background, holding its place among the commands in flight.
pub(crate) async fn interaction(state: &AppState, payload: Value) -> Ack {
    if payload["type"].as_str() != Some("block_actions") {
        tracing::info!(kind = payload["type"].as_str().unwrap_or("?"), "slack interaction type ignored");
        return Ack::Empty;
    }
    let p: BlockActions = match serde_json::from_value(payload) {
        Ok(p) => p,
        Err(e) => return malformed(state, format!("malformed block_actions payload: {e}")),
    };
    let Some(action) = p.actions.first() else {
        return malformed(state, "block_actions without actions".into());
    };
    let answer = match action.action_id.as_str() {
        APPROVE_ACTION | REJECT_ACTION => {
            let approve = action.action_id == APPROVE_ACTION;
            let Some(id) = action.value.clone().filter(|v| !v.is_empty()) else {
                return malformed(state, "button without an approval id".into());
            };
            let Some(permit) = admit_press(state, &p).await else { return Ack::Empty };
            let work = state.clone();
            state.tasks.spawn(async move {
                let _permit = permit;
                answer_approval(&work, p, approve, &id).await;
            });
            return Ack::Empty;
        }
        CONFIRM_ACTION => Answer::Confirm,
        CANCEL_ACTION => Answer::Cancel,
        reply_action if reply_action.starts_with(REPLY_ACTION) => {
            let Some(id) = action.value.clone().filter(|v| !v.is_empty()) else {
                return malformed(state, "button without an action id".into());
            };
            let Some(permit) = admit_press(state, &p).await else { return Ack::Empty };
            let work = state.clone();
            state.tasks.spawn(async move {
                let _permit = permit;
                press_action(&work, p, &id).await;
            });
            return Ack::Empty;
        }
        choice if choice.starts_with(CHOICE_ACTION) => {
            let value = action.value.clone().or_else(|| action.selected_option.as_ref().map(|o| o.value.clone()));
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                return malformed(state, "choice without a value".into());
            };
            let Some(permit) = admit_press(state, &p).await else { return Ack::Empty };
            let work = state.clone();
            state.tasks.spawn(async move {
                let _permit = permit;
                answer_choice(&work, p, &value).await;
            });
            return Ack::Empty;
        }
        other => {
            tracing::info!(action_id = other, "slack action not ours; ignored");
            return Ack::Empty;
        }
    };
    let Some(id) = action.value.clone().filter(|v| !v.is_empty()) else {
        return malformed(state, "button without a confirmation id".into());
    };
    let Some(permit) = admit_press(state, &p).await else { return Ack::Empty };
    let work = state.clone();
    state.tasks.spawn(async move {
        let _permit = permit;
        answer_button(&work, p, answer, &id).await;
    });
    Ack::Empty
}

/// A permit for a button press's work; when lazyops is busy, the presser is told so through
/// the `response_url` (when there is room for the notice) and the press does nothing.
async fn admit_press(state: &AppState, p: &BlockActions) -> Option<OwnedSemaphorePermit> {
    let (who, place) = presser(p);
    let pressed = p.actions.first().map_or("(button)", |a| a.action_id.as_str());
    let asked = Message { who, place, text: format!("(button {pressed})") };
    match state.admit(&asked).await {
        Ok(permit) => Some(permit),
        Err(busy) => {
            if let (Some(notice), Some(url)) = (state.notice_permit(), p.response_url.clone()) {
                let work = state.clone();
                state.tasks.spawn(async move {
                    let _notice = notice;
                    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": busy.headline});
                    if let Err(e) = work.slack.respond(&url, &body).await {
                        tracing::warn!(error = %e, "busy notice not posted");
                    }
                });
            }
            None
        }
    }
}

/// Who pressed a button, and where: the message's channel and thread.
fn presser(p: &BlockActions) -> (Identity, Place) {
    let channel = p
        .channel
        .as_ref()
        .map(|c| c.id.clone())
        .or_else(|| p.container.as_ref().and_then(|c| c.channel_id.clone()))
        .unwrap_or_default();
    let thread = p.message.as_ref().and_then(|m| m.thread_ts.clone());
    (identity(&p.user.id), place(&channel, thread.as_deref()))
}

/// A reply's own button (a checklist item to tick): done, it is said in the channel with who
/// pressed it; refused or failed, only the presser hears why.
async fn press_action(state: &AppState, p: BlockActions, id: &str) {
    let (who, here) = presser(&p);
    let outcome = crate::act::release::tick(&state.bot, &who, &here, id).await;
    if outcome.status != Status::Done {
        tell_presser(state, &p, &who, &here, &outcome).await;
        return;
    }
    let msg = blocks::pressed(&outcome, &p.user.id, "Ticked");
    say_in_channel(state, &p, &who, &here, None, &msg).await;
}

/// A choice under a question (a button or the menu): answered as if the presser had typed it
/// where the question was asked — the same conversation state and audit, through
/// `Bot::choose`, which accepts it only while the presser's own question there offers it.
/// The question loses its buttons and says who chose what; the answer goes where a typed
/// answer's would: the thread for a mention or a DM, the `response_url` for a slash command.
async fn answer_choice(state: &AppState, p: BlockActions, choice: &str) {
    let (who, here) = presser(&p);
    let Some(reply) = state.bot.choose(&who, &here, choice, Options::default()).await else {
        let refusal = Reply::new(Status::Refused, "that question was asked of someone else, or it is already answered")
            .text("Nothing was run. Ask again in your own words.");
        tell_presser(state, &p, &who, &here, &refusal).await;
        return;
    };
    state.observe(&reply);
    let line = blocks::chosen_prompt(choice, &p.user.id);
    let body = json!({"replace_original": true, "text": line.text, "blocks": line.blocks});
    if let Err(e) = state.slack.respond_if_given(p.response_url.as_deref(), &body).await {
        state.metrics.error("slack_api");
        tracing::warn!(error = %e, "question not replaced by the choice");
    }
    let msg = blocks::render(&reply);
    let sent = match here.thread.as_deref() {
        Some(thread) => state.slack.post_message(&here.channel, Some(thread), &msg).await.map(drop),
        None => {
            let mut body = json!(response_body(&reply, &msg));
            body["replace_original"] = json!(false);
            state.slack.respond_if_given(p.response_url.as_deref(), &body).await
        }
    };
    if let Err(e) = sent {
        state.metrics.error("slack_api");
        state.undelivered(&who, &here, reply.command.as_deref(), &e.to_string()).await;
    }
}

async fn answer_button(state: &AppState, p: BlockActions, answer: Answer, id: &str) {
    let user = p.user.id.as_str();
    let (who, here) = presser(&p);
    let container = p.container.as_ref();
    let outcome = state.bot.answer(id, &who, &here, answer).await;
    // No canonical command means the confirmation was not ours to answer (someone else's,
    // expired, used or unknown): only the presser hears about it.
    if outcome.command.is_none() && matches!(outcome.status, Status::Refused | Status::Failed) {
        state.metrics.confirmation("refused");
        tell_presser(state, &p, &who, &here, &outcome).await;
        return;
    }
    state.metrics.confirmation(if answer == Answer::Confirm { "confirmed" } else { "cancelled" });
    state.observe(&outcome);
    if answer == Answer::Confirm && for_the_channel(&outcome) {
        publish_confirmed(state, &p, &who, &here, &outcome).await;
        return;
    }
    let msg = blocks::answered(&outcome, user, answer == Answer::Confirm);
    let body = json!({"replace_original": true, "text": msg.text, "blocks": msg.blocks});
    let first = state.slack.respond_if_given(p.response_url.as_deref(), &body).await;
    let Err(first) = first else { return };
    state.metrics.error("slack_api");
    // An ephemeral original can only be replaced through its response_url.
    let second = match container {
        Some(Container { channel_id: Some(c), message_ts: Some(ts), is_ephemeral: false }) => {
            state.slack.update(c, ts, &msg).await
        }
        _ => Err(first),
    };
    if let Err(e) = second {
        state.metrics.error("slack_api");
        state.undelivered(&who, &here, outcome.command.as_deref(), &e.to_string()).await;
    }
}

/// A confirmed command's result goes where a typed one's would (the channel), saying who asked
/// for it; the private prompt becomes one line saying who confirmed what.
async fn publish_confirmed(state: &AppState, p: &BlockActions, who: &Identity, here: &Place, outcome: &Reply) {
    let user = p.user.id.as_str();
    let prompt = blocks::confirmed_prompt(outcome.command.as_deref().unwrap_or_default(), user);
    let body = json!({"replace_original": true, "text": prompt.text, "blocks": prompt.blocks});
    if let Err(e) = state.slack.respond_if_given(p.response_url.as_deref(), &body).await {
        // The prompt stays as it was; the result still goes out below.
        state.metrics.error("slack_api");
        tracing::warn!(error = %e, "confirmed prompt not replaced");
    }
    let msg = blocks::pressed(outcome, user, "Requested");
    say_in_channel(state, p, who, here, outcome.command.as_deref(), &msg).await;
}

/// An Approve or Reject button on an approval card: any approver may press it (the pipeline
/// judges who); a vote, a rejection or the command's result is said in the channel with who
/// pressed, a refusal only to the presser.
async fn answer_approval(state: &AppState, p: BlockActions, approve: bool, id: &str) {
    let (who, here) = presser(&p);
    let outcome = state.bot.answer_approval(id, &who, &here, approve).await;
    if matches!(outcome.status, Status::Refused | Status::Failed) && outcome.mention.is_empty() {
        tell_presser(state, &p, &who, &here, &outcome).await;
        return;
    }
    state.observe(&outcome);
    let msg = blocks::pressed(&outcome, &p.user.id, if approve { "Approved" } else { "Rejected" });
    say_in_channel(state, &p, &who, &here, outcome.command.as_deref(), &msg).await;
}

/// Says `msg` in the channel of a pressed button: through its `response_url`, else the Web
/// API in the message's thread; when both fail, the reply is audited as undelivered.
async fn say_in_channel(
    state: &AppState,
    p: &BlockActions,
    who: &Identity,
    here: &Place,
    command: Option<&str>,
    msg: &SlackMessage,
) {
    let body =
        json!({"response_type": "in_channel", "replace_original": false, "text": msg.text, "blocks": msg.blocks});
    let first = state.slack.respond_if_given(p.response_url.as_deref(), &body).await;
    let Err(first) = first else { return };
    state.metrics.error("slack_api");
    let thread = p.message.as_ref().and_then(|m| m.thread_ts.as_deref());
    let second = if here.channel.is_empty() {
        Err(first)
    } else {
        state.slack.post_message(&here.channel, thread, msg).await.map(|_| ())
    };
    if let Err(e) = second {
        state.metrics.error("slack_api");
        state.undelivered(who, here, command, &e.to_string()).await;
    }
}

async fn tell_presser(state: &AppState, p: &BlockActions, who: &Identity, here: &Place, outcome: &Reply) {
    let msg = blocks::render(outcome);
    let first = state.slack.post_ephemeral(&here.channel, &p.user.id, &msg).await;
    let Err(first) = first else { return };
    state.metrics.error("slack_api");
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": msg.text, "blocks": msg.blocks});
    let second = match p.response_url.as_deref() {
        Some(url) => state.slack.respond(url, &body).await,
        None => Err(first),
    };
    if let Err(e) = second {
        state.metrics.error("slack_api");
        state.undelivered(who, here, None, &e.to_string()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{Job, Late, Work, plain_text};
    use crate::render::Reply;
    use crate::transport::http::Tasks;

    /// Work that takes `ms`, and a late delivery that records what it got.
    fn slow_job(ms: u64, tasks: &Tasks) -> (Job, Arc<Mutex<Vec<String>>>) {
        let work: Work = Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Reply::done("finished")
        });
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        let late: Late =
            Box::new(move |reply| Box::pin(async move { record.lock().unwrap().push(reply.headline.clone()) }));
        let permit = Arc::new(tokio::sync::Semaphore::new(1)).try_acquire_owned().expect("a fresh permit");
        (Job::new(work, late, tasks.clone(), permit), got)
    }

    #[tokio::test]
    async fn work_answered_in_time_is_not_delivered_again() {
        let tasks = Tasks::default();
        let (mut job, got) = slow_job(5, &tasks);
        assert_eq!(job.run().await.headline, "finished");
        drop(job);
        tasks.idle().await;
        assert!(got.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn work_past_the_budget_finishes_in_the_background_and_is_delivered_once() {
        let tasks = Tasks::default();
        let (mut job, got) = slow_job(100, &tasks);
        assert!(tokio::time::timeout(Duration::from_millis(10), job.run()).await.is_err());
        job.finish_later();
        drop(job);
        tasks.idle().await;
        assert_eq!(*got.lock().unwrap(), ["finished"]);
    }

    /// Slack hanging up drops the request, and with it the job, part-way through its work.
    #[tokio::test]
    async fn a_dropped_request_leaves_its_work_to_finish_and_answer() {
        let tasks = Tasks::default();
        let (mut job, got) = slow_job(50, &tasks);
        let request = tokio::spawn(async move {
            let _ = job.run().await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        request.abort();
        let _ = request.await;
        tasks.idle().await;
        assert_eq!(*got.lock().unwrap(), ["finished"]);
    }

    #[tokio::test]
    async fn the_permit_is_held_until_the_late_answer_is_delivered() {
        let tasks = Tasks::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().expect("a fresh permit");
        let work: Work = Box::pin(async { Reply::done("finished") });
        let late: Late = Box::new(|_| Box::pin(tokio::time::sleep(Duration::from_millis(50))));
        let mut job = Job::new(work, late, tasks.clone(), permit);
        job.finish_later();
        drop(job);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(slots.available_permits(), 0, "given back before the delivery ended");
        tasks.idle().await;
        assert_eq!(slots.available_permits(), 1);
    }

    #[test]
    fn slack_markup_becomes_what_the_person_typed() {
        assert_eq!(plain_text("<@U111> deploy version payments", None), "deploy version payments");
        assert_eq!(plain_text("<@U111> deploy version payments", Some("U111")), "deploy version payments");
        assert_eq!(plain_text("hey <@UBOT> todo assign 3 <@U222>", Some("UBOT")), "hey  todo assign 3 slack:U222");
        assert_eq!(
            plain_text("db query user-by-email email=<mailto:a@b.com|a@b.com>", None),
            "db query user-by-email email=a@b.com"
        );
        assert_eq!(plain_text("todo add \"fix &lt;b&gt; &amp; <#C1|ops>\"", None), "todo add \"fix <b> & #ops\"");
        assert_eq!(plain_text("look at <https://x.example>", None), "look at https://x.example");
        assert_eq!(plain_text("unclosed < here", None), "unclosed < here");
    }
}
