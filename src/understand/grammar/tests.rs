use proptest::prelude::*;

use super::*;
use crate::param::ParamValue;
use crate::workspace::demo_catalog;

fn ok(input: &str) -> String {
    match parse(input, &demo_catalog()) {
        Ok(c) => c.to_string(),
        Err(e) => panic!("{input:?} did not parse: {e}"),
    }
}

fn err(input: &str) -> ParseError {
    match parse(input, &demo_catalog()) {
        Ok(c) => panic!("{input:?} parsed as `{c}`"),
        Err(e) => e,
    }
}

fn check(input: &str, canonical: &str) {
    assert_eq!(ok(input), canonical, "{input:?}");
}

#[test]
fn typed_commands_become_canonical_text() {
    check("deploy version payments prod", "deploy version payments prod");
    check("Deploy   VERSION pay", "deploy version payments prod");
    check("deploy version payments --env stg", "deploy version payments staging");
    check("deploy version service=users env=dev", "deploy version users dev");
    check("db query user-by-id 42", "db query user-by-id user_id=42");
    check("db query user-by-id user_id=42 --env production", "db query user-by-id user_id=42");
    check("db query user-by-id --env=stg 42", "db query user-by-id user_id=42 --env staging");
    check("db query user-by-email email=alice@example.com", "db query user-by-email email=alice@example.com");
    check("db query recent-signups", "db query recent-signups");
    check("db query recent-signups days=7", "db query recent-signups");
    check("db query recent-signups 30", "db query recent-signups days=30");
    check("db query failed-payments-since since=2026-11-20", "db query failed-payments-since since=2026-11-20");
    check("todo add rotate the staging db password", "todo add \"rotate the staging db password\"");
    check("todo add \"say \\\"hi\\\"\"", "todo add \"say \\\"hi\\\"\"");
    check("todo add \u{201C}smart quotes\u{201D}", "todo add \"smart quotes\"");
    check("todo assign #3 local:alice", "todo assign 3 local:alice");
    check("help", "help");
    check("help deploy", "help deploy");
    check("HELP db Query", "help db query");
    check("meme", "meme");
    check("meme rustjerk", "meme rustjerk");
    check("test run smoke stg", "test run smoke staging");
    check("test run smoke", "test run smoke prod");
    check("confirm 7f3k", "confirm 7F3K");
    check("audit --since 2026-11-01 --who local:alice", "audit --since 2026-11-01 --who local:alice");
    check("audit --since Yesterday --limit 5", "audit --since yesterday --limit 5");
    check("audit --limit 50 --since 2H", "audit --since 2h");
    check("audit today", "audit --since today");
    check("explain which version of payments is live?", "explain \"which version of payments is live?\"");
}

#[test]
fn every_spec_example_parses_to_its_own_command() {
    let catalog = demo_catalog();
    for s in SPECS {
        for ex in s.examples {
            // Examples naming demo things that other issues add (manifest templates) may not resolve yet.
            match parse(ex, &catalog) {
                Ok(c) => assert_eq!(c.kind(), s.kind, "{ex}"),
                Err(e) => assert!(
                    matches!(e.kind, ParseErrorKind::UnknownTemplate { .. }),
                    "spec example {ex:?} of {:?} fails: {e}",
                    s.kind
                ),
            }
        }
    }
}

#[test]
fn keywords_are_whole_words() {
    assert!(matches!(err("dblist").kind, ParseErrorKind::UnknownCommand { .. }));
    assert!(matches!(err("deployversion payments").kind, ParseErrorKind::UnknownCommand { .. }));
}

