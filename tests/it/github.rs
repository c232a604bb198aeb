//! GitHub (issue 9): signed webhook deliveries built from the fixtures against the real server
//! on loopback, with a fake GitHub REST API that records the comments the bot wrote.

use std::time::Duration;

use axum::response::Response;
use lazyops::transport::github::sign;
use lazyops::transport::http::Settings;
use serde_json::{Value, json};

use crate::loopback::{Call, Fake, Server, fixture, json_response};
use crate::support::Ws;

const SECRET: &str = "gh-webhook-secret";
pub(crate) const ISSUE_COMMENTS: &str = "/repos/Codertocat/Hello-World/issues/1/comments";

pub(crate) fn github_ok(_call: &Call, n: usize) -> Response {
    json_response(201, json!({"id": 1000 + n, "body": "ok"}))
}

pub(crate) fn settings(github: &Fake) -> Settings {
    Settings {
        github_webhook_secret: Some(SECRET.into()),
        github_token: Some("ghp_test".into()),
        github_api_url: github.url.clone(),
        http_timeout: Duration::from_millis(1000),
        max_retry_wait: Duration::from_secs(3),
        ..Settings::default()
    }
}

/// The demo workspace where the on-call team takes every trusted GitHub author.
pub(crate) fn workspace() -> Ws {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "\"github:octocat\"", "\"github:octocat\", \"github:*\"");
    ws
}

async fn start_with(ws: Ws, respond: impl Fn(&Call, usize) -> Response + Send + Sync + 'static) -> (Server, Fake) {
    let github = Fake::start(respond).await;
    let server = Server::start(ws, settings(&github)).await;
    (server, github)
}

async fn start() -> (Server, Fake) {
    start_with(workspace(), github_ok).await
}

/// A comment as GitHub would send it now: its own id and the current time (the bot answers a
/// comment once, and only while it is recent).
pub fn fresh(mut v: Value) -> Value {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(900_000_000);
    v["comment"]["id"] = json!(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    written_now(v)
}

/// The fixture's comment, written just now.
pub fn written_now(mut v: Value) -> Value {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    v["comment"]["created_at"] = json!(now);
    v["comment"]["updated_at"] = json!(now);
    v
}

/// An `issue_comment` delivery from the fixture with another comment body and author.
pub(crate) fn issue_comment(body: &str) -> Value {
    let mut v: Value = serde_json::from_slice(&fixture("github/issue_comment.created.issue.json")).unwrap();
    v["comment"]["body"] = json!(body);
    fresh(v)
}

fn author(mut v: Value, login: &str, association: &str) -> Value {
    v["comment"]["user"]["login"] = json!(login);
    v["sender"]["login"] = json!(login);
    v["comment"]["author_association"] = json!(association);
    v
}

async fn deliver(server: &Server, event: &str, id: &str, body: &[u8]) -> reqwest::Response {
    let headers = vec![
        ("x-github-event".to_string(), event.to_string()),
        ("x-github-delivery".to_string(), id.to_string()),
        ("x-hub-signature-256".to_string(), sign(SECRET, body)),
        ("content-type".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), "GitHub-Hookshot/test".to_string()),
    ];
    server.post("/github/webhook", &headers, body.to_vec()).await
}

pub(crate) async fn deliver_json(server: &Server, event: &str, v: &Value) -> reqwest::Response {
    deliver(server, event, &uuid::Uuid::new_v4().to_string(), v.to_string().as_bytes()).await
}

fn comment_body(call: &Call) -> String {
    call.json()["body"].as_str().expect("a comment body").to_string()
}

#[tokio::test]
async fn ping_is_answered() {
    let (server, github) = start().await;
    for f in ["github/ping.json", "github/ping.with-app_id.json"] {
        let resp = deliver(&server, "ping", "d-ping", &fixture(f)).await;
        assert_eq!(resp.status(), 200, "{f}");
        assert_eq!(resp.text().await.unwrap(), "pong\n");
    }
    assert!(github.calls().is_empty());
}

