//! The LLM tier's overhead outside the model call (target: ≤ 200 µs per message): building the
//! tools from the specs and the catalog, the prompt and request body, the cache key, reading
//! the answer and validating its tool call through the grammar.
//!
//! cargo bench --bench llm

use std::path::Path;
use std::time::Duration;

use lazyops::config::{LlmConfig, LlmMode};
use lazyops::understand::llm::{Allowed, Asking, Llm, Offer, Prompts, to_command};
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

/// Everything per message except the network: tools, prompt, request body, cache key, reading
/// a chat-completion body and validating its tool call.
#[divan::bench]
fn per_message(bencher: divan::Bencher) {
    let catalog = demo_catalog();
    let config = LlmConfig { mode: LlmMode::Always, model: Some("gpt-4o-mini".into()), ..LlmConfig::default() };
    let prompts = Prompts::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts")), &config, &mut Vec::new());
    let llm = Llm::new(None, None);
    let asking = Asking {
        llm: &llm,
        mode: LlmMode::Always,
        config: &config,
        prompts: &prompts,
        allowed: Allowed::everything(&catalog),
        bot_name: "lazyops",
        who: "local:alice",
        timeout: Duration::from_secs(4),
        rate_limited: true,
    };
    let completion = r#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"db_query","arguments":"{\"query\": \"user-by-id\", \"params\": {\"user_id\": 42}}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1200,"completion_tokens":20}}"#;
    assert!(asking.rehearse(&catalog, "who is user 42?", &[], completion).is_ok());
    bencher.bench(|| asking.rehearse(&catalog, divan::black_box("who is user 42?"), &[], completion));
}
