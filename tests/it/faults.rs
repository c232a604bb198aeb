//! Faults (issue 21): lazyops' dependencies misbehave while requests are in flight. A
//! `proxy::Proxy` stands between lazyops and the state database or a target database (cut,
//! refused, hanging); the Slack, GitHub and Reddit fakes answer 429, 5xx or late. Every case
//! asserts on what the user was told, on the audit rows, and on what the fakes received:
//! nothing lost, nothing run without its audit row, nothing run or posted twice.

use std::time::{Duration, Instant};

use axum::response::Response;
use lazyops::store::Store;
use lazyops::store::audit::AuditRow;
use lazyops::transport::http::Settings;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::loopback::{Fake, Server, fixture, json_response};
use crate::proxy::{Mode, Proxy};
use crate::queries::{Db, Engine};
use crate::support::{PgDb, Ws, postgres_url};
use crate::{github, slack};

/// Polls `probe` every 50 ms until it gives `Some`, for up to `secs` seconds.
async fn until<T, F: Future<Output = Option<T>>>(secs: u64, what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Time for a duplicate post, if there were one, to reach a fake before the count is read.
async fn quiet() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Slack settings whose ack budget outlasts the state database's own limits, so the answer,
/// good or bad, comes back in the HTTP response.
fn patient(slack: &Fake) -> Settings {
    Settings { ack_budget: Duration::from_secs(20), request_timeout: Duration::from_secs(40), ..slack::settings(slack) }
}

/// A slash command's answer in the HTTP response, as text.
async fn answer(server: &Server, text: &str, response_url: &str) -> String {
    let resp = slack::command(server, &slack::slash("U0123ABC", text, response_url)).await;
    assert_eq!(resp.status(), 200, "{text}");
    let v: Value = resp.json().await.expect("a JSON answer");
    v.to_string()
}

/// A direct message to the bot as an Events API delivery.
fn direct_message(event_id: &str, text: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).expect("fixture");
    v["event_id"] = json!(event_id);
    v["event"]["text"] = json!(text);
    v["event"]["user"] = json!("U0123ABC");
    v.to_string().into_bytes()
}

fn rows_for<'a>(audit: &'a [AuditRow], prefix: &str) -> Vec<&'a AuditRow> {
    audit.iter().filter(|r| r.command.as_deref().is_some_and(|c| c.starts_with(prefix))).collect()
}

async fn todo_texts(server: &Server) -> Vec<String> {
    let open = server.bot.store().todo_open("oncall").await.expect("todos");
    open.into_iter().map(|t| t.text).collect()
}

