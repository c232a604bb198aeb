//! The one flow: a `Message` is understood, decided (policy, confirmation), acted on by a
//! plugin and answered with a `Reply`, with an audit row written before anything runs.
//! Every transport calls [`Bot::handle`] (and [`Bot::answer`] for buttons); nothing executes
//! except through [`Bot::run`], which only this module calls. A command a team's rule says
//! colleagues must approve waits in the state store until they do (`approval`).

mod approval;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::act::{ActError, Ctx, Registry};
use crate::command::Command;
use crate::decide::policy::{self, Decision};
use crate::message::{Identity, Message, Place};
use crate::render::{Block, PendingConfirm, Reply, Status, Understood};
use crate::store::audit::{AuditStart, Completion};
use crate::store::confirm::{Answer, ConfirmError, NewConfirmation};
use crate::store::{Store, StoreError, now_ms};
use crate::understand::intent::{Conversation, Turn};
use crate::understand::llm::{Allowed, Asking, Llm, Report};
use crate::understand::{self, Context, Explanation, Tier, Understanding};

/// How long a thread remembers a pending question and its last command.
const CONVERSATION_TTL_MS: i64 = 30 * 60 * 1000;
use crate::workspace::Workspace;

pub struct Bot {
    workspace: RwLock<Arc<Workspace>>,
    store: Store,
    plugins: Registry,
    /// Pools to the target databases of predefined queries, opened on first use.
    pools: crate::queries::pools::Pools,
    /// Test runs this process drives in the background.
    jobs: Arc<crate::jobs::Jobs>,
    /// The LLM tier's client: its cache and rate limits outlive workspace reloads.
    llm: Llm,
}

/// Per-message switches a transport may set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Confirm what needs confirming without asking (`lazyops run --yes`).
    pub assume_yes: bool,
    /// How long the LLM tier may take; else `[llm] timeout_ms` (`slack_timeout_ms` in Slack).
    pub llm_timeout: Option<Duration>,
}

/// `2026-11-25 12:03:00 UTC`
pub fn format_ms(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Who asked what where, plus how it was understood: what the audit row and a confirmation
/// need to know.
struct Request<'a> {
    who: &'a Identity,
    place: &'a Place,
    text: &'a str,
    tier: Tier,
    intent: Option<String>,
    confidence: f32,
    /// What the LLM tier did for this message, for the audit row.
    llm: Option<&'a Report>,
    /// Who approved it (one per line), when it runs after approval.
    approved_by: Option<&'a str>,
}

impl Bot {
    pub fn new(workspace: Workspace, store: Store) -> Bot {
        Bot {
            workspace: RwLock::new(Arc::new(workspace)),
            store,
            plugins: Registry::builtin(),
            pools: crate::queries::pools::Pools::new(),
            jobs: crate::jobs::Jobs::new(),
            llm: Llm::from_env(),
        }
    }

    /// Uses this LLM client instead of the one `OPENAI_BASE_URL` and `OPENAI_API_KEY` describe.
    pub fn with_llm(mut self, llm: Llm) -> Bot {
        self.llm = llm;
        self
    }

    /// Background test runs: transports subscribe here to tell requesters when one ends.
    pub fn jobs(&self) -> &Arc<crate::jobs::Jobs> {
        &self.jobs
    }

