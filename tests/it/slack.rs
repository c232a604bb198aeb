//! Slack (issue 7): signed slash commands, events and button presses against the real server
//! on loopback, with a fake Slack Web API and `response_url` that record what the bot posted.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use lazyops::transport::http::{Clock, Settings};
use lazyops::transport::slack::verify::sign;
use serde_json::{Value, json};

use crate::loopback::{Call, Fake, Server, fixture, json_response};
use crate::support::Ws;

pub(crate) const SECRET: &str = "test-signing-secret";
const NOW: i64 = 1_700_000_000;
const MEMBERS: &str = "\"slack:U0123ABC\", \"slack:U2147483697\", \"slack:U222\", \"slack:W111\"";

/// Slack as it usually answers: the bot is UBOT/BBOT, every call succeeds.
pub(crate) fn slack_ok(call: &Call, _n: usize) -> Response {
    if call.path.ends_with("/auth.test") {
        return json_response(200, json!({"ok": true, "user_id": "UBOT", "bot_id": "BBOT"}));
    }
    if call.path.starts_with("/api/") {
        return json_response(200, json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}));
    }
    "ok".into_response()
}

pub(crate) fn settings(slack: &Fake) -> Settings {
    Settings {
        slack_signing_secret: Some(SECRET.into()),
        slack_bot_token: Some("xoxb-test".into()),
        slack_api_url: format!("{}/api", slack.url),
        clock: Clock::manual(NOW),
        http_timeout: Duration::from_millis(1000),
        max_retry_wait: Duration::from_secs(2),
        ..Settings::default()
    }
}

/// A demo workspace whose on-call team has the fixtures' Slack users; `extra_confirm` adds
/// patterns that need confirmation.
pub(crate) fn workspace(extra_confirm: &[&str]) -> Ws {
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

async fn start(extra_confirm: &[&str]) -> (Server, Fake) {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(workspace(extra_confirm), settings(&slack)).await;
    (server, slack)
}

fn signed(body: &[u8], ts: i64) -> Vec<(String, String)> {
    vec![("x-slack-request-timestamp".into(), ts.to_string()), ("x-slack-signature".into(), sign(SECRET, ts, body))]
}

fn form_headers(body: &[u8], ts: i64) -> Vec<(String, String)> {
    let mut h = signed(body, ts);
    h.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
    h
}

fn json_headers(body: &[u8], ts: i64) -> Vec<(String, String)> {
    let mut h = signed(body, ts);
    h.push(("content-type".into(), "application/json".into()));
    h
}

/// A slash command body as Slack sends it; `response_url` points at the fake.
pub(crate) fn slash(user: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "deprecated"),
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("channel_name", "ops"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/lazyops"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", "1.2.3"),
    ])
    .expect("form")
}

pub(crate) async fn command(server: &Server, body: &str) -> reqwest::Response {
    server.post("/slack/commands", &form_headers(body.as_bytes(), NOW), body.to_string()).await
}

pub(crate) async fn event(server: &Server, body: &[u8], extra: &[(&str, &str)]) -> reqwest::Response {
    let mut h = json_headers(body, NOW);
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    server.post("/slack/events", &h, body.to_vec()).await
}

async fn press(server: &Server, payload: &Value) -> reqwest::Response {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
    server.post("/slack/interactions", &form_headers(body.as_bytes(), NOW), body).await
}

/// The fixture's block_actions payload, pressing `action_id` with `value`, as `user`, on a
/// message in C1 (where `slash` asks).
pub(crate) fn button(action_id: &str, value: &str, user: &str, response_url: &str) -> Value {
    let mut p: Value = serde_json::from_slice(&fixture("slack/block_actions.button.payload.json")).expect("fixture");
    p["channel"]["id"] = json!("C1");
    p["container"]["channel_id"] = json!("C1");
    p["user"]["id"] = json!(user);
    p["actions"][0]["action_id"] = json!(action_id);
    p["actions"][0]["value"] = json!(value);
    p["response_url"] = json!(response_url);
    p
}

fn all_text(v: &Value) -> String {
    v.to_string()
}

// --- verification -----------------------------------------------------------------------------

#[tokio::test]
async fn the_slack_docs_signing_example_is_accepted_at_its_own_time() {
    let meta: Value = serde_json::from_slice(&fixture("slack/slash_command.signing_example.meta.json")).unwrap();
    let slack = Fake::start(slack_ok).await;
    let settings = Settings {
        slack_signing_secret: meta["signing_secret"].as_str().map(String::from),
        clock: Clock::manual(meta["now_for_test"].as_i64().unwrap()),
        ..settings(&slack)
    };
    let server = Server::start(Ws::new(), settings).await;
    let body = fixture("slack/slash_command.signing_example.form.txt");
    let headers: Vec<(String, String)> = meta["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let resp = server.post("/slack/commands", &headers, body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    // Empty text is `help`, which only the asker sees.
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().contains("lazyops commands"), "{v}");
}

