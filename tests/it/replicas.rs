//! Two instances, one PostgreSQL state (issue 21): the multi-replica setup the README promises,
//! as two real `lazyops serve` processes sharing a state database behind one fake Slack. Every
//! event delivered to both (as Slack's retries can land on either) is answered once; a
//! confirmation pressed on both runs once; the runs of an instance killed with SIGKILL are
//! marked interrupted by the survivor, and the audit rows are all there.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lazyops::store::Store;
use lazyops::store::jobs::JobState;
use lazyops::transport::slack::verify::sign;
use serde_json::{Value, json};

use crate::loopback::{Fake, Server, fixture};
use crate::slack::{SECRET, button, slack_ok, slash, workspace};
use crate::support::{PgDb, Ws, postgres_url};

/// One `lazyops serve` process; killed when dropped.
struct Instance {
    child: Child,
    url: String,
}

impl Instance {
    fn start(ws: &Ws, state: &str, slack: &str) -> Instance {
        let mut child = ws
            .cmd("alice", &["serve", "--port", "0", "--host", "127.0.0.1"])
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-test")
            .env("LAZYOPS_SLACK_API_URL", format!("{slack}/api"))
            .env("LAZYOPS_STATE_URL", state)
            .env("LAZYOPS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lazyops serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the first line");
        let url = line.trim().strip_prefix("lazyops listening on ").expect("the bound address").to_string();
        Instance { child, url }
    }

    /// A request signed as Slack signs it now.
    async fn post(&self, path: &str, content_type: &str, body: String) -> reqwest::Response {
        let now = lazyops::store::now_ms() / 1000;
        Server::client()
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(SECRET, now, body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("the instance answers")
    }

    async fn event(&self, body: &str, retry: &str) -> u16 {
        let now = lazyops::store::now_ms() / 1000;
        Server::client()
            .post(format!("{}/slack/events", self.url))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(SECRET, now, body.as_bytes()))
            .header("x-slack-retry-num", retry)
            .body(body.to_string())
            .send()
            .await
            .expect("the instance answers")
            .status()
            .as_u16()
    }

    async fn command(&self, text: &str, response_url: &str) -> Value {
        let form = "application/x-www-form-urlencoded";
        self.post("/slack/commands", form, slash("U0123ABC", text, response_url)).await.json().await.expect("JSON")
    }

    async fn press(&self, payload: &Value) -> u16 {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.post("/slack/interactions", "application/x-www-form-urlencoded", body).await.status().as_u16()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The confirmation id on a slash command's ephemeral prompt.
fn confirmation(v: &Value) -> String {
    let blocks = v["blocks"].as_array().unwrap_or_else(|| panic!("a prompt with blocks: {v}"));
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap_or_else(|| panic!("buttons: {v}"));
    actions["elements"][0]["value"].as_str().expect("a confirmation id").to_string()
}

async fn until<T>(secs: u64, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn two_instances_on_one_postgres_state_answer_each_event_once_run_each_confirmation_once_and_recover_a_killed_ones_runs()
 {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let ws = workspace(&[]);
    let mut cfg = std::fs::read_to_string(ws.config()).expect("config");
    cfg.push_str("\n[suites.slow]\ncommand = [\"sleep\", \"20\"]\ntimeout_secs = 60\n");
    std::fs::write(ws.config(), cfg).expect("write config");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let fake = rt.block_on(Fake::start(slack_ok));
    let a = Instance::start(&ws, &db.url, &fake.url);
    let mut b = Instance::start(&ws, &db.url, &fake.url);
    let store = rt.block_on(Store::open(&db.url)).expect("the shared state");

    rt.block_on(async {
        // Every event lands on both instances at once, as Slack's retries may.
        const EVENTS: usize = 8;
        for i in 0..EVENTS {
            let mut v: Value =
                serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).expect("fixture");
            v["event_id"] = json!(format!("EvReplica{i}"));
            v["event"]["user"] = json!("U0123ABC");
            v["event"]["text"] = json!(format!("todo add \"e{i}\""));
            let body = v.to_string();
            let (x, y) = tokio::join!(a.event(&body, "0"), b.event(&body, "1"));
            assert_eq!((x, y), (200, 200), "both acknowledge");
        }
        fake.wait("/api/chat.postMessage", EVENTS).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(fake.to("/api/chat.postMessage").len(), EVENTS, "each event answered once");
        let mut todos: Vec<String> =
            store.todo_open("oncall").await.expect("todos").into_iter().map(|t| t.text).collect();
        todos.sort();
        assert_eq!(todos, (0..EVENTS).map(|i| format!("e{i}")).collect::<Vec<_>>());

        // A confirmation asked on one instance, pressed on both at once: it runs once.
        let respond = format!("{}/respond/confirm", fake.url);
        let id = confirmation(&a.command("todo done 1", &respond).await);
        let press = button("lazyops_confirm", &id, "U0123ABC", &respond);
        let (x, y) = tokio::join!(b.press(&press), a.press(&press));
        assert_eq!((x, y), (200, 200));
        until(20, "the confirmed command's audit row", async || {
            let audit = store.audit_list(None, None, 1000).await.ok()?;
            audit.iter().any(|r| r.decision == "confirmed").then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let audit = store.audit_list(None, None, 1000).await.expect("audit");
        let done: Vec<_> = audit.iter().filter(|r| r.decision == "confirmed").collect();
        assert_eq!(done.len(), 1, "ran once: {done:#?}");
        assert_eq!(done[0].command.as_deref(), Some("todo done 1"));
        assert_eq!(store.todo_open("oncall").await.expect("todos").len(), EVENTS - 1);

        // A test run confirmed on B, which then dies: A marks it interrupted.
        let id = confirmation(&a.command("test run slow", &respond).await);
        assert_eq!(b.press(&button("lazyops_confirm", &id, "U0123ABC", &respond)).await, 200);
        let job = until(20, "the run to start", async || {
            let jobs = store.job_recent("test", 5).await.ok()?;
            jobs.into_iter().find(|j| j.name == "slow" && j.state == JobState::Running)
        })
        .await;
        b.kill();
        let said = a.command(&format!("test status {}", job.id), &respond).await;
        assert!(said.to_string().contains("interrupted"), "{said}");
        let after = store.job_get(job.id).await.expect("job").expect("the run");
        assert_eq!(after.state, JobState::Interrupted);
        let audit = store.audit_list(None, None, 1000).await.expect("audit");
        let runs: Vec<_> =
            audit.iter().filter(|r| r.command.as_deref().is_some_and(|c| c.starts_with("test run slow"))).collect();
        assert!(runs.iter().any(|r| r.decision == "confirmed"), "{runs:#?}");
        assert!(audit.iter().all(|r| !r.who.is_empty() && !r.decision.is_empty()));
    });
    drop(a);
}
