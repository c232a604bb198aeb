//! Trust: the state store on SQLite and PostgreSQL, single-use confirmations under races,
//! permissions checked twice, the audit log, and config problems caught by `check`.

use std::sync::Arc;

use lazyops::message::{Identity, Message, Place, Transport};
use lazyops::pipeline::{Bot, Options};
use lazyops::render::Status;
use lazyops::store::Store;
use lazyops::store::confirm::Answer;
use lazyops::workspace::Workspace;

use crate::support::{PgDb, Ws, postgres_url};

/// A workspace where every TODO change must be confirmed, so tests have something to race on.
fn confirming_ws() -> Ws {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "confirm = [\"todo done *\"]", "confirm = [\"todo *\"]");
    ws
}

async fn bot(ws: &Ws, state_url: &str) -> Bot {
    let workspace = Workspace::load(&ws.config()).expect("workspace loads");
    Bot::new(workspace, Store::open(state_url).await.expect("state store opens"))
}

fn msg(who: &str, text: &str) -> Message {
    Message { who: Identity::new(Transport::Local, who), place: Place::terminal(), text: text.into() }
}

async fn todo_count(bot: &Bot) -> usize {
    let list = bot.handle(&msg("alice", "todo list"), Options::default()).await;
    let json = serde_json::to_value(&list).expect("reply json");
    json["blocks"].as_array().into_iter().flatten().filter_map(|b| b["rows"].as_array()).map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_confirms_from_two_instances_run_the_command_once() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let ws = confirming_ws();
    let (a, b) = (Arc::new(bot(&ws, &db.url).await), Arc::new(bot(&ws, &db.url).await));
    let asked = a.handle(&msg("alice", "todo add \"race the confirmations\""), Options::default()).await;
    assert_eq!(asked.status, Status::Confirm, "{asked:?}");
    let id = asked.confirm.expect("pending confirmation").id;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let bot = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            bot.answer(&id, &Identity::new(Transport::Local, "alice"), &Place::terminal(), Answer::Confirm).await.status
        }));
    }
    let mut done = 0;
    for t in tasks {
        if t.await.expect("task") == Status::Done {
            done += 1;
        }
    }
    assert_eq!(done, 1, "exactly one confirm runs the command");
    assert_eq!(todo_count(&a).await, 1, "the side effect happened once");
}

#[test]
fn racing_processes_sharing_postgres_confirm_once() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let ws = confirming_ws();
    let asked = ws
        .cmd("alice", &["run", "--json", "todo add \"from processes\""])
        .env("LAZYOPS_STATE_URL", &db.url)
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&asked.stdout).expect("json");
    let code = v["confirm"]["code"].as_str().expect("code").to_string();
    let children: Vec<_> = (0..12)
        .map(|_| {
            ws.cmd("alice", &["run", &format!("confirm {code}")])
                .env("LAZYOPS_STATE_URL", &db.url)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let ok = children.into_iter().map(|mut c| c.wait().expect("wait")).filter(|s| s.success()).count();
    assert_eq!(ok, 1);
    let list =
        ws.cmd("alice", &["run", "--json", "todo list"]).env("LAZYOPS_STATE_URL", &db.url).output().expect("run");
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.matches("from processes").count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_migrating_at_once_both_start() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let (a, b) = tokio::join!(Store::open(&db.url), Store::open(&db.url));
    assert!(a.is_ok() && b.is_ok(), "{:?} {:?}", a.err(), b.err());
    let ws = Ws::new();
    let runs: Vec<_> = (0..2)
        .map(|_| ws.cmd("alice", &["migrate"]).env("LAZYOPS_STATE_URL", &db.url).spawn().expect("spawn"))
        .collect();
    for mut r in runs {
        assert!(r.wait().expect("wait").success());
    }
}

#[tokio::test]
async fn confirmations_and_dedup_work_the_same_on_postgres() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    let ws = confirming_ws();
    let bot = bot(&ws, &db.url).await;
    let asked = bot.handle(&msg("alice", "todo add \"pg\""), Options::default()).await;
    let code = asked.confirm.expect("pending").code;
    let other = bot.handle(&msg("mallory", &format!("confirm {code}")), Options::default()).await;
    assert_eq!(other.status, Status::Refused);
    let ok = bot.handle(&msg("alice", &format!("confirm {code}")), Options::default()).await;
    assert_eq!(ok.status, Status::Done, "{ok:?}");
    let again = bot.handle(&msg("alice", &format!("confirm {code}")), Options::default()).await;
    assert!(again.headline.starts_with("already confirmed by you"), "{}", again.headline);
    let ttl = std::time::Duration::from_secs(60);
    assert!(bot.store().first_delivery("slack", "Ev9", ttl, 1).await.expect("dedup"));
    assert!(!bot.store().first_delivery("slack", "Ev9", ttl, 2).await.expect("dedup"));
}