    /// The current workspace; hot reload swaps it, so hold the `Arc` for one message.
    pub fn workspace(&self) -> Arc<Workspace> {
        match self.workspace.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a freshly loaded workspace (hot reload); messages in flight keep the old one.
    pub fn replace_workspace(&self, ws: Workspace) {
        let ws = Arc::new(ws);
        match self.workspace.write() {
            Ok(mut w) => *w = ws,
            Err(poisoned) => *poisoned.into_inner() = ws,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pools(&self) -> &crate::queries::pools::Pools {
        &self.pools
    }

    /// How a text would be understood by `who` in `place`; nothing runs and the
    /// conversation is left as it is.
    pub async fn explain(&self, text: &str, who: &Identity, place: &Place) -> Explanation {
        let ws = self.workspace();
        let conversation = self.conversation(who, place).await;
        let asking = self.asking(&ws, who, place, None);
        let ctx = self.context(&ws, &conversation);
        Explanation::of(&understand::understand_with(text.trim(), &ctx, asking.as_ref()).await)
    }

    /// The LLM tier for one message, when it is on.
    fn asking<'a>(
        &'a self,
        ws: &'a Workspace,
        who: &'a Identity,
        place: &Place,
        timeout: Option<Duration>,
    ) -> Option<Asking<'a>> {
        let cfg = &ws.config.llm;
        if cfg.mode == crate::config::LlmMode::Off {
            return None;
        }
        let budget =
            if place.transport == crate::message::Transport::Slack { cfg.slack_timeout_ms } else { cfg.timeout_ms };
        Some(Asking {
            llm: &self.llm,
            mode: cfg.mode,
            config: cfg,
            setup: &ws.llm,
            allowed: allowed_here(&ws.config, &ws.catalog, who, place),
            bot_name: &ws.config.bot.name,
            who: who.as_str(),
            timeout: timeout.unwrap_or(Duration::from_millis(budget)),
            rate_limited: true,
        })
    }

    fn context<'a>(&self, ws: &'a Workspace, conversation: &'a Conversation) -> Context<'a> {
        Context {
            catalog: &ws.catalog,
            model: Some(ws.lazy_model()),
            conversation,
            today: time::OffsetDateTime::now_utc().date(),
        }
    }

    async fn conversation(&self, who: &Identity, place: &Place) -> Conversation {
        match self.store.conversation(&place.key(), who.as_str(), now_ms()).await {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
            Ok(None) => Conversation::default(),
            Err(e) => {
                tracing::warn!(error = %e, "conversation state unavailable");
                Conversation::default()
            }
        }
    }

    async fn remember(&self, who: &Identity, place: &Place, c: &Conversation) {
        let Ok(json) = serde_json::to_string(c) else { return };
        if let Err(e) =
            self.store.set_conversation(&place.key(), who.as_str(), &json, now_ms() + CONVERSATION_TTL_MS).await
        {
            tracing::warn!(error = %e, "conversation state not saved");
        }
    }

    #[tracing::instrument(skip_all, fields(who = %msg.who, place = %msg.place.key()))]
    pub async fn handle(&self, msg: &Message, opts: Options) -> Reply {
        let ws = self.workspace();
        let text = msg.text.trim();
        if text.is_empty() {
            return Reply::new(Status::NotUnderstood, "empty message").text("Type `help` to see what I can do.");
        }
        let limit = ws.config.bot.max_message_bytes;
        if msg.text.len() > limit {
            // Audited without the text itself: only its size.
            let size = format!("({} bytes, over the {limit}-byte limit)", msg.text.len());
            let req = Request {
                who: &msg.who,
                place: &msg.place,
                text: &size,
                tier: Tier::None,
                intent: None,
                confidence: 0.0,
                llm: None,
                approved_by: None,
            };
            let _ = self.audit(&req, None, "not_understood", None).await;
            return Reply::new(
                Status::NotUnderstood,
                format!("message too long: {} bytes, the limit is {limit}", msg.text.len()),
            )
            .text("Nothing was run. Send a shorter message.");
        }
        let asking = self.asking(&ws, &msg.who, &msg.place, opts.llm_timeout);
        // A typed command needs no thread state: skip the read on the busiest path. (With the
        // LLM tier on, every turn goes into the thread's history, so the state is read.)
        let typed = if asking.is_none() { understand::typed_command(text, &ws.catalog) } else { None };
        let conversation =
            if typed.is_some() { Conversation::default() } else { self.conversation(&msg.who, &msg.place).await };
        let ctx = self.context(&ws, &conversation);
        let understood = match typed {
            Some(command) => understand::typed(command),
            None => understand::understand_with(text, &ctx, asking.as_ref()).await,
        };
        let mut next = understood.conversation.clone();
        if asking.is_some() && ws.config.llm.history_turns > 0 {
            let mut c = next.unwrap_or_else(|| conversation.clone());
            let command = match &understood.understanding {
                Understanding::Command { command, .. } => Some(command),
                _ => None,
            };
            let bot = match command {
                Some(c) => format!("Understood as the command `{}`.", redact_command(c, &ws.catalog)),
                None => understand::turn_summary(&understood.understanding),
            };
            c.turns.push(Turn { user: redact_text(text, command, &ws.catalog), bot });
            let drop = c.turns.len().saturating_sub(ws.config.llm.history_turns);
            c.turns.drain(..drop);
            next = Some(c);
        }
        if let Some(c) = &next {
            self.remember(&msg.who, &msg.place, c).await;
        }
        let note = understood.llm.as_ref().and_then(|r| r.note.clone());
        let mut reply = self.respond(&ws, msg, opts, text, understood.understanding, understood.llm.as_ref()).await;
        if reply.status == Status::Question
            && let Some(pending) = next.as_ref().and_then(|c| c.pending.as_ref())
        {
            reply.choices = pending.choices.clone();
        }
        match note {
            Some(note) => reply.text(note),
            None => reply,
        }
    }

    /// Decides, confirms or runs what a message was understood as.
    async fn respond(
        &self,
        ws: &Workspace,
        msg: &Message,
        opts: Options,
        text: &str,
        understanding: Understanding,
        llm: Option<&Report>,
    ) -> Reply {
        let (command, tier, intent, confidence) = match understanding {
            Understanding::Command { command, tier, intent, confidence } => (command, tier, intent, confidence),
            Understanding::Question { question, intent, confidence, tier } => {
                let req = Request {
                    who: &msg.who,
                    place: &msg.place,
                    text,
                    tier,
                    intent: Some(intent),
                    confidence,
                    llm,
                    approved_by: None,
                };
                let _ = self.audit(&req, None, "question", None).await;
                return Reply::new(Status::Question, question);
            }
            Understanding::NotUnderstood { error, suggestions, reason } => {
                let req = Request {
                    who: &msg.who,
                    place: &msg.place,
                    text,
                    tier: Tier::None,
                    intent: None,
                    confidence: 0.0,
                    llm,
                    approved_by: None,
                };
                // A request refused outright (a write, a restart) was understood: it is refused.
                let decision = if reason.is_some() { "refused" } else { "not_understood" };
                let _ = self.audit(&req, None, decision, None).await;
                return not_understood(error.as_deref(), &suggestions, reason.as_deref());
            }
        };
        tracing::info!(command = %command, tier = tier.name(), "understood");
        let req = Request { who: &msg.who, place: &msg.place, text, tier, intent, confidence, llm, approved_by: None };
        match &command {
            Command::Confirm { code } => return self.resolve_code(&req, code, Answer::Confirm).await,
            Command::Cancel { code } => return self.resolve_code(&req, code, Answer::Cancel).await,
            Command::Approve { code } => return self.approve_code(&req, code).await,
            Command::Reject { code, reason } => return self.reject_code(&req, code, reason.as_deref()).await,
            _ => {}
        }
        let (team, needs_confirm) = match policy::decide(&ws.config, &msg.who, &msg.place, &command) {
            Decision::Refused { reason } => {
                let _ = self.audit(&req, Some(&command), "refused", None).await;
                return Reply::new(Status::Refused, reason).command(command.to_string());
            }
            Decision::Allowed { team, confirm } => (team, confirm),
        };
        // Nothing understood from free text runs without the user confirming it.
        let needs_confirm = needs_confirm || tier != Tier::Grammar;
        if needs_confirm && !opts.assume_yes {
            return self.ask_confirmation(&req, &command).await;
        }
        self.proceed(&command, &req, &team, "allowed", None).await
    }

    /// A choice pressed under a question (a button or a menu in Slack): answered exactly as
    /// typing it in that thread would be, but only while `who`'s question in `place` is still
    /// waiting and offers it; `None` otherwise (someone else's question, or already answered).
    pub async fn choose(&self, who: &Identity, place: &Place, choice: &str, opts: Options) -> Option<Reply> {
        let (key, now) = (place.key(), now_ms());
        let raw = self.store.conversation(&key, who.as_str(), now).await.ok().flatten()?;
        let mut conversation: Conversation = serde_json::from_str(&raw).ok()?;
        let pending = conversation.pending.as_mut()?;
        if !pending.choices.iter().any(|c| c == choice) {
            return None;
        }
        // The press claims the question: its choices are taken off in one conditional write,
        // so a second press (a double tap, or the same press on another instance) finds none
        // and is told so; the question itself stays open for the answer below.
        pending.choices.clear();
        let claimed = serde_json::to_string(&conversation).ok()?;
        if !self.store.swap_conversation(&key, who.as_str(), &raw, &claimed, now).await.unwrap_or(false) {
            return None;
        }
        let msg = Message { who: who.clone(), place: place.clone(), text: choice.to_string() };
        Some(self.handle(&msg, opts).await)
    }

    /// A Confirm or Cancel button: the confirmation's full id, pressed by `who` in `place`
    /// (where the button's message is), which must be where it was asked.
    pub async fn answer(&self, id: &str, who: &Identity, place: &Place, answer: Answer) -> Reply {
        let req = Request {
            who,
            place,
            text: "(button)",
            tier: Tier::Grammar,
            intent: None,
            confidence: 1.0,
            llm: None,
            approved_by: None,
        };
        let resolved = self.store.resolve_id(id, who.as_str(), &place.key(), answer, now_ms()).await;
        self.after_resolve(&req, resolved, answer).await
    }

    async fn resolve_code(&self, req: &Request<'_>, code: &str, answer: Answer) -> Reply {
        let resolved = self.store.resolve_code(code, req.who.as_str(), &req.place.key(), answer, now_ms()).await;
        self.after_resolve(req, resolved, answer).await
    }

    /// Runs a confirmed command, checking it again against today's config and permissions.
    async fn after_resolve(
        &self,
        req: &Request<'_>,
        resolved: Result<crate::store::confirm::Resolved, ConfirmError>,
        answer: Answer,
    ) -> Reply {
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                let status = if matches!(e, ConfirmError::Store(_)) { Status::Failed } else { Status::Refused };
                // A press or code that resolves nothing (unknown, expired, someone else's, used)
                // is audited too: probing for confirmations leaves a trail.
                let row = self.audit_row(req, None, "refused", None);
                let done = Completion { outcome: "refused".into(), duration_ms: 0, error: Some(e.to_string()) };
                let _ = self.store.audit_record(row, done).await;
                return Reply::new(status, e.to_string());
            }
        };
        if answer == Answer::Cancel {
            let _ = self.audit(req, None, "cancelled", Some(&resolved.id)).await;
            return Reply::done(format!("cancelled `{}`", resolved.command)).command(resolved.command);
        }
        let ws = self.workspace();
        let command = match understand::grammar::parse(&resolved.command, &ws.catalog) {
            Ok(c) => c,
            Err(e) => {
                return Reply::failed(format!(
                    "`{}` no longer parses with the current config: {}",
                    resolved.command,
                    e.message()
                ));
            }
        };
        let tier = match resolved.tier.as_str() {
            "local" => Tier::Local,
            "llm" => Tier::Llm,
            _ => Tier::Grammar,
        };
        let req = Request {
            tier,
            intent: resolved.intent.clone(),
            confidence: resolved.confidence as f32,
            llm: None,
            ..*req
        };
        let team = match policy::decide(&ws.config, req.who, req.place, &command) {
            Decision::Refused { reason } => {
                let _ = self.audit(&req, Some(&command), "refused", Some(&resolved.id)).await;
                return Reply::new(Status::Refused, format!("no longer allowed: {reason}"))
                    .command(command.to_string());
            }
            Decision::Allowed { team, .. } => team,
        };
        self.proceed(&command, &req, &team, "confirmed", Some(&resolved.id)).await
    }

    async fn ask_confirmation(&self, req: &Request<'_>, command: &Command) -> Reply {
        let ws = self.workspace();
        let canonical = command.to_string();
        let now = now_ms();
        let new = NewConfirmation {
            requester: req.who.as_str(),
            place: &req.place.key(),
            command: &canonical,
            tier: req.tier.name(),
            intent: req.intent.as_deref(),
            confidence: f64::from(req.confidence),
            ttl_ms: ws.config.bot.confirm_ttl_secs as i64 * 1000,
        };
        let pending = match self.store.create_confirmation(&new, now).await {
            Ok(p) => p,
            Err(e) => return Reply::failed(e.to_string()).command(canonical),
        };
        let _ = self.audit(req, Some(command), "asked", Some(&pending.id)).await;
        let mut reply = Reply::new(Status::Confirm, format!("run `{canonical}`?")).command(canonical.clone());
        if req.tier != Tier::Grammar {
            reply = reply.text(format!(
                "Understood from your sentence by the {} tier (confidence {:.2}).",
                req.tier.name(),
                req.confidence
            ));
        }
        reply.confirm = Some(PendingConfirm {
            code: pending.code,
            command: canonical,
            expires_at: rfc3339(pending.expires_at),
            id: pending.id,
        });
        reply.understood =
            Some(Understood { tier: req.tier.name(), intent: req.intent.clone(), confidence: req.confidence });
        reply
    }

    /// The audit row of a request, not yet written.
    fn audit_row(
        &self,
        req: &Request<'_>,
        command: Option<&Command>,
        decision: &str,
        confirmation: Option<&str>,
    ) -> AuditStart {
        let ws = self.workspace();
        AuditStart {
            tier: Some(req.tier.name().to_string()),
            intent: req.intent.clone(),
            confidence: Some(f64::from(req.confidence)),
            command: command.map(|c| redact_command(c, &ws.catalog)),
            decision: decision.to_string(),
            confirmation_id: confirmation.map(str::to_string),
            llm_model: req.llm.map(|r| r.model.clone()),
            llm_prompt_tokens: req.llm.map(|r| i64::from(r.prompt_tokens)),
            llm_completion_tokens: req.llm.map(|r| i64::from(r.completion_tokens)),
            llm_latency_ms: req.llm.map(|r| r.latency_ms as i64),
            llm_outcome: req.llm.map(|r| r.outcome.to_string()),
            approved_by: req.approved_by.map(str::to_string),
            ..AuditStart::of(req.who, req.place, redact_text(req.text, command, &ws.catalog))
        }
    }

    /// Writes the audit row of something that is not run (a question, a refusal, ...).
    async fn audit(
        &self,
        req: &Request<'_>,
        command: Option<&Command>,
        decision: &str,
        confirmation: Option<&str>,
    ) -> Result<(), StoreError> {
        let row = self.audit_row(req, command, decision, confirmation);
        self.store.audit_start(row).await.inspect_err(|e| tracing::error!(error = %e, "audit write failed"))
    }

    /// Runs an allowed command with its audit row: committed before the command runs and
    /// completed after, so a crash mid-command leaves "started, no outcome" behind. A command
    /// that changes nothing (`CommandKind::changes_nothing`) has nothing in flight to record,
    /// so its row is committed once, complete, before the answer goes out.
    async fn run(
        &self,
        command: &Command,
        req: &Request<'_>,
        team: &str,
        decision: &str,
        confirmation: Option<&str>,
    ) -> Reply {
        let row = self.audit_row(req, Some(command), decision, confirmation);
        let id = row.id.clone();
        if command.kind().changes_nothing() {
            let (reply, done) = self.execute(&id, command, req, team).await;
            return match self.store.audit_record(row, done).await {
                Ok(()) => reply,
                // Nothing ran that the audit would have to tell of: no unaudited answer either.
                Err(e) => {
                    tracing::error!(audit = %id, error = %e, "audit write failed");
                    Reply::failed(e.to_string()).command(command.to_string())
                }
            };
        }
        if let Err(e) = self.store.audit_start(row).await {
            tracing::error!(error = %e, "audit write failed");
            return Reply::failed(e.to_string()).command(command.to_string());
        }
        let (reply, done) = self.execute(&id, command, req, team).await;
        if let Err(e) = self.store.audit_finish(&id, done).await {
            tracing::error!(audit = %id, error = %e, "audit completion failed");
        }
        reply
    }

    /// Runs an allowed command through its plugin: the reply and how it ended.
    async fn execute(&self, audit_id: &str, command: &Command, req: &Request<'_>, team: &str) -> (Reply, Completion) {
        let started = Instant::now();
        let spec = command.spec();
        let canonical = command.to_string();
        let reply = match self.plugins.get(spec.plugin) {
            None => {
                Err(ActError::User(format!("the `{}` plugin is not built in this version of lazyops", spec.plugin)))
            }
            Some(plugin) => {
                let ctx = Ctx { bot: self, who: req.who, place: req.place, team };
                plugin.run(command, &ctx).await
            }
        };
        let elapsed = started.elapsed().as_millis() as i64;
        // Errors quote configured URLs and what servers answered: credentials in them are
        // masked before the reply, the audit row or the log sees them.
        let (reply, outcome, error) = match reply {
            Ok(r) => (r, "ok", None),
            Err(ActError::User(msg)) => {
                let msg = crate::redact::redact(&msg);
                (Reply::failed(msg.clone()), "error", Some(msg))
            }
            Err(ActError::Internal(msg)) => {
                let msg = crate::redact::redact(&msg);
                tracing::error!(audit = audit_id, error = %msg, "plugin failed");
                (Reply::failed(format!("internal error, ref {audit_id}")), "error", Some(msg))
            }
        };
        let mut reply = reply.command(canonical);
        reply.understood =
            Some(Understood { tier: req.tier.name(), intent: req.intent.clone(), confidence: req.confidence });
        (reply, Completion { outcome: outcome.to_string(), duration_ms: elapsed, error })
    }
}

