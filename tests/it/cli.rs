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
    assert_eq!(ws.run("carol", &["run", "db list"]).code, 1, "refused (alice is the demo's admin)");
}

/// Every `run --json` prints exactly one JSON document; these are its status and exit code.
fn one_document(r: &crate::support::Run) -> serde_json::Value {
    let mut docs = serde_json::Deserializer::from_str(&r.stdout).into_iter::<serde_json::Value>();
    let first = docs.next().and_then(Result::ok).unwrap_or_else(|| panic!("no JSON document: {}", r.stdout));
    assert!(docs.next().is_none(), "more than one JSON document: {}", r.stdout);
    first
}

#[test]
fn run_json_statuses_and_exit_codes_are_the_pinned_ones() {
    let ws = Ws::new();
    let refused = ws.run("alice", &["run", "--json", "drop the users table"]);
    assert_eq!((refused.code, one_document(&refused)["status"].as_str()), (1, Some("refused")), "{}", refused.stdout);
    let unknown = ws.run("alice", &["run", "--json", "blorp the flibbertigibbet"]);
    assert_eq!((unknown.code, one_document(&unknown)["status"].as_str()), (2, Some("error")));
    let usage = ws.run("alice", &["run", "--json", "deploy version nosuch"]);
    assert_eq!((usage.code, one_document(&usage)["status"].as_str()), (2, Some("error")));
    let confirm = ws.run("alice", &["run", "--json", "could you list the db queries?"]);
    assert_eq!((confirm.code, one_document(&confirm)["status"].as_str()), (3, Some("confirm")));
    let question = ws.run("alice", &["run", "--json", "which version is deployed?"]);
    assert_eq!((question.code, one_document(&question)["status"].as_str()), (4, Some("question")));
}

