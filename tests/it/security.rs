//! Security review (issue 17, items 2–4): credentials in configured URLs, bodies read with a
//! cap, confirmations bound to their place, confirm lines that cannot be broken out of, secret
//! parameters of messages that fail to parse, and test runs seen only by their teams. Through
//! the real binary and the real server, with loopback fakes of Slack, GitHub and the services.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::loopback::{Call, Fake, Server, fixture, json_response};
use crate::support::{Run, Ws};

const PASSWORD: &str = "S3cr3tPassw0rd";
const ACCESS_TOKEN: &str = "AcT0k3n4242";
const TOKEN: &str = "Tk9r8q7p6";
const SECRETS: [&str; 3] = [PASSWORD, ACCESS_TOKEN, TOKEN];

/// A real HTTP server on loopback for the length of the test.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr.to_string()
}

fn append(ws: &Ws, text: &str) {
    let path = ws.config();
    let mut cfg = std::fs::read_to_string(&path).expect("read config");
    cfg.push_str(text);
    std::fs::write(path, cfg).expect("write config");
}

/// Runs the binary off the async workers, so fake servers keep answering meanwhile.
async fn run(ws: &Ws, who: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = ws.cmd(who, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || Run::from(cmd.output().expect("run lazyops"))).await.expect("join")
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials in configured URLs

/// A deploy host whose every endpoint fails, and a workspace whose payments version source,
/// checklist item and `ci` suite reach it through URLs with a password and tokens.
async fn credentialed_workspace() -> Ws {
    let app = Router::new()
        .route("/version", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/health", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .route("/ci/trigger", post(|| async { (StatusCode::UNAUTHORIZED, "who are you") }));
    let host = serve(app).await;
    let base = format!("http://deploy:{PASSWORD}@{host}");
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "[services.payments.version.prod]\nsource = \"git\"\nrepo = \"demo/releases\"\npattern = \"payments/prod/*\"\n",
        &format!(
            "[services.payments.version.prod]\nsource = \"http\"\nurl = \"{base}/version?access_token={ACCESS_TOKEN}&token={TOKEN}\"\n"
        ),
    );
    ws.edit(
        "lazyops.toml",
        "url = \"http://127.0.0.1:8080/healthz\"",
        &format!("url = \"{base}/health?token={TOKEN}\""),
    );
    append(
        &ws,
        &format!(
            "\n[suites.ci]\ntimeout_secs = 20\n[suites.ci.http]\ntrigger = \"{base}/ci/trigger?access_token={ACCESS_TOKEN}\"\npoll = \"{base}/ci/runs/{{id}}?token={TOKEN}\"\n"
        ),
    );
    ws
}

/// Every byte of the state database (audit rows, job rows), WAL included.
fn state_bytes(ws: &Ws) -> String {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(ws.path()).expect("workspace dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("state.db") {
            all.extend(std::fs::read(entry.path()).expect("read state file"));
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_credentials_in_configured_urls_reach_no_terminal_reply_audit_row_or_log() {
    let ws = credentialed_workspace().await;
    let debug = [("LAZYOPS_LOG", "debug")];

    let r = run(&ws, "alice", &["run", "deploy version payments prod"], &debug).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("GET http://deploy:***@"), "the failure is still explained: {}", r.stdout);
    assert!(r.stdout.contains("answered 500"), "{}", r.stdout);
    assert_no_secret("deploy version", &format!("{}{}", r.stdout, r.stderr));

    let r = run(&ws, "alice", &["run", "release check payments prod"], &debug).await;
    assert!(r.stdout.contains("lazyops serve answers: GET http://deploy:***@"), "{}", r.stdout);
    assert!(r.stdout.contains("/health?token=*** answered 503"), "{}", r.stdout);
    assert_no_secret("release check", &format!("{}{}", r.stdout, r.stderr));

    let r = run(&ws, "alice", &["run", "--yes", "test run ci staging"], &debug).await;
    assert!(r.stdout.contains("answered 401"), "{}{}", r.stdout, r.stderr);
    assert_no_secret("test run", &format!("{}{}", r.stdout, r.stderr));
    let r = run(&ws, "alice", &["run", "test status 1"], &debug).await;
    assert!(r.stdout.contains("POST http://deploy:***@"), "{}", r.stdout);
    assert_no_secret("test status", &format!("{}{}", r.stdout, r.stderr));
    let r = run(&ws, "alice", &["run", "test list"], &debug).await;
    assert!(r.stdout.contains("ci"), "{}", r.stdout);
    assert_no_secret("test list", &format!("{}{}", r.stdout, r.stderr));

    let store = lazyops::store::Store::open(&format!("sqlite://{}/state.db", ws.path().display())).await.unwrap();
    let rows = store.audit_list(None, None, 100).await.unwrap();
    let failed = rows.iter().find(|r| r.command.as_deref() == Some("deploy version payments prod")).expect("a row");
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("deploy:***@")), "{failed:?}");
    assert_no_secret("the state database", &state_bytes(&ws));
}

