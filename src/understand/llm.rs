//! The LLM tier: any OpenAI-compatible model as an optional second opinion on a sentence,
//! never a second parser. The model is offered the commands as tools generated from
//! `spec::SPECS` and the workspace (services, environments, the queries this requester may
//! run). Its tool call is written out as command text with the same quoting as the canonical
//! text and handed to `grammar::parse`, exactly like text a user typed: a call the grammar
//! refuses (an invented command, an unknown service, a value of the wrong type) is dropped and
//! the local answer stands. Nothing here edits what the model said to make it fit.
//!
//! The model can also ask one question or say a request is out of scope. Failures, timeouts
//! and rate limits leave the local answer in place with a note; the caller decides when to ask
//! (`Mode`), this module only how.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::middleware::retry::OpenAIRetryLayer;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
    ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest,
    FunctionObject, ResponseFormat, ToolChoiceOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Understanding;
use super::grammar;
use super::intent::Turn;
use crate::catalog::Catalog;
use crate::command::{Command, always_quote, quote};
use crate::config::{LlmConfig, LlmMode, Problem};
use crate::param::ParamType;
use crate::spec::{ArgKind, CommandKind, CommandSpec, SPECS, spec};

/// The model gives no calibrated score; a fixed value below a typed command's 1.0 says so.
pub const MODEL_CONFIDENCE: f32 = 0.8;

/// Commands never offered: answering a confirmation or an approval, or explaining a sentence,
/// is for people; ad-hoc SQL is typed by the person who will stand behind it.
const NOT_OFFERED: &[CommandKind] = &[
    CommandKind::Confirm,
    CommandKind::Cancel,
    CommandKind::Explain,
    CommandKind::Approve,
    CommandKind::Reject,
    CommandKind::DbSql,
];

/// The placeholders a prompt may use.
const PLACEHOLDERS: &[&str] = &["bot_name", "user", "commands", "services", "envs", "default_env", "queries"];

/// Appended to the system prompt when the server takes no tools: the same choice, as JSON.
const JSON_MODE: &str = "\n\n## Answer format\n\nThis server cannot call tools. The tools are listed \
below as JSON (name, description and the JSON Schema of their arguments) and the rules above apply \
to them unchanged. Answer with exactly one JSON object and nothing else:\n\
- `{\"tool\": \"<tool name>\", \"arguments\": {...}}` to call one tool;\n\
- `{\"question\": \"<one short question>\"}` to ask one clarifying question;\n\
- `{\"out_of_scope\": \"<one short sentence>\"}` when no tool does what the user asks.\n\nTools:\n\n";

// ── prompts ─────────────────────────────────────────────────────────────────

/// The prompt templates from `prompts/`, loaded with the workspace (so they hot-reload with it).
#[derive(Clone, Debug, Default)]
pub struct Prompts {
    pub system: String,
    pub clarification: String,
    /// A short hash of both templates: which prompt answered, in the cache key and `explain`.
    pub version: String,
}

impl Prompts {
    /// Reads `system.md` and `clarification.md`. Missing files and unknown `{placeholders}` are
    /// problems only when the tier is on, so a workspace without prompts still loads.
    pub fn load(dir: &Path, config: &LlmConfig, problems: &mut Vec<Problem>) -> Prompts {
        let on = config.mode != LlmMode::Off;
        let mut read = |name: &str| -> String {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if on {
                        for (line, bad) in unknown_placeholders(&text) {
                            problems.push(Problem::new(
                                &path,
                                Some(line),
                                format!(
                                    "unknown placeholder `{{{bad}}}`; the placeholders are {}",
                                    PLACEHOLDERS.join(", ")
                                ),
                            ));
                        }
                    }
                    text
                }
                Err(_) => {
                    if on {
                        problems.push(Problem::new(
                            &path,
                            None,
                            "missing: the [llm] tier needs it (`lazyops init` writes the default without touching other files)",
                        ));
                    }
                    String::new()
                }
            }
        };
        let system = read("system.md");
        let clarification = read("clarification.md");
        if on && config.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            problems.push(Problem::new(
                dir,
                None,
                "[llm] is on but names no `model`; add `model = \"...\"` under [llm]",
            ));
        }
        let mut h = Sha256::new();
        h.update(system.as_bytes());
        h.update([0]);
        h.update(clarification.as_bytes());
        let version = hex::encode(&h.finalize()[..6]);
        Prompts { system, clarification, version }
    }
}

/// `{name}` tokens that are not placeholders, with their line.
fn unknown_placeholders(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !PLACEHOLDERS.contains(&name)
            {
                out.push((i + 1, name.to_string()));
            }
            rest = &after[end + 1..];
        }
    }
    out
}

/// The tier's part of a workspace: the prompts, and the tools (with the prompts filled in)
/// already built for each set of permissions. A workspace's catalog never changes (a reload
/// builds a new workspace), so what is built here stays right for as long as it lives.
#[derive(Debug, Default)]
pub struct Setup {
    pub prompts: Prompts,
    offers: Mutex<HashMap<Allowed, Arc<Offer>>>,
}

/// Distinct permission sets remembered; teams have few, so this only bounds the unexpected.
const OFFERS_KEPT: usize = 256;

impl Setup {
    pub fn load(dir: &Path, config: &LlmConfig, problems: &mut Vec<Problem>) -> Setup {
        Setup { prompts: Prompts::load(dir, config, problems), offers: Mutex::default() }
    }