#[tokio::test]
async fn a_command_in_an_issue_comment_is_answered_with_a_comment_in_the_same_issue() {
    let (server, github) = start().await;
    let resp = deliver_json(&server, "issue_comment", &issue_comment("/lazyops help")).await;
    assert_eq!(resp.status(), 202);
    let calls = github.wait(ISSUE_COMMENTS, 1).await;
    let body = comment_body(&calls[0]);
    assert!(body.starts_with("lazyops commands\n\n<details><summary>"), "{body}");
    assert!(body.contains("| command | what it does |"), "{body}");
    assert_eq!(calls[0].header("authorization"), "Bearer ghp_test");
    assert_eq!(calls[0].header("accept"), "application/vnd.github+json");
    assert_eq!(calls[0].header("x-github-api-version"), "2022-11-28");
    assert!(calls[0].header("user-agent").starts_with("lazyops/"));
    let audit = server.audit().await;
    assert_eq!(audit[0].who, "github:Codertocat");
    assert_eq!(audit[0].place, "github:Codertocat/Hello-World#1");
}

#[tokio::test]
async fn a_mention_in_an_app_delivery_is_answered_too() {
    let (server, github) = start().await;
    let mut v: Value =
        fresh(serde_json::from_slice(&fixture("github/issue_comment.created.issue.with-installation.json")).unwrap());
    v["comment"]["body"] = json!("Thanks!\n@lazyops whoami");
    assert_eq!(deliver_json(&server, "issue_comment", &v).await.status(), 202);
    let body = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    assert!(body.starts_with("you are github:Codertocat"), "{body}");
}

#[tokio::test]
async fn a_review_comment_is_answered_in_its_review_thread() {
    let (server, github) = start().await;
    let mut v: Value =
        written_now(serde_json::from_slice(&fixture("github/pull_request_review_comment.created.json")).unwrap());
    v["comment"]["body"] = json!("/lazyops db list");
    assert_eq!(deliver_json(&server, "pull_request_review_comment", &v).await.status(), 202);
    let calls = github.wait("/repos/Codertocat/Hello-World/pulls/2/comments/284312630/replies", 1).await;
    assert!(comment_body(&calls[0]).contains("user-by-id"));
    assert_eq!(server.audit().await[0].place, "github:Codertocat/Hello-World#2/284312630");
}

