//! `lazyops serve`: one axum app for Slack, GitHub, `/healthz` and `/metrics`. Requests are
//! verified, acknowledged fast and logged without their bodies; work that outlives a request
//! runs as a tracked background task, so a graceful shutdown finishes it before exiting.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower_http::timeout::TimeoutLayer;

use super::metrics::{self, Metrics};
use super::{github, slack};
use crate::message::{Identity, Message, Place, Transport};
use crate::pipeline::Bot;
use crate::render::{Reply, Status};
use crate::store::audit::{AuditStart, Completion};
use crate::store::now_ms;

/// What time it is for signature windows: the system clock, or a hand-set one in tests
/// (Slack's published test vector is from 2018). Clones of a hand-set clock share its time.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// Unix seconds, moved by [`Clock::set`].
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(secs: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(secs)))
    }

    /// Moves a hand-set clock; the system clock ignores it.
    pub fn set(&self, secs: i64) {
        if let Clock::Manual(t) = self {
            t.store(secs, Ordering::Relaxed);
        }
    }

    pub fn now_secs(&self) -> i64 {
        match self {
            Clock::System => now_ms() / 1000,
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }
}

/// Secrets, service URLs and limits; `from_env` reads the variables of the stable interface.
/// No `Debug`: it holds secrets.
pub struct Settings {
    pub slack_signing_secret: Option<String>,
    pub slack_bot_token: Option<String>,
    /// `LAZYOPS_SLACK_API_URL`, else `https://slack.com/api`.
    pub slack_api_url: String,
    pub github_webhook_secret: Option<String>,
    pub github_token: Option<String>,
    /// `LAZYOPS_GITHUB_API_URL`, else `https://api.github.com`.
    pub github_api_url: String,
    pub clock: Clock,
    /// Larger request bodies are refused with 413 before anything reads them.
    pub body_limit: usize,
    /// A request still running after this is answered 503.
    pub request_timeout: Duration,
    /// How long a slash command may work before it answers "working on it" instead (Slack
    /// gives up after 3 s).
    pub ack_budget: Duration,
    /// Timeout of each call to Slack or GitHub.
    pub http_timeout: Duration,
    /// The longest `Retry-After` waited out before a call to Slack or GitHub fails.
    pub max_retry_wait: Duration,
    /// How long a delivery id is remembered for deduplication.
    pub dedup_ttl: Duration,
    /// How long a shutdown waits for background work.
    pub drain_timeout: Duration,
    /// Commands that may be in flight at once, in their requests or in the background; past
    /// it a request is answered "busy" (`LAZYOPS_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// How often expired approval requests are looked for; requesters hear within this long.
    pub approval_sweep: Duration,
    /// Slack Socket Mode instead of (besides) the HTTP routes: `serve --socket` or
    /// `[slack] mode = "socket"`.
    pub slack_socket: bool,
    /// `SLACK_APP_TOKEN` (`xapp-…`), which opens Socket Mode connections.
    pub slack_app_token: Option<String>,
    /// Socket Mode timing: pings, the silence after which a connection is dead, back-off.
    pub socket: super::slack::socket::Timing,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            slack_signing_secret: None,
            slack_bot_token: None,
            slack_api_url: "https://slack.com/api".into(),
            github_webhook_secret: None,
            github_token: None,
            github_api_url: "https://api.github.com".into(),
            clock: Clock::System,
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(15),
            ack_budget: Duration::from_millis(2500),
            http_timeout: Duration::from_secs(10),
            max_retry_wait: Duration::from_secs(60),
            dedup_ttl: Duration::from_secs(24 * 3600),
            drain_timeout: Duration::from_secs(25),
            max_in_flight: 256,
            approval_sweep: Duration::from_secs(15),
            slack_socket: false,
            slack_app_token: None,
            socket: super::slack::socket::Timing::default(),
        }
    }
}

impl Settings {
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let d = Settings::default();
        Settings {
            slack_signing_secret: var("SLACK_SIGNING_SECRET"),
            slack_bot_token: var("SLACK_BOT_TOKEN"),
            slack_api_url: var("LAZYOPS_SLACK_API_URL").unwrap_or(d.slack_api_url.clone()),
            github_webhook_secret: var("GITHUB_WEBHOOK_SECRET"),
            github_token: var("GITHUB_TOKEN"),
            slack_app_token: var("SLACK_APP_TOKEN"),
            github_api_url: var("LAZYOPS_GITHUB_API_URL").unwrap_or(d.github_api_url.clone()),
            max_in_flight: var("LAZYOPS_MAX_IN_FLIGHT")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(d.max_in_flight),
            ..d
        }
    }
}

/// Background work started by requests, counted so shutdown can wait for it.
#[derive(Clone, Default)]
pub struct Tasks {
    inner: Arc<TaskCount>,
}

#[derive(Default)]
struct TaskCount {
    running: AtomicUsize,
    idle: Notify,
}

