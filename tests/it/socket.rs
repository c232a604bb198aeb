//! Slack Socket Mode (issue 23) against a loopback fake Slack: a real WebSocket server on
//! 127.0.0.1 that says `hello`, sends Slack's envelope shapes (tests/fixtures/slack/socket)
//! and records every frame lazyops writes back, beside the fake Web API (`loopback::Fake`)
//! that answers `apps.connections.open` with the socket's URL and records the posts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use lazyops::transport::http::Settings;
use lazyops::transport::slack::socket::Timing;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::loopback::{Call, Fake, Server, fixture, json_response};
use crate::support::Ws;

const APP_TOKEN: &str = "xapp-1-A111-socket-test-secret";
const MEMBERS: &str = "\"slack:U0123ABC\", \"slack:U222\"";
/// Slack's limit for an acknowledgement.
const ACK_LIMIT: Duration = Duration::from_secs(3);

// --- the fake Slack ----------------------------------------------------------------------------

enum Order {
    Send(String),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Stop reading and writing (no pongs, no frames): a dead peer that keeps the socket open.
    Freeze,
    Close,
}

/// One WebSocket connection lazyops opened to the fake.
struct Conn {
    orders: mpsc::UnboundedSender<Order>,
    frames: mpsc::UnboundedReceiver<(Instant, Value)>,
    pings: Arc<AtomicUsize>,
}

impl Conn {
    /// Sends a frame; returns when it was sent.
    fn send(&self, v: &Value) -> Instant {
        let at = Instant::now();
        self.orders.send(Order::Send(v.to_string())).expect("the fake connection is running");
        at
    }

    fn order(&self, o: Order) {
        let _ = self.orders.send(o);
    }

    /// The next text frame lazyops wrote (up to 10 s).
    async fn next(&mut self) -> (Instant, Value) {
        tokio::time::timeout(Duration::from_secs(10), self.frames.recv())
            .await
            .expect("a frame from lazyops within 10 s")
            .expect("the connection is open")
    }

    /// Sends an envelope and waits for its ack; returns the ack and how long it took.
    async fn roundtrip(&mut self, envelope: &Value) -> (Value, Duration) {
        let sent = self.send(envelope);
        let (at, ack) = self.next().await;
        assert_eq!(ack["envelope_id"], envelope["envelope_id"], "acks come back with their envelope's id: {ack}");
        (ack, at - sent)
    }

    /// Asserts lazyops writes nothing for a while.
    async fn quiet(&mut self, ms: u64) {
        if let Ok(Some((_, v))) = tokio::time::timeout(Duration::from_millis(ms), self.frames.recv()).await {
            panic!("unexpected frame: {v}");
        }
    }
}

/// The fake's WebSocket side: every accepted connection is greeted with `hello`.
struct SlackSocket {
    url: String,
    accepted: mpsc::UnboundedReceiver<Conn>,
    open: Arc<AtomicUsize>,
}

