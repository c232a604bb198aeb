//! Approvals: a command a team's rule covers waits for distinct approvers (never the
//! requester), bound to the exact command and the place it was asked, expiring, checked
//! again against today's config when the last approval arrives, and run once even when
//! approvers press at once on two instances. Ad-hoc SQL (`db sql`) is refused before anyone
//! is asked when it writes, on SQLite, PostgreSQL and MariaDB.

use std::sync::Arc;

use lazyops::message::{Identity, Message, Place, Transport};
use lazyops::pipeline::{Bot, Options};
use lazyops::render::{Reply, Status};
use lazyops::store::Store;
use lazyops::workspace::Workspace;
use serde_json::Value;

use crate::queries::{Db, Engine};
use crate::support::{PgDb, Ws, postgres_url};

/// The demo workspace plus a rule: `todo add` waits for `count` reviewers (bob, carol, dave,
/// and bob's Slack identity), with requests that live `ttl` seconds.
fn ws_with(count: u32, ttl: u64) -> Ws {
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "members = [\"local:bob\"]",
        "members = [\"local:bob\", \"local:carol\", \"local:dave\", \"slack:UBOB\"]",
    );
    ws.edit("lazyops.toml", "approval_ttl_secs = 3600", &format!("approval_ttl_secs = {ttl}"));
    append(
        &ws,
        &format!(
            "\n[[teams.oncall.approval]]\ncommands = [\"todo add *\"]\napprovers = [\"role:reviewer\"]\ncount = {count}\n"
        ),
    );
    ws
}

fn append(ws: &Ws, text: &str) {
    let path = ws.config();
    let mut config = std::fs::read_to_string(&path).expect("read config");
    config.push_str(text);
    std::fs::write(&path, config).expect("write config");
}

async fn bot(ws: &Ws, state_url: &str) -> Bot {
    let workspace = Workspace::load(&ws.config()).expect("workspace loads");
    Bot::new(workspace, Store::open(state_url).await.expect("state store opens"))
}

fn sqlite_state(ws: &Ws) -> String {
    format!("sqlite://{}/state-approvals.db", ws.path().display())
}

fn local(who: &str, text: &str) -> Message {
    Message { who: Identity::new(Transport::Local, who), place: Place::terminal(), text: text.into() }
}

fn slack(user: &str, channel: &str, text: &str) -> Message {
    let place = Place { transport: Transport::Slack, channel: channel.into(), thread: None };
    Message { who: Identity::new(Transport::Slack, user), place, text: text.into() }
}

async fn say(bot: &Bot, msg: Message) -> Reply {
    bot.handle(&msg, Options::default()).await
}

/// Asks for `todo add "<text>"` as alice in the terminal; the request's code.
async fn ask(bot: &Bot, text: &str) -> String {
    let asked = say(bot, local("alice", &format!("todo add \"{text}\""))).await;
    assert_eq!(asked.status, Status::AwaitingApproval, "{asked:?}");
    asked.approval.expect("an approval request").code
}

async fn todo_count(bot: &Bot) -> usize {
    let list = say(bot, local("alice", "todo list")).await;
    let json = serde_json::to_value(&list).expect("reply json");
    json["blocks"].as_array().into_iter().flatten().filter_map(|b| b["rows"].as_array()).map(Vec::len).sum()
}

/// The `approved_by` of the audit rows that ran an approved command.
async fn approved_by(bot: &Bot) -> Vec<String> {
    let rows = bot.store().audit_list(None, None, 100).await.expect("audit rows");
    rows.into_iter().filter(|r| r.decision == "approved").filter_map(|r| r.approved_by).collect()
}

fn refused_with(reply: &Reply, text: &str) {
    assert_eq!(reply.status, Status::Refused, "{reply:?}");
    assert!(reply.headline.contains(text), "expected {text:?} in {:?}", reply.headline);
}