    /// The tools for these permissions, built on first use; `catalog` is this workspace's.
    pub fn offer(&self, catalog: &Catalog, allowed: &Allowed, bot_name: &str) -> Arc<Offer> {
        if let Some(o) = lock(&self.offers).get(allowed) {
            return o.clone();
        }
        let offer = Arc::new(Offer::new(catalog, allowed).with_prompts(&self.prompts, catalog, bot_name));
        let mut offers = lock(&self.offers);
        if offers.len() >= OFFERS_KEPT {
            offers.clear();
        }
        offers.insert(allowed.clone(), offer.clone());
        offer
    }
}

// ── what is offered ─────────────────────────────────────────────────────────

/// What the requester may ask for in this place, as far as the tools go. The pipeline fills
/// it from `decide::policy`; `decide` still checks the command the grammar makes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Allowed {
    pub commands: Vec<CommandKind>,
    pub queries: Vec<String>,
    pub subreddits: Vec<String>,
}

impl Allowed {
    /// Every command and query of the catalog: for `intents eval`, which measures understanding,
    /// not permissions.
    pub fn everything(catalog: &Catalog) -> Allowed {
        Allowed {
            commands: SPECS.iter().map(|s| s.kind).collect(),
            queries: catalog.queries.keys().cloned().collect(),
            subreddits: Vec::new(),
        }
    }
}

/// One tool: a command and the JSON Schema of its arguments.
#[derive(Clone, Debug, Serialize)]
struct Tool {
    name: String,
    description: String,
    parameters: Value,
    #[serde(skip)]
    kind: CommandKind,
}

/// The tools offered for one message. Built only from the workspace and the requester's
/// permissions, never from the message, so nothing a user writes can widen it.
#[derive(Clone, Debug)]
pub struct Offer {
    tools: Vec<Tool>,
    queries: Vec<String>,
    /// The tools as JSON, for the JSON-only answer format.
    json: String,
    /// The system and clarification prompts filled in for these tools, all but `{user}`.
    templates: [String; 2],
    /// A digest of the tools and the filled prompts, for the cache key.
    digest: [u8; 32],
}

/// `deploy version` → `deploy_version`
fn tool_name(spec: &CommandSpec) -> String {
    spec.words.join("_")
}

