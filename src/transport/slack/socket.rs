//! Slack Socket Mode: lazyops opens a WebSocket to Slack (`apps.connections.open` with the
//! app-level token) instead of Slack calling public HTTPS routes. Each envelope's payload is
//! the same JSON as the HTTP body, so it goes to the same handlers as HTTP mode
//! (`slack::slash_command`, `slack::event`, `slack::interaction`): one pipeline, one dedup in
//! the state store (several replicas or connections may receive an event; it is answered
//! once), one renderer. What this module owns is the connection's life: every envelope is
//! acknowledged with its `envelope_id` (the slash command's answer in the ack when Slack
//! accepts one), `disconnect` opens a replacement before the old connection closes, pings
//! and a silence timeout find dead connections, and reconnects back off with jitter.
//!
//! Invariants: envelopes being worked on are bounded per connection (`MAX_ENVELOPES`) and
//! their commands by `AppState::admit`; the connection URL (a ticket) and the app token are
//! never logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::api::OpenError;
use super::{Ack, SlashCommand};
use crate::transport::http::AppState;

/// Envelopes one connection works on at once. Past it an envelope is left unacknowledged, so
/// Slack delivers it again (to this or another connection) rather than lazyops queueing it.
const MAX_ENVELOPES: usize = 512;

/// Frames waiting to be written to one connection (acks, pings): senders wait past it.
const OUTBOX: usize = 64;

/// How long connecting (TCP, TLS, WebSocket handshake) may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The clock of the connections' life; tests shorten it.
#[derive(Clone, Debug)]
pub struct Timing {
    /// A ping is sent this often; any frame from Slack counts as a sign of life.
    pub ping_every: Duration,
    /// A connection silent this long (no frame, no pong) is dead: it is closed and replaced.
    pub dead_after: Duration,
    /// The first wait before reconnecting after a failure; doubled per failure in a row.
    pub backoff_first: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// How long a connection Slack asked to replace may finish its envelopes before lazyops
    /// closes it (Slack closes it itself after about 10 s).
    pub drain: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ping_every: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            drain: Duration::from_secs(15),
        }
    }
}

/// What `/healthz` and `/metrics` say about Socket Mode.
#[derive(Default)]
pub struct Status {
    /// Connections that said `hello` and are still open.
    connected: AtomicUsize,
    /// Connections opened after the first: refreshes, drops and dead connections.
    reconnects: AtomicU64,
    envelopes: AtomicU64,
    open_errors: AtomicU64,
}

impl Status {
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Acquire)
    }

    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let gauge = [(
            "lazyops_slack_socket_connections",
            "Slack Socket Mode connections open (hello received).",
            self.connected() as u64,
        )];
        let counters = [
            (
                "lazyops_slack_socket_reconnects_total",
                "Socket Mode connections opened after the first (refreshes, drops, dead connections).",
                self.reconnects.load(Ordering::Relaxed),
            ),
            (
                "lazyops_slack_socket_envelopes_total",
                "Socket Mode envelopes received.",
                self.envelopes.load(Ordering::Relaxed),
            ),
            (
                "lazyops_slack_socket_open_errors_total",
                "Failed attempts to open a Socket Mode connection.",
                self.open_errors.load(Ordering::Relaxed),
            ),
        ];
        for (kind, list) in [("gauge", &gauge[..]), ("counter", &counters[..])] {
            for (name, help, n) in list {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {n}");
            }
        }
    }
}

/// Why a connection could not be opened. Messages never hold the URL or the token.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("slack gave a connection URL lazyops cannot use: {0}")]
    BadUrl(String),
    #[error("connecting to {host}: {reason}")]
    Network { host: String, reason: String },
}

impl ConnectError {
    /// The wait Slack asked for, which wins over the back-off.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectError::Open(OpenError::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }
}