// --- the state database ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_state_cut_mid_traffic_is_answered_clearly_and_nothing_runs_twice_when_it_returns() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let (proxy, state) = Proxy::for_url(&db.url);
    let fake = Fake::start(slack::slack_ok).await;
    let server = Server::start_on(slack::workspace(&[]), patient(&fake), &state).await;
    let respond = format!("{}/respond", fake.url);

    let first = answer(&server, "todo add \"first\"", &respond).await;
    assert!(!first.contains("unavailable"), "{first}");

    // The database dies under the server: live connections cut, new ones refused.
    proxy.set(Mode::Refuse);
    proxy.cut();
    let down = answer(&server, "todo add \"second\"", &respond).await;
    assert!(down.contains("state database is unavailable"), "{down}");
    assert!(down.contains("nothing was run"), "{down}");
    // An event that cannot be recorded is not acknowledged, so Slack delivers it again.
    let ev = direct_message("EvFault1", "todo add \"third\"");
    assert_eq!(slack::event(&server, &ev, &[]).await.status(), 503);

    proxy.set(Mode::Pass);
    let retry = [("x-slack-retry-num", "1"), ("x-slack-retry-reason", "http_error")];
    assert_eq!(slack::event(&server, &ev, &retry).await.status(), 200);
    fake.wait("/api/chat.postMessage", 1).await;
    let again = [("x-slack-retry-num", "2"), ("x-slack-retry-reason", "timeout")];
    assert_eq!(slack::event(&server, &ev, &again).await.status(), 200);
    let second = answer(&server, "todo add \"second\"", &respond).await;
    assert!(!second.contains("unavailable"), "{second}");

    fake.none("/respond").await;
    assert_eq!(fake.to("/api/chat.postMessage").len(), 1, "the event is answered once");
    let mut todos = todo_texts(&server).await;
    todos.sort();
    assert_eq!(todos, ["first", "second", "third"], "each added once");
    let audit = server.audit().await;
    let added = rows_for(&audit, "todo add");
    assert_eq!(added.len(), 3, "one row per command that ran: {added:#?}");
    assert!(added.iter().all(|r| r.outcome.as_deref() == Some("ok")), "{added:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_postgres_state_makes_a_command_answer_later_exactly_once_with_its_audit_row() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let (proxy, state) = Proxy::for_url(&db.url);
    let fake = Fake::start(slack::slack_ok).await;
    let settings = Settings { ack_budget: Duration::from_millis(300), ..slack::settings(&fake) };
    let server = Server::start_on(slack::workspace(&[]), settings, &state).await;
    // Every packet to and from the database now takes 100 ms each way.
    proxy.set(Mode::Delay(Duration::from_millis(100)));
    let body = slack::slash("U0123ABC", "todo add \"slowly\"", &format!("{}/respond/slow-db", fake.url));
    let v: Value = slack::command(&server, &body).await.json().await.expect("JSON");
    assert!(v.to_string().contains("working on"), "{v}");
    let late = fake.wait("/respond/slow-db", 1).await;
    assert!(late[0].json().to_string().contains("slowly"), "{}", late[0].json());
    proxy.set(Mode::Pass);
    quiet().await;
    assert_eq!(fake.to("/respond/slow-db").len(), 1, "answered once");
    assert_eq!(todo_texts(&server).await, ["slowly"]);
    let audit = server.audit().await;
    let added = rows_for(&audit, "todo add");
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0].outcome.as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_state_is_answered_clearly_and_the_command_runs_once_after() {
    let fake = Fake::start(slack::slack_ok).await;
    let server = Server::start(slack::workspace(&[]), patient(&fake)).await;
    let respond = format!("{}/respond", fake.url);
    let path = server.ws.path().join("state.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut locker = sqlx::SqliteConnection::connect_with(&opts).await.expect("open the state file");
    // Another process holding the write lock past the busy timeout.
    sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut locker).await.expect("take the write lock");

    let locked = answer(&server, "todo add \"once\"", &respond).await;
    assert!(locked.contains("state database is unavailable"), "{locked}");
    assert!(locked.contains("nothing was run"), "{locked}");

    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.expect("let go of the lock");
    let ok = answer(&server, "todo add \"once\"", &respond).await;
    assert!(!ok.contains("unavailable"), "{ok}");

    fake.none("/respond").await;
    assert_eq!(todo_texts(&server).await, ["once"]);
    let audit = server.audit().await;
    let added = rows_for(&audit, "todo add");
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0].outcome.as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_postgres_state_is_answered_within_a_bounded_time_and_runs_nothing() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let (proxy, state) = Proxy::for_url(&db.url);
    let fake = Fake::start(slack::slack_ok).await;
    let server = Server::start_on(slack::workspace(&[]), patient(&fake), &state).await;
    let respond = format!("{}/respond", fake.url);
    assert!(!answer(&server, "todo add \"before\"", &respond).await.contains("unavailable"));

    // The database stops answering without closing anything.
    proxy.set(Mode::Hang);
    let started = Instant::now();
    let hung = answer(&server, "todo add \"during\"", &respond).await;
    assert!(hung.contains("state database is unavailable"), "{hung}");
    assert!(started.elapsed() < Duration::from_secs(20), "answered after {:?}", started.elapsed());

    proxy.set(Mode::Pass);
    proxy.cut();
    let after = answer(&server, "todo add \"after\"", &respond).await;
    assert!(!after.contains("unavailable"), "{after}");
    assert_eq!(todo_texts(&server).await, ["before", "after"]);
    let audit = server.audit().await;
    let ran: Vec<_> = rows_for(&audit, "todo add").into_iter().filter(|r| r.outcome.as_deref() == Some("ok")).collect();
    assert_eq!(ran.len(), 2, "{ran:#?}");
}