impl Offer {
    pub fn new(catalog: &Catalog, allowed: &Allowed) -> Offer {
        let queries: Vec<String> =
            catalog.queries.keys().filter(|q| allowed.queries.iter().any(|a| a == *q)).cloned().collect();
        let mut tools = Vec::new();
        for spec in SPECS.iter().filter(|s| allowed.commands.contains(&s.kind) && !NOT_OFFERED.contains(&s.kind)) {
            if let Some(parameters) = parameters(spec, catalog, &queries, allowed) {
                let description = format!("{} (usage: `{}`)", spec.summary, spec.usage());
                tools.push(Tool { name: tool_name(spec), description, parameters, kind: spec.kind });
            }
        }
        let json = serde_json::to_string(&tools).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes()).into();
        Offer { tools, queries, json, templates: Default::default(), digest }
    }

    /// Fills the prompts' placeholders for these tools, except `{user}`, which is per message.
    fn with_prompts(mut self, prompts: &Prompts, catalog: &Catalog, bot_name: &str) -> Offer {
        let named = |list: &[crate::catalog::Named]| {
            list.iter()
                .map(|n| {
                    if n.aliases.is_empty() {
                        n.name.clone()
                    } else {
                        format!("{} (also: {})", n.name, n.aliases.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let queries = self
            .queries
            .iter()
            .filter_map(|q| catalog.queries.get(q))
            .map(|q| {
                let params: Vec<String> = q.params.iter().map(|p| format!("{} {}", p.name, p.ty.name())).collect();
                format!("- `{}` ({}): {}", q.name, params.join(", "), q.description)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let queries = if queries.is_empty() { "(none)".to_string() } else { queries };
        let (commands, services, envs) = (self.command_lines(), named(&catalog.services), named(&catalog.envs));
        let fill = |template: &str| {
            template
                .replace("{bot_name}", bot_name)
                .replace("{commands}", &commands)
                .replace("{services}", &services)
                .replace("{envs}", &envs)
                .replace("{default_env}", &catalog.default_env)
                .replace("{queries}", &queries)
        };
        self.templates = [fill(&prompts.system), fill(&prompts.clarification)];
        let mut h = Sha256::new();
        for part in [&self.json, &self.templates[0], &self.templates[1]] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        self.digest = h.finalize().into();
        self
    }

    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }

    fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// The tools in the request's shape.
    fn chat_tools(&self) -> Vec<ChatCompletionTools> {
        self.tools
            .iter()
            .map(|t| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: t.name.clone(),
                        description: Some(t.description.clone()),
                        parameters: Some(t.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect()
    }

    /// Whether a parsed command is one this offer allowed: a tool it listed and, for queries,
    /// a query it listed. The grammar knows every query; the offer knows whose they are.
    pub fn admits(&self, command: &Command) -> bool {
        let offered = self.tools.iter().any(|t| t.kind == command.kind());
        let query_ok = match command {
            Command::DbQuery { query, .. } | Command::DbDescribe { query } => self.queries.contains(query),
            _ => true,
        };
        offered && query_ok
    }

    /// `- deploy_version: which version ... (usage: ...)`, for the prompt's `{commands}`.
    fn command_lines(&self) -> String {
        self.tools.iter().map(|t| format!("- `{}`: {}", t.name, t.description)).collect::<Vec<_>>().join("\n")
    }
}

fn names(list: &[crate::catalog::Named]) -> Vec<String> {
    list.iter().map(|n| n.name.clone()).collect()
}

/// The JSON Schema of a command's arguments; `None` when a required argument has no value to
/// choose from (no services configured, no query allowed), so the tool would be a trap.
fn parameters(spec: &CommandSpec, catalog: &Catalog, queries: &[String], allowed: &Allowed) -> Option<Value> {
    let mut props = Map::new();
    let mut required = Vec::new();
    for a in spec.args {
        let choice = |values: Vec<String>, description: &str| -> Option<Value> {
            if values.is_empty() {
                return None;
            }
            Some(json!({"type": "string", "enum": values, "description": description}))
        };
        let schema = match a.kind {
            ArgKind::Service => choice(names(&catalog.services), a.help),
            ArgKind::Env => choice(
                names(&catalog.envs),
                &format!("the environment; leave it out for the default, `{}`", catalog.default_env),
            ),
            ArgKind::Query => choice(queries.to_vec(), a.help),
            ArgKind::Suite => choice(catalog.suites.clone(), a.help),
            ArgKind::Template => choice(catalog.templates.keys().cloned().collect(), a.help),
            ArgKind::Topic => {
                let mut topics: Vec<String> = SPECS.iter().map(|s| s.name()).collect();
                topics.extend(SPECS.iter().map(|s| s.words[0].to_string()));
                topics.sort();
                topics.dedup();
                choice(topics, a.help)
            }
            ArgKind::Subreddit if !allowed.subreddits.is_empty() => choice(allowed.subreddits.clone(), a.help),
            ArgKind::Subreddit => {
                Some(json!({"type": "string", "pattern": "^[A-Za-z0-9_]{2,21}$", "description": a.help}))
            }
            ArgKind::Id => Some(json!({"type": "integer", "minimum": 1, "description": a.help})),
            ArgKind::Count => Some(json!({
                "type": "integer", "minimum": 1, "maximum": crate::command::AUDIT_MAX_LIMIT, "description": a.help
            })),
            ArgKind::Since => Some(json!({
                "type": "string",
                "description": format!("{} ({})", a.help, crate::command::Since::FORMS)
            })),
            ArgKind::Run => {
                let mut runs = vec!["last".to_string()];
                runs.extend(catalog.suites.iter().cloned());
                let help = format!("{} (a number, or one of: {})", a.help, runs.join(", "));
                Some(json!({"type": "string", "description": help}))
            }
            ArgKind::Date => {
                Some(json!({"type": "string", "format": "date", "description": format!("{} (YYYY-MM-DD)", a.help)}))
            }
            ArgKind::Who | ArgKind::Code | ArgKind::Text | ArgKind::Database | ArgKind::Sql => {
                Some(json!({"type": "string", "description": a.help}))
            }
            ArgKind::Params => Some(params_schema(spec, catalog, queries)),
        };
        match schema {
            Some(s) => {
                props.insert(a.name.to_string(), s);
            }
            None if a.required => return None,
            None => {}
        }
        if a.required {
            required.push(a.name);
        }
    }
    Some(json!({"type": "object", "properties": props, "required": required, "additionalProperties": false}))
}

/// A query's or template's parameters: the union over the offered ones, typed from their files.
fn params_schema(spec: &CommandSpec, catalog: &Catalog, queries: &[String]) -> Value {
    let decls: Vec<(&str, &[crate::param::ParamSpec])> = if spec.kind == CommandKind::DbQuery {
        queries.iter().filter_map(|q| catalog.queries.get(q)).map(|q| (q.name.as_str(), q.params.as_slice())).collect()
    } else {
        catalog.templates.values().map(|t| (t.name.as_str(), t.params.as_slice())).collect()
    };
    let mut props: BTreeMap<&str, (Value, Vec<&str>)> = BTreeMap::new();
    for (owner, params) in decls {
        for p in params {
            let entry = props.entry(p.name.as_str()).or_insert_with(|| (param_type(p), Vec::new()));
            if entry.0 != param_type(p) {
                entry.0 = json!({});
            }
            entry.1.push(owner);
        }
    }
    let props: Map<String, Value> = props
        .into_iter()
        .map(|(name, (mut schema, owners))| {
            if let Value::Object(m) = &mut schema {
                m.insert("description".into(), Value::from(format!("for {}", owners.join(", "))));
            }
            (name.to_string(), schema)
        })
        .collect();
    let which = if spec.kind == CommandKind::DbQuery { "query" } else { "template" };
    json!({
        "type": "object",
        "description": format!("the {which}'s parameters by name, only those the user gave"),
        "properties": props,
        "additionalProperties": false,
    })
}

fn param_type(p: &crate::param::ParamSpec) -> Value {
    let mut v = match p.ty {
        ParamType::Int => json!({"type": "integer"}),
        ParamType::Decimal => json!({"type": "number"}),
        ParamType::Bool => json!({"type": "boolean"}),
        ParamType::Date => json!({"type": "string", "format": "date"}),
        ParamType::Timestamp => json!({"type": "string", "format": "date-time"}),
        ParamType::Uuid => json!({"type": "string", "format": "uuid"}),
        ParamType::Text => json!({"type": "string"}),
    };
    if !p.values.is_empty()
        && let Value::Object(m) = &mut v
    {
        m.insert("enum".into(), Value::from(p.values.clone()));
    }
    v
}

// ── from a tool call to a command ───────────────────────────────────────────

/// Why a model's tool call did not become a command. The local answer stands.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("the model called `{0}`, which is not one of the tools offered")]
    UnknownTool(String),
    #[error("the model's arguments for `{tool}` are not a JSON object: {reason}")]
    Malformed { tool: String, reason: String },
    #[error("the model passed `{name}`, which `{tool}` does not take")]
    UnknownArgument { tool: String, name: String },
    #[error("the model's `{name}` is not a plain value")]
    NotAValue { name: String },
    #[error("the grammar refused `{text}`: {message}")]
    Grammar { text: String, message: String },
    #[error("`{text}` is not among what was offered to this requester")]
    NotOffered { text: String },
    #[error("the model called {0} tools; exactly one is allowed")]
    SeveralCalls(usize),
}

/// The text a tool call stands for: the command words, then each argument as `--name value`
/// (query and template parameters as `name=value`, free text quoted), with the same quoting as
/// the canonical text. Values are written as given; the grammar judges them.
pub fn command_text(offer: &Offer, tool: &str, arguments: &str) -> Result<String, Refusal> {
    let t = offer.tool(tool).ok_or_else(|| Refusal::UnknownTool(tool.chars().take(64).collect()))?;
    let spec = spec(t.kind);
    let malformed = |reason: String| Refusal::Malformed { tool: t.name.clone(), reason };
    let args: Map<String, Value> = match arguments.trim() {
        "" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => Map::new(),
            Ok(other) => return Err(malformed(format!("got {}", kind_of(&other)))),
            Err(e) => return Err(malformed(e.to_string())),
        },
    };
    if let Some(name) = args.keys().find(|k| spec.arg(k).is_none()) {
        return Err(Refusal::UnknownArgument { tool: t.name.clone(), name: name.chars().take(64).collect() });
    }
    let mut out = spec.name();
    for a in spec.args {
        let Some(v) = args.get(a.name).filter(|v| !v.is_null()) else { continue };
        match a.kind {
            ArgKind::Params => {
                let Value::Object(params) = v else { return Err(Refusal::NotAValue { name: a.name.into() }) };
                for (name, pv) in params.iter().filter(|(_, pv)| !pv.is_null()) {
                    let plain = !name.is_empty()
                        && name.starts_with(|c: char| c.is_ascii_alphabetic())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !plain {
                        return Err(Refusal::UnknownArgument {
                            tool: t.name.clone(),
                            name: name.chars().take(64).collect(),
                        });
                    }
                    out.push_str(&format!(" {name}={}", quote(&scalar(name, pv)?)));
                }
            }
            ArgKind::Text | ArgKind::Sql => out.push_str(&format!(" {}", always_quote(&scalar(a.name, v)?))),
            // `help` reads its topic as words.
            ArgKind::Topic => {
                for w in scalar(a.name, v)?.split_whitespace() {
                    out.push_str(&format!(" {}", quote(w)));
                }
            }
            _ => out.push_str(&format!(" --{} {}", a.name, quote(&scalar(a.name, v)?))),
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON string, number or boolean as the text a user would type.
fn scalar(name: &str, v: &Value) -> Result<String, Refusal> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Refusal::NotAValue { name: name.chars().take(64).collect() }),
    }
}

/// A tool call through the grammar: the command, or why not.
pub fn to_command(offer: &Offer, catalog: &Catalog, tool: &str, arguments: &str) -> Result<Command, Refusal> {
    let text = command_text(offer, tool, arguments)?;
    let command =
        grammar::parse(&text, catalog).map_err(|e| Refusal::Grammar { text: text.clone(), message: e.message() })?;
    if !offer.admits(&command) {
        return Err(Refusal::NotOffered { text: command.to_string() });
    }
    Ok(command)
}

// ── the model's answer ──────────────────────────────────────────────────────

/// What the model said, before any checking; this is what the cache keeps.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Call {
        tool: String,
        arguments: String,
    },
    Question(String),
    OutOfScope(String),
    /// Several tool calls in one answer.
    Several(usize),
    /// Text that is none of the above.
    Unclear(String),
}

fn clip(text: &str, max: usize) -> String {
    let t = text.trim();
    if t.chars().count() <= max { t.to_string() } else { format!("{}…", t.chars().take(max).collect::<String>()) }
}

/// Reads an answer given as text: `QUESTION: ...`, `OUT_OF_SCOPE: ...`, or the JSON-only format.
fn answer_from_text(content: &str) -> Answer {
    let mut t = content.trim();
    if let Some(inner) = t.strip_prefix("```") {
        t = inner.trim_start_matches(|c: char| c.is_ascii_alphabetic()).trim_end_matches("```").trim();
    }
    if let Some(q) = t.strip_prefix("QUESTION:") {
        return Answer::Question(clip(q, 300));
    }
    if let Some(o) = t.strip_prefix("OUT_OF_SCOPE:") {
        return Answer::OutOfScope(clip(o, 300));
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) {
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(|s| clip(s, 300));
        if let Some(tool) = m.get("tool").and_then(Value::as_str) {
            let arguments = match m.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            return Answer::Call { tool: tool.to_string(), arguments };
        }
        if let Some(q) = text("question") {
            return Answer::Question(q);
        }
        if let Some(o) = text("out_of_scope") {
            return Answer::OutOfScope(o);
        }
    }
    Answer::Unclear(clip(t, 200))
}

/// A chat completion, read leniently: servers differ in `finish_reason` (`tool` or
/// `tool_calls`), in whether `arguments` is a string or an object, and in ids.
#[derive(Debug, Default, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
struct Choice {
    #[serde(default, alias = "delta")]
    message: Reply,
}

#[derive(Debug, Default, Deserialize)]
struct Reply {
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCall {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    function: FunctionCall,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        // Content parts: `[{"type": "text", "text": "..."}]`.
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

impl Completion {
    fn answer(&self) -> Answer {
        let Some(choice) = self.choices.first() else { return Answer::Unclear("no choices in the answer".into()) };
        let calls = choice.message.tool_calls.as_deref().unwrap_or_default();
        match calls {
            [] => answer_from_text(&content_text(choice.message.content.as_ref())),
            [one] => Answer::Call {
                tool: one.function.name.clone().unwrap_or_default(),
                arguments: arguments_text(one.function.arguments.as_ref()),
            },
            several => Answer::Several(several.len()),
        }
    }
}

/// Streamed chunks put back together: content concatenated, tool calls by `index`.
#[derive(Default)]
struct Assembly {
    content: String,
    calls: BTreeMap<u32, (String, String)>,
    usage: Option<Usage>,
}

impl Assembly {
    fn add(&mut self, chunk: Completion) {
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices {
            self.content.push_str(&content_text(choice.message.content.as_ref()));
            for (i, call) in choice.message.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let entry = self.calls.entry(call.index.unwrap_or(i as u32)).or_default();
                if let Some(name) = call.function.name {
                    entry.0.push_str(&name);
                }
                entry.1.push_str(&arguments_text(call.function.arguments.as_ref()));
            }
        }
    }

    fn answer(self) -> Answer {
        match self.calls.len() {
            0 => answer_from_text(&self.content),
            1 => {
                let (tool, arguments) = self.calls.into_values().next().unwrap_or_default();
                Answer::Call { tool, arguments }
            }
            n => Answer::Several(n),
        }
    }
}

// ── the client ──────────────────────────────────────────────────────────────

/// Why the model gave no usable answer. The local answer stands, with this as the note.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Failure {
    #[error("it did not answer within {0} ms")]
    Timeout(u64),
    #[error("{0} rate limit for the language model is reached")]
    RateLimited(&'static str),
    #[error("it could not be reached: {0}")]
    Unreachable(String),
    /// The server's text is not repeated: it may quote part of the key.
    #[error("it refused the API key (HTTP {0}); check OPENAI_API_KEY")]
    Unauthorized(u16),
    #[error("it answered with an error: {0}")]
    Server(String),
    #[error("its answer could not be read: {0}")]
    Unreadable(String),
    #[error("no model is configured; set `model` under [llm]")]
    NoModel,
}

/// What a server was found not to support, remembered per base URL.
#[derive(Clone, Copy, Debug, Default)]
struct Quirks {
    /// No `tools`: ask for the JSON-only answer format instead.
    no_tools: bool,
    no_tool_choice: bool,
    no_response_format: bool,
    /// Answers only with server-sent events.
    stream_only: bool,
}

impl Quirks {
    /// Adjusts to a refusal that names a feature; false when there is nothing left to drop.
    /// Without a status (an unreadable body) only an event stream or an explicit "not
    /// supported" counts, so a garbled answer does not switch features off.
    fn adjust(&mut self, status: Option<u16>, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        let refusal = match status {
            Some(s) => matches!(s, 400 | 404 | 405 | 415 | 422 | 501),
            None => text.contains("support"),
        };
        if text.trim_start().starts_with("data:") && !self.stream_only {
            self.stream_only = true;
            return true;
        }
        if !refusal {
            return false;
        }
        if (text.contains("tool_choice") || text.contains("tool choice")) && !self.no_tool_choice && !self.no_tools {
            self.no_tool_choice = true;
        } else if (text.contains("tool") || text.contains("function")) && !self.no_tools {
            self.no_tools = true;
        } else if (text.contains("response_format") || text.contains("json"))
            && self.no_tools
            && !self.no_response_format
        {
            self.no_response_format = true;
        } else if text.contains("stream") && !self.stream_only {
            self.stream_only = true;
        } else {
            return false;
        }
        true
    }
}

/// Answers remembered by key, oldest dropped first.
#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], (Instant, Answer)>,
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    fn get(&self, key: &[u8; 32], ttl: Duration) -> Option<Answer> {
        self.entries.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, a)| a.clone())
    }

    fn put(&mut self, key: [u8; 32], answer: Answer, capacity: usize) {
        if capacity == 0 {
            return;
        }
        if self.entries.insert(key, (Instant::now(), answer)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

/// Calls in the last minute, bot-wide and per requester.
#[derive(Default)]
struct Limits {
    global: VecDeque<Instant>,
    users: HashMap<String, VecDeque<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Limits {
    /// Records a call if both limits allow it (0 = no limit).
    fn admit(&mut self, who: &str, per_user: u32, global: u32, now: Instant) -> Result<(), Failure> {
        let prune = |q: &mut VecDeque<Instant>| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                q.pop_front();
            }
        };
        prune(&mut self.global);
        self.users.retain(|_, q| {
            prune(q);
            !q.is_empty()
        });
        if global > 0 && self.global.len() >= global as usize {
            return Err(Failure::RateLimited("the bot's"));
        }
        let mine = self.users.entry(who.to_string()).or_default();
        if per_user > 0 && mine.len() >= per_user as usize {
            return Err(Failure::RateLimited("your"));
        }
        mine.push_back(now);
        self.global.push_back(now);
        Ok(())
    }
}

/// The client for one bot process: endpoint, cache, rate limits and what each server was
/// found to support. Settings that hot-reload (model, timeouts, limits) are read per call.
pub struct Llm {
    http: crate::lazy_client::LazyClient,
    /// `OPENAI_BASE_URL` at start-up; wins over the config's `base_url`.
    base_url: Option<String>,
    api_key: Option<String>,
    cache: Mutex<Cache>,
    limits: Mutex<Limits>,
    quirks: Mutex<HashMap<String, Quirks>>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Llm").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Llm {
    /// `OPENAI_BASE_URL` and `OPENAI_API_KEY`, read once.
    pub fn from_env() -> Llm {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Llm::new(var("OPENAI_BASE_URL"), var("OPENAI_API_KEY"))
    }

    pub fn new(base_url: Option<String>, api_key: Option<String>) -> Llm {
        let http =
            crate::lazy_client::LazyClient::new(|| reqwest::Client::builder().connect_timeout(Duration::from_secs(2)));
        Llm { http, base_url, api_key, cache: Mutex::default(), limits: Mutex::default(), quirks: Mutex::default() }
    }

    fn base(&self, config: &LlmConfig) -> String {
        let base = self.base_url.clone().or_else(|| config.base_url.clone());
        base.unwrap_or_else(|| async_openai::config::OPENAI_API_BASE.to_string()).trim_end_matches('/').to_string()
    }

    fn client(&self, base: &str, retries: u32) -> Result<Client<OpenAIConfig>, Failure> {
        let http = self.http.get().map_err(|e| Failure::Unreachable(e.to_string()))?.clone();
        let cfg = OpenAIConfig::new().with_api_base(base).with_api_key(self.api_key.clone().unwrap_or_default());
        let service = tower::Layer::layer(&OpenAIRetryLayer::new(retries as usize), ReqwestService::new(http));
        Ok(Client::with_config(cfg).with_http_service(service))
    }

    /// One exchange, adjusting to what the server refuses (tools, `tool_choice`,
    /// `response_format`, non-streamed answers) and remembering it for the next message.
    async fn exchange(&self, config: &LlmConfig, request: &Request) -> Result<(Answer, Usage), Failure> {
        let base = self.base(config);
        let client = self.client(&base, config.max_retries)?;
        let mut quirks = lock(&self.quirks).get(&base).copied().unwrap_or_default();
        for _ in 0..5 {
            let body = request.body(quirks);
            let result = if quirks.stream_only { stream(&client, body).await } else { once(&client, body).await };
            match result {
                Ok((answer, usage)) => return Ok((answer, usage)),
                Err(e) => {
                    let (status, text) = describe(&e);
                    if quirks.adjust(status, &text) {
                        tracing::info!(base = %base, ?quirks, "language model server lacks a feature; asking again without it");
                        lock(&self.quirks).insert(base.clone(), quirks);
                        continue;
                    }
                    return Err(failure(status, &text, &e));
                }
            }
        }
        Err(Failure::Unreadable("the server refused every request format".into()))
    }
}

async fn once(
    client: &Client<OpenAIConfig>,
    body: CreateChatCompletionRequest,
) -> Result<(Answer, Usage), OpenAIError> {
    let c: Completion = client.chat().create_byot(body).await?;
    Ok((c.answer(), c.usage.unwrap_or_default()))
}

async fn stream(
    client: &Client<OpenAIConfig>,
    mut body: CreateChatCompletionRequest,
) -> Result<(Answer, Usage), OpenAIError> {
    use futures_util::StreamExt;
    body.stream = Some(true);
    let mut chunks = client.chat().create_stream_byot::<_, Completion>(body).await?;
    let mut assembly = Assembly::default();
    while let Some(chunk) = chunks.next().await {
        assembly.add(chunk?);
    }
    let usage = assembly.usage.unwrap_or_default();
    Ok((assembly.answer(), usage))
}

/// The status (when known) and the text of an error, to decide what to adjust.
fn describe(e: &OpenAIError) -> (Option<u16>, String) {
    match e {
        OpenAIError::ApiError(r) => (Some(r.status_code.as_u16()), r.api_error.to_string()),
        OpenAIError::JSONDeserialize(_, content) => (None, content.clone()),
        OpenAIError::Reqwest(r) => (r.status().map(|s| s.as_u16()), String::new()),
        _ => (Some(0), String::new()),
    }
}

fn failure(status: Option<u16>, text: &str, e: &OpenAIError) -> Failure {
    match e {
        OpenAIError::Reqwest(r) if r.is_connect() => Failure::Unreachable("connection refused".into()),
        OpenAIError::Reqwest(r) if r.is_timeout() => Failure::Unreachable("connection timed out".into()),
        OpenAIError::Reqwest(r) => Failure::Unreachable(clip(&r.to_string(), 200)),
        OpenAIError::JSONDeserialize(..) | OpenAIError::StreamError(_) => Failure::Unreadable(clip(text, 120)),
        OpenAIError::ApiError(r) if matches!(status, Some(401 | 403)) => Failure::Unauthorized(r.status_code.as_u16()),
        _ => Failure::Server(clip(&format!("{} {text}", status.map(|s| s.to_string()).unwrap_or_default()), 200)),
    }
}

/// One request, before the per-server adjustments.
struct Request {
    model: String,
    system: String,
    history: Vec<ChatCompletionRequestMessage>,
    user: String,
    offer: Arc<Offer>,
    temperature: f32,
}

fn user_message(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: ChatCompletionRequestUserMessageContent::Text(text),
        name: None,
    })
}

/// The user's text between the markers the prompts name; markers inside it are defused, so
/// the text cannot close its own frame.
fn wrap_user(text: &str) -> String {
    let clean = text.replace("<<<", "‹‹‹").replace(">>>", "›››");
    format!("<<<USER_MESSAGE\n{clean}\nUSER_MESSAGE>>>")
}

impl Request {
    fn body(&self, q: Quirks) -> CreateChatCompletionRequest {
        let mut system = self.system.clone();
        if q.no_tools {
            system.push_str(JSON_MODE);
            system.push_str(&self.offer.json);
        }
        let mut messages = vec![ChatCompletionRequestMessage::System(system.into())];
        messages.extend(self.history.iter().cloned());
        messages.push(user_message(self.user.clone()));
        let with_tools = !q.no_tools && !self.offer.tools.is_empty();
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages,
            tools: with_tools.then(|| self.offer.chat_tools()),
            tool_choice: (with_tools && !q.no_tool_choice)
                .then_some(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto)),
            response_format: (q.no_tools && !q.no_response_format).then_some(ResponseFormat::JsonObject),
            temperature: Some(self.temperature),
            ..Default::default()
        }
    }

    /// (model, prompt as sent, tools offered, thread, text): everything the answer depends on.
    fn cache_key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.offer.digest);
        for part in [&self.model, &self.system, &self.user] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for m in &self.history {
            h.update(serde_json::to_vec(m).unwrap_or_default());
            h.update([0]);
        }
        h.finalize().into()
    }
}