#[test]
fn errors_point_at_the_column_and_suggest_the_fix() {
    let e = err("deploy version paymnets prod");
    assert_eq!(e.column(), 16);
    assert_eq!(
        e.message(),
        "unknown service `paymnets` (did you mean `payments`?); services are payments, users or ledger"
    );
    assert_eq!(e.usage.as_deref(), Some("deploy version <service> [env]"));
    insta::assert_snapshot!(e.to_string(), @r"
    unknown service `paymnets` (did you mean `payments`?); services are payments, users or ledger (column 16)
      deploy version paymnets prod
                     ^^^^^^^^
    usage: deploy version <service> [env]
    ");
    assert_eq!(err("deploy version payments prodd").kind.hint(), Some("prod"));
    assert_eq!(err("deplyo version payments").kind.hint(), Some("deploy version"));
    assert_eq!(err("db qeury user-by-id 1").kind.hint(), Some("db query"));
    assert_eq!(err("db query user-by-idd 1").kind.hint(), Some("user-by-id"));
    assert_eq!(err("test run smokee").kind.hint(), Some("smoke"));
    assert_eq!(err("help deplyo").kind.hint(), Some("deploy"));
    assert_eq!(err("db").message(), "`db` needs one of: list, describe, query, schema or sql");
    assert_eq!(
        err("db sql userz \"SELECT 1\"").message(),
        "unknown database `userz` (did you mean `users`?); databases are users"
    );
}

#[test]
fn audit_flags_say_which_forms_they_take() {
    assert_eq!(
        err("audit --since last-tuesday").message(),
        "`since` takes today, yesterday, 30m, 2h, 7d, 2w or a date like 2026-11-25, not `last-tuesday`"
    );
    for bad in ["0h", "2y", "h", "-2h", "99999999d"] {
        assert!(err(&format!("audit --since {bad}")).message().starts_with("`since` takes"), "{bad}");
    }
    for bad in ["0", "1001", "ten", "-3"] {
        assert_eq!(
            err(&format!("audit --limit {bad}")).message(),
            format!("`limit` takes a number of rows from 1 to 1000, not `{bad}`")
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error_not_a_panic() {
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err("   \t ").kind, ParseErrorKind::Empty);
    assert_eq!(err("todo add \"unbalanced").kind, ParseErrorKind::UnbalancedQuote);
    assert_eq!(err("db query user-by-id \"42").kind, ParseErrorKind::UnbalancedQuote);
    assert_eq!(
        err("deploy version payments --colour red").kind,
        ParseErrorKind::UnknownArg { name: "colour".into(), hint: None }
    );
    assert_eq!(err("deploy version payments --evn prod").kind.hint(), Some("env"));
    assert_eq!(
        err("db query user-by-id user_id=1 user_id=2").kind,
        ParseErrorKind::DuplicateArg { name: "user_id".into() }
    );
    assert_eq!(
        err("deploy version payments env=prod --env dev").kind,
        ParseErrorKind::DuplicateArg { name: "env".into() }
    );
    assert_eq!(
        err("db query user-by-id user_id=99999999999999999999").message(),
        "`user_id` must be a whole number, not `99999999999999999999`"
    );
    assert_eq!(err("todo done 0").message(), "`id` must be a positive whole number, not `0`");
    assert_eq!(err("test status -3").message(), "`id` must be a positive whole number, not `-3`");
    assert_eq!(
        err("db query failed-payments-since since=2026-02-30").message(),
        "`since` must be a date like 2026-11-25, not `2026-02-30`"
    );
    assert!(err("db query user-by-id").message().starts_with("missing `user_id` (int)"));
    assert_eq!(err("whoami now").kind, ParseErrorKind::ExtraArg { given: "now".into() });
    assert_eq!(err("deploy version").message(), "missing <service> (a service)");
    assert!(err("meme r/rust!").message().contains("is not a subreddit name"));
    assert!(err("todo add").message().contains("missing the TODO text"));
}

#[test]
fn control_characters_are_never_echoed_raw() {
    let e = err("deploy version \u{1b}[31mpayments");
    assert!(!e.caret().contains('\u{1b}'), "{:?}", e.caret());
}

#[test]
fn sql_injection_is_just_a_bad_value() {
    assert!(err("db query user-by-id \"1 OR 1=1\"").message().contains("must be a whole number"));
    let c = parse("db query user-by-email \"'; DROP TABLE users; --\"", &demo_catalog()).unwrap();
    let Command::DbQuery { params, .. } = &c else { panic!("{c:?}") };
    assert_eq!(params[0].1, ParamValue::Text("'; DROP TABLE users; --".into()));
    assert_eq!(c.to_string(), "db query user-by-email email=\"'; DROP TABLE users; --\"");
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9]{0,8}", "[a-zA-Z0-9 @._+:/\"\\\\'=-]{1,20}", Just("--env".to_string()), "\\PC{1,10}",]
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn env() -> impl Strategy<Value = String> {
    prop_oneof![Just("prod".to_string()), Just("staging".to_string()), Just("dev".to_string())]
}

fn service() -> impl Strategy<Value = String> {
    prop_oneof![Just("payments".to_string()), Just("users".to_string()), Just("ledger".to_string())]
}

/// Commands valid against the demo catalog.
fn any_command() -> impl Strategy<Value = Command> {
    let id = 1u64..u64::MAX;
    prop_oneof![
        Just(Command::Whoami),
        Just(Command::DbList),
        Just(Command::TestList),
        Just(Command::TodoList),
        prop_oneof![Just(None), Just(Some("deploy".to_string())), Just(Some("db query".to_string()))]
            .prop_map(|topic| Command::Help { topic }),
        (service(), env()).prop_map(|(service, env)| Command::DeployVersion { service, env }),
        (service(), env()).prop_map(|(service, env)| Command::DbSchemaCheck { service, env }),
        (service(), env()).prop_map(|(service, env)| Command::ReleaseCheck { service, env }),
        (prop_oneof![Just("smoke"), Just("e2e")], env())
            .prop_map(|(s, env)| Command::TestRun { suite: s.to_string(), env }),
        id.clone().prop_map(|id| Command::TestStatus { run: RunRef::Id(id) }),
        Just(Command::TestStatus { run: RunRef::Last }),
        Just(Command::TestStatus { run: RunRef::Suite("smoke".into()) }),
        id.clone().prop_map(|id| Command::TodoDone { id }),
        (id.clone(), "[a-z]{1,5}:[a-z0-9._-]{1,10}").prop_map(|(id, who)| Command::TodoAssign { id, who }),
        text().prop_map(|t| Command::TodoAdd { text: t.trim().to_string() }),
        text().prop_map(|t| Command::Explain { text: t.trim().to_string() }),
        proptest::option::of("[A-Za-z0-9_]{2,21}").prop_map(|subreddit| Command::Meme { subreddit }),
        "[0-9A-Z]{4}".prop_map(|code| Command::Confirm { code }),
        "[0-9A-Z]{6}".prop_map(|code| Command::Approve { code }),
        ("[0-9A-Z]{6}", proptest::option::of(text()))
            .prop_map(|(code, reason)| Command::Reject { code, reason: reason.map(|r| r.trim().to_string()) }),
        Just(Command::Approvals),
        (
            proptest::option::of(prop_oneof![
                Just(crate::command::Since::Today),
                Just(crate::command::Since::Yesterday),
                (
                    1u32..500,
                    prop_oneof![
                        Just(crate::command::SpanUnit::Minutes),
                        Just(crate::command::SpanUnit::Hours),
                        Just(crate::command::SpanUnit::Days),
                    ]
                )
                    .prop_map(|(n, u)| crate::command::Since::Ago(n, u)),
                (2000i32..2100, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| crate::command::Since::Date(
                    time::Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), d).expect("date")
                )),
            ]),
            proptest::option::of("[a-z]{1,5}:[a-z0-9._-]{1,10}"),
            proptest::option::of((1u32..=1000).prop_filter("not the default", |n| *n != 50)),
        )
            .prop_map(|(since, who, limit)| Command::Audit { since, who, limit }),
        (text(), env()).prop_map(|(sql, env)| Command::DbSql {
            database: "users".into(),
            sql: sql.trim().to_string(),
            env
        }),
        (any::<i64>(), proptest::option::of(prop_oneof![Just("staging".to_string()), Just("dev".to_string())]))
            .prop_map(|(n, env)| Command::DbQuery {
                query: "user-by-id".into(),
                params: vec![("user_id".into(), ParamValue::Int(n))],
                env
            }),
        "[^\u{0}]{0,30}".prop_map(|email| Command::DbQuery {
            query: "user-by-email".into(),
            params: vec![("email".into(), ParamValue::Text(email.trim().to_string()))],
            env: None
        }),
        (1i64..10_000).prop_filter("not the default", |d| *d != 7).prop_map(|d| Command::DbQuery {
            query: "recent-signups".into(),
            params: vec![("days".into(), ParamValue::Int(d))],
            env: None
        }),
    ]
}

proptest! {
    #[test]
    fn canonical_text_parses_back(cmd in any_command()) {
        let text = cmd.to_string();
        let parsed = parse(&text, &demo_catalog());
        prop_assert_eq!(parsed.as_ref().ok(), Some(&cmd), "{} → {:?}", text, parsed.as_ref().err().map(|e| e.to_string()));
    }

    #[test]
    fn random_text_never_panics(words in proptest::collection::vec(word(), 0..8), raw in "\\PC{0,60}") {
        let catalog = demo_catalog();
        let _ = parse(&words.join(" "), &catalog);
        let _ = parse(&raw, &catalog);
        for s in SPECS {
            let _ = parse(&format!("{} {}", s.name(), words.join(" ")), &catalog);
        }
    }
}

#[test]
fn approvals_are_typed_commands_and_db_sql_takes_one_quoted_statement() {
    let catalog = demo_catalog();
    assert!(typed_as_command("approve 7F3K9Q", &catalog));
    assert!(typed_as_command("reject 7F3K9Q too broad, use user-by-email", &catalog));
    assert!(!typed_as_command("approve the release of payments", &catalog));
    assert!(typed_as_command("approvals", &catalog));
    let c = parse("reject 7f3k9q too broad, use user-by-email", &catalog).unwrap();
    assert_eq!(c.to_string(), "reject 7F3K9Q \"too broad, use user-by-email\"");
    let c = parse("db sql users \"SELECT \\\"email\\\" FROM users WHERE id = 1\"", &catalog).unwrap();
    assert_eq!(c.to_string(), "db sql users \"SELECT \\\"email\\\" FROM users WHERE id = 1\" --env prod");
    assert!(parse("db sql users \"  \"", &catalog).is_err());
    assert!(parse("db sql users", &catalog).is_err());
}

#[test]
fn confirm_and_cancel_are_typed_commands_only_with_a_code() {
    let catalog = demo_catalog();
    assert!(typed_as_command("cancel 7F3K", &catalog));
    assert!(typed_as_command("confirm 7F3K", &catalog));
    assert!(!typed_as_command("cancel test run 12", &catalog), "a sentence, for the intent layer");
    assert!(!typed_as_command("confirm the release of payments", &catalog));
}
