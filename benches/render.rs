//! Rendering replies for Slack: the `help` table every slash-command benchmark answers, and a
//! 200-row query result, each to Block Kit and then to the JSON bytes of the HTTP answer.
//!
//! cargo bench --bench render

use lazyops::render::slack;
use lazyops::render::{Block, Reply};
use lazyops::spec::SPECS;
use serde_json::Value;

fn main() {
    divan::main();
}

fn help_reply() -> Reply {
    let rows: Vec<Vec<Value>> = SPECS.iter().map(|s| vec![Value::from(s.usage()), Value::from(s.summary)]).collect();
    Reply::done("lazyops commands")
        .with(Block::Table { columns: vec!["command".into(), "what it does".into()], rows: rows.into(), note: None })
        .text("Type a command, or ask in a sentence. `help <command>` shows its arguments and examples.")
}

fn query_reply() -> Reply {
    let rows: Vec<Vec<Value>> = (0..200)
        .map(|i| {
            vec![
                Value::from(i),
                Value::from(format!("user{i}@example.com")),
                Value::from("2026-11-25T10:00:00Z"),
                Value::Null,
                Value::from(i % 3 == 0),
            ]
        })
        .collect();
    let columns = ["id", "email", "created_at", "deleted_at", "admin"].map(String::from).to_vec();
    Reply::done("user-by-id on prod: 200 rows").with(Block::Table {
        columns,
        rows: rows.into(),
        note: Some("read-only".into()),
    })
}

#[divan::bench(args = ["help", "query"])]
fn block_kit(bencher: divan::Bencher, which: &str) {
    let reply = if which == "help" { help_reply() } else { query_reply() };
    bencher.bench(|| serde_json::to_vec(&slack::render(divan::black_box(&reply))).map(|v| v.len()));
}