/// What a connection tells the supervisor.
#[derive(Debug)]
enum Note {
    Hello(u64),
    /// Slack will close it soon: open the replacement now.
    Replace(u64),
    Closed(u64, Ending),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// Slack or the network ended it; reconnect with the back-off.
    Dropped,
    /// Slack refused the connection for good for now (`link_disabled`): wait the longest.
    Refused,
    /// Replaced after a refresh, or shutdown: nothing to do.
    Done,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// Keeps one Socket Mode connection open until `stop` turns true, then closes every
/// connection; envelopes already acknowledged finish as background work (`AppState::tasks`).
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let Some(token) = state.settings.slack_app_token.clone() else {
        tracing::error!("Socket Mode needs SLACK_APP_TOKEN (an app-level xapp- token with connections:write)");
        return;
    };
    let timing = state.settings.socket.clone();
    let (notes, mut noted) = mpsc::channel::<Note>(16);
    let mut connections = tokio::task::JoinSet::new();
    let (mut active, mut next_id, mut failures) = (None::<u64>, 0u64, 0u32);
    let mut wait = Duration::ZERO;
    loop {
        if *stop.borrow() {
            break;
        }
        while connections.try_join_next().is_some() {}
        if active.is_none() {
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
            }
            match connect(&state, &token).await {
                Ok(socket) => {
                    next_id += 1;
                    if next_id > 1 {
                        state.socket.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    active = Some(next_id);
                    wait = Duration::ZERO;
                    connections.spawn(connection(state.clone(), next_id, socket, notes.clone(), stop.clone()));
                }
                Err(e) => {
                    failures += 1;
                    state.socket.open_errors.fetch_add(1, Ordering::Relaxed);
                    state.metrics.error("slack_api");
                    wait = e.retry_after().unwrap_or_else(|| backoff(&timing, failures));
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "slack socket not opened; retrying");
                    continue;
                }
            }
        }
        tokio::select! {
            note = noted.recv() => match note {
                Some(Note::Hello(id)) if active == Some(id) => failures = 0,
                // The old connection drains beside its replacement.
                Some(Note::Replace(id)) if active == Some(id) => active = None,
                Some(Note::Closed(id, ending)) if active == Some(id) => {
                    active = None;
                    failures += 1;
                    wait = match ending {
                        Ending::Refused => timing.backoff_max,
                        Ending::Dropped => backoff(&timing, failures),
                        Ending::Done => Duration::ZERO,
                    };
                }
                Some(_) => {}
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
    // Each connection sees `stop` and closes itself.
    while connections.join_next().await.is_some() {}
}

/// Full jitter on a doubling, capped wait: replicas that lost Slack together do not all
/// come back in the same millisecond.
fn backoff(t: &Timing, failures: u32) -> Duration {
    let doubled = t.backoff_first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let cap = doubled.min(t.backoff_max);
    let half = cap / 2;
    half + Duration::from_micros(rand::random_range(0..=half.as_micros().min(u64::MAX as u128) as u64))
}

async fn connect(state: &AppState, token: &str) -> Result<Socket, ConnectError> {
    let url = state.slack.connections_open(token).await?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| ConnectError::BadUrl(e.to_string()))?;
    let host = parsed.host_str().ok_or_else(|| ConnectError::BadUrl("no host".into()))?.to_string();
    let port = parsed.port_or_known_default().ok_or_else(|| ConnectError::BadUrl("no port".into()))?;
    let network = |reason: String| ConnectError::Network { host: host.clone(), reason };
    let open = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| network(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match parsed.scheme() {
            "wss" => Box::new(tls(&host, tcp).await.map_err(network)?),
            _ => Box::new(tcp),
        };
        let (socket, _) =
            tokio_tungstenite::client_async(url.as_str(), io).await.map_err(|e| network(e.to_string()))?;
        Ok(socket)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, open).await.map_err(|_| network("timed out".into()))?
}

/// TLS with the platform's verifier, as the Web API client (reqwest) uses; built once, since
/// loading the system's roots costs milliseconds.
async fn tls(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    use tokio_rustls::rustls::{ClientConfig, crypto::aws_lc_rs, pki_types::ServerName};
    static CONFIG: std::sync::OnceLock<Result<Arc<ClientConfig>, String>> = std::sync::OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            let builder = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(builder.with_platform_verifier().map_err(|e| e.to_string())?.with_no_client_auth()))
        })
        .clone()?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())
}

