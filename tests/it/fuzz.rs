//! Fuzzing (issue 21): every parser of outside input is fed mutations of the real thing (the
//! demo workspace's own files, the Slack and GitHub fixtures) and arbitrary text. The promise
//! is only that nothing panics, hangs or grows without bound: a bad input is refused with an
//! error or a 4xx, and the server still answers afterwards.
//!
//! proptest (already a dev-dependency) drives them, so they run on stable in the ordinary
//! `cargo test` with no extra tool. Each target runs `LAZYOPS_FUZZ_CASES` cases (default 1000
//! for the parsers, a quarter of that over HTTP): a few seconds in all on CI. Set it higher for
//! a longer local run, e.g. `LAZYOPS_FUZZ_CASES=20000 cargo test --test it fuzz::`.

use std::path::Path;
use std::time::Duration;

use lazyops::transport::github::sign as github_sign;
use lazyops::transport::http::Settings;
use lazyops::transport::slack::verify::sign as slack_sign;
use lazyops::understand::grammar;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

use crate::loopback::{Fake, Server};
use crate::support::Ws;

fn cases(parsers: bool) -> u32 {
    let n = std::env::var("LAZYOPS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000u32);
    if parsers { n } else { (n / 4).max(1) }
}

fn runner(parsers: bool) -> TestRunner {
    // No regression files are written into the tree: a failure prints its input.
    TestRunner::new(Config { cases: cases(parsers), failure_persistence: None, ..Config::default() })
}

/// `seed` with a few edits: characters deleted, any character or printable text inserted, or
/// the rest cut off. Mutations of real input reach deep into a parser, where random bytes are
/// refused on the first line.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    let edit = (any::<Index>(), 0u8..4, any::<char>(), "[ -~]{0,12}");
    prop::collection::vec(edit, 0..6).prop_map(move |edits| {
        let mut s: Vec<char> = seed.chars().collect();
        for (at, op, c, text) in edits {
            let i = if s.is_empty() { 0 } else { at.index(s.len()) };
            match op {
                0 if !s.is_empty() => {
                    s.remove(i);
                }
                0 | 1 => s.insert(i, c),
                2 => {
                    s.splice(i..i, text.chars());
                }
                _ => s.truncate(i),
            }
        }
        s.into_iter().collect()
    })
}

/// Runs `check` on every input of `inputs`; a panic inside fails the test with the input.
fn fuzz<S: Strategy>(parsers: bool, inputs: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    if let Err(e) = runner(parsers).run(&inputs, check) {
        panic!("{e}");
    }
}

// --- parsers ----------------------------------------------------------------------------------

const COMMANDS: &[&str] = &[
    "db query user-by-id 42 --env staging",
    "db query user-by-email email=alice@example.com",
    "db query failed-payments-since since=2026-11-20",
    "deploy version payments --env prod",
    "todo add \"fix <b> & #ops\"",
    "todo assign 3 slack:U222",
    "confirm ab12cd",
    "audit --since 2026-01-01 --who local:alice",
    "meme ProgrammerHumor",
    "help db",
];

#[test]
fn the_grammar_never_panics_and_what_it_accepts_reads_back_as_itself() {
    let catalog = lazyops::workspace::demo_catalog();
    let inputs = prop_oneof![prop::sample::select(COMMANDS).prop_flat_map(mutated), "\\PC{0,80}", any::<String>(),];
    fuzz(true, inputs, |text| {
        if let Ok(cmd) = grammar::parse(&text, &catalog) {
            let canonical = cmd.to_string();
            let again = grammar::parse(&canonical, &catalog);
            prop_assert_eq!(again.as_ref().ok(), Some(&cmd), "`{}` read back from `{}`", canonical, text);
        }
        Ok(())
    });
}

#[test]
fn lazyops_toml_parsing_never_panics() {
    let inputs = prop_oneof![3 => mutated(include_str!("../../examples/lazyops.toml")), 1 => any::<String>()];
    fuzz(true, inputs, |text| {
        let _ = lazyops::config::Config::parse(&text, Path::new("lazyops.toml"));
        Ok(())
    });
}

#[test]
fn query_file_headers_never_panic() {
    let seeds: &[&'static str] = &[
        include_str!("../../queries/user-by-id.sql"),
        include_str!("../../queries/failed-payments-since.sql"),
        include_str!("../../queries/recent-signups.sql"),
    ];
    let inputs = prop_oneof![3 => prop::sample::select(seeds).prop_flat_map(mutated), 1 => any::<String>()];
    fuzz(true, inputs, |text| {
        if let Ok(q) = lazyops::queries::file::QueryFile::parse(&text, Path::new("queries/q.sql")) {
            for dialect in [lazyops::queries::file::Dialect::Postgres, lazyops::queries::file::Dialect::Mysql] {
                let _ = lazyops::queries::file::rewrite_placeholders(&q.sql, dialect);
            }
        }
        Ok(())
    });
}

#[test]
fn manifest_templates_never_panic_when_parsed_or_rendered() {
    let seed = include_str!("../../examples/manifests/update-user-email.yaml");
    let inputs = prop_oneof![3 => mutated(seed), 1 => any::<String>()];
    fuzz(true, inputs, |text| {
        if let Ok(t) = lazyops::manifests::template::Template::parse(&text, Path::new("manifests/t.yaml")) {
            let _ = t.render(&Default::default());
        }
        let _ = lazyops::manifests::yaml::parse(&text);
        Ok(())
    });
}