/// The text as the audit keeps it: when the command has secret parameters, its canonical
/// text with those values masked replaces what was typed; text that did not become a command
/// is masked by the secret parameters it may hold (`mask_unparsed`).
pub(crate) fn redact_text(text: &str, command: Option<&Command>, catalog: &crate::catalog::Catalog) -> String {
    match command {
        Some(c) => {
            let redacted = redact_command(c, catalog);
            if redacted != c.to_string() { redacted } else { text.to_string() }
        }
        None => mask_unparsed(text, catalog),
    }
}

/// Text that did not parse (a wrong type, an unknown or misspelled name, one value too many):
/// which value is which parameter is unknown, so after the name of a query or template with
/// a secret parameter every value is masked, and anywhere a `name=value` or `--name value`
/// naming a secret parameter of any of them is. Words are split as the grammar does
/// (double-quoted values stay whole) and joined by single spaces.
fn mask_unparsed(text: &str, catalog: &crate::catalog::Catalog) -> String {
    use crate::param::ParamSpec;
    let has_secret = |params: &[ParamSpec]| params.iter().any(|p| p.secret);
    let with_secrets = |word: &str| {
        let w = word.to_ascii_lowercase();
        catalog.queries.get(&w).is_some_and(|q| has_secret(&q.params))
            || catalog.templates.get(&w).is_some_and(|t| has_secret(&t.params))
    };
    let secret_name = |name: &str| {
        let named = |params: &[ParamSpec]| params.iter().any(|p| p.secret && p.name.eq_ignore_ascii_case(name));
        catalog.queries.values().any(|q| named(&q.params)) || catalog.templates.values().any(|t| named(&t.params))
    };
    let words = words(text);
    if !words.iter().any(|w| with_secrets(w) || w.contains('=') || w.starts_with("--")) {
        return text.to_string();
    }
    let (mut out, mut after_name, mut next_is_value) = (Vec::with_capacity(words.len()), false, false);
    for w in words {
        let flag = w.strip_prefix("--").filter(|f| !f.is_empty());
        let masked = match (flag.unwrap_or(w).split_once('='), flag) {
            (Some((name, _)), _) if after_name || secret_name(name) => {
                format!("{}{name}=***", if flag.is_some() { "--" } else { "" })
            }
            (None, Some(name)) => {
                next_is_value = after_name || secret_name(name);
                out.push(w.to_string());
                continue;
            }
            (None, None) if next_is_value || (after_name && !with_secrets(w)) => "***".to_string(),
            _ => w.to_string(),
        };
        next_is_value = false;
        after_name |= with_secrets(w);
        out.push(masked);
    }
    out.join(" ")
}