/// One connection: reads frames, hands envelopes to their handlers, writes their acks, pings,
/// and tells the supervisor when Slack says hello, asks for a replacement, or it ends.
async fn connection(
    state: AppState,
    id: u64,
    socket: Socket,
    notes: mpsc::Sender<Note>,
    mut stop: watch::Receiver<bool>,
) {
    let timing = state.settings.socket.clone();
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Frame>(OUTBOX);
    let working = Arc::new(Semaphore::new(MAX_ENVELOPES));
    let mut ping = tokio::time::interval(timing.ping_every.min(timing.dead_after / 2).max(Duration::from_millis(10)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_seen, mut hello, mut draining) = (Instant::now(), false, None::<Instant>);
    let ending = loop {
        tokio::select! {
            frame = stream.next() => {
                last_seen = Instant::now();
                let text = match frame {
                    Some(Ok(Frame::Text(t))) => t,
                    Some(Ok(Frame::Close(_))) | None => break Ending::Dropped,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(connection = id, error = %e, "slack socket read failed");
                        break Ending::Dropped;
                    }
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    tracing::warn!(connection = id, "slack socket frame is not JSON; ignored");
                    continue;
                };
                match v["type"].as_str() {
                    Some("hello") => {
                        if !hello {
                            hello = true;
                            state.socket.connected.fetch_add(1, Ordering::AcqRel);
                        }
                        tracing::info!(connection = id, connections = v["num_connections"].as_u64(), "slack socket connected");
                        let _ = notes.send(Note::Hello(id)).await;
                    }
                    Some("disconnect") => {
                        let reason = v["reason"].as_str().unwrap_or("unknown");
                        tracing::info!(connection = id, reason, "slack asked to disconnect");
                        match reason {
                            "link_disabled" => {
                                tracing::error!("Socket Mode is disabled for this Slack app; enable it in the app's settings");
                                break Ending::Refused;
                            }
                            "too_many_websockets" => break Ending::Dropped,
                            // warning, refresh_requested: the replacement opens now; this one
                            // keeps acknowledging until Slack closes it.
                            _ => {
                                if draining.is_none() {
                                    draining = Some(Instant::now());
                                    let _ = notes.send(Note::Replace(id)).await;
                                }
                            }
                        }
                    }
                    _ if v["envelope_id"].is_string() => envelope(&state, id, v, &outbox, &working),
                    other => tracing::debug!(connection = id, kind = ?other, "slack socket frame ignored"),
                }
            }
            Some(frame) = outgoing.recv() => {
                if let Err(e) = sink.send(frame).await {
                    tracing::warn!(connection = id, error = %e, "slack socket write failed");
                    break Ending::Dropped;
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > timing.dead_after {
                    tracing::warn!(connection = id, silent_ms = last_seen.elapsed().as_millis() as u64, "slack socket dead; replacing it");
                    break Ending::Dropped;
                }
                if draining.is_some_and(|since| since.elapsed() > timing.drain) {
                    break Ending::Done;
                }
                if sink.send(Frame::Ping(Vec::new().into())).await.is_err() {
                    break Ending::Dropped;
                }
            }
            _ = stop.changed() => break Ending::Done,
        }
    };
    // Acks already written stand; envelopes still being worked on finish in the background,
    // and an answer whose ack can no longer be sent goes to its response_url.
    let _ = sink.send(Frame::Close(None)).await;
    if hello {
        state.socket.connected.fetch_sub(1, Ordering::AcqRel);
    }
    let ending = if draining.is_some() { Ending::Done } else { ending };
    tracing::info!(connection = id, ending = ?ending, "slack socket closed");
    let _ = notes.send(Note::Closed(id, ending)).await;
}

/// One envelope: its work runs as background work and its ack goes out through `outbox`.
fn envelope(state: &AppState, connection: u64, v: Value, outbox: &mpsc::Sender<Frame>, working: &Arc<Semaphore>) {
    state.socket.envelopes.fetch_add(1, Ordering::Relaxed);
    let Ok(permit) = working.clone().try_acquire_owned() else {
        state.metrics.error("busy");
        tracing::warn!(connection, "too many envelopes in flight; left for Slack to deliver again");
        return;
    };
    let (state, outbox) = (state.clone(), outbox.clone());
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let _permit = permit;
        let id = v["envelope_id"].as_str().unwrap_or_default().to_string();
        let accepts = v["accepts_response_payload"].as_bool().unwrap_or(false);
        let response_url = v["payload"]["response_url"].as_str().map(str::to_string);
        let ack = answer(&state, v).await;
        let frame = match &ack {
            Ack::Unavailable => return,
            Ack::Json(body) if accepts => ack_text(&id, Some(body)),
            _ => ack_text(&id, None),
        };
        if outbox.send(Frame::Text(frame.into())).await.is_err()
            && let (Ack::Json(body), Some(url)) = (ack, response_url)
        {
            // The connection closed before the answer could go in its ack.
            let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
            if let Err(e) = state.slack.respond(&url, &body).await {
                tracing::warn!(error = %e, "slash command answer lost with its connection");
            }
        }
    });
}