impl SlackSocket {
    async fn start() -> SlackSocket {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("ws://{}/link/?ticket=secret-ticket-1234&app_id=A111", listener.local_addr().unwrap());
        let (tx, accepted) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let counting = open.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { continue };
                let (orders, mut ordered) = mpsc::unbounded_channel();
                let (frames_tx, frames) = mpsc::unbounded_channel();
                let pings = Arc::new(AtomicUsize::new(0));
                // Counted before the test hears of it, so `open()` never lags behind `next()`.
                counting.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(Conn { orders, frames, pings: pings.clone() });
                let open = counting.clone();
                tokio::spawn(async move {
                    let (mut sink, mut stream) = ws.split();
                    let hello = String::from_utf8(fixture("slack/socket/hello.json")).expect("utf-8");
                    let _ = sink.send(Frame::text(hello)).await;
                    loop {
                        tokio::select! {
                            order = ordered.recv() => match order {
                                Some(Order::Send(t)) => { let _ = sink.send(Frame::text(t)).await; }
                                Some(Order::Close) => { let _ = sink.send(Frame::Close(None)).await; break; }
                                Some(Order::Freeze) => {
                                    // Hold the socket, answer nothing, until told to drop it.
                                    while let Some(o) = ordered.recv().await {
                                        if matches!(o, Order::Drop | Order::Close) { break; }
                                    }
                                    break;
                                }
                                Some(Order::Drop) | None => break,
                            },
                            frame = stream.next() => match frame {
                                Some(Ok(Frame::Text(t))) => {
                                    let v = serde_json::from_str(t.as_str()).unwrap_or(Value::String(t.to_string()));
                                    let _ = frames_tx.send((Instant::now(), v));
                                }
                                Some(Ok(Frame::Ping(_))) => { pings.fetch_add(1, Ordering::SeqCst); }
                                Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => break,
                                Some(Ok(_)) => {}
                            },
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        SlackSocket { url, accepted, open }
    }

    /// The next connection lazyops opens (up to 10 s).
    async fn next(&mut self) -> Conn {
        tokio::time::timeout(Duration::from_secs(10), self.accepted.recv())
            .await
            .expect("lazyops connects within 10 s")
            .expect("the fake is running")
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// The Web API: `apps.connections.open` answers the socket's URL (after `failures` answers of
/// its own), `auth.test` says the bot is UBOT, every post succeeds.
fn web_api(ws_url: String, failures: fn(usize) -> Option<Response>) -> impl Fn(&Call, usize) -> Response {
    move |call, n| {
        if call.path.ends_with("/apps.connections.open") {
            if let Some(r) = failures(n) {
                return r;
            }
            return json_response(200, json!({"ok": true, "url": ws_url}));
        }
        if call.path.ends_with("/auth.test") {
            return json_response(200, json!({"ok": true, "user_id": "UBOT", "bot_id": "BBOT"}));
        }
        if call.path.starts_with("/api/") {
            return json_response(200, json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}));
        }
        "ok".into_response()
    }
}

fn timing() -> Timing {
    Timing {
        ping_every: Duration::from_millis(100),
        dead_after: Duration::from_millis(700),
        backoff_first: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        drain: Duration::from_secs(5),
    }
}

fn settings(api: &Fake) -> Settings {
    Settings {
        slack_socket: true,
        slack_app_token: Some(APP_TOKEN.into()),
        slack_bot_token: Some("xoxb-test".into()),
        slack_api_url: format!("{}/api", api.url),
        http_timeout: Duration::from_millis(1000),
        max_retry_wait: Duration::from_secs(2),
        socket: timing(),
        ..Settings::default()
    }
}

fn workspace(extra_confirm: &[&str]) -> Ws {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "\"slack:U0123ABC\"", MEMBERS);
    if !extra_confirm.is_empty() {
        let list: Vec<String> = extra_confirm.iter().map(|p| format!("\"{p}\"")).collect();
        ws.edit(
            "lazyops.toml",
            "confirm = [\"todo done *\"]",
            &format!("confirm = [\"todo done *\", {}]", list.join(", ")),
        );
    }
    ws
}

fn no_failures(_: usize) -> Option<Response> {
    None
}

/// The server in Socket Mode, the fake Web API, and the fake's socket with lazyops' first
/// connection already accepted.
async fn start(extra_confirm: &[&str]) -> (Server, Fake, SlackSocket, Conn) {
    let mut socket = SlackSocket::start().await;
    let api = Fake::start(web_api(socket.url.clone(), no_failures)).await;
    let server = Server::start(workspace(extra_confirm), settings(&api)).await;
    let conn = socket.next().await;
    (server, api, socket, conn)
}

// --- envelopes ---------------------------------------------------------------------------------

fn load(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

/// The fixture's slash_commands envelope: `text` by `user` in C1, answering to `response_url`.
fn slash(id: &str, user: &str, text: &str, response_url: &str) -> Value {
    let mut e = load("slack/socket/envelope.slash_commands.json");
    e["envelope_id"] = json!(id);
    e["payload"]["user_id"] = json!(user);
    e["payload"]["channel_id"] = json!("C1");
    e["payload"]["command"] = json!("/lazyops");
    e["payload"]["text"] = json!(text);
    e["payload"]["response_url"] = json!(response_url);
    e
}

/// The fixture's events_api envelope around an app_mention of the bot by `user` in C1.
fn mention(id: &str, event_id: &str, user: &str, text: &str, ts: &str) -> Value {
    let mut e = load("slack/socket/envelope.events_api.app_mention.json");
    e["envelope_id"] = json!(id);
    e["payload"]["event_id"] = json!(event_id);
    let ev = &mut e["payload"]["event"];
    ev["user"] = json!(user);
    ev["channel"] = json!("C1");
    ev["text"] = json!(format!("<@UBOT> {text}"));
    ev["ts"] = json!(ts);
    ev["event_ts"] = json!(ts);
    e
}

/// A direct message (the docs' message.im event) in the same envelope shape.
fn direct(id: &str, event_id: &str, user: &str, text: &str) -> Value {
    let mut payload = load("slack/event_callback.message_im.json");
    payload["event_id"] = json!(event_id);
    payload["event"]["user"] = json!(user);
    payload["event"]["text"] = json!(text);
    json!({"envelope_id": id, "payload": payload, "type": "events_api", "accepts_response_payload": false,
           "retry_attempt": 0, "retry_reason": ""})
}

/// A button press (the fixture's block_actions payload) in an `interactive` envelope.
fn press(id: &str, action_id: &str, value: &str, user: &str, response_url: &str) -> Value {
    let mut p = load("slack/block_actions.button.payload.json");
    p["channel"]["id"] = json!("C1");
    p["container"]["channel_id"] = json!("C1");
    p["user"]["id"] = json!(user);
    p["actions"][0]["action_id"] = json!(action_id);
    p["actions"][0]["value"] = json!(value);
    p["response_url"] = json!(response_url);
    json!({"envelope_id": id, "payload": p, "type": "interactive", "accepts_response_payload": false})
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

async fn metrics(server: &Server) -> String {
    server.get("/metrics").await.text().await.unwrap()
}

// --- tests -------------------------------------------------------------------------------------

#[tokio::test]
async fn connections_open_is_called_with_the_app_token_and_healthz_says_connected() {
    let (server, api, socket, _conn) = start(&[]).await;
    let opened = api.to("/apps.connections.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].method, "POST");
    assert_eq!(opened[0].header("authorization"), format!("Bearer {APP_TOKEN}"));
    let mut health = String::new();
    for _ in 0..100 {
        health = server.get("/healthz").await.text().await.unwrap();
        if health.contains("connected (1)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health, "ok\nslack socket: connected (1)\n");
    assert_eq!(socket.open(), 1);
    let m = metrics(&server).await;
    assert!(m.contains("lazyops_slack_socket_connections 1"), "{m}");
    assert!(m.contains("lazyops_slack_socket_reconnects_total 0"), "{m}");
}

#[tokio::test]
async fn a_slash_command_is_answered_in_its_ack_within_three_seconds_and_audited() {
    let (server, api, _socket, mut conn) = start(&[]).await;
    let url = format!("{}/respond/1", api.url);
    let (ack, took) = conn.roundtrip(&slash("env-1", "U0123ABC", "db query user-by-id 42", &url)).await;
    assert!(took < ACK_LIMIT, "acked after {took:?}");
    let answer = &ack["payload"];
    assert_eq!(answer["response_type"], "in_channel", "{ack}");
    assert!(text_of(answer).contains("```"), "the row is in the ack: {ack}");
    api.none("/respond/1").await;
    let audit = server.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].who, "slack:U0123ABC");
    assert_eq!(audit[0].place, "slack:C1");
    assert_eq!(audit[0].command.as_deref(), Some("db query user-by-id user_id=42"));
}

#[tokio::test]
async fn a_slash_command_past_the_ack_budget_acks_working_on_it_and_answers_through_the_response_url() {
    let mut socket = SlackSocket::start().await;
    let api = Fake::start(web_api(socket.url.clone(), no_failures)).await;
    let server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&api) }).await;
    let mut conn = socket.next().await;
    let url = format!("{}/respond/late", api.url);
    let (ack, took) = conn.roundtrip(&slash("env-late", "U0123ABC", "db query user-by-id 42", &url)).await;
    assert!(took < Duration::from_millis(1500), "acked at once: {took:?}");
    assert_eq!(ack["payload"]["text"], "working on `db query user-by-id 42`…", "{ack}");
    let posted = api.wait("/respond/late", 1).await;
    assert!(text_of(&posted[0].json()).contains("```"), "{}", posted[0].json());
    assert_eq!(server.audit().await.len(), 1);
}

#[tokio::test]
async fn a_mention_and_a_direct_message_are_acked_at_once_and_answered_once_each() {
    let (server, api, _socket, mut conn) = start(&[]).await;
    let (ack, took) = conn.roundtrip(&mention("env-m", "Ev-m1", "U0123ABC", "db list", "1700000001.000100")).await;
    assert_eq!(ack, json!({"envelope_id": "env-m"}), "an event's ack carries no payload");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let (ack, _) = conn.roundtrip(&direct("env-d", "Ev-d1", "U0123ABC", "whoami")).await;
    assert_eq!(ack, json!({"envelope_id": "env-d"}));
    let posts = api.wait("/api/chat.postMessage", 2).await;
    let bodies: Vec<Value> = posts.iter().map(|c| c.json()).collect();
    let in_thread = bodies.iter().find(|b| b["channel"] == "C1").expect("the mention is answered in C1");
    assert_eq!(in_thread["thread_ts"], "1700000001.000100", "in the mention's thread: {in_thread}");
    assert!(bodies.iter().any(|b| text_of(b).contains("slack:U0123ABC")), "whoami answers in the DM: {bodies:?}");
    // Slack delivers the mention again (a retry, to this connection): acked, not answered.
    let mut retry = mention("env-m2", "Ev-m1", "U0123ABC", "db list", "1700000001.000100");
    retry["retry_attempt"] = json!(1);
    retry["retry_reason"] = json!("timeout");
    let (ack, _) = conn.roundtrip(&retry).await;
    assert_eq!(ack["envelope_id"], "env-m2");
    conn.quiet(400).await;
    assert_eq!(api.to("/api/chat.postMessage").len(), 2, "one answer per event");
    assert_eq!(server.audit().await.len(), 2);
}

#[tokio::test]
async fn a_confirm_button_pressed_over_the_socket_runs_the_command_once() {
    let (server, api, _socket, mut conn) = start(&["db query *"]).await;
    let ask = format!("{}/respond/ask", api.url);
    let (ack, _) = conn.roundtrip(&slash("env-ask", "U0123ABC", "db query user-by-id 42", &ask)).await;
    let blocks = ack["payload"]["blocks"].as_array().expect("blocks").clone();
    let actions = blocks.iter().find(|b| b["type"] == "actions").expect("Confirm and Cancel buttons");
    assert_eq!(actions["elements"][0]["action_id"], "lazyops_confirm");
    let id = actions["elements"][0]["value"].as_str().unwrap().to_string();
    let url = format!("{}/respond/button", api.url);
    let (ack, took) = conn.roundtrip(&press("env-press", "lazyops_confirm", &id, "U0123ABC", &url)).await;
    assert_eq!(ack, json!({"envelope_id": "env-press"}));
    assert!(took < Duration::from_secs(1), "{took:?}");
    let posted = api.wait("/respond/button", 2).await;
    assert!(posted[0].json()["text"].as_str().unwrap().starts_with("Confirmed by <@U0123ABC>"), "{}", posted[0].json());
    assert!(text_of(&posted[1].json()).contains("```"), "the result: {}", posted[1].json());
    // A second press (a double click, or Slack's redelivery) does not run it again.
    conn.roundtrip(&press("env-press-2", "lazyops_confirm", &id, "U0123ABC", &url)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let audit = server.audit().await;
    assert_eq!(audit.iter().filter(|r| r.decision == "confirmed").count(), 1, "{audit:#?}");
    assert_eq!(api.to("/respond/button").len(), 2, "the second press changed nothing in the channel");
}

#[tokio::test]
async fn a_refresh_opens_the_second_connection_before_the_first_closes_and_nothing_is_lost_or_answered_twice() {
    let (server, api, mut socket, mut first) = start(&[]).await;
    first.send(&load("slack/socket/disconnect.refresh_requested.json"));
    let mut second = socket.next().await;
    assert_eq!(socket.open(), 2, "the old connection is still open when the new one is");
    // Slack may still deliver on the old connection until it closes it: acknowledged there.
    let (ack, _) = first.roundtrip(&mention("env-old", "Ev-r1", "U0123ABC", "db list", "1700000002.000100")).await;
    assert_eq!(ack["envelope_id"], "env-old");
    // The same event redelivered on the new connection is acknowledged and not answered again.
    let (ack, _) = second.roundtrip(&mention("env-new", "Ev-r1", "U0123ABC", "db list", "1700000002.000100")).await;
    assert_eq!(ack["envelope_id"], "env-new");
    first.order(Order::Close);
    let (ack, _) = second.roundtrip(&mention("env-next", "Ev-r2", "U0123ABC", "whoami", "1700000003.000100")).await;
    assert_eq!(ack["envelope_id"], "env-next");
    api.wait("/api/chat.postMessage", 2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(api.to("/api/chat.postMessage").len(), 2, "each event answered once");
    assert_eq!(server.audit().await.len(), 2);
    // The old connection's close after a refresh is not a failure: no third connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.to("/apps.connections.open").len(), 2);
    let m = metrics(&server).await;
    assert!(m.contains("lazyops_slack_socket_reconnects_total 1"), "{m}");
    assert!(m.contains("lazyops_slack_socket_connections 1"), "{m}");
}

#[tokio::test]
async fn a_dropped_tcp_connection_is_reopened_and_answers_again() {
    let (server, api, mut socket, first) = start(&[]).await;
    first.order(Order::Drop);
    let started = Instant::now();
    let mut second = socket.next().await;
    assert!(started.elapsed() < Duration::from_secs(2), "reconnected after {:?}", started.elapsed());
    let (ack, _) = second.roundtrip(&mention("env-a", "Ev-a1", "U0123ABC", "whoami", "1700000004.000100")).await;
    assert_eq!(ack["envelope_id"], "env-a");
    api.wait("/api/chat.postMessage", 1).await;
    let m = metrics(&server).await;
    assert!(m.contains("lazyops_slack_socket_reconnects_total 1"), "{m}");
}

#[tokio::test]
async fn a_silent_connection_is_pinged_declared_dead_and_replaced() {
    let (server, _api, mut socket, first) = start(&[]).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(first.pings.load(Ordering::SeqCst) >= 2, "lazyops pings a live connection");
    first.order(Order::Freeze);
    let frozen = Instant::now();
    let _second = socket.next().await;
    let after = frozen.elapsed();
    // Dead after 700 ms of silence, checked on each 100 ms ping.
    assert!(after >= Duration::from_millis(600) && after < Duration::from_secs(3), "replaced after {after:?}");
    let m = metrics(&server).await;
    assert!(m.contains("lazyops_slack_socket_reconnects_total 1"), "{m}");
    first.order(Order::Drop);
}

/// The choice buttons of a posted question.
fn choice_buttons(posted: &Value) -> Vec<Value> {
    let blocks = posted["blocks"].as_array().cloned().unwrap_or_default();
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap_or_else(|| panic!("no buttons: {posted}"));
    actions["elements"].as_array().unwrap().clone()
}

/// The audit row of a message, without what differs between two messages (ids, times, place).
fn decision_of(row: &lazyops::store::audit::AuditRow) -> (String, Option<String>, Option<String>, Option<String>) {
    (row.decision.clone(), row.command.clone(), row.intent.clone(), row.tier.clone())
}

#[tokio::test]
async fn a_question_offers_buttons_and_pressing_one_answers_it_exactly_as_typing_it_would() {
    let (server, api, _socket, mut conn) = start(&[]).await;
    let ask = "which version is deployed in prod?";
    // Asked in two threads: one answered with a button, one by typing the answer.
    conn.roundtrip(&mention("env-q1", "Ev-q1", "U0123ABC", ask, "1700000010.000100")).await;
    conn.roundtrip(&mention("env-q2", "Ev-q2", "U0123ABC", ask, "1700000020.000100")).await;
    let posts = api.wait("/api/chat.postMessage", 2).await;
    let question = posts.iter().map(|c| c.json()).find(|b| b["thread_ts"] == "1700000010.000100").unwrap();
    let buttons = choice_buttons(&question);
    let values: Vec<&str> = buttons.iter().map(|b| b["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["payments", "users", "ledger"], "{question}");
    // Someone else's press changes nothing and only they hear why.
    let url = format!("{}/respond/choice", api.url);
    let mut theirs = press("env-p0", buttons[2]["action_id"].as_str().unwrap(), "ledger", "U222", &url);
    theirs["payload"]["message"]["thread_ts"] = json!("1700000010.000100");
    conn.roundtrip(&theirs).await;
    let told = api.wait("/api/chat.postEphemeral", 1).await;
    assert!(text_of(&told[0].json()).contains("asked of someone else"), "{}", told[0].json());
    // The asker presses "users" under the first question...
    let mut mine = press("env-p1", buttons[1]["action_id"].as_str().unwrap(), "users", "U0123ABC", &url);
    mine["payload"]["message"]["thread_ts"] = json!("1700000010.000100");
    let (ack, took) = conn.roundtrip(&mine).await;
    assert_eq!(ack, json!({"envelope_id": "env-p1"}));
    assert!(took < Duration::from_secs(1), "{took:?}");
    // ... and types it under the second.
    let mut typed = mention("env-q2a", "Ev-q2a", "U0123ABC", "users", "1700000021.000100");
    typed["payload"]["event"]["thread_ts"] = json!("1700000020.000100");
    conn.roundtrip(&typed).await;
    let posts = api.wait("/api/chat.postMessage", 4).await;
    let answers: Vec<Value> = posts[2..].iter().map(|c| c.json()).collect();
    let pressed = answers.iter().find(|b| b["thread_ts"] == "1700000010.000100").expect("answered in its thread");
    assert!(text_of(pressed).contains("deploy version users prod"), "{pressed}");
    let replaced = api.wait("/respond/choice", 1).await[0].json();
    assert_eq!(replaced["replace_original"], true, "{replaced}");
    assert_eq!(replaced["text"], "<@U0123ABC> chose `users`", "{replaced}");
    let audit = server.audit().await;
    let by_place = |thread: &str| -> Vec<_> {
        audit.iter().filter(|r| r.place == format!("slack:C1/{thread}")).map(decision_of).collect()
    };
    assert_eq!(by_place("1700000010.000100"), by_place("1700000020.000100"), "{audit:#?}");
    // Answered: a second press is refused like a stranger's.
    conn.roundtrip(&mine).await;
    api.wait("/api/chat.postEphemeral", 2).await;
    assert_eq!(api.to("/api/chat.postMessage").len(), 4);
}

#[tokio::test]
async fn a_choice_from_a_menu_answers_a_slash_command_question_through_its_response_url() {
    let (_server, api, _socket, mut conn) = start(&[]).await;
    let url = format!("{}/respond/q", api.url);
    let (ack, _) = conn.roundtrip(&slash("env-s", "U0123ABC", "which version is deployed in prod?", &url)).await;
    assert_eq!(choice_buttons(&ack["payload"]).len(), 3, "{ack}");
    let mut pick = press("env-sel", "lazyops_choice", "", "U0123ABC", &url);
    let action = &mut pick["payload"]["actions"][0];
    action["type"] = json!("static_select");
    action["selected_option"] = json!({"text": {"type": "plain_text", "text": "ledger"}, "value": "ledger"});
    action.as_object_mut().unwrap().remove("value");
    conn.roundtrip(&pick).await;
    let posted = api.wait("/respond/q", 2).await;
    assert_eq!(posted[0].json()["text"], "<@U0123ABC> chose `ledger`");
    let answer = posted[1].json();
    assert_eq!(answer["replace_original"], false, "{answer}");
    assert!(text_of(&answer).contains("deploy version ledger prod"), "{answer}");
}

fn open_errors(n: usize) -> Option<Response> {
    match n {
        0 => Some(
            Response::builder()
                .status(429)
                .header("retry-after", "1")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"ok":false,"error":"ratelimited"}"#))
                .unwrap(),
        ),
        1 => Some(json_response(200, json!({"ok": false, "error": "internal_error"}))),
        2 => Some(json_response(503, json!({"ok": false}))),
        _ => None,
    }
}

#[tokio::test]
async fn connections_open_errors_and_rate_limits_are_retried_with_back_off_and_retry_after() {
    let mut socket = SlackSocket::start().await;
    let api = Fake::start(web_api(socket.url.clone(), open_errors)).await;
    let started = Instant::now();
    let server = Server::start(workspace(&[]), settings(&api)).await;
    let health = server.get("/healthz").await.text().await.unwrap();
    assert_eq!(health, "ok\nslack socket: disconnected\n");
    let mut conn = socket.next().await;
    let calls = api.to("/apps.connections.open");
    assert_eq!(calls.len(), 4, "429, ok:false, 503, then the URL");
    // Retry-After: 1 is waited out before the second attempt.
    assert!(started.elapsed() >= Duration::from_secs(1), "connected after {:?}", started.elapsed());
    let m = metrics(&server).await;
    assert!(m.contains("lazyops_slack_socket_open_errors_total 3"), "{m}");
    let (ack, _) = conn.roundtrip(&direct("env-x", "Ev-x1", "U0123ABC", "whoami")).await;
    assert_eq!(ack["envelope_id"], "env-x");
}

#[tokio::test]
async fn past_max_in_flight_an_envelope_is_acked_answered_busy_and_audited() {
    let mut socket = SlackSocket::start().await;
    let api = Fake::start(web_api(socket.url.clone(), no_failures)).await;
    let settings = Settings { ack_budget: Duration::ZERO, max_in_flight: 1, ..settings(&api) };
    let server = Server::start(workspace(&[]), settings).await;
    let mut conn = socket.next().await;
    // The one permit is held by a command whose late answer waits on a slow response_url.
    let slow = format!("{}/slow/respond", api.url);
    let (ack, _) = conn.roundtrip(&slash("env-hold", "U0123ABC", "whoami", &slow)).await;
    assert_eq!(ack["payload"]["text"], "working on `whoami`…");
    let (ack, took) = conn.roundtrip(&slash("env-busy", "U0123ABC", "help", "http://127.0.0.1:9/x")).await;
    assert!(took < ACK_LIMIT);
    assert!(text_of(&ack).contains("lazyops is busy, try again in a minute"), "{ack}");
    let busy: Vec<_> = server.audit().await.into_iter().filter(|r| r.decision == "busy").collect();
    assert_eq!(busy.len(), 1, "the busy answer is audited");
}

#[test]
fn the_binary_serves_socket_mode_and_keeps_the_tokens_out_of_its_logs() {
    use std::io::{BufRead, BufReader, Read};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut socket, api) = rt.block_on(async {
        let socket = SlackSocket::start().await;
        let api = Fake::start(web_api(socket.url.clone(), no_failures)).await;
        (socket, api)
    });
    let ws = workspace(&[]);
    let mut child = ws
        .cmd("alice", &["serve", "--socket", "--port", "0", "--host", "127.0.0.1", "--log-format", "json"])
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("SLACK_BOT_TOKEN", "xoxb-binary-test-secret")
        .env("LAZYOPS_SLACK_API_URL", format!("{}/api", api.url))
        .env("LAZYOPS_STATE_URL", format!("sqlite://{}/state.db", ws.path().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn lazyops serve --socket");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("lazyops listening on ").expect("the bound address").to_string();
    rt.block_on(async {
        let mut conn = socket.next().await;
        let url = format!("{}/respond/bin", api.url);
        let (ack, took) = conn.roundtrip(&slash("env-bin", "U0123ABC", "db query user-by-id 42", &url)).await;
        assert!(took < ACK_LIMIT, "{took:?}");
        assert_eq!(ack["payload"]["response_type"], "in_channel", "{ack}");
        let (ack, _) = conn.roundtrip(&mention("env-bin-m", "Ev-bin", "U0123ABC", "whoami", "1700000005.000100")).await;
        assert_eq!(ack["envelope_id"], "env-bin-m");
        api.wait("/api/chat.postMessage", 1).await;
        let health = Server::client().get(format!("{addr}/healthz")).send().await.unwrap().text().await.unwrap();
        assert_eq!(health, "ok\nslack socket: connected (1)\n");
    });
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("slack socket connected"), "{logs}");
    assert!(!logs.contains(APP_TOKEN) && !logs.contains("xoxb-binary-test-secret"), "tokens never logged: {logs}");
    assert!(!logs.contains("secret-ticket-1234"), "the connection URL is a credential: {logs}");
}

#[test]
fn socket_mode_without_an_app_token_refuses_to_start_and_says_which_variable() {
    let ws = Ws::new();
    let out = ws
        .cmd("alice", &["serve", "--socket", "--port", "0", "--host", "127.0.0.1"])
        .env_remove("SLACK_APP_TOKEN")
        .env("LAZYOPS_STATE_URL", format!("sqlite://{}/state.db", ws.path().display()))
        .output()
        .expect("run lazyops serve --socket");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SLACK_APP_TOKEN"), "{err}");
    let out = ws
        .cmd("alice", &["serve", "--socket", "--port", "0", "--host", "127.0.0.1"])
        .env("SLACK_APP_TOKEN", "xoxb-a-bot-token")
        .env("LAZYOPS_STATE_URL", format!("sqlite://{}/state.db", ws.path().display()))
        .output()
        .expect("run lazyops serve --socket");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("xapp-"), "{}", String::from_utf8_lossy(&out.stderr));
    // `[slack] mode = "socket"` asks for Socket Mode without the flag.
    let config = std::fs::read_to_string(ws.config()).expect("config");
    std::fs::write(ws.config(), format!("{config}\n[slack]\nmode = \"socket\"\n")).expect("config");
    let out = ws
        .cmd("alice", &["serve", "--port", "0", "--host", "127.0.0.1"])
        .env_remove("SLACK_APP_TOKEN")
        .env("LAZYOPS_STATE_URL", format!("sqlite://{}/state.db", ws.path().display()))
        .output()
        .expect("run lazyops serve");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SLACK_APP_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keys of every object in `v`, recursively.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            keys(x, out)
        }),
        Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

#[test]
fn the_socket_manifest_enables_socket_mode_names_no_url_and_matches_the_http_one_otherwise() {
    let read = |name: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("slack").join(name);
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("YAML")
    };
    let (socket, http) = (read("manifest.socket.yml"), read("manifest.yml"));
    assert_eq!(socket["settings"]["socket_mode_enabled"], true);
    let mut names = Vec::new();
    keys(&socket, &mut names);
    assert!(!names.iter().any(|k| k == "url" || k == "request_url"), "{names:?}");
    assert_eq!(socket["oauth_config"], http["oauth_config"]);
    assert_eq!(
        socket["settings"]["event_subscriptions"]["bot_events"],
        http["settings"]["event_subscriptions"]["bot_events"]
    );
    assert_eq!(socket["features"]["slash_commands"][0]["command"], http["features"]["slash_commands"][0]["command"]);
    assert_eq!(socket["settings"]["interactivity"]["is_enabled"], true);
}