#[tokio::test]
async fn requests_without_a_valid_signature_are_refused_with_401() {
    let (server, slack) = start(&[]).await;
    let body = slash("U0123ABC", "help", &format!("{}/respond", slack.url));
    let good = sign(SECRET, NOW, body.as_bytes());
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("no headers", vec![]),
        ("no signature", vec![("x-slack-request-timestamp".into(), NOW.to_string())]),
        ("no timestamp", vec![("x-slack-signature".into(), good.clone())]),
        (
            "timestamp not a number",
            vec![("x-slack-request-timestamp".into(), "yesterday".into()), ("x-slack-signature".into(), good.clone())],
        ),
        (
            "signature without v0=",
            vec![
                ("x-slack-request-timestamp".into(), NOW.to_string()),
                ("x-slack-signature".into(), good[3..].to_string()),
            ],
        ),
        (
            "signature too short",
            vec![
                ("x-slack-request-timestamp".into(), NOW.to_string()),
                ("x-slack-signature".into(), good[..40].to_string()),
            ],
        ),
        (
            "wrong secret",
            vec![
                ("x-slack-request-timestamp".into(), NOW.to_string()),
                (
                    "x-slack-signature".into(),
                    lazyops::transport::slack::verify::sign("not-the-secret", NOW, body.as_bytes()),
                ),
            ],
        ),
        ("six minutes old", signed(body.as_bytes(), NOW - 360)),
        ("six minutes in the future", signed(body.as_bytes(), NOW + 360)),
    ];
    for (what, headers) in cases {
        for path in ["/slack/commands", "/slack/events", "/slack/interactions"] {
            let resp = server.post(path, &headers, body.clone()).await;
            assert_eq!(resp.status(), 401, "{what} on {path}");
        }
    }
    // A body altered after signing.
    let resp = server.post("/slack/commands", &signed(body.as_bytes(), NOW), body.replace("help", "db list")).await;
    assert_eq!(resp.status(), 401);
    slack.none("/respond").await;
    assert!(server.audit().await.is_empty(), "nothing unverified reaches the pipeline");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("lazyops_errors_total{kind=\"signature\"} 28"), "{metrics}");
}

#[tokio::test]
async fn a_replayed_request_is_accepted_only_inside_the_five_minute_window() {
    let slack = Fake::start(slack_ok).await;
    let s = settings(&slack);
    let clock = s.clock.clone();
    let server = Server::start(workspace(&[]), s).await;
    let body = slash("U0123ABC", "help", &format!("{}/respond", slack.url));
    let headers = form_headers(body.as_bytes(), NOW);
    assert_eq!(server.post("/slack/commands", &headers, body.clone()).await.status(), 200);
    clock.set(NOW + 299);
    assert_eq!(server.post("/slack/commands", &headers, body.clone()).await.status(), 200);
    clock.set(NOW + 301);
    assert_eq!(server.post("/slack/commands", &headers, body.clone()).await.status(), 401);
}

// --- slash commands ----------------------------------------------------------------------------

#[tokio::test]
async fn help_is_answered_in_the_http_response_as_ephemeral_block_kit_with_an_audit_row() {
    let (server, slack) = start(&[]).await;
    let resp = command(&server, &slash("U0123ABC", "help", &format!("{}/respond", slack.url))).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().starts_with("lazyops commands"));
    let blocks = v["blocks"].as_array().unwrap();
    assert!(blocks.len() >= 2 && blocks.len() <= 50);
    assert!(blocks[1]["text"]["text"].as_str().unwrap().starts_with("```"), "the command table is monospace");
    slack.none("/respond").await;
    let audit = server.audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].who, "slack:U0123ABC");
    assert_eq!(audit[0].place, "slack:C1");
    assert_eq!(audit[0].command.as_deref(), Some("help"));
}

#[tokio::test]
async fn a_quick_query_is_answered_in_the_http_response_for_the_channel() {
    let (server, slack) = start(&[]).await;
    let resp =
        command(&server, &slash("U0123ABC", "db query user-by-id 42", &format!("{}/respond/1", slack.url))).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response_type"], "in_channel", "{v}");
    assert!(!all_text(&v).contains("working on"), "{v}");
    assert!(all_text(&v).contains("```"), "the row is in the answer: {v}");
    slack.none("/respond/1").await;
    assert_eq!(server.audit().await[0].command.as_deref(), Some("db query user-by-id user_id=42"));
}

#[tokio::test]
async fn a_command_past_the_ack_budget_says_working_on_it_and_posts_the_result_to_the_response_url() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&slack) }).await;
    let started = std::time::Instant::now();
    let resp =
        command(&server, &slash("U0123ABC", "db query user-by-id 42", &format!("{}/respond/1", slack.url))).await;
    assert!(started.elapsed() < Duration::from_millis(1500), "acknowledged at once");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert_eq!(v["text"], "working on `db query user-by-id 42`…");
    let posted = slack.wait("/respond/1", 1).await;
    let body = posted[0].json();
    assert_eq!(body["replace_original"], false);
    assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(!body["blocks"].as_array().unwrap().is_empty());
    assert_eq!(server.audit().await[0].command.as_deref(), Some("db query user-by-id user_id=42"));
}

