//! A TCP proxy on 127.0.0.1 that stands between lazyops and one dependency (the state
//! database, a target database, Slack, GitHub, Reddit) and misbehaves on demand: it passes
//! bytes, delays them, holds them (a dependency that hangs), cuts the live connections (a
//! dependency that dies mid-request) or refuses new ones (one that is down).
//!
//! It runs on a runtime of its own, so sync tests that drive the binary and async tests that
//! drive the in-process server both use it, and a cut can come while the test's own runtime is
//! blocked waiting for the request it cuts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy does with new connections and with the bytes of live ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Bytes go through as they come.
    Pass,
    /// Every chunk waits this long before it goes on.
    Delay(Duration),
    /// New connections are accepted and get nothing back; live ones stop forwarding. Nothing is
    /// closed: the peer sees a dependency that hangs.
    Hang,
    /// New connections are closed at once, before any byte: the dependency is down.
    Refuse,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    live: Mutex<JoinSet<()>>,
    accepted: AtomicUsize,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().expect("proxy mode")
    }
}

pub struct Proxy {
    /// Where lazyops connects instead of the dependency.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// A proxy in `Pass` mode in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("proxy runtime");
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            live: Mutex::new(JoinSet::new()),
            accepted: AtomicUsize::new(0),
        });
        // Bound here with std: `block_on` is not allowed inside an async test.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let handle = runtime.handle().clone();
        let accepting = shared.clone();
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else { return };
            while let Ok((client, _)) = listener.accept().await {
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                if accepting.mode() == Mode::Refuse {
                    // No linger: the peer gets a reset, as from a port nobody listens on.
                    let _ = client.set_zero_linger();
                    drop(client);
                    continue;
                }
                let conn = accepting.clone();
                let mut live = accepting.live.lock().expect("live connections");
                while live.try_join_next().is_some() {}
                live.spawn_on(relay(conn, client), &handle);
            }
        });
        Proxy { addr, shared, runtime: Some(runtime) }
    }

    /// A proxy in front of the `host:port` of a database URL; `url` through the proxy.
    pub fn for_url(url: &str) -> (Proxy, String) {
        let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = authority.split(['/', '?']).next().unwrap_or(authority);
        let (creds, host) = authority.rsplit_once('@').map_or(("", authority), |(c, h)| (c, h));
        let upstream: SocketAddr = host.parse().expect("the test server URL names 127.0.0.1:port");
        let proxy = Proxy::start(upstream);
        let at = if creds.is_empty() { String::new() } else { format!("{creds}@") };
        let proxied = url.replacen(&format!("{at}{host}"), &format!("{at}{}", proxy.addr), 1);
        (proxy, proxied)
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().expect("proxy mode") = mode;
    }

    /// Closes every live connection at once, both ways: the dependency died mid-request.
    pub fn cut(&self) {
        self.shared.live.lock().expect("live connections").abort_all();
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async test may not do; this does not.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// One connection: a hanging proxy holds it without dialling the dependency; otherwise bytes
/// are pumped both ways until either side closes or the proxy cuts it.
async fn relay(shared: Arc<Shared>, client: TcpStream) {
    while shared.mode() == Mode::Hang {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else { return };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = pump(&shared, &mut cr, &mut uw);
    let down = pump(&shared, &mut ur, &mut cw);
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

async fn pump(shared: &Shared, from: &mut (impl AsyncReadExt + Unpin), to: &mut (impl AsyncWriteExt + Unpin)) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            match shared.mode() {
                Mode::Hang => tokio::time::sleep(Duration::from_millis(20)).await,
                Mode::Delay(d) => {
                    tokio::time::sleep(d).await;
                    break;
                }
                Mode::Pass | Mode::Refuse => break,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