#[tokio::test]
async fn the_requester_and_non_approvers_cannot_approve_and_a_reviewer_runs_it_once() {
    let ws = ws_with(1, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let code = ask(&bot, "rotate the staging password").await;
    refused_with(&say(&bot, local("alice", &format!("approve {code}"))).await, "you asked for this yourself");
    refused_with(&say(&bot, local("erin", &format!("approve {code}"))).await, "you are not an approver");
    refused_with(&say(&bot, local("erin", &format!("reject {code} no"))).await, "you are not an approver");
    assert_eq!(todo_count(&bot).await, 0, "nothing ran before a reviewer approved");
    let done = say(&bot, local("bob", &format!("approve {code}"))).await;
    assert_eq!(done.status, Status::Done, "{done:?}");
    assert!(done.plain().contains("Asked by local:alice, approved by local:bob."), "{}", done.plain());
    assert_eq!(done.mention, ["local:alice"], "the requester is told");
    assert_eq!(todo_count(&bot).await, 1);
    refused_with(&say(&bot, local("carol", &format!("approve {code}"))).await, "already approved");
    assert_eq!(todo_count(&bot).await, 1, "a late approval runs nothing");
    assert_eq!(approved_by(&bot).await, ["local:bob"], "the audit row names the approver");
}

#[tokio::test]
async fn a_reviewer_asking_cannot_approve_their_own_request() {
    let ws = ws_with(1, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let asked = say(&bot, local("bob", "todo add \"bob's own\"")).await;
    let code = asked.approval.expect("waits for approval").code;
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "you asked for this yourself");
    assert_eq!(say(&bot, local("carol", &format!("approve {code}"))).await.status, Status::Done);
}

#[tokio::test]
async fn a_count_of_two_needs_two_different_people() {
    let ws = ws_with(2, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let code = ask(&bot, "needs two").await;
    let first = say(&bot, local("bob", &format!("approve {code}"))).await;
    assert_eq!(first.status, Status::Done);
    assert!(first.headline.contains("(1 of 2)"), "{}", first.headline);
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "already approved this");
    assert_eq!(todo_count(&bot).await, 0, "one person is one approval");
    let second = say(&bot, local("carol", &format!("approve {code}"))).await;
    assert_eq!(second.status, Status::Done, "{second:?}");
    assert_eq!(todo_count(&bot).await, 1);
    assert_eq!(approved_by(&bot).await, ["local:bob\nlocal:carol"]);
    let audit = serde_json::to_string(&say(&bot, local("alice", "audit")).await).unwrap();
    assert!(audit.contains("approved by local:bob, local:carol"), "the audit command shows the approvers: {audit}");
}

#[tokio::test]
async fn a_rejection_closes_the_request_with_its_reason() {
    let ws = ws_with(2, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let code = ask(&bot, "maybe not").await;
    let no = say(&bot, local("carol", &format!("reject {code} use the runbook instead"))).await;
    assert_eq!(no.status, Status::Done, "{no:?}");
    assert!(
        no.plain().contains("local:carol turned down local:alice's request: use the runbook instead"),
        "{}",
        no.plain()
    );
    assert_eq!(no.mention, ["local:alice"]);
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "already rejected");
    assert_eq!(todo_count(&bot).await, 0);
    let (news, _) = bot.approval_news(&Identity::new(Transport::Local, "alice"), &Place::terminal(), 0).await;
    assert_eq!(news.len(), 1);
    assert!(news[0].plain().contains("rejected by local:carol") && news[0].plain().contains("use the runbook"));
}

/// Many approvers press at once, each several times: the command runs exactly once.
async fn race(bots: &[Arc<Bot>], count: u32) {
    let code = ask(&bots[0], &format!("race with count {count}")).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let bot = bots[i % bots.len()].clone();
        let who = ["bob", "carol", "dave"][i % 3];
        let text = format!("approve {code}");
        tasks.push(tokio::spawn(async move { bot.handle(&local(who, &text), Options::default()).await }));
    }
    let mut ran = 0;
    for t in tasks {
        let reply = t.await.expect("task");
        if reply.plain().contains("Asked by local:alice") {
            ran += 1;
        }
    }
    assert_eq!(ran, 1, "exactly one approval runs the command");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_run_the_command_once_on_sqlite_state() {
    let ws = ws_with(1, 3600);
    let url = sqlite_state(&ws);
    let bots = [Arc::new(bot(&ws, &url).await), Arc::new(bot(&ws, &url).await)];
    for _ in 0..3 {
        race(&bots, 1).await;
    }
    assert_eq!(todo_count(&bots[0]).await, 3);
    let ws2 = ws_with(2, 3600);
    let url2 = sqlite_state(&ws2);
    let bots2 = [Arc::new(bot(&ws2, &url2).await), Arc::new(bot(&ws2, &url2).await)];
    for _ in 0..3 {
        race(&bots2, 2).await;
    }
    assert_eq!(todo_count(&bots2[0]).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_on_two_instances_run_the_command_once_on_postgres_state() {
    let Some(admin) = postgres_url() else { return };
    for count in [1, 2] {
        let db = PgDb::new(&admin);
        let ws = ws_with(count, 3600);
        let bots = [Arc::new(bot(&ws, &db.url).await), Arc::new(bot(&ws, &db.url).await)];
        for _ in 0..3 {
            race(&bots, count).await;
        }
        assert_eq!(todo_count(&bots[1]).await, 3, "count {count}");
        assert_eq!(approved_by(&bots[0]).await.len(), 3);
    }
}

#[tokio::test]
async fn an_approval_answered_in_another_place_is_refused() {
    let ws = ws_with(1, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let asked = say(&bot, slack("U0123ABC", "C1", "todo add \"asked in C1\"")).await;
    let code = asked.approval.expect("waits for approval").code;
    refused_with(&say(&bot, slack("UBOB", "C2", &format!("approve {code}"))).await, "was asked in slack:C1");
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "was asked in slack:C1");
    assert_eq!(todo_count(&bot).await, 0);
    let done = say(&bot, slack("UBOB", "C1", &format!("approve {code}"))).await;
    assert_eq!(done.status, Status::Done, "{done:?}");
    assert_eq!(done.mention, ["slack:U0123ABC"]);
    assert_eq!(todo_count(&bot).await, 1);
}

#[tokio::test]
async fn a_config_change_that_removes_the_rule_or_a_permission_refuses_the_command() {
    // The rule is gone.
    let ws = ws_with(1, 3600);
    let bot = bot(&ws, &sqlite_state(&ws)).await;
    let code = ask(&bot, "rule removed").await;
    ws.edit("lazyops.toml", "commands = [\"todo add *\"]", "commands = [\"todo assign *\"]");
    bot.replace_workspace(Workspace::load(&ws.config()).expect("reload"));
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "no approval rule covers");
    assert_eq!(todo_count(&bot).await, 0);

    // The requester may no longer run it.
    let ws = ws_with(1, 3600);
    let bot = bot_for(&ws).await;
    let code = ask(&bot, "permission removed").await;
    ws.edit("lazyops.toml", "\"todo *\", \"manifest *\"]", "\"todo list\", \"manifest *\"]");
    bot.replace_workspace(Workspace::load(&ws.config()).expect("reload"));
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "may no longer run for local:alice");
    assert_eq!(todo_count(&bot).await, 0);

    // An approver lost the role after approving: the last approval does not make the count.
    let ws = ws_with(2, 3600);
    let bot = bot_for(&ws).await;
    let code = ask(&bot, "approver removed").await;
    assert_eq!(say(&bot, local("bob", &format!("approve {code}"))).await.status, Status::Done);
    ws.edit("lazyops.toml", "\"local:bob\", \"local:carol\"", "\"local:carol\"");
    bot.replace_workspace(Workspace::load(&ws.config()).expect("reload"));
    let last = say(&bot, local("carol", &format!("approve {code}"))).await;
    refused_with(&last, "only 1 of the 2 approvals come from approvers under today's config");
    assert_eq!(todo_count(&bot).await, 0);
    refused_with(&say(&bot, local("dave", &format!("approve {code}"))).await, "already refused");
}

async fn bot_for(ws: &Ws) -> Bot {
    bot(ws, &sqlite_state(ws)).await
}

#[tokio::test]
async fn a_request_expires_and_its_requester_is_told_once() {
    let ws = ws_with(1, 1);
    let bot = bot_for(&ws).await;
    let code = ask(&bot, "too slow").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    refused_with(&say(&bot, local("bob", &format!("approve {code}"))).await, "expired");
    assert_eq!(todo_count(&bot).await, 0);
    let told = bot.expire_approvals(None).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].0, Place::terminal());
    assert!(told[0].1.headline.contains("expired without approval"), "{:?}", told[0].1);
    assert_eq!(told[0].1.mention, ["local:alice"]);
    assert!(bot.expire_approvals(None).await.is_empty(), "each expiry is told once");
}