#[test]
fn intent_files_never_panic() {
    let seeds: &[&'static str] = &[include_str!("../../intents/db.toml"), include_str!("../../intents/chores.toml")];
    let inputs = prop_oneof![3 => prop::sample::select(seeds).prop_flat_map(mutated), 1 => any::<String>()];
    fuzz(true, inputs, |text| {
        let _ = lazyops::understand::intent::parse_file(&text, Path::new("intents/x.toml"));
        Ok(())
    });
}

// --- payloads over HTTP -----------------------------------------------------------------------

const SLACK_SECRET: &str = "fuzz-slack-secret";
const GITHUB_SECRET: &str = "fuzz-github-secret";

/// The real server on loopback with fakes for Slack and GitHub, on a runtime of its own.
struct Target {
    rt: tokio::runtime::Runtime,
    server: Server,
    _fake: Fake,
}

impl Target {
    fn start() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let (server, fake) = rt.block_on(async {
            let fake = Fake::start(crate::slack::slack_ok).await;
            let settings = Settings {
                slack_signing_secret: Some(SLACK_SECRET.into()),
                slack_bot_token: Some("xoxb-fuzz".into()),
                slack_api_url: format!("{}/api", fake.url),
                github_webhook_secret: Some(GITHUB_SECRET.into()),
                github_token: Some("ghp_fuzz".into()),
                github_api_url: fake.url.clone(),
                http_timeout: Duration::from_millis(500),
                max_retry_wait: Duration::from_millis(100),
                ..Settings::default()
            };
            (Server::start(Ws::new(), settings).await, fake)
        });
        Target { rt, server, _fake: fake }
    }

    /// Posts a Slack-signed body; the status.
    fn slack(&self, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
        let now = lazyops::store::now_ms() / 1000;
        let headers = vec![
            ("x-slack-request-timestamp".to_string(), now.to_string()),
            ("x-slack-signature".to_string(), slack_sign(SLACK_SECRET, now, &body)),
            ("content-type".to_string(), content_type.to_string()),
        ];
        self.rt.block_on(self.server.post(path, &headers, body)).status().as_u16()
    }

    fn github(&self, event: &str, body: Vec<u8>) -> u16 {
        let headers = vec![
            ("x-github-event".to_string(), event.to_string()),
            ("x-github-delivery".to_string(), uuid::Uuid::new_v4().to_string()),
            ("x-hub-signature-256".to_string(), github_sign(GITHUB_SECRET, &body)),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        self.rt.block_on(self.server.post("/github/webhook", &headers, body)).status().as_u16()
    }

    /// Still alive after the inputs, and its background work finishes.
    fn still_answers(self) {
        let health = self.rt.block_on(self.server.get("/healthz"));
        assert_eq!(health.status(), 200);
    }
}

/// A signed request that reached the parser is answered 200 (done or ignored) or 400
/// (malformed); nothing else, and never a dropped connection.
fn answered(status: u16) -> Result<(), TestCaseError> {
    prop_assert!(status == 200 || status == 400, "answered {}", status);
    Ok(())
}

#[test]
fn slack_slash_command_forms_never_break_the_server() {
    let t = Target::start();
    let form = include_str!("../fixtures/slack/slash_command.signing_example.form.txt");
    let inputs = prop_oneof![3 => mutated(form), 1 => any::<String>()];
    let form = "application/x-www-form-urlencoded";
    fuzz(false, inputs, |body| answered(t.slack("/slack/commands", form, body.into_bytes())));
    t.still_answers();
}

#[test]
fn slack_event_payloads_never_break_the_server() {
    let t = Target::start();
    let seeds: &[&'static str] = &[
        include_str!("../fixtures/slack/event_callback.app_mention.json"),
        include_str!("../fixtures/slack/event_callback.message_im.json"),
        include_str!("../fixtures/slack/url_verification.json"),
    ];
    let inputs = prop_oneof![3 => prop::sample::select(seeds).prop_flat_map(mutated), 1 => any::<String>()];
    fuzz(false, inputs, |body| answered(t.slack("/slack/events", "application/json", body.into_bytes())));
    t.still_answers();
}

#[test]
fn slack_interaction_payloads_never_break_the_server() {
    let t = Target::start();
    let seed = include_str!("../fixtures/slack/block_actions.button.payload.json");
    let inputs = prop_oneof![3 => mutated(seed), 1 => any::<String>()];
    let form = "application/x-www-form-urlencoded";
    fuzz(false, inputs, |payload| {
        let body = serde_urlencoded::to_string([("payload", payload)]).expect("form");
        answered(t.slack("/slack/interactions", form, body.into_bytes()))
    });
    t.still_answers();
}

#[test]
fn github_webhook_payloads_never_break_the_server() {
    let t = Target::start();
    let seeds: &[(&str, &'static str)] = &[
        ("issue_comment", include_str!("../fixtures/github/issue_comment.created.issue.json")),
        ("pull_request_review_comment", include_str!("../fixtures/github/pull_request_review_comment.created.json")),
        ("ping", include_str!("../fixtures/github/ping.json")),
    ];
    let inputs = prop::sample::select(seeds)
        .prop_flat_map(|(event, seed)| (Just(event), prop_oneof![3 => mutated(seed), 1 => any::<String>()]));
    fuzz(false, inputs, |(event, body)| answered(t.github(event, body.into_bytes())));
    t.still_answers();
}