// --- target databases -------------------------------------------------------------------------

/// Runs `db query user-by-id 42` as alice in the binary while `hold` keeps the `users` table
/// locked; once the query waits on that lock, `fault` is done to the proxy. The run's JSON
/// reply and the audit rows, read back from the workspace's state file.
fn query_during_fault(engine: Engine, fault: impl FnOnce(&Proxy) + Send) -> Option<(Value, Vec<AuditRow>, Duration)> {
    let db = Db::of(engine)?;
    let ws = db.workspace();
    let (proxy, proxied) = Proxy::for_url(&db.url);
    ws.edit("lazyops.toml", &format!("prod = \"{}\"", db.url), &format!("prod = \"{proxied}\""));
    let name = db.url.rsplit('/').next().expect("a database name").to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (reply, took) = rt.block_on(async {
        let lock = hold_users(engine, &db.url).await;
        let started = Instant::now();
        let child = ws
            .cmd("alice", &["run", "--json", "db query user-by-id 42"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn lazyops");
        let run = tokio::task::spawn_blocking(move || child.wait_with_output());
        until(30, "the query to wait on the lock", || waiting_on_lock(engine, &db.url, &name)).await;
        fault(&proxy);
        let out = run.await.expect("join").expect("lazyops ran");
        let took = started.elapsed();
        drop(lock);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let reply: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
        (reply, took)
    });
    let audit = rt.block_on(async {
        let store = Store::open(&format!("sqlite://{}/state.db", ws.path().display())).await.expect("state");
        store.audit_list(None, None, 100).await.expect("audit rows")
    });
    Some((reply, audit, took))
}

/// A connection that keeps `users` locked until it is dropped (closing it ends the lock).
async fn hold_users(engine: Engine, url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to lock");
    let sql = match engine {
        Engine::Postgres => "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE",
        _ => "LOCK TABLES users WRITE",
    };
    sqlx::raw_sql(sql).execute(&mut conn).await.expect("lock users");
    conn
}

/// Whether a session of lazyops' query waits on the lock in database `name`.
async fn waiting_on_lock(engine: Engine, url: &str, name: &str) -> Option<()> {
    let mut conn = sqlx::AnyConnection::connect(url).await.ok()?;
    let sql = match engine {
        Engine::Postgres => {
            "SELECT CAST(count(*) AS BIGINT) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'"
        }
        _ => "SELECT CAST(count(*) AS SIGNED) FROM information_schema.processlist WHERE db = ? AND state LIKE '%lock%'",
    };
    let (n,): (i64,) = sqlx::query_as(sql).bind(name).fetch_one(&mut conn).await.ok()?;
    (n > 0).then_some(())
}

#[test]
fn a_target_postgres_dying_mid_query_is_a_clear_audited_error() {
    let Some((reply, audit, _)) = query_during_fault(Engine::Postgres, Proxy::cut) else { return };
    assert_eq!(reply["status"], "failed", "{reply}");
    let said = reply.to_string();
    assert!(said.contains("users"), "names the database: {said}");
    assert!(!said.contains("127.0.0.1"), "no server address in the answer: {said}");
    let rows = rows_for(&audit, "db query user-by-id");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].outcome.as_deref(), Some("error"));
    assert!(rows[0].error.is_some());
}

#[test]
fn a_target_mariadb_hanging_mid_query_is_cut_off_by_the_time_limit_and_audited() {
    let hang = |p: &Proxy| p.set(Mode::Hang);
    let Some((reply, audit, took)) = query_during_fault(Engine::Mysql, hang) else { return };
    assert_eq!(reply["status"], "failed", "{reply}");
    assert!(took < Duration::from_secs(30), "the run took {took:?}");
    let rows = rows_for(&audit, "db query user-by-id");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(matches!(rows[0].outcome.as_deref(), Some("error" | "timeout")), "{rows:#?}");
}