#[test]
fn run_json_waits_for_approval_with_exit_3_and_another_user_approves_it() {
    let ws = Ws::new();
    let asked = ws.run("alice", &["run", "--json", "db sql users \"SELECT count(*) AS n FROM users\""]);
    assert_eq!(asked.code, 3, "{}{}", asked.stdout, asked.stderr);
    let v = asked.json();
    assert_eq!(v["status"], "awaiting_approval");
    let a = &v["approval"];
    assert_eq!(a["command"], "db sql users \"SELECT count(*) AS n FROM users\" --env prod");
    assert_eq!(a["approvers"], serde_json::json!(["role:reviewer"]));
    assert_eq!(a["count"], 1);
    assert!(a["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{a}");
    let code = a["code"].as_str().expect("code").to_string();
    assert_eq!(code.len(), 6);
    let own = ws.run("alice", &["run", &format!("approve {code}")]);
    assert_eq!(own.code, 1, "{}", own.stdout);
    let ran = ws.run("bob", &["run", "--json", &format!("approve {code}")]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let v = ran.json();
    assert_eq!(v["status"], "done");
    let n =
        v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "table")).map(|t| t["rows"][0][0].clone());
    assert!(n.as_ref().and_then(Value::as_i64).is_some_and(|n| n > 0), "{v}");
}

