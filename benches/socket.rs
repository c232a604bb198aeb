//! Time to first answer in Slack Socket Mode: the real server (`transport::http::serve` with
//! `slack_socket`) against a loopback fake Slack, a WebSocket server that sends envelopes and
//! a Web API that hands out its URL and records `chat.postMessage`. Measured from the moment
//! the fake writes an envelope: to its ack (a slash command's answer is in the ack), and, for a
//! mention, to the reply posted with `chat.postMessage`. Sequential, one envelope at a time,
//! every answer audited in SQLite; prints p50 / p95 / p99 / max.
//!
//! cargo bench --bench socket [-- N]   (N envelopes of each kind, default 300)

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::Uri;
use futures_util::{SinkExt, StreamExt};
use lazyops::pipeline::Bot;
use lazyops::store::Store;
use lazyops::transport::http::{self, Settings};
use lazyops::workspace::{self, Workspace};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

fn main() {
    let n: usize = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    // The fake's socket: the first connection's halves go to the bench.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws_url = format!("ws://{}/link/?ticket=bench", listener.local_addr().expect("addr"));
    let (conn_tx, mut conn_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("lazyops connects");
        let ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
        let _ = conn_tx.send(ws).await;
    });
    // The fake Web API: posts are timed as they arrive.
    let (posted_tx, mut posted) = mpsc::unbounded_channel::<Instant>();
    let url = ws_url.clone();
    let api = axum::Router::new().fallback(move |uri: Uri, _body: Bytes| {
        let (url, posted_tx) = (url.clone(), posted_tx.clone());
        async move {
            let path = uri.path();
            if path.ends_with("/chat.postMessage") {
                let _ = posted_tx.send(Instant::now());
            }
            let body = if path.ends_with("/apps.connections.open") {
                json!({"ok": true, "url": url})
            } else if path.ends_with("/auth.test") {
                json!({"ok": true, "user_id": "UBOT", "bot_id": "BBOT"})
            } else {
                json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"})
            };
            axum::Json(body)
        }
    });
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api_url = format!("http://{}/api", api_listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(api_listener, api).await });

    // The server, on the demo workspace, its own members being the bench's users.
    let dir = tempfile::tempdir().expect("temp dir");
    workspace::write_demo(dir.path(), false).await.expect("demo workspace");
    let config = dir.path().join("lazyops.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replacen("\"slack:U0123ABC\"", "\"slack:U0123ABC\", \"slack:UBENCH\"", 1))
        .expect("config");
    let ws = Workspace::load(&config).expect("workspace");
    let store = Store::open(&format!("sqlite://{}/state.db", dir.path().display())).await.expect("state");
    let bot = Arc::new(Bot::new(ws, store));
    bot.workspace().model();
    let settings = Settings {
        slack_socket: true,
        slack_app_token: Some("xapp-bench".into()),
        slack_bot_token: Some("xoxb-bench".into()),
        slack_api_url: api_url,
        ..Settings::default()
    };
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    tokio::spawn(http::serve(http_listener, bot, settings, std::future::pending()));

    let ws = tokio::time::timeout(Duration::from_secs(10), conn_rx.recv()).await.expect("connected").expect("socket");
    let (mut sink, mut stream) = ws.split();
    sink.send(Frame::text(json!({"type": "hello", "num_connections": 1}).to_string())).await.expect("hello");

    let warm = 20;
    let (mut slash_ack, mut mention_ack, mut mention_reply) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..warm + n {
        let slash = json!({"envelope_id": format!("s{i}"), "type": "slash_commands", "accepts_response_payload": true,
            "payload": {"team_id": "T1", "channel_id": "C1", "user_id": "UBENCH", "command": "/lazyops",
                        "text": "db query user-by-id 42", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2.3"}});
        let sent = Instant::now();
        sink.send(Frame::text(slash.to_string())).await.expect("send");
        let (at, ack) = next_ack(&mut stream).await;
        // A result for the channel: the query ran (a refusal would be ephemeral).
        assert_eq!(ack["payload"]["response_type"], "in_channel", "the answer is in the ack: {ack}");
        let mention = json!({"envelope_id": format!("m{i}"), "type": "events_api", "accepts_response_payload": false,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {"type": "event_callback", "team_id": "T1", "event_id": format!("Ev{i}"), "event_time": 1,
                        "event": {"type": "app_mention", "user": "UBENCH", "channel": "C1", "text": "<@UBOT> db list",
                                  "ts": format!("1700000000.{i:06}"), "event_ts": format!("1700000000.{i:06}")}}});
        let m_sent = Instant::now();
        sink.send(Frame::text(mention.to_string())).await.expect("send");
        let (m_at, _) = next_ack(&mut stream).await;
        let replied = tokio::time::timeout(Duration::from_secs(10), posted.recv()).await.expect("reply").expect("api");
        if i >= warm {
            slash_ack.push(at - sent);
            mention_ack.push(m_at - m_sent);
            mention_reply.push(replied - m_sent);
        }
    }
    println!("Socket Mode, {n} envelopes each (after {warm} to warm up), envelope written by the fake → …");
    report("slash command → ack with the answer", slash_ack);
    report("app_mention → ack", mention_ack);
    report("app_mention → chat.postMessage reply", mention_reply);
}

type Incoming = futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>;

/// The next text frame lazyops writes, and when it arrived.
async fn next_ack(stream: &mut Incoming) -> (Instant, Value) {
    loop {
        match stream.next().await {
            Some(Ok(Frame::Text(t))) => return (Instant::now(), serde_json::from_str(t.as_str()).expect("JSON ack")),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize];
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!(
        "{what:40} p50 {:7.3} ms  p95 {:7.3} ms  p99 {:7.3} ms  max {:7.3} ms",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(d[d.len() - 1])
    );
}