// --- Slack ------------------------------------------------------------------------------------

/// The bot on a Slack whose `chat.postMessage` answers with `post(n)` for its `n`th call.
async fn slack_answering(post: impl Fn(usize) -> Option<Response> + Send + Sync + 'static) -> (Server, Fake) {
    let fake = Fake::start(move |call, n| {
        if call.path.ends_with("/chat.postMessage")
            && let Some(resp) = post(n)
        {
            return resp;
        }
        slack::slack_ok(call, n)
    })
    .await;
    let server = Server::start(slack::workspace(&[]), slack::settings(&fake)).await;
    (server, fake)
}

fn status(code: u16, retry_after: Option<&str>) -> Response {
    let mut b = Response::builder().status(code);
    if let Some(s) = retry_after {
        b = b.header("retry-after", s);
    }
    b.body(axum::body::Body::from("{\"ok\":false,\"error\":\"ratelimited\"}")).expect("response")
}

async fn undelivered(server: &Server) -> AuditRow {
    until(20, "an undelivered audit row", || async {
        server.audit().await.into_iter().find(|r| r.decision == "undelivered")
    })
    .await
}

#[tokio::test]
async fn slack_429_with_retry_after_is_waited_out_and_the_reply_posted_exactly_once() {
    let (server, fake) = slack_answering(|n| (n == 0).then(|| status(429, Some("1")))).await;
    slack::event(&server, &direct_message("Ev429", "help"), &[]).await;
    let calls = fake.wait("/api/chat.postMessage", 2).await;
    assert_eq!(calls[0].body, calls[1].body, "the same reply, tried again");
    quiet().await;
    assert_eq!(fake.to("/api/chat.postMessage").len(), 2, "one 429, one post; nothing more");
    assert!(server.audit().await.iter().all(|r| r.decision != "undelivered"));
}

#[tokio::test]
async fn slack_429_asking_for_longer_than_the_limit_gives_up_at_once_and_is_audited() {
    let (server, fake) = slack_answering(|_| Some(status(429, Some("3600")))).await;
    slack::event(&server, &direct_message("Ev429long", "help"), &[]).await;
    let row = undelivered(&server).await;
    assert!(row.error.as_deref().unwrap_or("").contains("429"), "{row:?}");
    assert_eq!(fake.to("/api/chat.postMessage").len(), 1, "not retried past the limit");
}

#[tokio::test]
async fn slack_500s_are_retried_a_bounded_number_of_times_then_audited_undelivered() {
    let (server, fake) = slack_answering(|_| Some(status(500, None))).await;
    slack::event(&server, &direct_message("Ev500", "help"), &[]).await;
    let row = undelivered(&server).await;
    assert!(row.error.as_deref().unwrap_or("").contains("500"), "{row:?}");
    assert_eq!(fake.to("/api/chat.postMessage").len(), 3, "three attempts, then it gives up");
    quiet().await;
    assert_eq!(fake.to("/api/chat.postMessage").len(), 3);
}

#[tokio::test]
async fn a_slack_call_that_times_out_is_not_sent_again_and_is_audited() {
    // `/slow` answers after 3 s, past the 1 s client timeout: Slack may have posted it, so a
    // second try could post it twice.
    let fake = Fake::start(slack::slack_ok).await;
    let settings = Settings { slack_api_url: format!("{}/slow/api", fake.url), ..slack::settings(&fake) };
    let server = Server::start(slack::workspace(&[]), settings).await;
    let started = Instant::now();
    slack::event(&server, &direct_message("EvSlow", "help"), &[]).await;
    let row = undelivered(&server).await;
    assert!(started.elapsed() < Duration::from_secs(15), "gave up after {:?}", started.elapsed());
    assert!(row.error.as_deref().unwrap_or("").contains("could not be reached"), "{row:?}");
    assert_eq!(fake.to("/chat.postMessage").len(), 1, "sent once");
}