#[tokio::test]
async fn errors_are_ephemeral_and_an_unknown_command_is_explained() {
    let (server, slack) = start(&[]).await;
    let v: Value = command(&server, &slash("U0123ABC", "help nosuchtopic", &format!("{}/r", slack.url)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(all_text(&v).contains("unknown help topic `nosuchtopic`"), "{v}");
}

#[tokio::test]
async fn a_stranger_is_refused_politely_and_nothing_runs() {
    let (server, slack) = start(&[]).await;
    let v: Value =
        command(&server, &slash("USTRANGER", "db list", &format!("{}/r", slack.url))).await.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().len() > 5);
    let audit = server.audit().await;
    assert_eq!(audit[0].decision, "refused");
}

#[tokio::test]
async fn a_one_megabyte_body_is_refused_with_413() {
    let (server, slack) = start(&[]).await;
    let body = slash("U0123ABC", &"x".repeat(1024 * 1024), &format!("{}/r", slack.url));
    let resp = command(&server, &body).await;
    assert_eq!(resp.status(), 413);
    let resp = event(&server, body.as_bytes(), &[]).await;
    assert_eq!(resp.status(), 413);
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn a_long_message_under_the_body_limit_is_refused_by_the_pipeline_not_truncated() {
    let (server, slack) = start(&[]).await;
    let v: Value = command(&server, &slash("U0123ABC", &"a".repeat(100_000), &format!("{}/r", slack.url)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().starts_with("message too long"), "{v}");
}

#[tokio::test]
async fn malformed_slash_command_forms_are_400() {
    let (server, _slack) = start(&[]).await;
    for body in ["user_id=U1&user_id=U2&channel_id=C1&text=help", "text=help", "{\"user_id\": \"U1\"}", "%%%&&=="] {
        let resp = command(&server, body).await;
        assert_eq!(resp.status(), 400, "{body}");
    }
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn an_ssl_check_is_answered_empty() {
    let (server, _slack) = start(&[]).await;
    let resp = command(&server, "ssl_check=1&token=x").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_response_url_that_is_down_falls_back_to_the_web_api() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&slack) }).await;
    // A query result is for the channel, so the fallback is chat.postMessage.
    let resp = command(&server, &slash("U0123ABC", "db query user-by-id 42", "http://127.0.0.1:9/down")).await;
    assert_eq!(resp.status(), 200);
    let fallback = slack.wait("/api/chat.postMessage", 1).await;
    let body = fallback[0].json();
    assert_eq!(body["channel"], "C1");
    assert_eq!(fallback[0].header("authorization"), "Bearer xoxb-test");
}

#[tokio::test]
async fn a_command_that_outlives_the_ack_budget_answers_later_and_falls_back_to_ephemeral() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&slack) }).await;
    let v: Value = command(&server, &slash("U0123ABC", "help", "http://127.0.0.1:9/down")).await.json().await.unwrap();
    assert_eq!(v["text"], "working on `help`…");
    // Help is for the asker only, so with the response_url down it goes by chat.postEphemeral.
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert_eq!(eph["user"], "U0123ABC");
    assert_eq!(eph["channel"], "C1");
    assert!(eph["text"].as_str().unwrap().starts_with("lazyops commands"));
}

#[tokio::test]
async fn a_slow_response_url_times_out_and_falls_back_to_the_web_api() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&slack) }).await;
    let url = format!("{}/slow/respond", slack.url);
    command(&server, &slash("U0123ABC", "db query user-by-id 42", &url)).await;
    slack.wait("/api/chat.postMessage", 1).await;
    assert_eq!(slack.to("/slow/respond").len(), 1, "a timed-out post is not repeated: it may have arrived");
}