/// Whitespace-separated words, a double-quoted stretch (with `\"` escapes) kept in one.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (None, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&text[s..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// Canonical text with secret parameter values replaced by `***`.
fn redact_command(c: &Command, catalog: &crate::catalog::Catalog) -> String {
    let mask = |params: &crate::command::Params, secret: &dyn Fn(&str) -> bool| -> crate::command::Params {
        params
            .iter()
            .map(|(n, v)| {
                if secret(n) {
                    (n.clone(), crate::param::ParamValue::Text("***".into()))
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    };
    match c {
        Command::DbQuery { query, params, env } => {
            let secret = |n: &str| catalog.queries.get(query).and_then(|q| q.param(n)).is_some_and(|p| p.secret);
            Command::DbQuery { query: query.clone(), params: mask(params, &secret), env: env.clone() }.to_string()
        }
        Command::Manifest { template, params } => {
            let secret = |n: &str| {
                catalog.templates.get(template).is_some_and(|t| t.params.iter().any(|p| p.name == n && p.secret))
            };
            Command::Manifest { template: template.clone(), params: mask(params, &secret) }.to_string()
        }
        other => other.to_string(),
    }
}

fn not_understood(
    error: Option<&understand::grammar::ParseError>,
    suggestions: &[String],
    reason: Option<&str>,
) -> Reply {
    if let Some(reason) = reason {
        return Reply::new(Status::Refused, "that is not something I do")
            .text(reason)
            .text("Type `help` for the commands.");
    }
    match error {
        Some(e) => {
            let mut r =
                Reply::new(Status::NotUnderstood, e.message()).with(Block::Code { lang: None, text: e.caret() });
            if let Some(u) = &e.usage {
                r = r.text(format!("usage: {u}"));
            }
            r
        }
        None => {
            let mut r = Reply::new(Status::NotUnderstood, "I did not understand that");
            if !suggestions.is_empty() {
                r = r.text(format!("Did you mean: {}?", suggestions.join(", ")));
            }
            r.text("Type `help` for the commands.")
        }
    }
}

/// What the requester may ask for here, for the tools the LLM tier offers: the commands whose
/// plugin one of their teams enables in this place and that one of the team's rules could
/// match, and the queries those teams may run. `policy::decide` still judges the command.
fn allowed_here(
    config: &crate::config::Config,
    catalog: &crate::catalog::Catalog,
    who: &Identity,
    place: &Place,
) -> Allowed {
    let teams: Vec<policy::Membership> = policy::memberships(config, who)
        .into_iter()
        .filter(|m| m.team.channels.iter().any(|c| place.matches(c)))
        .collect();
    let commands = crate::spec::SPECS
        .iter()
        .filter(|s| {
            s.plugin == "core"
                || teams.iter().any(|m| {
                    m.team.plugins.iter().any(|p| p == s.plugin)
                        && m.allowed().iter().any(|p| policy::Pattern::parse(p).is_ok_and(|p| p.may_match(s.words)))
                })
        })
        .map(|s| s.kind)
        .collect();
    let queries = catalog
        .queries
        .keys()
        .filter(|q| teams.iter().any(|m| m.team.plugins.iter().any(|p| p == "db") && policy::query_allowed(m.team, q)))
        .cloned()
        .collect();
    let mut subreddits: Vec<String> = teams.iter().flat_map(|m| m.team.subreddits.iter().cloned()).collect();
    subreddits.sort();
    subreddits.dedup();
    Allowed { commands, queries, subreddits }
}