#[tokio::test]
async fn a_response_url_that_resets_the_connection_falls_back_to_the_web_api_which_posts_once() {
    let fake = Fake::start(slack::slack_ok).await;
    let proxy = Proxy::start(fake.url.trim_start_matches("http://").parse().expect("fake address"));
    proxy.set(Mode::Refuse);
    let settings = Settings { ack_budget: Duration::ZERO, ..slack::settings(&fake) };
    let server = Server::start(slack::workspace(&[]), settings).await;
    let body = slack::slash("U0123ABC", "db query user-by-id 42", &format!("{}/respond", proxy.url()));
    assert_eq!(slack::command(&server, &body).await.status(), 200);
    let posted = fake.wait("/api/chat.postMessage", 1).await;
    assert!(posted[0].json().to_string().contains("1 row from users"), "{}", posted[0].json());
    // A reset the client reads as a failed connect is retried (nothing was sent); one it reads
    // as a failed send is not (the request may have arrived). Either way the tries are bounded.
    let tries = proxy.accepted();
    assert!((1..=3).contains(&tries), "{tries} tries at the response_url");
    fake.none("/respond").await;
    assert_eq!(fake.to("/api/chat.postMessage").len(), 1);
    let audit = server.audit().await;
    assert!(audit.iter().all(|r| r.decision != "undelivered"));
    assert_eq!(rows_for(&audit, "db query").len(), 1, "the query ran once");
}

// --- GitHub -----------------------------------------------------------------------------------

#[tokio::test]
async fn github_5xx_is_retried_and_the_comment_posted_once() {
    let gh = Fake::start(|call, n| match n {
        0 => json_response(502, json!({"message": "Server Error"})),
        _ => github::github_ok(call, n),
    })
    .await;
    let server = Server::start(github::workspace(), github::settings(&gh)).await;
    github::deliver_json(&server, "issue_comment", &github::issue_comment("/lazyops whoami")).await;
    let calls = gh.wait(github::ISSUE_COMMENTS, 2).await;
    assert_eq!(calls[0].body, calls[1].body);
    quiet().await;
    assert_eq!(gh.to(github::ISSUE_COMMENTS).len(), 2, "one failure, one comment");
    assert!(server.audit().await.iter().all(|r| r.decision != "undelivered"));
}

#[tokio::test]
async fn github_5xx_that_persists_gives_up_after_a_bounded_number_of_tries_and_is_audited() {
    let gh = Fake::start(|_, _| json_response(503, json!({"message": "Service Unavailable"}))).await;
    let server = Server::start(github::workspace(), github::settings(&gh)).await;
    github::deliver_json(&server, "issue_comment", &github::issue_comment("/lazyops whoami")).await;
    let row = undelivered(&server).await;
    assert!(row.error.as_deref().unwrap_or("").contains("503"), "{row:?}");
    assert_eq!(gh.to(github::ISSUE_COMMENTS).len(), 3);
}

// --- Reddit -----------------------------------------------------------------------------------

#[test]
fn a_hanging_reddit_gets_a_friendly_answer_in_bounded_time_and_an_audit_row() {
    let ws = Ws::new();
    let never = Proxy::start("127.0.0.1:9".parse().expect("address"));
    never.set(Mode::Hang);
    let started = Instant::now();
    let out = ws.cmd("alice", &["run", "--json", "meme"]).env("LAZYOPS_REDDIT_URL", never.url()).output().expect("run");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(reply["status"], "failed", "{reply}");
    assert!(reply.to_string().contains("Reddit did not answer in time"), "{reply}");
    assert!(never.accepted() >= 1, "Reddit was asked");
    let audit = ws.run("alice", &["audit", "--json"]);
    assert!(audit.stdout.contains("meme"), "{}", audit.stdout);
}
