//! The LLM tier's overhead outside the model call (target: ≤ 200 µs per message): building the
//! tools from the specs and the catalog, the prompt and request body, the cache key, reading
//! the answer and validating its tool call through the grammar.
//!
//! cargo bench --bench llm

use std::path::Path;
use std::time::Duration;

use lazyops::config::{LlmConfig, LlmMode};
use lazyops::understand::llm::{Allowed, Asking, Llm, Offer, Setup, to_command};
use lazyops::workspace::demo_catalog;

const CALLS: &[(&str, &str)] = &[
    ("deploy_version", r#"{"service": "pay", "env": "stg"}"#),
    ("db_query", r#"{"query": "user-by-email", "params": {"email": "alice@example.com"}, "env": "staging"}"#),
    ("todo_add", r#"{"text": "rotate the \"staging\" db password"}"#),
    ("restart_service", r#"{"service": "payments"}"#),
];

fn main() {
    divan::main();
}

/// The tools for one requester.
#[divan::bench]
fn tools(bencher: divan::Bencher) {
    let catalog = demo_catalog();
    let allowed = Allowed::everything(&catalog);
    bencher.bench(|| Offer::new(divan::black_box(&catalog), &allowed));
}

/// One tool call to a `Command` (or its refusal) through the grammar.
#[divan::bench(args = CALLS)]
fn validate(bencher: divan::Bencher, call: (&str, &str)) {
    let catalog = demo_catalog();
    let offer = Offer::new(&catalog, &Allowed::everything(&catalog));
    bencher.bench(|| to_command(&offer, &catalog, divan::black_box(call.0), divan::black_box(call.1)));
}

const COMPLETION: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"db_query","arguments":"{\"query\": \"user-by-id\", \"params\": {\"user_id\": 42}}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1200,"completion_tokens":20}}"#;

fn config() -> LlmConfig {
    LlmConfig { mode: LlmMode::Always, model: Some("gpt-4o-mini".into()), ..LlmConfig::default() }
}

fn setup(config: &LlmConfig) -> Setup {
    Setup::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts")), config, &mut Vec::new())
}

fn rehearse(llm: &Llm, config: &LlmConfig, setup: &Setup, catalog: &lazyops::catalog::Catalog) -> bool {
    let asking = Asking {
        llm,
        mode: LlmMode::Always,
        config,
        setup,
        allowed: Allowed::everything(catalog),
        bot_name: "lazyops",
        who: "local:alice",
        timeout: Duration::from_secs(4),
        rate_limited: true,
    };
    asking.rehearse(catalog, divan::black_box("who is user 42?"), &[], COMPLETION).is_ok()
}

/// Everything per message except the network: the tools (already built for this permission
/// set), the prompt, the request body, the cache key, reading a chat-completion body and
/// validating its tool call.
#[divan::bench]
fn per_message(bencher: divan::Bencher) {
    let (catalog, config, llm) = (demo_catalog(), config(), Llm::new(None, None));
    let setup = setup(&config);
    assert!(rehearse(&llm, &config, &setup, &catalog));
    bencher.bench(|| rehearse(&llm, &config, &setup, &catalog));
}

/// The same for the first message of a permission set: the tools and prompts built too.
#[divan::bench]
fn per_message_first(bencher: divan::Bencher) {
    let (catalog, config, llm) = (demo_catalog(), config(), Llm::new(None, None));
    bencher.with_inputs(|| setup(&config)).bench_refs(|setup| rehearse(&llm, &config, setup, &catalog));
}