#[test]
fn a_failed_test_run_is_one_json_document_with_status_failed_and_exit_1() {
    let ws = Ws::new();
    ws.write("suites/broken.sh", "echo '2 passed, 1 failed'\nexit 1\n");
    let mut cfg = std::fs::read_to_string(ws.config()).expect("config");
    cfg.push_str("\n[suites.broken]\ncommand = [\"sh\", \"suites/broken.sh\"]\n");
    std::fs::write(ws.config(), cfg).expect("config");
    let r = ws.run("alice", &["run", "--json", "--yes", "test run broken"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v = one_document(&r);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["command"], "test run broken prod", "{v}");
    assert_eq!(v["test_run"]["id"], 1, "{v}");
    assert_eq!(v["test_run"]["state"], "failed", "{v}");
    assert!(v["headline"].as_str().is_some_and(|h| h.contains("test run #1 (broken on prod) failed")), "{v}");
    let passed = ws.run("alice", &["run", "--json", "--yes", "test run smoke"]);
    assert_eq!(passed.code, 0, "{}{}", passed.stdout, passed.stderr);
    assert_eq!(one_document(&passed)["test_run"]["state"], "passed");
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

#[test]
fn a_person_sees_a_friendly_error_and_no_log_lines_which_go_to_the_workspace_log() {
    let ws = Ws::new();
    // Nothing listens on port 9 of loopback: Reddit is down.
    let down = "http://127.0.0.1:9";
    let r: crate::support::Run = ws
        .cmd("alice", &["run", "meme"])
        .env_remove("LAZYOPS_LOG")
        .env("LAZYOPS_REDDIT_URL", down)
        .output()
        .expect("run")
        .into();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.trim().is_empty(), "the friendly error is on stdout");
    assert_eq!(r.stderr, "", "no log line reaches the person");
    let log = std::fs::read_to_string(ws.path().join("lazyops.log")).expect("the workspace log");
    assert!(log.contains("reddit request failed"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colours in a file: {log}");
    // LAZYOPS_LOG asks for them on stderr: plain text, as stderr is not a terminal.
    let asked: crate::support::Run = ws
        .cmd("alice", &["run", "meme"])
        .env("LAZYOPS_LOG", "warn")
        .env("LAZYOPS_REDDIT_URL", down)
        .output()
        .expect("run")
        .into();
    assert!(asked.stderr.contains("WARN") && asked.stderr.contains("reddit request failed"), "{}", asked.stderr);
    assert!(!asked.stderr.contains('\u{1b}'), "no ANSI colours when stderr is not a terminal: {:?}", asked.stderr);
}

#[test]
fn a_refused_hot_reload_in_chat_is_one_sentence_above_the_prompt_and_no_log_line() {
    use std::io::Write as _;
    let ws = Ws::new();
    let mut child = ws
        .cmd("alice", &["chat"])
        .env_remove("LAZYOPS_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn chat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"whoami\n").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let bad = "-- name: bad\n-- database: users\nDELETE FROM users\n";
    ws.write("queries/bad.sql", bad);
    let log = ws.path().join("lazyops.log");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("not reloaded")) {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the reload was never refused");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The same problem written again is not told again.
    ws.write("queries/bad.sql", bad);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(b"whoami\n").expect("write");
    drop(stdin);
    let r: crate::support::Run = child.wait_with_output().expect("wait").into();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("Your edit was not loaded").count(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("bad.sql"), "names the file: {}", r.stdout);
    assert_eq!(r.stdout.matches("you are local:alice").count(), 3, "the session went on: {}", r.stdout);
    assert_eq!(r.stderr, "", "no log line in the session");
}

#[test]
fn typed_commands_with_a_courtesy_word_are_confirmed_as_the_command_understood() {
    let ws = Ws::new();
    for (text, command) in [
        ("todo list please", "todo list"),
        ("meme pls", "meme"),
        ("release check ledger pls", "release check ledger prod"),
        ("please whoami", "whoami"),
    ] {
        let r = ws.run("alice", &["run", "--json", text]);
        let v = one_document(&r);
        assert_eq!((r.code, v["confirm"]["command"].as_str()), (3, Some(command)), "{text}: {v}");
    }
    // Extra words are a sentence for the intent layer, never a caret under the grammar's error.
    for text in ["test status of run 3", "cancel that run"] {
        let r = ws.run("bob", &["run", "--json", text]);
        let v = one_document(&r);
        assert!(!v.to_string().contains('^'), "{text}: {v}");
    }
    // A bad value in a typed command is still the grammar's error, with its caret.
    let r = ws.run("carol", &["run", "--json", "db query user-by-id abc"]);
    let v = one_document(&r);
    assert_eq!((r.code, v["status"].as_str()), (2, Some("error")), "{v}");
    assert!(v["blocks"][0]["text"].as_str().is_some_and(|t| t.contains("^^^")), "{v}");
}

#[test]
fn text_typed_at_a_confirmation_prompt_cancels_it_and_is_the_next_message() {
    let ws = Ws::new();
    let r = ws.run_stdin("alice", &["chat"], b"what queries can i run\ntodo list\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cancelled = r.stdout.find("cancelled `db list`").unwrap_or_else(|| panic!("{}", r.stdout));
    let listed =
        r.stdout.find("TODO list is empty").unwrap_or_else(|| panic!("todo list was thrown away: {}", r.stdout));
    assert!(cancelled < listed, "said cancelled first: {}", r.stdout);
    assert!(!r.stdout.contains("6 queries you may run"), "db list did not run: {}", r.stdout);
}

#[test]
fn a_release_check_asked_in_a_sentence_asks_for_its_ticks_after_confirmation() {
    let ws = Ws::new();
    let r = ws.run_stdin("alice", &["chat"], b"check the release of payments on staging\ny\ny\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("tick “changelog reviewed”? [y/N]"), "{}", r.stdout);
    assert!(r.stdout.contains("ticked “changelog reviewed” for payments (staging)"), "{}", r.stdout);
}

#[test]
fn a_missing_version_source_is_a_plain_sentence_and_its_config_advice_goes_to_check() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "--json", "deploy version ledger dev"]);
    let v = one_document(&r);
    assert_eq!(v["headline"], "ledger has no known version on dev", "{v}");
    assert!(!r.stdout.contains("[services."), "no config advice for on-call: {}", r.stdout);
    let check = ws.run("alice", &["check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("note: service `ledger` has no version source for `dev`: add [services.ledger.version.dev]"),
        "{}",
        check.stdout
    );
    let log = std::fs::read_to_string(ws.path().join("lazyops.log")).expect("log");
    assert!(log.contains("[services.ledger.version.dev]"), "{log}");
}

#[test]
fn output_reads_as_sentences_without_null_placeholders_or_cut_descriptions() {
    let ws = Ws::new();
    // A zero-row answer says so in a sentence.
    let none = ws.run("alice", &["run", "db query failed-payments-since since=2030-01-01"]);
    assert_eq!(none.code, 0, "{}", none.stdout);
    assert!(none.stdout.starts_with("no failed payments since 2030-01-01\n"), "{}", none.stdout);
    // An empty cell is a dash, never NULL.
    ws.write("queries/with-gap.sql", "-- name: with-gap\n-- database: users\nSELECT 1 AS id, NULL AS note\n");
    let gap = ws.run("alice", &["run", "db query with-gap"]);
    assert!(gap.stdout.contains("| 1  | —    |"), "{}", gap.stdout);
    assert!(!gap.stdout.contains("NULL"), "{}", gap.stdout);
    // describe: "required", and only examples without placeholders (the typo'd training ones have them).
    let d = ws.run("alice", &["run", "db describe failed-payments-since"]);
    assert!(d.stdout.contains("| since | date | required |"), "{}", d.stdout);
    for bad in ["NULL", "{since}", "paymnets"] {
        assert!(!d.stdout.contains(bad), "{bad} in {}", d.stdout);
    }
    // help's descriptions are whole.
    let help = ws.run("alice", &["run", "help"]);
    assert!(help.stdout.contains("run a predefined read-only query with typed, bound parameters"), "{}", help.stdout);
    assert!(!help.stdout.contains('…'), "{}", help.stdout);
    // A test run's whole output is labelled with its size, not "the last N bytes shown".
    ws.write("suites/hello.sh", "echo hello\n");
    let mut cfg = std::fs::read_to_string(ws.config()).expect("config");
    cfg.push_str("\n[suites.hello]\ncommand = [\"sh\", \"suites/hello.sh\"]\n");
    std::fs::write(ws.config(), cfg).expect("config");
    let ran = ws.run("alice", &["run", "--yes", "test run hello"]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let status = ws.run("alice", &["run", "test status 1"]);
    assert!(status.stdout.contains("output (6 bytes):\n    hello\n"), "{}", status.stdout);
}

#[test]
fn check_reports_each_problem_once_naming_the_dialects() {
    let ws = Ws::new();
    // Only `env:` URLs: the files are checked in all three dialects.
    ws.edit(
        "lazyops.toml",
        "[databases.users]",
        "[databases.all]\nprod = \"env:LAZYOPS_TEST_NEVER_SET\"\n\n[databases.users]",
    );
    for name in ["one", "two"] {
        ws.write(
            &format!("queries/bad-{name}.sql"),
            &format!("-- name: bad-{name}\n-- database: all\nDELETE FROM users\n"),
        );
    }
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("2 problem(s)"), "{}", r.stdout);
    for name in ["one", "two"] {
        let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains(&format!("bad-{name}.sql:3: "))).collect();
        assert_eq!(lines.len(), 1, "{}", r.stdout);
        assert!(lines[0].ends_with("found DELETE (sqlite, postgres, mysql)"), "{}", lines[0]);
    }
}

#[test]
fn intents_unmatched_separates_misses_typed_mistakes_and_refusals_and_counts_cancelled_sentences() {
    let ws = Ws::new();
    ws.run("alice", &["run", "blorp the flibbertigibbet"]);
    ws.run("alice", &["run", "db query user-by-id abc"]);
    ws.run("alice", &["run", "drop the users table"]);
    // Understood as a command its author did not want: cancelled.
    let asked = ws.run("alice", &["run", "--json", "could you list the db queries?"]);
    let code = one_document(&asked)["confirm"]["code"].as_str().expect("code").to_string();
    ws.run("alice", &["run", &format!("cancel {code}")]);
    let r = ws.run("alice", &["intents", "unmatched", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = one_document(&r);
    let texts = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(|e| e["text"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    assert_eq!(texts("misses"), ["could you list the db queries?", "blorp the flibbertigibbet"], "{v}");
    assert_eq!(v["misses"][0]["understood_as"], "db list", "{v}");
    assert_eq!(texts("typed"), ["db query user-by-id abc"], "{v}");
    assert_eq!(texts("refused"), ["drop the users table"], "{v}");
    let plain = ws.run("alice", &["intents", "unmatched"]);
    assert!(plain.stdout.contains("2 misses"), "{}", plain.stdout);
    assert!(plain.stdout.contains("(was `db list`)"), "{}", plain.stdout);
}

#[test]
fn the_first_chat_says_it_created_the_demo_workspace_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = || {
        let mut c = std::process::Command::new(crate::support::bin());
        c.current_dir(dir.path())
            .env_remove("LAZYOPS_CONFIG")
            .env_remove("LAZYOPS_STATE_URL")
            .args(["--as", "alice", "chat"])
            .stdin(std::process::Stdio::null());
        crate::support::Run::from(c.output().expect("chat"))
    };
    let first = chat();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.stdout.matches("Created ./.lazyops/ with the demo workspace").count(), 1, "{}", first.stdout);
    let again = chat();
    assert!(!again.stdout.contains("Created ./.lazyops/"), "{}", again.stdout);
}

#[test]
fn the_demo_keeps_audit_for_admins_as_the_readme_says() {
    let ws = Ws::new();
    let bob = ws.run("bob", &["run", "--json", "audit"]);
    assert_eq!((bob.code, one_document(&bob)["status"].as_str()), (1, Some("refused")), "{}", bob.stdout);
    let alice = ws.run("alice", &["run", "audit"]);
    assert_eq!(alice.code, 0, "{}", alice.stdout);
    assert_eq!(ws.run("bob", &["run", "db list"]).code, 0, "everything else is still allowed");
}

#[test]
fn audit_takes_relative_times_and_a_limit_as_help_shows_them() {
    let ws = Ws::new();
    for text in ["db list", "whoami", "todo list"] {
        assert_eq!(ws.run("alice", &["run", text]).code, 0, "{text}");
    }
    let headline = |r: &crate::support::Run| one_document(r)["headline"].as_str().unwrap_or_default().to_string();
    let two = ws.run("alice", &["audit", "--json", "--limit", "2"]);
    assert_eq!(two.code, 0, "{}", two.stderr);
    assert!(headline(&two).starts_with("2 audit entries"), "{}", two.stdout);
    let recent = ws.run("alice", &["run", "--json", "audit --since 10m"]);
    let n: usize = headline(&recent).split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(n >= 3, "the three commands of the last minutes: {}", recent.stdout);
    assert_eq!(ws.run("alice", &["audit", "--since", "today", "--who", "local:alice"]).code, 0);
    for (flag, value, says) in [
        ("--since", "tomorrow", "`since` takes today, yesterday, 30m, 2h, 7d, 2w or a date like 2026-11-25"),
        ("--limit", "0", "`limit` takes a number of rows from 1 to 1000"),
    ] {
        let bad = ws.run("alice", &["audit", flag, value]);
        assert_eq!(bad.code, 2, "{flag} {value}: {}", bad.stdout);
        assert!(format!("{}{}", bad.stdout, bad.stderr).contains(says), "{}{}", bad.stdout, bad.stderr);
    }
    let help = ws.run("alice", &["run", "help audit"]);
    assert!(
        help.stdout.contains("audit [--since today|yesterday|2h|7d|YYYY-MM-DD] [--who identity] [--limit N]"),
        "{}",
        help.stdout
    );
}

#[test]
fn a_release_check_of_the_first_environment_does_not_fail_for_want_of_an_earlier_one() {
    let ws = Ws::new();
    let r = ws.run("alice", &["run", "release check payments dev"]);
    assert!(!r.stdout.contains("no environment comes before"), "{}", r.stdout);
    assert!(r.stdout.contains("✅ staging runs the version to release: dev is the first environment"), "{}", r.stdout);
    assert!(!r.stdout.contains("not ready"), "{}", r.stdout);
}

#[test]
fn a_question_numbers_its_choices_in_chat_and_the_number_answers_it() {
    let ws = Ws::new();
    let r = ws.run_stdin("alice", &["chat"], b"which version is deployed in prod?\n2\ny\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1) payments 2) users 3) ledger"), "{}", r.stdout);
    assert!(r.stdout.contains("deploy version users prod"), "{}", r.stdout);
}