// ── one message ─────────────────────────────────────────────────────────────

/// What the tier did for one message: for the audit row, `explain` and the reply's note.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub prompt_version: String,
    /// command, question, out_of_scope, refused, failed, timeout, rate_limited
    pub outcome: &'static str,
    /// The model's answer as command text, when it named one (also when refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Said to the user when the local answer stands because the model failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub latency_ms: u64,
    pub cached: bool,
}

/// The LLM tier for one message: the client, the settings and prompts of the current
/// workspace, and who is asking.
pub struct Asking<'a> {
    pub llm: &'a Llm,
    /// Usually `config.mode`; `intents eval --llm` picks its own.
    pub mode: LlmMode,
    pub config: &'a LlmConfig,
    pub setup: &'a Setup,
    pub allowed: Allowed,
    pub bot_name: &'a str,
    pub who: &'a str,
    pub timeout: Duration,
    /// Off for `intents eval`, which asks many times in a row on purpose.
    pub rate_limited: bool,
}

impl Asking<'_> {
    /// Whether this message goes to the model, given the local answer: never for a typed
    /// command or a request the local layer refuses outright (a write, a rule change); in
    /// `fallback` mode only when the local layer did not understand.
    pub fn wanted(&self, local: &Understanding) -> bool {
        match (self.mode, local) {
            (LlmMode::Off, _) => false,
            (_, Understanding::Command { tier: super::Tier::Grammar, .. }) => false,
            (_, Understanding::NotUnderstood { reason: Some(_), .. }) => false,
            (LlmMode::Fallback, Understanding::NotUnderstood { .. }) => true,
            (LlmMode::Fallback, _) => false,
            (LlmMode::Always, _) => true,
        }
    }

    /// The system prompt for this requester; the clarification prompt when the bot's last turn
    /// in this thread was a question.
    fn system_prompt(&self, offer: &Offer, turns: &[Turn]) -> String {
        let asked = turns.last().is_some_and(|t| t.bot.starts_with("QUESTION:"));
        let template = if asked && !offer.templates[1].is_empty() { &offer.templates[1] } else { &offer.templates[0] };
        template.replace("{user}", self.who)
    }

    fn request(&self, model: &str, offer: &Arc<Offer>, text: &str, turns: &[Turn]) -> Request {
        let turns = if leans_on_thread(text, turns) { turns } else { &[] };
        let keep = turns.len().saturating_sub(self.config.history_turns);
        let mut history = Vec::new();
        for t in &turns[keep..] {
            history.push(user_message(wrap_user(&t.user)));
            history.push(ChatCompletionRequestMessage::Assistant(t.bot.clone().into()));
        }
        Request {
            model: model.to_string(),
            system: self.system_prompt(offer, turns),
            history,
            user: wrap_user(text),
            offer: offer.clone(),
            temperature: self.config.temperature,
        }
    }

    /// Everything the tier does for a message except the network call: the tools, the prompt,
    /// the request body as sent, the cache key, reading `completion` (a chat-completion body as
    /// a server would send it) and the grammar. What the overhead benchmark measures.
    pub fn rehearse(
        &self,
        catalog: &Catalog,
        text: &str,
        turns: &[Turn],
        completion: &str,
    ) -> Result<Command, Refusal> {
        let offer = self.setup.offer(catalog, &self.allowed, self.bot_name);
        let model = self.config.model.clone().unwrap_or_default();
        let request = self.request(&model, &offer, text, turns);
        let body = serde_json::to_vec(&request.body(Quirks::default())).unwrap_or_default();
        std::hint::black_box((body, request.cache_key()));
        let answer = serde_json::from_str::<Completion>(completion).unwrap_or_default().answer();
        match answer {
            Answer::Call { tool, arguments } => to_command(&offer, catalog, &tool, &arguments),
            Answer::Several(n) => Err(Refusal::SeveralCalls(n)),
            other => Err(Refusal::UnknownTool(format!("{other:?}"))),
        }
    }

    /// Asks the model about one message. `None` when its answer is not usable; the report
    /// says why either way.
    pub async fn ask(
        &self,
        catalog: &Catalog,
        text: &str,
        turns: &[Turn],
    ) -> (Option<(Understanding, BTreeMap<String, String>)>, Report) {
        let started = Instant::now();
        let model = self.config.model.clone().unwrap_or_default();
        let mut report = Report {
            model: model.clone(),
            prompt_version: self.setup.prompts.version.clone(),
            outcome: "failed",
            command: None,
            detail: None,
            note: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_ms: 0,
            cached: false,
        };
        let offer = self.setup.offer(catalog, &self.allowed, self.bot_name);
        let answer = self.answer(&model, &offer, text, turns, &mut report).await;
        report.latency_ms = started.elapsed().as_millis() as u64;
        let answer = match answer {
            Ok(a) => a,
            Err(f) => {
                report.outcome = match f {
                    Failure::Timeout(_) => "timeout",
                    Failure::RateLimited(_) => "rate_limited",
                    _ => "failed",
                };
                report.detail = Some(f.to_string());
                report.note = Some(format!("I could not ask the language model ({f}), so this is my own reading."));
                tracing::warn!(outcome = report.outcome, error = %f, "language model not used");
                return (None, report);
            }
        };
        let understood = match answer {
            Answer::Call { tool, arguments } => {
                report.command = command_text(&offer, &tool, &arguments).ok();
                match to_command(&offer, catalog, &tool, &arguments) {
                    Ok(command) => {
                        report.outcome = "command";
                        report.command = Some(command.to_string());
                        let slots = slots_of(&arguments);
                        let u = Understanding::Command {
                            command,
                            tier: super::Tier::Llm,
                            intent: Some(tool),
                            confidence: MODEL_CONFIDENCE,
                        };
                        Some((u, slots))
                    }
                    Err(refusal) => {
                        report.outcome = "refused";
                        report.detail = Some(refusal.to_string());
                        tracing::info!(refusal = %refusal, "language model answer refused");
                        None
                    }
                }
            }
            Answer::Several(n) => {
                report.outcome = "refused";
                report.detail = Some(Refusal::SeveralCalls(n).to_string());
                None
            }
            Answer::Question(question) => {
                report.outcome = "question";
                let u = Understanding::Question {
                    question,
                    intent: "llm".into(),
                    confidence: MODEL_CONFIDENCE,
                    tier: super::Tier::Llm,
                };
                Some((u, BTreeMap::new()))
            }
            Answer::OutOfScope(reason) => {
                report.outcome = "out_of_scope";
                let u = Understanding::NotUnderstood { error: None, suggestions: Vec::new(), reason: Some(reason) };
                Some((u, BTreeMap::new()))
            }
            Answer::Unclear(text) => {
                report.outcome = "failed";
                report.detail =
                    Some(format!("the answer was neither a tool call, a question nor out of scope: {text}"));
                None
            }
        };
        (understood, report)
    }

    /// The model's answer: from the cache, else (within the rate limits and the timeout) from
    /// the server.
    async fn answer(
        &self,
        model: &str,
        offer: &Arc<Offer>,
        text: &str,
        turns: &[Turn],
        report: &mut Report,
    ) -> Result<Answer, Failure> {
        if model.trim().is_empty() {
            return Err(Failure::NoModel);
        }
        let request = self.request(model, offer, text, turns);
        let key = request.cache_key();
        let ttl = Duration::from_secs(self.config.cache_ttl_secs);
        if let Some(hit) = lock(&self.llm.cache).get(&key, ttl) {
            report.cached = true;
            return Ok(hit);
        }
        if self.rate_limited {
            lock(&self.llm.limits).admit(
                self.who,
                self.config.per_user_per_minute,
                self.config.global_per_minute,
                Instant::now(),
            )?;
        }
        let exchange = self.llm.exchange(self.config, &request);
        let (answer, usage) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout(self.timeout.as_millis() as u64))??;
        report.prompt_tokens = usage.prompt_tokens;
        report.completion_tokens = usage.completion_tokens;
        if matches!(answer, Answer::Call { .. } | Answer::Question(_) | Answer::OutOfScope(_)) {
            lock(&self.llm.cache).put(key, answer.clone(), self.config.cache_size);
        }
        Ok(answer)
    }
}