/// `{"envelope_id": …}`, with the answer as `payload` when there is one.
fn ack_text(id: &str, payload: Option<&[u8]>) -> String {
    let id = Value::from(id).to_string();
    match payload.and_then(|p| std::str::from_utf8(p).ok()) {
        Some(p) => format!("{{\"envelope_id\":{id},\"payload\":{p}}}"),
        None => format!("{{\"envelope_id\":{id}}}"),
    }
}

/// The envelope's payload through the handler HTTP mode uses for the same JSON.
async fn answer(state: &AppState, mut v: Value) -> Ack {
    let accepts = v["accepts_response_payload"].as_bool().unwrap_or(false);
    let retry = v["retry_attempt"].as_u64().unwrap_or(0).to_string();
    let payload = v["payload"].take();
    match v["type"].as_str() {
        Some("events_api") => super::event(state, &payload, &retry).await,
        Some("slash_commands") => match serde_json::from_value::<SlashCommand>(payload) {
            Ok(form) => super::slash_command(state, form, accepts).await,
            Err(e) => super::malformed(state, format!("malformed slash command payload: {e}")),
        },
        Some("interactive") => super::interaction(state, payload).await,
        other => {
            tracing::info!(kind = ?other, "slack envelope type ignored");
            Ack::Empty
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Timing, ack_text, backoff};

    #[test]
    fn acks_carry_the_envelope_id_and_the_answer_verbatim() {
        assert_eq!(
            ack_text("57d6a792-4d35-4d0b-b6aa-3361493e1caf", None),
            r#"{"envelope_id":"57d6a792-4d35-4d0b-b6aa-3361493e1caf"}"#
        );
        let ack = ack_text("e\"1", Some(br#"{"text":"hi"}"#));
        let v: serde_json::Value = serde_json::from_str(&ack).expect("an ack is JSON");
        assert_eq!(v["envelope_id"], "e\"1");
        assert_eq!(v["payload"]["text"], "hi");
    }

    #[test]
    fn back_off_doubles_with_jitter_and_stops_at_the_cap() {
        let t = Timing {
            backoff_first: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..Timing::default()
        };
        for _ in 0..50 {
            let first = backoff(&t, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = backoff(&t, 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = backoff(&t, 40);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1), "{late:?}");
        }
    }
}
