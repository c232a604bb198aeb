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