/// Whether a message needs the thread to be understood: an answer to the bot's question, or a
/// follow-up ("same for staging", "and users?", "ok, prod then"). A message that stands alone is
/// sent alone: fewer tokens, the same answer every time, and the cache can serve it.
fn leans_on_thread(text: &str, turns: &[Turn]) -> bool {
    let Some(last) = turns.last() else { return false };
    if last.bot.starts_with("QUESTION:") {
        return true;
    }
    let lower = text.trim().to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|w| !w.is_empty()).collect();
    let cues =
        ["and", "same", "also", "again", "now", "then", "ok", "okay", "what", "how", "too", "instead", "that", "it"];
    let opens_with_cue = words.first().is_some_and(|w| cues.contains(w)) && words.len() <= 8;
    let refers_back = words.iter().any(|w| matches!(*w, "same" | "again" | "instead" | "too" | "previous" | "last"));
    opens_with_cue || refers_back || words.len() <= 3
}

/// The tool call's arguments as `explain` shows slots (parameters flattened).
fn slots_of(arguments: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(arguments) {
        for (k, v) in m {
            match v {
                Value::Object(params) => {
                    for (pk, pv) in params {
                        if let Ok(s) = scalar(&pk, &pv) {
                            out.insert(pk, s);
                        }
                    }
                }
                other => {
                    if let Ok(s) = scalar(&k, &other) {
                        out.insert(k, s);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