/// `lazyops serve` with its log captured, Slack and GitHub pointed at fakes.
struct Served {
    child: Child,
    url: String,
    /// Reads the log as it is written, so a full pipe never stops the server.
    logs: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    fn start(ws: &Ws, slack: &Fake, github: &Fake) -> Served {
        let mut child = ws
            .cmd("alice", &["serve", "--port", "0", "--host", "127.0.0.1", "--log-format", "json"])
            .env("LAZYOPS_LOG", "debug")
            .env("SLACK_SIGNING_SECRET", SLACK_SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-1-test")
            .env("LAZYOPS_SLACK_API_URL", format!("{}/api", slack.url))
            .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("GITHUB_TOKEN", "ghp_testtoken")
            .env("LAZYOPS_GITHUB_API_URL", &github.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lazyops serve");
        let mut stderr = child.stderr.take().expect("stderr");
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs);
            logs
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the first line");
        let url = line.trim().strip_prefix("lazyops listening on ").expect("the bound address").to_string();
        Served { child, url, logs: Some(logs) }
    }

    /// Stops the server (SIGTERM, a graceful exit) and returns everything it logged.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status:?}");
        self.logs.take().expect("stopped once").join().expect("the log reader")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SLACK_SECRET: &str = "test-signing-secret";
const GITHUB_SECRET: &str = "gh-webhook-secret";

fn slack_ok(call: &Call, _n: usize) -> Response {
    if call.path.ends_with("/auth.test") {
        return json_response(200, json!({"ok": true, "user_id": "UBOT", "bot_id": "BBOT"}));
    }
    if call.path.starts_with("/api/") {
        return json_response(200, json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}));
    }
    "ok".into_response()
}

fn github_ok(_call: &Call, n: usize) -> Response {
    json_response(201, json!({"id": 1000 + n, "body": "ok"}))
}

fn now_secs() -> i64 {
    lazyops::store::now_ms() / 1000
}

/// A signed slash command as Slack sends it now.
async fn slash(url: &str, user: &str, text: &str, response_url: &str) -> reqwest::Response {
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", user),
        ("command", "/lazyops"),
        ("text", text),
        ("response_url", response_url),
    ])
    .expect("form");
    let ts = now_secs();
    Server::client()
        .post(format!("{url}/slack/commands"))
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", lazyops::transport::slack::verify::sign(SLACK_SECRET, ts, body.as_bytes()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

/// A signed GitHub comment, new and written now, in Codertocat/Hello-World#1.
async fn comment(url: &str, login: &str, text: &str) -> reqwest::Response {
    let mut v: Value = serde_json::from_slice(&fixture("github/issue_comment.created.issue.json")).unwrap();
    v["comment"]["body"] = json!(text);
    v["comment"]["user"]["login"] = json!(login);
    v["sender"]["login"] = json!(login);
    v["comment"]["id"] = json!(rand_id());
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    v["comment"]["updated_at"] = json!(now);
    let body = v.to_string();
    Server::client()
        .post(format!("{url}/github/webhook"))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", lazyops::transport::github::sign(GITHUB_SECRET, body.as_bytes()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

fn rand_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 12
}