/// Writes are refused before anyone is asked; a read waits with the server's estimate and,
/// once approved, runs like a predefined query.
fn db_sql_on(engine: Engine, writes: &[&str], estimate: &str) {
    let Some(db) = Db::of(engine) else { return };
    let ws = db.workspace();
    let before = db.checksum();
    for w in writes {
        let text = format!("db sql users \"{}\"", w.replace('"', "\\\""));
        let r = ws.run("alice", &["run", "--json", &text]);
        assert_eq!(r.code, 1, "{w}: {}{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["status"], "refused", "{w}: {v}");
        assert!(v["headline"].as_str().is_some_and(|h| h.contains("not sent for approval")), "{w}: {v}");
        assert!(v.get("approval").is_none(), "{w}: nobody is asked");
    }
    let pending = ws.run("bob", &["run", "approvals"]);
    assert!(pending.stdout.starts_with("0 waiting for your approval"), "{}", pending.stdout);
    let asked = ws.run("alice", &["run", "--json", "db sql users \"SELECT count(*) AS n FROM users WHERE id > 0\""]);
    assert_eq!(asked.code, 3, "{}{}", asked.stdout, asked.stderr);
    let v = asked.json();
    let fields = v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "fields")).cloned();
    let text = fields.map(|f| f.to_string()).unwrap_or_default();
    assert!(text.contains("\"reads\",\"users\""), "{text}");
    assert!(text.contains(estimate), "expected {estimate:?} in {text}");
    let code = v["approval"]["code"].as_str().expect("code").to_string();
    let ran = ws.run("bob", &["run", "--json", &format!("approve {code}")]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("\"n\""), "{}", ran.stdout);
    assert_eq!(db.checksum(), before, "nothing was written");
}

#[test]
fn db_sql_refuses_writes_before_approval_and_runs_an_approved_read_on_sqlite() {
    db_sql_on(
        Engine::Sqlite,
        &[
            "DELETE FROM users",
            "UPDATE users SET name = 'x'",
            "SELECT 1; DROP TABLE users",
            "ATTACH DATABASE 'x.db' AS x",
        ],
        "SQLite estimates no rows or cost",
    );
}

#[test]
fn db_sql_refuses_writes_before_approval_and_runs_an_approved_read_on_postgres() {
    db_sql_on(
        Engine::Postgres,
        &[
            "UPDATE users SET name = 'x'",
            "WITH gone AS (DELETE FROM users RETURNING id) SELECT * FROM gone",
            "SELECT * INTO copy FROM users",
            "SELECT pg_sleep(1)",
            "SELECT * FROM users FOR UPDATE",
        ],
        "rows, cost",
    );
}

#[test]
fn db_sql_refuses_writes_before_approval_and_runs_an_approved_read_on_mariadb() {
    db_sql_on(
        Engine::Mysql,
        &["INSERT INTO users (id) VALUES (100000)", "TRUNCATE users", "SELECT sleep(1)", "CREATE TABLE x (id INT)"],
        "users: about",
    );
}

#[test]
fn db_sql_without_an_approval_rule_is_refused_at_once() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "commands = [\"db sql *\"]", "commands = [\"manifest *\"]");
    let r = ws.run("alice", &["run", "db sql users \"SELECT 1\""]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("no approval rule of your team covers it"), "{}", r.stdout);
}