// --- Events API --------------------------------------------------------------------------------

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let (server, _slack) = start(&[]).await;
    let body = fixture("slack/url_verification.json");
    let resp = event(&server, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

#[tokio::test]
async fn an_app_mention_is_answered_in_its_thread() {
    let (server, slack) = start(&[]).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.app_mention.json")).unwrap();
    v["event"]["text"] = json!("<@UBOT> whoami");
    let resp = event(&server, v.to_string().as_bytes(), &[]).await;
    assert_eq!(resp.status(), 200);
    let posted = slack.wait("/api/chat.postMessage", 1).await;
    let body = posted[0].json();
    assert_eq!(body["channel"], "C111");
    assert_eq!(body["thread_ts"], "1610241741.000200");
    assert!(body["text"].as_str().unwrap().contains("you are slack:U222"), "{body}");
    assert_eq!(posted[0].header("authorization"), "Bearer xoxb-test");
}

#[tokio::test]
async fn a_direct_message_is_answered_in_the_dm() {
    let (server, slack) = start(&[]).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    v["event"]["text"] = json!("whoami");
    assert_eq!(event(&server, v.to_string().as_bytes(), &[]).await.status(), 200);
    let posted = slack.wait("/api/chat.postMessage", 1).await;
    let body = posted[0].json();
    assert_eq!(body["channel"], "D024BE91L");
    assert!(body.get("thread_ts").is_none());
    assert!(body["text"].as_str().unwrap().contains("slack:U2147483697"));
}

#[tokio::test]
async fn a_retried_event_is_answered_once() {
    let (server, slack) = start(&[]).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.app_mention.json")).unwrap();
    v["event"]["text"] = json!("<@UBOT> help");
    let body = v.to_string();
    assert_eq!(event(&server, body.as_bytes(), &[]).await.status(), 200);
    let retry = [("x-slack-retry-num", "1"), ("x-slack-retry-reason", "http_timeout")];
    assert_eq!(event(&server, body.as_bytes(), &retry).await.status(), 200);
    assert_eq!(event(&server, body.as_bytes(), &retry).await.status(), 200);
    slack.wait("/api/chat.postMessage", 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(slack.to("/api/chat.postMessage").len(), 1);
}

#[tokio::test]
async fn bot_messages_edits_deletions_and_our_own_messages_are_ignored() {
    let (server, slack) = start(&[]).await;
    let bot = fixture("slack/event_callback.message.bot_id.json");
    assert_eq!(event(&server, &bot, &[]).await.status(), 200);
    let base: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    let mut edit = base.clone();
    edit["event_id"] = json!("EvEdit");
    edit["event"]["subtype"] = json!("message_changed");
    let mut deleted = base.clone();
    deleted["event_id"] = json!("EvDel");
    deleted["event"]["subtype"] = json!("message_deleted");
    let mut own = base.clone();
    own["event_id"] = json!("EvOwn");
    own["event"]["user"] = json!("UBOT");
    let mut channel_message = base.clone();
    channel_message["event_id"] = json!("EvChan");
    channel_message["event"]["channel_type"] = json!("channel");
    for v in [edit, deleted, own, channel_message] {
        assert_eq!(event(&server, v.to_string().as_bytes(), &[]).await.status(), 200);
    }
    slack.none("/api/chat.postMessage").await;
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let (server, slack) = start(&[]).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    v["event"] = json!({"type": "reaction_added", "user": {"id": "U1"}, "reaction": "eyes", "event_ts": "1.2"});
    assert_eq!(event(&server, v.to_string().as_bytes(), &[]).await.status(), 200);
    let rate = json!({"type": "app_rate_limited", "token": "x", "team_id": "T1", "minute_rate_limited": 1518467820});
    assert_eq!(event(&server, rate.to_string().as_bytes(), &[]).await.status(), 200);
    slack.none("/api/chat.postMessage").await;
}

#[tokio::test]
async fn events_with_missing_fields_or_wrong_types_are_400() {
    let (server, slack) = start(&[]).await;
    let base: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    let mut no_id = base.clone();
    no_id.as_object_mut().unwrap().remove("event_id");
    let mut text_number = base.clone();
    text_number["event"]["text"] = json!(5);
    let mut no_user = base.clone();
    no_user["event"].as_object_mut().unwrap().remove("user");
    let mut no_type = base.clone();
    no_type.as_object_mut().unwrap().remove("type");
    let challenge_missing = json!({"type": "url_verification", "token": "x"});
    for v in [no_id, text_number, no_user, no_type, challenge_missing] {
        assert_eq!(event(&server, v.to_string().as_bytes(), &[]).await.status(), 400, "{v}");
    }
    assert_eq!(event(&server, b"not json", &[]).await.status(), 400);
    slack.none("/api/chat.postMessage").await;
}

#[tokio::test]
async fn web_api_429_is_waited_out_and_retried() {
    let slack = Fake::start(|call, n| {
        if call.path.ends_with("/chat.postMessage") && n == 0 {
            return Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(axum::body::Body::from("{\"ok\":false,\"error\":\"ratelimited\"}"))
                .unwrap();
        }
        slack_ok(call, n)
    })
    .await;
    let server = Server::start(workspace(&[]), settings(&slack)).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    v["event"]["text"] = json!("help");
    let started = std::time::Instant::now();
    event(&server, v.to_string().as_bytes(), &[]).await;
    let calls = slack.wait("/api/chat.postMessage", 2).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "waited Retry-After");
    assert_eq!(calls[0].body, calls[1].body);
}

#[tokio::test]
async fn web_api_500_is_retried() {
    let slack = Fake::start(|call, n| {
        if call.path.ends_with("/chat.postMessage") && n < 2 {
            return Response::builder().status(500).body(axum::body::Body::from("oops")).unwrap();
        }
        slack_ok(call, n)
    })
    .await;
    let server = Server::start(workspace(&[]), settings(&slack)).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    v["event"]["text"] = json!("help");
    event(&server, v.to_string().as_bytes(), &[]).await;
    slack.wait("/api/chat.postMessage", 3).await;
}

#[tokio::test]
async fn web_api_ok_false_is_logged_and_audited() {
    let slack = Fake::start(|call, n| {
        if call.path.ends_with("/chat.postMessage") {
            return json_response(200, json!({"ok": false, "error": "channel_not_found"}));
        }
        slack_ok(call, n)
    })
    .await;
    let server = Server::start(workspace(&[]), settings(&slack)).await;
    let mut v: Value = serde_json::from_slice(&fixture("slack/event_callback.message_im.json")).unwrap();
    v["event"]["text"] = json!("help");
    event(&server, v.to_string().as_bytes(), &[]).await;
    slack.wait("/api/chat.postMessage", 1).await;
    let mut undelivered = None;
    for _ in 0..50 {
        undelivered = server.audit().await.into_iter().find(|r| r.decision == "undelivered");
        if undelivered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = undelivered.expect("an audit row for the undelivered reply");
    assert_eq!(row.outcome.as_deref(), Some("error"));
    assert!(row.error.as_deref().unwrap().contains("channel_not_found"), "{row:?}");
    assert_eq!(slack.to("/api/chat.postMessage").len(), 1, "ok:false is not retried");
}

// --- interactivity -----------------------------------------------------------------------------

/// Asks for a confirmation by slash command; returns the pending confirmation's full id.
async fn pending(server: &Server, slack: &Fake, user: &str) -> String {
    let v: Value = command(server, &slash(user, "db query user-by-id 42", &format!("{}/respond/ask", slack.url)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    let actions = v["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").expect("buttons").clone();
    assert_eq!(actions["elements"][0]["action_id"], "lazyops_confirm");
    actions["elements"][0]["value"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn confirm_button_runs_the_command_and_updates_the_original_with_who_confirmed() {
    let (server, slack) = start(&["db query *"]).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    let url = format!("{}/respond/button", slack.url);
    let resp = press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    assert_eq!(resp.status(), 200);
    let posted = slack.wait("/respond/button", 1).await;
    let body = posted[0].json();
    assert_eq!(body["replace_original"], true);
    assert!(body["text"].as_str().unwrap().starts_with("Confirmed by <@U0123ABC>"), "{body}");
    assert!(body["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "buttons are gone");
    let audit = server.audit().await;
    assert!(audit.iter().any(|r| r.decision == "confirmed" && r.confirmation_id.as_deref() == Some(id.as_str())));
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("lazyops_confirmations_total{outcome=\"asked\"} 1"), "{metrics}");
    assert!(metrics.contains("lazyops_confirmations_total{outcome=\"confirmed\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_confirmed_result_goes_to_the_channel_saying_who_asked_and_the_prompt_says_who_confirmed() {
    let (server, slack) = start(&["db query *"]).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    let url = format!("{}/respond/button", slack.url);
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    let posted = slack.wait("/respond/button", 2).await;
    let prompt = posted[0].json();
    assert_eq!(prompt["replace_original"], true, "{prompt}");
    assert_eq!(prompt["text"], "Confirmed by <@U0123ABC>: `db query user-by-id user_id=42`", "{prompt}");
    assert!(!all_text(&prompt).contains("```"), "the result is not in the private prompt: {prompt}");
    let result = posted[1].json();
    assert_eq!(result["response_type"], "in_channel", "{result}");
    assert_eq!(result["replace_original"], false, "{result}");
    assert!(result["text"].as_str().unwrap_or("").starts_with("Requested by <@U0123ABC>"), "{result}");
    assert!(all_text(&result).contains("```"), "the rows: {result}");
}

#[tokio::test]
async fn cancel_button_drops_the_command() {
    let (server, slack) = start(&["db query *"]).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    let url = format!("{}/respond/button", slack.url);
    press(&server, &button("lazyops_cancel", &id, "U0123ABC", &url)).await;
    let body = slack.wait("/respond/button", 1).await[0].json();
    assert!(body["text"].as_str().unwrap().starts_with("Cancelled by <@U0123ABC>"), "{body}");
    assert!(server.audit().await.iter().any(|r| r.decision == "cancelled"));
}

#[tokio::test]
async fn another_user_pressing_the_button_gets_an_ephemeral_only_the_requester_can_confirm() {
    let (server, slack) = start(&["db query *"]).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    let url = format!("{}/respond/button", slack.url);
    press(&server, &button("lazyops_confirm", &id, "W111", &url)).await;
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert_eq!(eph["user"], "W111");
    assert!(eph["text"].as_str().unwrap().contains("only the person who asked can confirm"), "{eph}");
    slack.none("/respond/button").await;
    // The requester can still confirm.
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    slack.wait("/respond/button", 1).await;
}

#[tokio::test]
async fn a_used_confirmation_cannot_run_twice() {
    let (server, slack) = start(&["db query *"]).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    let url = format!("{}/respond/button", slack.url);
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    // The prompt replaced, and the result in the channel.
    slack.wait("/respond/button", 2).await;
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert!(eph["text"].as_str().unwrap().contains("already confirmed"), "{eph}");
    assert_eq!(slack.to("/respond/button").len(), 2);
    let ran = server.audit().await.into_iter().filter(|r| r.decision == "confirmed").count();
    assert_eq!(ran, 1);
}

#[tokio::test]
async fn an_expired_or_unknown_confirmation_is_refused_to_the_presser() {
    let slack = Fake::start(slack_ok).await;
    let ws = workspace(&["db query *"]);
    ws.edit("lazyops.toml", "confirm_ttl_secs = 600", "confirm_ttl_secs = 1");
    let server = Server::start(ws, settings(&slack)).await;
    let id = pending(&server, &slack, "U0123ABC").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let url = format!("{}/respond/button", slack.url);
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &url)).await;
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert!(eph["text"].as_str().unwrap().contains("expired"), "{eph}");
    press(&server, &button("lazyops_confirm", "0000deadbeef", "U0123ABC", &url)).await;
    slack.wait("/api/chat.postEphemeral", 2).await;
    slack.none("/respond/button").await;
}

#[tokio::test]
async fn malformed_interaction_payloads_are_400_and_other_actions_are_ignored() {
    let (server, slack) = start(&[]).await;
    let raw = |body: &str| {
        let body = body.to_string();
        let h = form_headers(body.as_bytes(), NOW);
        let server = &server;
        async move { server.post("/slack/interactions", &h, body).await.status() }
    };
    assert_eq!(raw("nopayload=1").await, 400);
    assert_eq!(raw("payload=%7Bnot%20json").await, 400);
    let mut no_actions = button("lazyops_confirm", "x", "U0123ABC", "http://127.0.0.1:9/");
    no_actions.as_object_mut().unwrap().remove("actions");
    assert_eq!(press(&server, &no_actions).await.status(), 400);
    let mut user_number = button("lazyops_confirm", "x", "U0123ABC", "http://127.0.0.1:9/");
    user_number["user"]["id"] = json!(42);
    assert_eq!(press(&server, &user_number).await.status(), 400);
    // The fixture's own button is someone else's: acknowledged, ignored.
    let fixture_form = fixture("slack/block_actions.button.form.txt");
    let h = form_headers(&fixture_form, NOW);
    assert_eq!(server.post("/slack/interactions", &h, fixture_form).await.status(), 200);
    let shortcut = json!({"type": "shortcut", "callback_id": "x", "user": {"id": "U1"}});
    assert_eq!(press(&server, &shortcut).await.status(), 200);
    slack.none("/api/chat.postEphemeral").await;
}

// --- the server ---------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let (server, slack) = start(&[]).await;
    assert_eq!(server.get("/healthz").await.text().await.unwrap(), "ok\n");
    command(&server, &slash("U0123ABC", "help", &format!("{}/r", slack.url))).await;
    let resp = server.get("/metrics").await;
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("lazyops_http_requests_total{route=\"/slack/commands\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("lazyops_understood_total{tier=\"grammar\"} 1"), "{text}");
    assert!(text.contains("lazyops_http_request_duration_seconds_count{route=\"/healthz\"} 1"), "{text}");
}

#[tokio::test]
async fn shutdown_finishes_work_already_acknowledged() {
    let slack = Fake::start(slack_ok).await;
    let mut server = Server::start(workspace(&[]), Settings { ack_budget: Duration::ZERO, ..settings(&slack) }).await;
    let url = format!("{}/slow/respond", slack.url);
    let v: Value = command(&server, &slash("U0123ABC", "db query user-by-id 42", &url)).await.json().await.unwrap();
    assert!(v["text"].as_str().unwrap().starts_with("working on"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let done = server.shutdown();
    done.await.unwrap().unwrap();
    // The slow response_url was still being answered when shutdown began; the fallback ran too.
    assert_eq!(slack.to("/slow/respond").len(), 1);
    assert_eq!(slack.to("/api/chat.postMessage").len(), 1);
}

#[test]
fn the_binary_serves_on_the_port_it_prints_and_logs_refusals_without_the_secret() {
    use std::io::{BufRead, BufReader, Read};
    let ws = Ws::new();
    let mut child = ws
        .cmd("alice", &["serve", "--port", "0", "--host", "127.0.0.1", "--log-format", "json"])
        .env("SLACK_SIGNING_SECRET", "very-secret-value")
        .env("LAZYOPS_STATE_URL", format!("sqlite://{}/state.db", ws.path().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn lazyops serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("lazyops listening on ").expect("the bound address").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = Server::client();
        assert_eq!(c.get(format!("{addr}/healthz")).send().await.unwrap().status(), 200);
        let bad = c
            .post(format!("{addr}/slack/commands"))
            .header("x-slack-request-timestamp", "1")
            .header("x-slack-signature", "v0=00")
            .body("user_id=U1&channel_id=C1&text=help")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
    });
    // SIGTERM: a graceful exit with status 0.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("slack request refused"), "{logs}");
    assert!(logs.lines().all(|l| l.starts_with('{')), "JSON lines: {logs}");
    assert!(!logs.contains("very-secret-value"));
    assert!(!logs.contains("user_id=U1"), "bodies are never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_test_run_is_announced_in_its_thread_when_it_ends() {
    let (server, slack) = start(&[]).await;
    let ask = format!("{}/respond/run", slack.url);
    let v: Value = command(&server, &slash("U0123ABC", "test run smoke staging", &ask)).await.json().await.unwrap();
    let actions = v["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").expect("buttons").clone();
    let id = actions["elements"][0]["value"].as_str().unwrap().to_string();
    press(&server, &button("lazyops_confirm", &id, "U0123ABC", &format!("{}/respond/button", slack.url))).await;
    let posted = slack.wait("/api/chat.postMessage", 1).await;
    let text = all_text(&posted[0].json());
    assert!(text.contains("test run #") && text.contains("smoke") && text.contains("staging"), "{text}");
    assert!(text.contains("passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_check_shows_its_progress_then_the_checklist() {
    let (server, slack) = start(&[]).await;
    let url = format!("{}/respond/rc", slack.url);
    let v: Value =
        command(&server, &slash("U0123ABC", "release check payments prod", &url)).await.json().await.unwrap();
    assert!(v["text"].as_str().unwrap_or("").starts_with("working on"), "{v}");
    let posts = slack.wait("/respond/rc", 2).await;
    let first = posts[0].json();
    assert_eq!(first["replace_original"], true, "{first}");
    assert!(first["text"].as_str().unwrap_or("").contains(" of "), "{first}");
    let last = all_text(&posts[posts.len() - 1].json());
    assert!(last.contains("schema migrated"), "{last}");
}

#[tokio::test]
async fn a_checklist_item_is_ticked_with_its_button_announced_in_the_channel_and_audited() {
    let (server, slack) = start(&[]).await;
    let url = format!("{}/respond/rc", slack.url);
    command(&server, &slash("U0123ABC", "release check payments prod", &url)).await;
    slack.wait("/respond/rc", 2).await;
    let posts = slack.to("/respond/rc");
    let last = posts[posts.len() - 1].json();
    let buttons: Vec<Value> = last["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .collect();
    let tick = buttons.iter().find(|b| b["value"] == "tick:payments:prod:changelog reviewed").expect("a tick button");
    let action_id = tick["action_id"].as_str().unwrap();

    // Someone outside the team: refused, privately, and nothing is ticked.
    let pressed = format!("{}/respond/tick", slack.url);
    let value = tick["value"].as_str().unwrap();
    assert_eq!(press(&server, &button(action_id, value, "W999", &pressed)).await.status(), 200);
    let eph = slack.wait("/api/chat.postEphemeral", 1).await[0].json();
    assert_eq!(eph["user"], "W999");
    slack.none("/respond/tick").await;

    // The on-call engineer: the tick is said in the channel, with who pressed it.
    assert_eq!(press(&server, &button(action_id, value, "U0123ABC", &pressed)).await.status(), 200);
    let said = slack.wait("/respond/tick", 1).await[0].json();
    assert_eq!(said["response_type"], "in_channel", "{said}");
    assert_eq!(said["replace_original"], false, "the checklist stays");
    let text = all_text(&said);
    assert!(text.contains("Ticked by <@U0123ABC>") && text.contains("changelog reviewed"), "{text}");

    // A forged value (an item that is not a manual one) is refused to the presser.
    press(&server, &button(action_id, "tick:payments:prod:schema migrated", "U0123ABC", &pressed)).await;
    slack.wait("/api/chat.postEphemeral", 2).await;
    assert_eq!(slack.to("/respond/tick").len(), 1);

    let mut ticks: Vec<_> = server.audit().await.into_iter().filter(|r| r.text.starts_with("(tick) ")).collect();
    ticks.sort_by(|a, b| a.id.cmp(&b.id));
    let decisions: Vec<(&str, &str)> = ticks.iter().map(|r| (r.who.as_str(), r.decision.as_str())).collect();
    assert_eq!(decisions, [("slack:W999", "refused"), ("slack:U0123ABC", "allowed")], "{ticks:?}");
    assert!(ticks.iter().all(|r| r.command.as_deref() == Some("release check payments prod")));

    // The next check counts the tick.
    let again = format!("{}/respond/rc2", slack.url);
    command(&server, &slash("U0123ABC", "release check payments prod", &again)).await;
    slack.wait("/respond/rc2", 2).await;
    let posts = slack.to("/respond/rc2");
    let text = all_text(&posts[posts.len() - 1].json());
    assert!(text.contains("changelog reviewed: ticked by slack:U0123ABC"), "{text}");
}

// --- load shedding ------------------------------------------------------------------------------

#[tokio::test]
async fn past_max_in_flight_requests_are_answered_busy_and_audited_instead_of_queued() {
    let slack = Fake::start(slack_ok).await;
    let settings = Settings { ack_budget: Duration::ZERO, max_in_flight: 1, ..settings(&slack) };
    let server = Server::start(workspace(&[]), settings).await;
    // The one permit is held by a command whose late answer waits on a response_url that takes
    // 3 s, then falls back to the Web API.
    let slow = format!("{}/slow/respond", slack.url);
    let v: Value = command(&server, &slash("U0123ABC", "whoami", &slow)).await.json().await.unwrap();
    assert_eq!(v["text"], "working on `whoami`…");
    let v: Value = command(&server, &slash("U0123ABC", "help", "http://127.0.0.1:9/x")).await.json().await.unwrap();
    assert!(all_text(&v).contains("lazyops is busy, try again in a minute"), "{v}");
    assert_eq!(v["response_type"], "ephemeral");
    // An event is acknowledged and told so in its thread.
    let mut ev: Value = serde_json::from_slice(&fixture("slack/event_callback.app_mention.json")).unwrap();
    ev["event"]["text"] = json!("<@UBOT> whoami");
    assert_eq!(event(&server, ev.to_string().as_bytes(), &[]).await.status(), 200);
    let posted = slack.wait("/api/chat.postMessage", 1).await;
    assert!(all_text(&posted[0].json()).contains("lazyops is busy"), "{}", posted[0].json());
    let busy: Vec<_> = server.audit().await.into_iter().filter(|r| r.decision == "busy").collect();
    assert_eq!(busy.len(), 2, "each busy answer is audited");
    assert!(busy.iter().all(|r| r.outcome.as_deref() == Some("refused")));
    // Once the first command has answered (its response_url times out after 1 s), the permit
    // is back.
    let mut answered = None;
    for _ in 0..50 {
        let v: Value =
            command(&server, &slash("U0123ABC", "whoami", "http://127.0.0.1:9/x")).await.json().await.unwrap();
        if !all_text(&v).contains("busy") {
            answered = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answered = answered.expect("the permit came back");
    assert_eq!(answered["text"], "working on `whoami`…");
}

// --- approvals (issue 20) ---------------------------------------------------------------------

/// The demo's reviewer role with two of the fixtures' Slack users; U0123ABC asks.
fn approving_workspace() -> Ws {
    let ws = workspace(&[]);
    ws.edit("lazyops.toml", "members = [\"local:bob\"]", "members = [\"local:bob\", \"slack:U222\", \"slack:W111\"]");
    ws
}

/// A press of an approval card's button in `channel`.
fn card_button(action_id: &str, id: &str, user: &str, channel: &str, response_url: &str) -> Value {
    let mut p = button(action_id, id, user, response_url);
    p["channel"]["id"] = json!(channel);
    p["container"]["channel_id"] = json!(channel);
    p["container"]["is_ephemeral"] = json!(false);
    p
}

/// Asks for ad-hoc SQL by slash command in C1; the card, answered in the channel.
async fn ask_sql(server: &Server, slack: &Fake) -> Value {
    let sql = "db sql users \"SELECT count(*) AS n FROM users\"";
    command(server, &slash("U0123ABC", sql, &format!("{}/respond/ask", slack.url))).await.json().await.unwrap()
}

fn card_id(card: &Value) -> String {
    let actions = card["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").expect("buttons");
    assert_eq!(actions["elements"][0]["action_id"], "lazyops_approve");
    assert_eq!(actions["elements"][1]["action_id"], "lazyops_reject");
    actions["elements"][0]["value"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_approval_card_mentions_the_reviewers_and_only_a_reviewer_here_can_approve_it() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(approving_workspace(), settings(&slack)).await;
    let card = ask_sql(&server, &slack).await;
    assert_eq!(card["response_type"], "in_channel", "the reviewers see it: {card}");
    let text = card["text"].as_str().unwrap();
    assert!(text.starts_with("<@U222> <@W111>"), "{text}");
    let shown = all_text(&card);
    assert!(shown.contains("SELECT count(*) AS n FROM users") && shown.contains("SQLite"), "{shown}");
    let id = card_id(&card);
    let url = format!("{}/respond/approve", slack.url);

    // The requester, a member who is not a reviewer, and a reviewer elsewhere: each is told
    // privately, and nothing runs.
    for (n, (user, channel, why)) in [
        ("U0123ABC", "C1", "you asked for this yourself"),
        ("U2147483697", "C1", "you are not an approver"),
        ("W111", "C999", "was asked in slack:C1"),
    ]
    .into_iter()
    .enumerate()
    {
        press(&server, &card_button("lazyops_approve", &id, user, channel, &url)).await;
        let eph = slack.wait("/api/chat.postEphemeral", n + 1).await.pop().unwrap().json();
        assert_eq!(eph["user"], user);
        assert!(all_text(&eph).contains(why), "{user}: {eph}");
    }
    slack.none("/respond/approve").await;
    assert!(!server.audit().await.iter().any(|r| r.decision == "approved"));

    // A reviewer in the channel: it runs, said in the channel, mentioning the requester.
    press(&server, &card_button("lazyops_approve", &id, "U222", "C1", &url)).await;
    let said = slack.wait("/respond/approve", 1).await[0].json();
    assert_eq!(said["response_type"], "in_channel", "{said}");
    let text = all_text(&said);
    assert!(text.contains("Approved by <@U222>") && text.contains("<@U0123ABC>"), "{text}");
    assert!(text.contains("1 row from users (prod)"), "{text}");
    let audit = server.audit().await;
    let ran: Vec<_> = audit.iter().filter(|r| r.decision == "approved").collect();
    assert_eq!(ran.len(), 1);
    assert_eq!((ran[0].who.as_str(), ran[0].approved_by.as_deref()), ("slack:U0123ABC", Some("slack:U222")));

    // Pressing again runs nothing.
    press(&server, &card_button("lazyops_approve", &id, "W111", "C1", &url)).await;
    let eph = slack.wait("/api/chat.postEphemeral", 4).await.pop().unwrap().json();
    assert!(all_text(&eph).contains("already approved"), "{eph}");
    assert_eq!(slack.to("/respond/approve").len(), 1);
}

#[tokio::test]
async fn a_rejection_by_button_is_said_in_the_channel_and_a_typed_approve_after_it_is_refused() {
    let slack = Fake::start(slack_ok).await;
    let server = Server::start(approving_workspace(), settings(&slack)).await;
    let card = ask_sql(&server, &slack).await;
    let id = card_id(&card);
    let code = card["text"].as_str().and_then(|t| t.split("`approve ").nth(1)).map(|t| t[..6].to_string());
    let code = code.expect("a typed code");
    let url = format!("{}/respond/reject", slack.url);
    press(&server, &card_button("lazyops_reject", &id, "W111", "C1", &url)).await;
    let said = slack.wait("/respond/reject", 1).await[0].json();
    let text = all_text(&said);
    assert!(text.contains("Rejected by <@W111>") && text.contains("<@U0123ABC>"), "{text}");
    let late: Value = command(&server, &slash("U222", &format!("approve {code}"), &format!("{}/respond/x", slack.url)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(late["response_type"], "ephemeral");
    assert!(all_text(&late).contains("already rejected"), "{late}");
    assert!(!server.audit().await.iter().any(|r| r.decision == "approved"));
}

#[tokio::test]
async fn an_expired_request_is_announced_in_its_channel_to_the_requester_once() {
    let slack = Fake::start(slack_ok).await;
    let ws = approving_workspace();
    ws.edit("lazyops.toml", "approval_ttl_secs = 3600", "approval_ttl_secs = 1");
    let settings = Settings { approval_sweep: Duration::from_millis(100), ..settings(&slack) };
    let server = Server::start(ws, settings).await;
    let card = ask_sql(&server, &slack).await;
    assert_eq!(card["response_type"], "in_channel");
    let posted = slack.wait("/api/chat.postMessage", 1).await[0].json();
    assert_eq!(posted["channel"], "C1", "{posted}");
    let text = all_text(&posted);
    assert!(text.contains("expired without approval") && text.contains("<@U0123ABC>"), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slack.to("/api/chat.postMessage").len(), 1, "told once");
    assert!(server.audit().await.iter().any(|r| r.decision == "expired" && r.who == "slack:U0123ABC"));
}
