//! The terminal front end: `lazyops run`, `check`, `init`, exit codes and JSON.

use crate::support::Ws;

#[test]
fn run_help_lists_every_command() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "help"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for cmd in ["deploy version", "db query", "todo add", "manifest", "release check"] {
        assert!(r.stdout.contains(cmd), "help lacks {cmd}: {}", r.stdout);
    }
}

#[test]
fn run_json_db_list_is_valid_json_with_the_demo_queries() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "--json", "db list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["status"], "done");
    assert_eq!(v["command"], "db list");
    let text = v.to_string();
    for q in
        ["user-by-id", "user-by-email", "orders-by-user", "payment-by-id", "failed-payments-since", "recent-signups"]
    {
        assert!(text.contains(q), "missing {q}");
    }
}

#[test]
fn chat_answers_help_whoami_and_db_commands_and_confirms_inline() {
    let ws = Ws::new();
    let input = b"help\nwhoami\ndb list\ndb describe user-by-id\npls list the db queries i can run\ny\nwhat queries can i run\nn\n";
    let r = ws.run_stdin("alice", &["chat"], input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("lazyops commands"), "{}", r.stdout);
    assert!(r.stdout.contains("you are local:alice"));
    assert!(r.stdout.contains("6 queries you may run"));
    assert!(r.stdout.contains("query user-by-id"));
    assert!(r.stdout.contains("run `db list`?"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("6 queries you may run").count(), 2, "y ran it once more: {}", r.stdout);
    assert!(r.stdout.contains("cancelled `db list`"), "{}", r.stdout);
    assert!(!r.stdout.contains('\u{1b}'), "no colour when piped");
}

#[test]
fn run_exit_codes_follow_the_design() {
    let ws = Ws::new();
    assert_eq!(ws.run("alice", &["run", "whoami"]).code, 0);
    assert_eq!(ws.run("alice", &["run", "deploy version nosuch"]).code, 2, "usage error");
    assert_eq!(ws.run("alice", &["run", "blorp the flibbertigibbet"]).code, 2, "not understood");
    assert_eq!(ws.run("alice", &["run", "could you list the db queries?"]).code, 3, "waiting for confirmation");
    assert_eq!(ws.run("alice", &["run", "--yes", "could you list the db queries?"]).code, 0, "--yes confirms");
    ws.edit("lazyops.toml", "members = [\"local:*\"", "members = [\"local:bob\"");
    assert_eq!(ws.run("alice", &["run", "db list"]).code, 1, "refused");
}

#[test]
fn the_demo_is_materialised_once_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        std::process::Command::new(crate::support::bin())
            .current_dir(dir.path())
            .env_remove("LAZYOPS_CONFIG")
            .env_remove("LAZYOPS_STATE_URL")
            .args(["run", "--json", "db list"])
            .output()
            .expect("run")
    };
    assert!(run().status.success());
    let db = dir.path().join(".lazyops/demo/users.db");
    let first = std::fs::metadata(&db).and_then(|m| m.modified()).expect("demo db written");
    assert!(run().status.success());
    let second = std::fs::metadata(&db).and_then(|m| m.modified()).expect("demo db still there");
    assert_eq!(first, second, "start-up did not redo the demo");
}

#[test]
fn check_passes_on_the_demo_and_init_keeps_existing_files() {
    let ws = Ws::new();
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    ws.write(
        "queries/user-by-id.sql",
        "-- name: user-by-id\n-- database: users\n-- param: user_id int\nSELECT 1 AS one WHERE 1 = :user_id\n",
    );
    let again = std::process::Command::new(crate::support::bin()).arg("init").arg(ws.path()).output().expect("init");
    assert!(again.status.success());
    let kept = std::fs::read_to_string(ws.path().join("queries/user-by-id.sql")).expect("query file");
    assert!(kept.contains("SELECT 1 AS one"), "init must not clobber a team's edits");
}