/// Everything posted to `suffix` once a post contains `needle` (waits up to 10 s).
async fn posted_with(fake: &Fake, suffix: &str, needle: &str) -> String {
    for _ in 0..200 {
        let all = fake.to(suffix).iter().map(|c| String::from_utf8_lossy(&c.body).into_owned()).collect::<Vec<_>>();
        if all.iter().any(|b| b.contains(needle)) {
            return all.join("\n");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing posted to {suffix} contains {needle:?}: {:?}", fake.to(suffix));
}

const ISSUE_COMMENTS: &str = "/repos/Codertocat/Hello-World/issues/1/comments";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_credentials_in_configured_urls_reach_no_slack_or_github_reply_or_server_log() {
    let ws = credentialed_workspace().await;
    let slack = Fake::start(slack_ok).await;
    let github = Fake::start(github_ok).await;
    let served = Served::start(&ws, &slack, &github);

    let answered = format!("{}/respond/deploy", slack.url);
    let resp = slash(&served.url, "U0123ABC", "deploy version payments prod", &answered).await;
    assert_eq!(resp.status(), 200);
    // A quick answer comes in the HTTP response; a slow one through the response_url.
    let body = resp.text().await.unwrap_or_default();
    let deploy =
        if body.contains("working on") { slack.wait("/respond/deploy", 1).await[0].json().to_string() } else { body };
    let answered = format!("{}/respond/release", slack.url);
    slash(&served.url, "U0123ABC", "release check payments prod", &answered).await;
    let release = posted_with(&slack, "/respond/release", "lazyops serve answers").await;
    let resp = comment(&served.url, "octocat", "/lazyops deploy version payments prod").await;
    assert_eq!(resp.status(), 202);
    let github_comment = github.wait(ISSUE_COMMENTS, 1).await[0].json().to_string();
    let logs = served.stop();

    assert!(deploy.contains("deploy:***@") && deploy.contains("answered 500"), "{deploy}");
    assert!(release.contains("health?token=***"), "{release}");
    assert!(github_comment.contains("deploy:***@") && github_comment.contains("answered 500"), "{github_comment}");
    assert_no_secret("the Slack answer", &deploy);
    assert_no_secret("the release checklist in Slack", &release);
    assert_no_secret("the GitHub comment", &github_comment);
    assert!(logs.contains("/slack/commands"), "the log was captured: {logs}");
    assert_no_secret("the server log", &logs);
    assert_no_secret("the state database", &state_bytes(&ws));
}

// ---------------------------------------------------------------------------------------------
// Confirm buttons are bound to their place

/// The real server in this process, its Slack side verified at a hand-set time.
async fn slack_server(ws: Ws, slack: &Fake) -> Server {
    let settings = lazyops::transport::http::Settings {
        slack_signing_secret: Some(SLACK_SECRET.into()),
        slack_bot_token: Some("xoxb-test".into()),
        slack_api_url: format!("{}/api", slack.url),
        clock: lazyops::transport::http::Clock::manual(NOW),
        http_timeout: Duration::from_millis(1000),
        max_retry_wait: Duration::from_secs(2),
        ..Default::default()
    };
    Server::start(ws, settings).await
}

const NOW: i64 = 1_700_000_000;

fn slack_signed(body: &str) -> Vec<(String, String)> {
    vec![
        ("x-slack-request-timestamp".into(), NOW.to_string()),
        ("x-slack-signature".into(), lazyops::transport::slack::verify::sign(SLACK_SECRET, NOW, body.as_bytes())),
        ("content-type".into(), "application/x-www-form-urlencoded".into()),
    ]
}

/// A slash command in `channel`; the JSON it is answered with.
async fn slash_in(server: &Server, channel: &str, text: &str, response_url: &str) -> Value {
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", channel),
        ("user_id", "U0123ABC"),
        ("command", "/lazyops"),
        ("text", text),
        ("response_url", response_url),
    ])
    .expect("form");
    server.post("/slack/commands", &slack_signed(&body), body.clone()).await.json().await.expect("JSON")
}