#[test]
fn a_confirmation_is_refused_when_the_permission_was_lost_meanwhile() {
    let ws = confirming_ws();
    // carol, not alice: alice is the demo's admin, a member through that role.
    let asked = ws.run("carol", &["run", "--json", "todo add \"before the change\""]);
    assert_eq!(asked.code, 3, "{}", asked.stdout);
    let code = asked.json()["confirm"]["code"].as_str().expect("code").to_string();
    ws.edit("lazyops.toml", "members = [\"local:*\"", "members = [\"local:bob\"");
    let r = ws.run("carol", &["run", &format!("confirm {code}")]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("no longer allowed"), "{}", r.stdout);
}

#[test]
fn someone_outside_every_team_is_refused_and_told_why() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "members = [\"local:*\"", "members = [\"local:bob\"");
    let r = ws.run("eve", &["run", "--json", "deploy version payments prod"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["status"], "refused");
    assert!(r.json()["headline"].as_str().unwrap_or("").contains("not in any team"));
    let who = ws.run("eve", &["run", "whoami"]);
    assert_eq!(who.code, 0, "whoami is for everyone");
}

#[test]
fn the_audit_log_records_every_message_and_its_decision() {
    let ws = Ws::new();
    ws.run("alice", &["run", "db list"]);
    ws.run("alice", &["run", "frobnicate the gizmo"]);
    ws.edit("lazyops.toml", "plugins = [\"db\",", "plugins = [");
    ws.run("alice", &["run", "db list"]);
    let r = ws.run("alice", &["audit", "--json", "--who", "local:alice"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = r.stdout;
    assert!(text.contains("db list"), "{text}");
    assert!(text.contains("not_understood"), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("allowed"), "{text}");
    let none = ws.run("alice", &["audit", "--json", "--who", "local:nobody"]);
    assert!(!none.stdout.contains("db list"));
}

#[test]
fn a_state_database_that_is_down_is_a_clear_error_without_its_password() {
    let ws = Ws::new();
    let r = ws
        .cmd("alice", &["run", "todo add \"never\""])
        .env("LAZYOPS_STATE_URL", "postgres://bot:hunter2@127.0.0.1:9/state")
        .output()
        .expect("run");
    let (out, err) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert_eq!(r.status.code(), Some(1));
    assert!(err.contains("state database"), "{err}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"), "{err}");
}

#[test]
fn config_problems_are_all_listed_by_check() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "plugins = [\"db\",", "plugins = [\"dbx\", \"db\",");
    ws.edit("lazyops.toml", "allow = [\"db *\",", "allow = [\"frobnicate *\", \"db qu*\", \"db *\",");
    ws.write(
        "queries/dup.sql",
        "-- name: user-by-id\n-- database: users\n-- param: user_id int\nSELECT 1 WHERE 1 = :user_id\n",
    );
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("enables unknown plugin `dbx`"), "{}", r.stdout);
    assert!(r.stdout.contains("pattern `frobnicate *` does not start with a command word"), "{}", r.stdout);
    assert!(r.stdout.contains("`*` must be a whole word"), "{}", r.stdout);
    assert!(r.stdout.contains("query name `user-by-id` is also used by"), "{}", r.stdout);
}

#[test]
fn a_malformed_config_names_file_line_and_key() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "[envs.prod]", "[envs.prod]\ncolour = \"red\"");
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("lazyops.toml:") && r.stdout.contains("unknown field `colour`"), "{}", r.stdout);
    ws.write("lazyops.toml", "[bot\nname = 1");
    let r = ws.run("alice", &["run", "help"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("lazyops.toml:1"), "{}", r.stderr);
}

#[test]
fn a_config_path_that_does_not_exist_is_named() {
    let out = std::process::Command::new(crate::support::bin())
        .args(["--config", "/nonexistent/lazyops.toml", "run", "help"])
        .output()
        .expect("run");
    let r = crate::support::Run::from(out);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/lazyops.toml") && r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn odd_identities_are_cleaned_before_they_reach_the_audit() {
    let ws = Ws::new();
    let r = ws.run("al ice\u{1b}[31m'; --", &["run", "--json", "whoami"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["headline"], "you are local:alice31m--");
}