#[tokio::test]
async fn comments_not_addressed_to_the_bot_are_ignored() {
    let (server, github) = start().await;
    // The fixture exactly as GitHub sent it: an ordinary comment.
    let resp = deliver(&server, "issue_comment", "d-plain", &fixture("github/issue_comment.created.issue.json")).await;
    assert_eq!(resp.status(), 200);
    deliver_json(&server, "issue_comment", &issue_comment("> /lazyops db list\nquoting is not asking")).await;
    github.none(ISSUE_COMMENTS).await;
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn deliveries_without_a_valid_sha256_signature_are_refused_with_401() {
    let (server, github) = start().await;
    let body = issue_comment("/lazyops help").to_string();
    let other = issue_comment("/lazyops db list").to_string();
    let sha1 = "sha1=0123456789abcdef0123456789abcdef01234567".to_string();
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("missing", vec![]),
        ("sha1 only", vec![("x-hub-signature", sha1.clone())]),
        ("sha1 in the sha256 header", vec![("x-hub-signature-256", sha1)]),
        ("another body's signature", vec![("x-hub-signature-256", sign(SECRET, other.as_bytes()))]),
        ("wrong secret", vec![("x-hub-signature-256", sign("not-the-secret", body.as_bytes()))]),
        ("not hex", vec![("x-hub-signature-256", format!("sha256={}", "z".repeat(64)))]),
        ("empty", vec![("x-hub-signature-256", String::new())]),
    ];
    for (what, extra) in cases {
        let mut headers = vec![
            ("x-github-event".to_string(), "issue_comment".to_string()),
            ("x-github-delivery".to_string(), what.to_string()),
        ];
        headers.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let resp = server.post("/github/webhook", &headers, body.clone()).await;
        assert_eq!(resp.status(), 401, "{what}");
    }
    github.none(ISSUE_COMMENTS).await;
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn unknown_event_types_and_edits_are_acknowledged_and_ignored() {
    let (server, github) = start().await;
    let push = json!({"ref": "refs/heads/main", "after": "abc"});
    assert_eq!(deliver_json(&server, "push", &push).await.status(), 200);
    let mut edited = issue_comment("/lazyops help");
    edited["action"] = json!("edited");
    edited["changes"] = json!({"body": {"from": "old"}});
    assert_eq!(deliver_json(&server, "issue_comment", &edited).await.status(), 200);
    let mut deleted = issue_comment("/lazyops help");
    deleted["action"] = json!("deleted");
    assert_eq!(deliver_json(&server, "issue_comment", &deleted).await.status(), 200);
    github.none(ISSUE_COMMENTS).await;
}

#[tokio::test]
async fn comments_by_bots_and_by_the_bot_itself_are_ignored() {
    let (server, github) = start().await;
    let mut typed_bot = issue_comment("/lazyops help");
    typed_bot["comment"]["user"]["type"] = json!("Bot");
    typed_bot["sender"]["type"] = json!("Bot");
    let app_bot = author(issue_comment("/lazyops help"), "dependabot[bot]", "NONE");
    let own = author(issue_comment("@lazyops help"), "lazyops", "NONE");
    for v in [typed_bot, app_bot, own] {
        assert_eq!(deliver_json(&server, "issue_comment", &v).await.status(), 200);
    }
    github.none(ISSUE_COMMENTS).await;
    assert!(server.audit().await.is_empty());
}

#[tokio::test]
async fn an_untrusted_author_gets_one_polite_refusal_and_never_the_command() {
    let (server, github) = start().await;
    let stranger = author(issue_comment("/lazyops db query user-by-id 42"), "stranger", "NONE");
    assert_eq!(deliver_json(&server, "issue_comment", &stranger).await.status(), 202);
    let body = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    assert!(body.starts_with("Sorry @stranger, I only take commands"), "{body}");
    let again = author(issue_comment("/lazyops db list"), "stranger", "CONTRIBUTOR");
    assert_eq!(deliver_json(&server, "issue_comment", &again).await.status(), 202);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(github.to(ISSUE_COMMENTS).len(), 1, "one refusal per person and thread");
    assert!(server.audit().await.is_empty(), "the pipeline never saw it");
}

#[tokio::test]
async fn an_untrusted_author_gets_silence_when_configured() {
    let ws = workspace();
    ws.edit("lazyops.toml", "[llm]", "[github]\nuntrusted = \"silence\"\n\n[llm]");
    let (server, github) = start_with(ws, github_ok).await;
    let stranger = author(issue_comment("/lazyops db list"), "stranger", "NONE");
    deliver_json(&server, "issue_comment", &stranger).await;
    github.none(ISSUE_COMMENTS).await;
}

#[tokio::test]
async fn a_team_member_is_trusted_whatever_the_association() {
    let ws = Ws::new(); // the team lists github:octocat only
    let (server, github) = start_with(ws, github_ok).await;
    let octocat = author(issue_comment("/lazyops db list"), "octocat", "NONE");
    deliver_json(&server, "issue_comment", &octocat).await;
    let body = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    assert!(body.contains("user-by-id"), "{body}");
}

#[tokio::test]
async fn a_redelivered_delivery_is_answered_once() {
    let (server, github) = start().await;
    let body = issue_comment("/lazyops whoami").to_string();
    for _ in 0..3 {
        assert!(deliver(&server, "issue_comment", "same-delivery-id", body.as_bytes()).await.status().is_success());
    }
    github.wait(ISSUE_COMMENTS, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(github.to(ISSUE_COMMENTS).len(), 1);
}

/// Issue 17: the signature covers the body, not `X-GitHub-Delivery`; a captured comment sent
/// again under new delivery ids must not run again.
#[tokio::test]
async fn issue_17_a_signed_comment_replayed_with_fresh_delivery_ids_is_answered_once() {
    let (server, github) = start().await;
    let body = issue_comment("/lazyops whoami").to_string();
    let mut said = Vec::new();
    for i in 0..6 {
        let resp = deliver(&server, "issue_comment", &format!("replay-{i}"), body.as_bytes()).await;
        said.push((resp.status().as_u16(), resp.text().await.unwrap()));
    }
    assert_eq!(said[0], (202, "accepted\n".to_string()));
    assert!(said[1..].iter().all(|s| *s == (200, "comment already answered\n".to_string())), "{said:?}");
    github.wait(ISSUE_COMMENTS, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(github.to(ISSUE_COMMENTS).len(), 1);
    assert_eq!(server.audit().await.len(), 1, "the pipeline saw it once");

    // Another comment by the same person is a new command, and is answered.
    deliver_json(&server, "issue_comment", &issue_comment("/lazyops whoami")).await;
    github.wait(ISSUE_COMMENTS, 2).await;

    // A comment written before the replay window (24 h) cannot be told from a replay.
    let mut old = issue_comment("/lazyops whoami");
    old["comment"]["updated_at"] = json!("2019-05-15T15:20:21Z");
    let resp = deliver_json(&server, "issue_comment", &old).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ignored: comment older than the replay window\n");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(github.to(ISSUE_COMMENTS).len(), 2);
}

#[tokio::test]
async fn a_comment_on_a_locked_issue_lands_in_the_audit_log() {
    let (server, github) = start_with(workspace(), |_call, _n| {
        json_response(
            403,
            json!({"message": "Unable to create comment because issue is locked.", "documentation_url": "x"}),
        )
    })
    .await;
    deliver_json(&server, "issue_comment", &issue_comment("/lazyops whoami")).await;
    github.wait(ISSUE_COMMENTS, 1).await;
    let mut row = None;
    for _ in 0..50 {
        row = server.audit().await.into_iter().find(|r| r.decision == "undelivered");
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("an undelivered row");
    assert!(row.error.as_deref().unwrap().contains("issue is locked"), "{row:?}");
    assert_eq!(github.to(ISSUE_COMMENTS).len(), 1, "a plain 403 is not retried");
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let (server, github) = start_with(workspace(), |call, n| {
        let reset = (lazyops::store::now_ms() / 1000 + 1).to_string();
        match n {
            0 => Response::builder()
                .status(403)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", reset)
                .body(axum::body::Body::from("{\"message\":\"API rate limit exceeded\"}"))
                .unwrap(),
            1 => Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(axum::body::Body::from("{\"message\":\"secondary rate limit\"}"))
                .unwrap(),
            _ => github_ok(call, n),
        }
    })
    .await;
    let started = std::time::Instant::now();
    deliver_json(&server, "issue_comment", &issue_comment("/lazyops whoami")).await;
    let calls = github.wait(ISSUE_COMMENTS, 3).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(calls[0].body, calls[2].body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.audit().await.iter().all(|r| r.decision != "undelivered"));
}

#[tokio::test]
async fn a_one_megabyte_comment_is_refused_and_a_long_one_is_answered_politely() {
    let (server, github) = start().await;
    let huge = issue_comment(&format!("/lazyops todo add \"{}\"", "x".repeat(1024 * 1024)));
    assert_eq!(deliver_json(&server, "issue_comment", &huge).await.status(), 413);
    let long = issue_comment(&format!("/lazyops todo add \"{}\"", "x".repeat(100_000)));
    assert_eq!(deliver_json(&server, "issue_comment", &long).await.status(), 202);
    let body = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    assert!(body.contains("message too long"), "{body}");
}

#[tokio::test]
async fn malformed_payloads_are_400() {
    let (server, github) = start().await;
    let mut no_comment = issue_comment("/lazyops help");
    no_comment.as_object_mut().unwrap().remove("comment");
    let mut body_number = issue_comment("/lazyops help");
    body_number["comment"]["body"] = json!(5);
    let mut no_number = issue_comment("/lazyops help");
    no_number.as_object_mut().unwrap().remove("issue");
    let mut bad_repo = issue_comment("/lazyops help");
    bad_repo["repository"]["full_name"] = json!("../../admin");
    for v in [no_comment, body_number, no_number, bad_repo] {
        assert_eq!(deliver_json(&server, "issue_comment", &v).await.status(), 400, "{v}");
    }
    assert_eq!(deliver(&server, "issue_comment", "d-x", b"not json").await.status(), 400);
    github.none(ISSUE_COMMENTS).await;
}

#[tokio::test]
async fn a_form_encoded_delivery_is_read_from_its_payload_field() {
    let (server, github) = start().await;
    let form = serde_urlencoded::to_string([("payload", issue_comment("/lazyops whoami").to_string())]).unwrap();
    let headers = vec![
        ("x-github-event".to_string(), "issue_comment".to_string()),
        ("x-github-delivery".to_string(), "d-form".to_string()),
        ("x-hub-signature-256".to_string(), sign(SECRET, form.as_bytes())),
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
    ];
    assert_eq!(server.post("/github/webhook", &headers, form).await.status(), 202);
    github.wait(ISSUE_COMMENTS, 1).await;
}

#[tokio::test]
async fn markdown_injection_in_query_results_is_escaped() {
    let (server, github) = start().await;
    let db = format!("sqlite://{}/demo/users.db", server.ws.path().display());
    let pool = sqlx::sqlite::SqlitePool::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, name, status, created_at) VALUES (9001, $1, $2, $3, '2026-01-01 00:00:00')",
    )
    .bind("evil|pipe@example.com")
    .bind("`tick` <details><summary>open</summary> @octocat [x](https://evil.example)")
    .bind("@github/security")
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    deliver_json(&server, "issue_comment", &issue_comment("/lazyops db query user-by-id 9001")).await;
    let body = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    let row = body.lines().find(|l| l.starts_with("| 9001 ")).unwrap_or_else(|| panic!("{body}"));
    let columns = row.split(" | ").count();
    assert_eq!(columns, 5, "the pipe in the data did not add a column: {row}");
    assert!(row.contains("evil\\|pipe@example.com"), "{row}");
    assert!(row.contains("\\`tick\\`"), "{row}");
    assert!(!body.contains("<details>"), "{body}");
    assert!(!body.contains("@octocat") && !body.contains("@github/security"), "{body}");
    assert!(!body.contains("](https://evil"), "{body}");
}

#[tokio::test]
async fn a_confirmation_is_answered_by_comment_and_only_by_the_requester() {
    let ws = workspace();
    ws.edit("lazyops.toml", "confirm = [\"todo done *\"]", "confirm = [\"todo done *\", \"db query *\"]");
    let (server, github) = start_with(ws, github_ok).await;
    deliver_json(&server, "issue_comment", &issue_comment("/lazyops db query user-by-id 42")).await;
    let asked = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    let code = asked
        .split("/lazyops confirm ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no code in {asked}"))
        .to_string();
    // Someone else, trusted too, cannot use the code.
    let other = author(issue_comment(&format!("/lazyops confirm {code}")), "hubot", "MEMBER");
    deliver_json(&server, "issue_comment", &other).await;
    let refused = comment_body(&github.wait(ISSUE_COMMENTS, 2).await[1]);
    assert!(refused.contains(&format!("no pending command with code {code}")), "{refused}");
    deliver_json(&server, "issue_comment", &issue_comment(&format!("/lazyops confirm {code}"))).await;
    let ran = comment_body(&github.wait(ISSUE_COMMENTS, 3).await[2]);
    assert!(ran.contains("| id | email |"), "{ran}");
    // Single use.
    deliver_json(&server, "issue_comment", &issue_comment(&format!("/lazyops confirm {code}"))).await;
    let again = comment_body(&github.wait(ISSUE_COMMENTS, 4).await[3]);
    assert!(again.contains("already confirmed"), "{again}");
}

#[tokio::test]
async fn ad_hoc_sql_is_approved_by_a_reviewer_comment_and_answered_in_the_issue() {
    let ws = workspace();
    ws.edit("lazyops.toml", "members = [\"local:bob\"]", "members = [\"local:bob\", \"github:hubot\"]");
    let (server, github) = start_with(ws, github_ok).await;
    let ask = "/lazyops db sql users \"SELECT count(*) AS n FROM users\"";
    deliver_json(&server, "issue_comment", &issue_comment(ask)).await;
    let card = comment_body(&github.wait(ISSUE_COMMENTS, 1).await[0]);
    assert!(card.contains("@hubot This needs 1 approval"), "the reviewer is mentioned: {card}");
    assert!(card.contains("SELECT count(*) AS n FROM users"), "{card}");
    let code = card
        .split("/lazyops approve ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no code in {card}"))
        .to_string();
    // The requester cannot approve their own request.
    deliver_json(&server, "issue_comment", &issue_comment(&format!("/lazyops approve {code}"))).await;
    let own = comment_body(&github.wait(ISSUE_COMMENTS, 2).await[1]);
    assert!(own.contains("you asked for this yourself"), "{own}");
    // The reviewer's comment runs it, in the same issue, for the requester.
    let reviewer = author(issue_comment(&format!("/lazyops approve {code}")), "hubot", "MEMBER");
    deliver_json(&server, "issue_comment", &reviewer).await;
    let ran = comment_body(&github.wait(ISSUE_COMMENTS, 3).await[2]);
    assert!(ran.contains("| n |"), "{ran}");
    assert!(ran.contains("approved by github:hubot") && ran.contains("@Codertocat"), "{ran}");
    let audit = server.audit().await;
    let row = audit.iter().find(|r| r.decision == "approved").expect("an approved run");
    assert_eq!((row.who.as_str(), row.approved_by.as_deref()), ("github:Codertocat", Some("github:hubot")));
}