/// The fixture's button payload: U0123ABC presses `action_id` on a message in `channel`.
async fn press_in(server: &Server, channel: &str, action_id: &str, value: &str, response_url: &str) {
    let mut p: Value = serde_json::from_slice(&fixture("slack/block_actions.button.payload.json")).expect("fixture");
    p["user"]["id"] = json!("U0123ABC");
    p["channel"]["id"] = json!(channel);
    p["container"]["channel_id"] = json!(channel);
    p["actions"][0]["action_id"] = json!(action_id);
    p["actions"][0]["value"] = json!(value);
    p["response_url"] = json!(response_url);
    let body = serde_urlencoded::to_string([("payload", p.to_string())]).expect("form");
    assert_eq!(server.post("/slack/interactions", &slack_signed(&body), body.clone()).await.status(), 200);
}

#[tokio::test]
async fn issue_17_a_confirm_button_pressed_in_another_channel_changes_nothing_and_works_in_its_own() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "confirm = [\"todo done *\"]", "confirm = [\"todo done *\", \"db query *\"]");
    // The team's rules apply in C1 only: a press in C2 would be refused by policy.
    ws.edit("lazyops.toml", "plugins = [\"db\"", "channels = [\"local\", \"slack:C1\"]\nplugins = [\"db\"");
    let slack = Fake::start(slack_ok).await;
    let server = slack_server(ws, &slack).await;
    let asked = slash_in(&server, "C1", "db query user-by-id 42", &format!("{}/respond/ask", slack.url)).await;
    let actions = asked["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").expect("buttons");
    let id = actions["elements"][0]["value"].as_str().unwrap().to_string();

    // The same button value pressed on a message in C2: only the presser hears why.
    press_in(&server, "C2", "lazyops_confirm", &id, &format!("{}/respond/elsewhere", slack.url)).await;
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert_eq!(eph["channel"], "C2");
    assert!(eph["text"].as_str().unwrap().contains("asked in another channel or thread"), "{eph}");
    slack.none("/respond/elsewhere").await;
    // Nothing ran; the refused press itself is in the audit log, with why.
    let audit = server.audit().await;
    assert!(audit.iter().all(|r| r.decision != "confirmed"), "{audit:#?}");
    let refused: Vec<_> = audit.iter().filter(|r| r.decision == "refused").collect();
    assert_eq!(refused.len(), 1, "{audit:#?}");
    assert!(refused[0].error.as_deref().is_some_and(|e| e.contains("another channel or thread")), "{audit:#?}");

    // In its own channel it is still pending, and runs.
    press_in(&server, "C1", "lazyops_confirm", &id, &format!("{}/respond/here", slack.url)).await;
    let ran = slack.wait("/respond/here", 1).await[0].json();
    assert!(ran["text"].as_str().unwrap().starts_with("Confirmed by <@U0123ABC>"), "{ran}");
    let audit = server.audit().await;
    let row = audit.iter().find(|r| r.decision == "confirmed").expect("a confirmed row");
    assert_eq!((row.confirmation_id.as_deref(), row.outcome.as_deref()), (Some(id.as_str()), Some("ok")), "{row:?}");
    assert_eq!(row.place, "slack:C1");
}

// ---------------------------------------------------------------------------------------------
// Bodies are read with a cap