struct Running(Arc<TaskCount>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tasks {
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let guard = Running(self.inner.clone());
        tokio::spawn(async move {
            let _guard = guard;
            work.await;
        });
    }

    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Resolves when no background work is left.
    pub async fn idle(&self) {
        loop {
            let woken = self.inner.idle.notified();
            if self.running() == 0 {
                return;
            }
            woken.await;
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub bot: Arc<Bot>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub slack: Arc<slack::api::SlackApi>,
    pub github: Arc<github::api::GithubApi>,
    pub tasks: Tasks,
    pub admission: Admission,
    /// Socket Mode connections open now (0 in HTTP mode), for `/healthz`.
    pub socket: Arc<super::slack::socket::Status>,
}

/// What a request is answered when `max_in_flight` commands are already running.
pub(crate) const BUSY: &str = "lazyops is busy, try again in a minute";

/// How many commands may be in flight at once, and how many "busy" notices may be on their
/// way at once (where the answer is a Web API call, not the HTTP response). Work past either
/// is not queued: a flood is answered, counted and audited, and never grows memory.
#[derive(Clone)]
pub(crate) struct Admission {
    work: Arc<Semaphore>,
    notices: Arc<Semaphore>,
}

impl Admission {
    fn new(max_in_flight: usize) -> Admission {
        Admission { work: Arc::new(Semaphore::new(max_in_flight)), notices: Arc::new(Semaphore::new(16)) }
    }
}

impl AppState {
    /// Counts how a reply was understood and whether it asks for confirmation.
    pub fn observe(&self, reply: &Reply) {
        if let Some(u) = &reply.understood {
            self.metrics.understood(u.tier);
        } else if reply.status == Status::NotUnderstood || (reply.status == Status::Refused && reply.command.is_none())
        {
            self.metrics.understood("none");
        }
        if reply.status == Status::Confirm {
            self.metrics.confirmation("asked");
        }
    }

    /// A permit for one command's work, held until the work ends wherever it runs; or, with
    /// `max_in_flight` commands already running, the "busy" answer, counted and audited.
    pub async fn admit(&self, msg: &Message) -> Result<OwnedSemaphorePermit, Reply> {
        if let Ok(permit) = self.admission.work.clone().try_acquire_owned() {
            return Ok(permit);
        }
        self.metrics.error("busy");
        // Not parsed: its text is masked by the secret parameters it may hold, as any
        // message that did not become a command.
        let text = crate::pipeline::redact_text(&msg.text, None, &self.bot.workspace().catalog);
        let row = AuditStart { decision: "busy".into(), ..AuditStart::of(&msg.who, &msg.place, &text) };
        let done = Completion { outcome: "refused".into(), duration_ms: 0, error: Some(BUSY.into()) };
        if let Err(e) = self.bot.store().audit_record(row, done).await {
            tracing::error!(error = %e, "audit of a busy answer failed");
        }
        Err(Reply::failed(BUSY))
    }

    /// Room for one "busy" notice that must be posted in the background; `None` when enough
    /// are on their way already (the request is still counted and audited).
    pub fn notice_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.admission.notices.clone().try_acquire_owned().ok()
    }

    /// A reply that could not be delivered: logged, counted and written to the audit log.
    pub async fn undelivered(&self, who: &Identity, place: &Place, command: Option<&str>, error: &str) {
        self.metrics.error("delivery");
        tracing::error!(who = %who, place = %place.key(), error, "reply not delivered");
        let row = AuditStart {
            command: command.map(str::to_string),
            decision: "undelivered".into(),
            ..AuditStart::of(who, place, "(reply delivery)")
        };
        let done = Completion { outcome: "error".into(), duration_ms: 0, error: Some(error.to_string()) };
        if let Err(e) = self.bot.store().audit_record(row, done).await {
            tracing::error!(error = %e, "audit of an undelivered reply failed");
        }
    }
}

/// The router, shared by `lazyops serve` and the tests. Work a request starts after its
/// answer runs on `tasks`.
pub fn app(bot: Arc<Bot>, settings: Settings, tasks: Tasks) -> Router {
    router(state(bot, settings, tasks))
}

/// What every handler and the Socket Mode client share; starts the announcers of finished
/// runs and expired approvals.
fn state(bot: Arc<Bot>, settings: Settings, tasks: Tasks) -> AppState {
    let timeout = settings.http_timeout;
    let http = crate::lazy_client::LazyClient::new(move || {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("lazyops/", env!("CARGO_PKG_VERSION")))
    });
    let slack = slack::api::SlackApi::new(
        http.clone(),
        &settings.slack_api_url,
        settings.slack_bot_token.clone(),
        settings.max_retry_wait,
    );
    let github = github::api::GithubApi::new(
        http,
        &settings.github_api_url,
        settings.github_token.clone(),
        settings.max_retry_wait,
    );
    let admission = Admission::new(settings.max_in_flight.max(1));
    let state = AppState {
        bot,
        settings: Arc::new(settings),
        metrics: Arc::new(Metrics::default()),
        slack: Arc::new(slack),
        github: Arc::new(github),
        tasks,
        admission,
        socket: Arc::default(),
    };
    // Test runs end after their request is long answered: tell the requester where they asked.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(announce_finished_runs(state.clone()));
        runtime.spawn(announce_expired_approvals(state.clone()));
    }
    state
}

fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let timeout = state.settings.request_timeout;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/slack/commands", post(slack::commands))
        .route("/slack/events", post(slack::events))
        .route("/slack/interactions", post(slack::interactions))
        .route("/github/webhook", post(github::webhook))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn announce_finished_runs(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let mut finished = state.bot.jobs().subscribe();
    loop {
        match finished.recv().await {
            Ok(outcome) => announce(&state, &outcome).await,
            Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "test-run notifications dropped"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Tells requesters in Slack or GitHub that their request expired without approval. Each
/// expiry is claimed by one instance (`store::approval`), so it is said once.
async fn announce_expired_approvals(state: AppState) {
    let mut tick = tokio::time::interval(state.settings.approval_sweep.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (place, reply) in state.bot.expire_approvals(None).await {
            let requester = reply.mention.first().cloned().unwrap_or_default();
            post_to_place(&state, &place, &reply, &requester, reply.command.as_deref()).await;
        }
    }
}

/// Posts a finished run in the Slack thread or GitHub issue it was asked from.
async fn announce(state: &AppState, outcome: &crate::jobs::JobOutcome) {
    let Some(place) = Place::from_key(&outcome.place) else { return };
    let reply = crate::jobs::notification(outcome);
    post_to_place(state, &place, &reply, &outcome.requester, Some(&format!("test status {}", outcome.id))).await;
}

/// Posts a reply nobody is waiting for in the Slack thread or GitHub issue of `place`; the
/// terminal has no such channel. A failure is audited as undelivered to `requester`.
async fn post_to_place(state: &AppState, place: &Place, reply: &Reply, requester: &str, command: Option<&str>) {
    let sent = match place.transport {
        Transport::Local => return,
        Transport::Slack => state
            .slack
            .post_message(&place.channel, place.thread.as_deref(), &crate::render::slack::render(reply))
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Transport::Github => {
            let Some((repo, number)) = place.channel.rsplit_once('#') else { return };
            let Ok(number) = number.parse::<u64>() else { return };
            let body = crate::render::markdown::render(reply, &state.bot.workspace().config.github.prefix);
            match place.thread.as_deref().and_then(|t| t.parse::<u64>().ok()) {
                Some(comment) => state.github.reply_in_review(repo, number, comment, &body).await,
                None => state.github.comment(repo, number, &body).await,
            }
            .map_err(|e| e.to_string())
        }
    };
    if let Err(error) = sent {
        let who = Identity::new(place.transport, requester.split_once(':').map_or("", |(_, n)| n));
        state.undelivered(&who, place, command, &error).await;
    }
}

/// Alive; in Socket Mode also whether a connection to Slack is open (still 200 when not: the
/// process is healthy and reconnecting, and a restart would not help).
async fn healthz(State(state): State<AppState>) -> String {
    if !state.settings.slack_socket {
        return "ok\n".into();
    }
    match state.socket.connected() {
        0 => "ok\nslack socket: disconnected\n".into(),
        n => format!("ok\nslack socket: connected ({n})\n"),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    if state.settings.slack_socket {
        state.socket.render(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// One log line and the counters per request; the path is logged as its route, never raw.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = metrics::route(req.uri().path());
    let method = req.method().clone();
    let started = Instant::now();
    state.metrics.started();
    let resp = next.run(req).await;
    state.metrics.finished();
    let took = started.elapsed();
    let status = resp.status().as_u16();
    state.metrics.request(route, status, took);
    tracing::info!(method = %method, route, status, micros = took.as_micros() as u64, "request");
    resp
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and the background work
/// they started (up to `drain_timeout`).
pub async fn serve(
    listener: TcpListener,
    bot: Arc<Bot>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tasks = Tasks::default();
    let drain = settings.drain_timeout;
    let state = state(bot, settings, tasks.clone());
    // Socket Mode: connections to Slack run beside the HTTP routes and stop with them.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let socket = state.settings.slack_socket.then(|| tokio::spawn(slack::socket::run(state.clone(), stopped)));
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    if let Some(socket) = socket {
        // Envelopes already acknowledged finish below, as background work.
        let _ = socket.await;
    }
    let left = tasks.running();
    if left > 0 {
        tracing::info!(tasks = left, "finishing background work before exit");
        if tokio::time::timeout(drain, tasks.idle()).await.is_err() {
            tracing::warn!(tasks = tasks.running(), "shutdown: background work abandoned after the drain timeout");
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight work");
}

/// A 400 for a signed request whose content cannot be read.
pub(crate) fn bad_request(state: &AppState, transport: &'static str, reason: String) -> Response {
    state.metrics.error("bad_request");
    tracing::warn!(transport, reason = %reason, "malformed request");
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}
