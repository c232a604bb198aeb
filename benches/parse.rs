//! Parsing typical commands against the demo catalog (target: ≤ 5 µs each), and classifying
//! a sentence with the local intent model.
//!
//! cargo bench --bench parse

use lazyops::understand::grammar;
use lazyops::workspace::demo_catalog;

const COMMANDS: &[&str] = &[
    "help",
    "whoami",
    "db list",
    "db describe user-by-id",
    "db query user-by-id 42",
    "db query user-by-email email=alice@example.com --env staging",
    "deploy version payments prod",
    "release check ledger stg",
    "test run smoke staging",
    "todo add \"rotate the staging db password\"",
];

fn main() {
    divan::main();
}

#[divan::bench(args = COMMANDS)]
fn parse(bencher: divan::Bencher, text: &str) {
    let catalog = demo_catalog();
    bencher.bench(|| grammar::parse(divan::black_box(text), &catalog).is_ok());
}