/// An answer that never ends: 64 KiB chunks for as long as the client reads.
fn endless() -> Response {
    let chunk = axum::body::Bytes::from(vec![b'7'; 64 * 1024]);
    let stream = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .expect("response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_endless_or_huge_answers_of_version_sources_and_suites_stop_at_the_cap() {
    let huge = || async { ([("content-type", "application/json")], vec![b' '; 5 * 1024 * 1024]) };
    let app = Router::new()
        .route("/endless", get(|| async { endless() }))
        .route("/huge", get(huge))
        .route("/ci/trigger", post(|| async { endless() }));
    let host = serve(app).await;
    let ws = Ws::new();
    for (env, path) in [("prod", "endless"), ("staging", "huge")] {
        ws.edit(
            "lazyops.toml",
            &format!(
                "[services.payments.version.{env}]\nsource = \"git\"\nrepo = \"demo/releases\"\npattern = \"payments/{env}/*\"\n"
            ),
            &format!("[services.payments.version.{env}]\nsource = \"http\"\nurl = \"http://{host}/{path}\"\ntimeout_secs = 120\n"),
        );
    }
    append(
        &ws,
        &format!(
            "\n[suites.ci]\ntimeout_secs = 120\n[suites.ci.http]\ntrigger = \"http://{host}/ci/trigger\"\npoll = \"http://{host}/ci/runs/{{id}}\"\n"
        ),
    );

    let started = std::time::Instant::now();
    let r = run(&ws, "alice", &["run", "deploy version payments prod"], &[]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("/endless: the answer is larger than 4 MiB, the most lazyops reads"), "{}", r.stdout);
    let r = run(&ws, "alice", &["run", "deploy version payments staging"], &[]).await;
    assert!(r.stdout.contains("/huge: the answer is larger than 4 MiB"), "{}", r.stdout);
    let r = run(&ws, "alice", &["run", "--yes", "test run ci staging"], &[]).await;
    assert!(r.stdout.contains("POST http://"), "{}", r.stdout);
    assert!(r.stdout.contains("/ci/trigger: the answer is larger than 4 MiB"), "{}", r.stdout);
    assert!(started.elapsed() < Duration::from_secs(60), "stopped by the cap, not by a timeout");
}

// ---------------------------------------------------------------------------------------------
// Test runs are seen by their teams only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_another_teams_test_run_answers_as_not_found_to_status_cancel_and_list() {
    // erin, not bob: the demo's reviewer role makes bob a member of oncall.
    let ws = Ws::new();
    ws.edit("lazyops.toml", "members = [\"local:*\"", "members = [\"local:alice\", \"local:dave\"");
    append(&ws, "\n[teams.qa]\nmembers = [\"local:erin\"]\nplugins = [\"test\"]\n");
    let r = run(&ws, "alice", &["run", "--yes", "test run smoke staging"], &[]).await;
    assert!(r.stdout.contains("started test run #1"), "{}{}", r.stdout, r.stderr);

    let not_found = "there is no test run #1; `test list` shows the recent runs";
    for args in [vec!["run", "test status 1"], vec!["run", "--yes", "test cancel 1"]] {
        let r = run(&ws, "erin", &args, &[]).await;
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert!(r.stdout.contains(not_found), "{args:?}: {}", r.stdout);
    }
    let r = run(&ws, "erin", &["run", "test list"], &[]).await;
    assert!(r.stdout.contains("0 recent runs"), "{}", r.stdout);
    // A stranger's id and an id that does not exist read the same.
    let r = run(&ws, "erin", &["run", "test status 2"], &[]).await;
    assert!(r.stdout.contains("there is no test run #2; `test list` shows the recent runs"), "{}", r.stdout);

    // The starter and a teammate see it.
    for who in ["alice", "dave"] {
        let r = run(&ws, who, &["run", "test status 1"], &[]).await;
        assert!(r.stdout.contains("test run #1: smoke on staging passed"), "{who}: {}", r.stdout);
        let r = run(&ws, who, &["run", "test list"], &[]).await;
        assert!(r.stdout.contains("1 recent runs"), "{who}: {}", r.stdout);
    }
    let r = run(&ws, "dave", &["run", "--yes", "test cancel 1"], &[]).await;
    assert!(r.stdout.contains("test run #1 already ended: passed"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------------
// Confirm lines show a typed value on one line

#[tokio::test]
async fn issue_17_a_carriage_return_in_a_typed_value_stays_inside_the_github_confirm_line() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "confirm = [\"todo done *\"]", "confirm = [\"todo done *\", \"todo add *\"]");
    let github = Fake::start(github_ok).await;
    let settings = lazyops::transport::http::Settings {
        github_webhook_secret: Some(GITHUB_SECRET.into()),
        github_token: Some("ghp_test".into()),
        github_api_url: github.url.clone(),
        http_timeout: Duration::from_millis(1000),
        ..Default::default()
    };
    let server = Server::start(ws, settings).await;
    let typed = "/lazyops todo add \"fix\r\r@octocat <img src=x onerror=alert(1)> [x](https://evil.example)\"";
    assert_eq!(comment(&server.url, "octocat", typed).await.status(), 202);
    let body = github.wait(ISSUE_COMMENTS, 1).await[0].json()["body"].as_str().unwrap().to_string();
    assert!(!body.contains('\r'), "{body:?}");
    let line = body.lines().find(|l| l.starts_with("To run")).unwrap_or_else(|| panic!("{body}"));
    assert!(
        line.starts_with("To run `todo add \"fix\\r\\r@octocat <img src=x onerror=alert(1)> [x](https://evil.example)\"`, reply `/lazyops confirm "),
        "the whole value is inside the code span: {line}"
    );
}

// ---------------------------------------------------------------------------------------------
// Secret parameters of messages that fail to parse

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_secret_values_of_a_message_that_fails_to_parse_stay_out_of_the_audit() {
    let ws = Ws::new();
    ws.write(
        "queries/user-by-token.sql",
        "-- name: user-by-token\n-- description: Look up the user an API token belongs to\n-- database: users\n\
         -- param: api_token text secret \"the token\"\n-- param: limit int default=1 \"how many\"\n\
         SELECT id, email FROM users WHERE email = :api_token LIMIT :limit\n",
    );
    let typed = [
        "db query user-by-token api_token=Sekr1tOne bogus=2",
        "db query user-by-token Sekr1tTwo 5 extra",
        "db query user-by-token --api_token Sekr1tThree --limit many",
        "db query user-by-token api_tokn=Sekr1tFour",
        "db query user-by-token \"Sekr1t Five\" limit=x",
    ];
    for text in typed {
        let r = run(&ws, "alice", &["run", text], &[]).await;
        assert_eq!(r.code, 2, "{text}: not understood: {}{}", r.stdout, r.stderr);
    }
    // A message that parses is masked as before; the ordinary values of others stay readable.
    run(&ws, "alice", &["run", "db query user-by-token api_token=Sekr1tSix"], &[]).await;
    run(&ws, "alice", &["run", "db query user-by-id user_id=forty-two"], &[]).await;

    let store = lazyops::store::Store::open(&format!("sqlite://{}/state.db", ws.path().display())).await.unwrap();
    let rows = store.audit_list(None, None, 100).await.unwrap();
    assert_eq!(rows.len(), typed.len() + 2, "{rows:?}");
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    for t in &texts {
        assert!(!t.contains("Sekr1t"), "a secret value reached the audit: {texts:?}");
    }
    assert!(texts.contains(&"db query user-by-token api_token=*** bogus=***"), "{texts:?}");
    assert!(texts.contains(&"db query user-by-token --api_token *** --limit ***"), "{texts:?}");
    assert!(texts.contains(&"db query user-by-id user_id=forty-two"), "{texts:?}");
    assert_no_secret("the state database", &state_bytes(&ws));
    assert!(!state_bytes(&ws).contains("Sekr1t"));
}