#[tokio::test]
async fn a_command_that_needs_confirmation_is_confirmed_by_its_requester_then_approved() {
    let ws = ws_with(1, 3600);
    ws.edit("lazyops.toml", "confirm = [\"todo done *\"]", "confirm = [\"todo *\"]");
    let bot = bot_for(&ws).await;
    let asked = say(&bot, local("alice", "todo add \"confirm then approve\"")).await;
    assert_eq!(asked.status, Status::Confirm, "{asked:?}");
    let confirmed = say(&bot, local("alice", &format!("confirm {}", asked.confirm.expect("pending").code))).await;
    assert_eq!(confirmed.status, Status::AwaitingApproval, "confirming does not skip the approval: {confirmed:?}");
    assert_eq!(todo_count(&bot).await, 0);
    let code = confirmed.approval.expect("an approval request").code;
    assert_eq!(say(&bot, local("bob", &format!("approve {code}"))).await.status, Status::Done);
    assert_eq!(todo_count(&bot).await, 1);
}

#[tokio::test]
async fn one_person_may_have_twenty_requests_waiting_and_the_next_is_refused_as_busy() {
    let ws = ws_with(1, 3600);
    let bot = bot_for(&ws).await;
    for i in 0..20 {
        ask(&bot, &format!("item {i}")).await;
    }
    refused_with(&say(&bot, local("alice", "todo add \"one too many\"")).await, "busy: you have 20 requests waiting");
    let bob = say(&bot, local("bob", "todo add \"bob is not busy\"")).await;
    assert_eq!(bob.status, Status::AwaitingApproval);
}

#[tokio::test]
async fn secret_parameters_of_a_command_waiting_for_approval_are_never_shown() {
    let ws = ws_with(1, 3600);
    ws.edit("queries/user-by-email.sql", "param: email text ", "param: email text secret ");
    append(
        &ws,
        "\n[[teams.oncall.approval]]\ncommands = [\"db query user-by-email *\"]\napprovers = [\"role:reviewer\"]\n",
    );
    let bot = bot_for(&ws).await;
    let asked = say(&bot, local("alice", "db query user-by-email email=hidden@example.com")).await;
    assert_eq!(asked.status, Status::AwaitingApproval, "{asked:?}");
    let code = asked.approval.as_ref().expect("waits").code.clone();
    let list = say(&bot, local("bob", "approvals")).await;
    let not_approver = say(&bot, local("erin", &format!("approve {code}"))).await;
    let ran = say(&bot, local("bob", &format!("approve {code}"))).await;
    assert_eq!(ran.status, Status::Done, "{ran:?}");
    let (news, _) = bot.approval_news(&Identity::new(Transport::Local, "alice"), &Place::terminal(), 0).await;
    let audit = bot.store().audit_list(None, None, 100).await.expect("audit");
    for (what, text) in [
        ("the request", serde_json::to_string(&asked).unwrap()),
        ("the list", serde_json::to_string(&list).unwrap()),
        ("a refusal", serde_json::to_string(&not_approver).unwrap()),
        ("the news", serde_json::to_string(&news).unwrap()),
        ("the audit", format!("{audit:?}")),
    ] {
        assert!(!text.contains("hidden@example.com"), "{what} shows the secret: {text}");
    }
    let shown = asked.approval.as_ref().map(|a| a.command.clone()).unwrap_or_default();
    assert_eq!(shown, "db query user-by-email email=\"***\"");
}

#[test]
fn lazyops_chat_tells_the_requester_when_another_terminal_approves() {
    use std::io::Write;
    use std::process::Stdio;
    let ws = Ws::new();
    let mut alice = ws
        .cmd("alice", &["chat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    let mut input = alice.stdin.take().expect("stdin");
    writeln!(input, "db sql users \"SELECT count(*) AS n FROM users\"").expect("write");
    // alice's request is stored before bob looks.
    let mut code = None;
    for _ in 0..100 {
        let list = ws.run("bob", &["run", "--json", "approvals"]).json();
        code = list["blocks"][0]["rows"][0][0].as_str().map(str::to_string);
        if code.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let code = code.expect("alice's request waits for bob");
    // alice's output, line by line, as it comes.
    let stdout = alice.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(ws.run("bob", &["run", &format!("approve {code}")]).code, 0);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.starts_with("It ran:")) && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    drop(input);
    let _ = alice.wait();
    let text = seen.join("\n");
    assert!(text.contains("was approved by local:bob"), "{text}");
    assert!(text.contains("It ran: 1 row from users (prod)"), "{text}");
}
