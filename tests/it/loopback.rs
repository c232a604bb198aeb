//! Servers on loopback for the transport tests: the real app (`lazyops::transport::http`) on
//! 127.0.0.1:0, and fakes of Slack's and GitHub's HTTP APIs that record every request and
//! answer in the real wire format.

#![allow(dead_code)] // slack and github tests each use their own subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use lazyops::pipeline::Bot;
use lazyops::store::Store;
use lazyops::transport::http::{self, Settings};
use lazyops::workspace::Workspace;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::Ws;

/// The real server, in this process, on a free loopback port.
pub struct Server {
    pub url: String,
    pub bot: Arc<Bot>,
    pub ws: Ws,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(ws: Ws, settings: Settings) -> Server {
        let state = format!("sqlite://{}/state.db", ws.path().display());
        Server::start_on(ws, settings, &state).await
    }

    /// The server with its state in the database at `state` (a URL).
    pub async fn start_on(ws: Ws, settings: Settings, state: &str) -> Server {
        let workspace = Workspace::load(&ws.config()).expect("the test workspace loads");
        let store = Store::open(state).await.expect("state database opens");
        let bot = Arc::new(Bot::new(workspace, store));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(http::serve(listener, bot.clone(), settings, async {
            let _ = stopped.await;
        }));
        Server { url, bot, ws, stop: Some(stop), done: Some(done) }
    }

    /// Starts a graceful shutdown; the returned handle resolves when the server has exited.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.done.take().expect("shut down once")
    }

    pub fn client() -> reqwest::Client {
        reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client")
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = Server::client().post(format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send().await.expect("the server answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        Server::client().get(format!("{}{path}", self.url)).send().await.expect("the server answers")
    }

    pub async fn audit(&self) -> Vec<lazyops::store::audit::AuditRow> {
        self.bot.store().audit_list(None, None, 1000).await.expect("audit rows")
    }
}

/// One request a fake received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.path, String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

type Respond = dyn Fn(&Call, usize) -> Response + Send + Sync;

/// A fake HTTP API: `respond(call, n)` answers the `n`th call (from 0) to that path. Paths
/// under `/slow` answer after 3 seconds.
pub struct Fake {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Fake {
    pub async fn start(respond: impl Fn(&Call, usize) -> Response + Send + Sync + 'static) -> Fake {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let respond: Arc<Respond> = Arc::new(respond);
        let recorded = calls.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let calls = recorded.clone();
            let respond = respond.clone();
            async move {
                let call = Call { method, path: uri.path().to_string(), headers, body };
                let n = {
                    let mut all = calls.lock().expect("calls");
                    let n = all.iter().filter(|c| c.path == call.path).count();
                    all.push(call.clone());
                    n
                };
                if call.path.starts_with("/slow") {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                respond(&call, n)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { url, calls }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// The calls to paths that end with `suffix`.
    pub fn to(&self, suffix: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.path.ends_with(suffix)).collect()
    }

    /// Waits (up to 10 s) until `n` calls to `suffix` arrived.
    pub async fn wait(&self, suffix: &str, n: usize) -> Vec<Call> {
        for _ in 0..200 {
            let got = self.to(suffix);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} call(s) to {suffix}; got {:#?}", self.calls().iter().map(|c| &c.path).collect::<Vec<_>>());
    }

    /// Asserts nothing reaches `suffix` for a while (background work had time to run).
    pub async fn none(&self, suffix: &str) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = self.to(suffix);
        assert!(
            got.is_empty(),
            "unexpected calls to {suffix}: {:#?}",
            got.iter().map(|c| String::from_utf8_lossy(&c.body).into_owned()).collect::<Vec<_>>()
        );
    }
}

/// A fixture copied from ../shared/fixtures into tests/fixtures.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

pub fn json_response(status: u16, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(v.to_string()))
        .expect("response")
}
