//! The local intent layer: intents from `intents/*.toml` and from each query file's
//! `example:` lines, a classifier trained from them, and the step from a sentence to the
//! canonical text of a command template. It never builds a `Command`: the text it fills goes
//! back through the grammar.
//!
//! Product rules the model cannot learn from a few hundred examples, measured on
//! `tests/understanding/realistic.jsonl` (452 held-out sentences by someone who never read the
//! intent files; debug build, demo workspace): 363/452 (80.3%) before this work; with the
//! rules below and the static embedding (`super::embedding`) 406/452 (89.8%), ECE 0.038, 3
//! wrong commands at confidence >= 0.9, 1 of 48 out-of-scope sentences given a command.
//! - A write request goes only to a manifest template that fits it ([`template_fits`]), else is
//!   refused naming the templates ([`write_request`]).
//! - A top intent that finds none of its values yields to a runner-up (>= 0.3 of it) whose values
//!   are all in the sentence (`rerank_by_slots`).
//! - A close call (runner-up >= [`CLOSE`] of a top under [`CLOSE_TOP`], both whole commands) is a
//!   numbered choice. At 0.5 / 0.7 it cost 9 held-out sentences (each close call counts as a
//!   miss against a command), at 0.8 / 0.6 one.
//! - Tried, not kept: accepting the top in-scope intent when the out-of-scope class wins by a
//!   little (top in-scope >= 0.3 x p(oos)): +4 held-out sentences but 3 more out-of-scope
//!   sentences mapped to commands; a lower `min_oos_recall` (0.4-0.7) changed nothing (the
//!   misses are sentences whose top class is out-of-scope, not ones under the threshold).

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::classifier::{Classifier, Options, Scored};
use super::slots::{SlotType, delexicalize, extract};
use crate::catalog::{Catalog, or_list};
use crate::command::{always_quote, quote};
use crate::config::{Problem, line_of};
use crate::param::ParamType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    #[serde(default)]
    intent: Vec<RawIntent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    command: String,
    #[serde(default)]
    description: String,
    examples: Vec<String>,
    #[serde(default)]
    negatives: Vec<String>,
    #[serde(default)]
    slots: IndexMap<String, RawSlot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    required: bool,
    question: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Slot {
    pub name: String,
    pub ty: SlotType,
    pub required: bool,
    pub question: Option<String>,
}

/// One intent: a command template, the slots it needs and the sentences that mean it.
#[derive(Clone, Debug)]
pub struct Intent {
    pub name: String,
    /// Empty for the out-of-scope intent.
    pub command: String,
    pub description: String,
    pub examples: Vec<String>,
    pub negatives: Vec<String>,
    pub slots: Vec<Slot>,
}

pub const OOS: &str = "oos";
/// The pending "frame" of a numbered choice between two commands.
const CHOICE: &str = "choice";
/// A runner-up at least this fraction of the top intent's probability is a close call ...
const CLOSE: f32 = 0.8;
/// An unsure sentence whose values name workspace things takes a likely intent with at least
/// this probability, unless out-of-scope is surer than [`RESCUE_MAX_OOS`].
const RESCUE_MIN: f32 = 0.05;
const RESCUE_MAX_OOS: f32 = 0.95;
/// ... when the top intent is below this probability.
const CLOSE_TOP: f32 = 0.6;

/// Reads every `*.toml` in the intents directory; problems name the file and line.
pub fn load_dir(dir: &Path) -> (Vec<Intent>, Vec<Problem>) {
    let mut intents: Vec<Intent> = Vec::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let Some(paths) = crate::workspace::files_in(dir, &["toml"]) else {
        return (intents, problems);
    };
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(Problem::new(&path, None, "cannot be read as UTF-8 text"));
            continue;
        };
        let (found, mut ps) = parse_file(&text, &path);
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        for i in found {
            if let Some(first) = origin.get(&i.name) {
                let line = line_of(&text, &format!("\"{}\"", i.name));
                problems.push(Problem::new(
                    &path,
                    line,
                    format!("intent `{}` is defined twice (also in {first})", i.name),
                ));
                continue;
            }
            origin.insert(i.name.clone(), file.clone());
            intents.push(i);
        }
        problems.append(&mut ps);
    }
    (intents, problems)
}

pub fn parse_file(text: &str, path: &Path) -> (Vec<Intent>, Vec<Problem>) {
    let mut problems = Vec::new();
    let file: IntentFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| crate::config::line_at(text, s.start));
            return (Vec::new(), vec![Problem::new(path, line, e.message().trim().to_string())]);
        }
    };
    let mut out = Vec::new();
    for raw in file.intent {
        let line = line_of(text, &format!("\"{}\"", raw.name));
        let mut bad = |msg: String| problems.push(Problem::new(path, line, msg));
        let mut slots = Vec::new();
        for (name, s) in raw.slots {
            match SlotType::parse(&s.ty) {
                Some(ty) => slots.push(Slot { name, ty, required: s.required, question: s.question }),
                None => bad(format!(
                    "intent `{}`: slot `{name}` has unknown type `{}` (service, env, query, suite, template, subreddit, int, id, text, date, email, identity, command, run)",
                    raw.name, s.ty
                )),
            }
        }
        for placeholder in placeholders(&raw.command) {
            if !slots.iter().any(|s| s.name == placeholder) {
                bad(format!(
                    "intent `{}`: template refers to `{{{placeholder}}}`, which is not one of its slots",
                    raw.name
                ));
            }
        }
        if raw.name != OOS {
            let head: Vec<&str> = raw.command.split_whitespace().take_while(|w| !w.starts_with('{')).collect();
            let known = crate::spec::SPECS
                .iter()
                .any(|s| head.len() >= s.words.len() && s.words.iter().zip(&head).all(|(a, b)| a == b));
            if !known {
                bad(format!("intent `{}`: template `{}` does not start with a command", raw.name, raw.command));
            }
        }
        if raw.examples.is_empty() {
            bad(format!("intent `{}` has no examples", raw.name));
        }
        out.push(Intent {
            name: raw.name,
            command: raw.command,
            description: raw.description,
            examples: raw.examples,
            negatives: raw.negatives,
            slots,
        });
    }
    (out, problems)
}

fn placeholders(template: &str) -> Vec<String> {
    template.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string())).collect()
}

/// The intent generated for a query file: its examples, its params as slots.
fn param_slots(params: &[crate::param::ParamSpec]) -> Vec<Slot> {
    params
        .iter()
        .map(|p| Slot {
            name: p.name.clone(),
            ty: SlotType::Param(p.clone()),
            required: p.required(),
            // "What should `since` be: the first day to include? Send a date like 2026-11-25."
            question: Some(format!(
                "What should `{}` be{}?{}",
                p.name,
                if p.help.is_empty() { String::new() } else { format!(": {}", p.help) },
                if p.ty == ParamType::Text { String::new() } else { format!(" Send {}.", p.ty.expected()) }
            )),
        })
        .collect()
}

/// The intent of a manifest template: its params as slots, its `# example:` lines as examples
/// (a template with examples is classified like a query; the generic `manifest` intent hands
/// over to any template).
fn template_intent(t: &crate::catalog::TemplateSig) -> Intent {
    let slots = param_slots(&t.params);
    let mut command = format!("manifest {}", t.name);
    for s in &slots {
        command.push_str(&format!(" {{{}}}", s.name));
    }
    Intent {
        name: format!("template:{}", t.name),
        command,
        description: t.description.clone(),
        examples: with_samples(&t.examples, &t.params),
        negatives: Vec::new(),
        slots,
    }
}

/// `{user_id}` in an example stands for a value: filled with a sample so it reads like one.
fn with_samples(examples: &[String], params: &[crate::param::ParamSpec]) -> Vec<String> {
    examples
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for p in params {
                let sample = match p.ty {
                    crate::param::ParamType::Int | crate::param::ParamType::Decimal => "42",
                    crate::param::ParamType::Date => "2026-11-01",
                    _ if p.name.contains("email") => "alice@example.com",
                    _ => "pay_8f3k2",
                };
                e = e.replace(&format!("{{{}}}", p.name), sample);
            }
            e
        })
        .collect()
}

fn query_intent(q: &crate::queries::file::QueryFile) -> Intent {
    let mut slots = param_slots(&q.params);
    slots.push(Slot { name: "env".into(), ty: SlotType::Env, required: false, question: None });
    let mut command = format!("db query {}", q.name);
    for s in &slots {
        command.push_str(&format!(" {{{}}}", s.name));
    }
    let examples = with_samples(&q.examples, &q.params);
    Intent {
        name: format!("query:{}", q.name),
        command,
        description: q.description.clone(),
        examples,
        negatives: Vec::new(),
        slots,
    }
}

/// The trained model with the intents it knows, by label index.
#[derive(Clone, Debug)]
pub struct Model {
    classifier: Classifier,
    intents: Vec<Intent>,
    /// Intents reached only by hand-over from a generic one (manifest templates).
    handovers: Vec<Intent>,
    /// The names the model was trained with, to delexicalize what it classifies the same way.
    catalog_names: Catalog,
}

/// The model, trained on first use: a typed command never waits for training.
#[derive(Clone, Copy)]
pub struct LazyModel<'a> {
    pub cell: &'a std::sync::OnceLock<Model>,
    pub intents: &'a [Intent],
    pub catalog: &'a Catalog,
}

impl<'a> LazyModel<'a> {
    pub fn get(&self) -> &'a Model {
        self.cell.get_or_init(|| Model::train(self.intents, self.catalog))
    }
}

/// A conversation in one thread with one person: a question waiting for its answer, and the
/// last command, for follow-ups like "same for staging".
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Conversation {
    pub pending: Option<Frame>,
    pub last: Option<Frame>,
    /// The thread's last few exchanges, oldest first: what the LLM tier is shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<Turn>,
}

/// One exchange of a thread: what the user wrote and what the bot made of it (the canonical
/// command, its question or why it could not help).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub user: String,
    pub bot: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Frame {
    pub intent: String,
    pub slots: BTreeMap<String, String>,
    /// The slot a pending question asks for.
    pub missing: Option<String>,
    /// The values the question offers, in order: chat shows them as buttons or a menu, the
    /// terminal numbers them, and "2" answers with the second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// What the intent layer makes of a sentence.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Canonical command text (still to be parsed by the grammar).
    Text {
        text: String,
        intent: String,
        confidence: f32,
        slots: BTreeMap<String, String>,
    },
    Question {
        question: String,
        intent: String,
        confidence: f32,
        slots: BTreeMap<String, String>,
    },
    OutOfScope {
        reason: Option<String>,
        candidates: Vec<(String, f32)>,
    },
}

pub struct Interpreted {
    pub outcome: Outcome,
    pub candidates: Vec<(String, f32)>,
    /// The conversation to remember for the next message, when it changed.
    pub conversation: Option<Conversation>,
}

/// The sentence being understood, with what slot extraction needs.
struct Sentence<'a> {
    text: &'a str,
    catalog: &'a Catalog,
    today: time::Date,
}

impl Sentence<'_> {
    /// Every slot of `intent` the sentence gives a value for, numbers taken in slot order.
    fn values_of(&self, intent: &Intent) -> BTreeMap<String, String> {
        let mut used = Vec::new();
        intent
            .slots
            .iter()
            .filter_map(|s| {
                Some((s.name.clone(), extract(&s.ty, &s.name, self.text, self.catalog, self.today, &mut used)?))
            })
            .collect()
    }
}

/// Requests no command does, which must never land on the nearest read command.
fn refused_request(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    let w: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|s| !s.is_empty()).collect();
    let has = |s: &str| w.contains(&s);
    let near = |verbs: &[&str], objects: &[&str]| {
        w.iter()
            .enumerate()
            .any(|(i, a)| verbs.contains(a) && w.iter().skip(i + 1).take(4).any(|b| objects.contains(b)))
    };
    if (has("ignore") || has("disregard") || has("forget"))
        && (has("rules") || has("instructions") || has("previous") || has("prompt"))
    {
        return Some("that reads like an attempt to change my rules; I only run the commands in `help`");
    }
    let sql_write = [
        "drop table",
        "delete from",
        "truncate table",
        "insert into",
        "alter table",
        "drop database",
        "update users set",
    ];
    if sql_write.iter().any(|s| lower.contains(s)) {
        return Some("I never write to databases; writes go through `manifest`, which a human applies");
    }
    let data = [
        "table", "tables", "database", "db", "schema", "row", "rows", "column", "index", "data", "record", "records",
        "user", "users", "account", "accounts", "payment", "payments", "order", "orders", "audit", "log", "logs",
    ];
    if near(&["drop", "delete", "truncate", "wipe", "purge", "destroy", "erase", "remove", "clear"], &data) {
        return Some("I never change data; writes go through `manifest`, which a human applies");
    }
    // Imperatives that write: "migrate the ledger schema", "refund pay_x", "suspend user 12".
    let lead: Vec<&str> = w
        .iter()
        .copied()
        .filter(|x| !matches!(*x, "please" | "pls" | "can" | "could" | "would" | "you" | "u" | "hey" | "now" | "just"))
        .take(2)
        .collect();
    let writes = [
        "migrate",
        "refund",
        "suspend",
        "ban",
        "unban",
        "disable",
        "enable",
        "activate",
        "deactivate",
        "charge",
        "approve",
        "merge",
        "revert",
        "reset",
        "grant",
        "revoke",
        "rotate",
    ];
    if lead.first().is_some_and(|v| writes.contains(v)) {
        return Some("I only read and report; that change is for a human (or a `manifest` for them to apply)");
    }
    if lead.iter().any(|v| matches!(*v, "run" | "apply" | "execute")) && (has("migration") || has("migrations")) {
        return Some("I never run migrations; `db schema check` tells you whether they are needed");
    }
    let infra = [
        "pod",
        "pods",
        "service",
        "services",
        "deployment",
        "deployments",
        "server",
        "servers",
        "node",
        "nodes",
        "cluster",
        "container",
        "containers",
        "replicas",
        "payments",
        "users",
        "ledger",
        "it",
        "prod",
        "production",
        "staging",
    ];
    if near(
        &["restart", "reboot", "kill", "scale", "rollback", "shutdown", "stop", "terminate", "redeploy", "bounce"],
        &infra,
    ) || lower.contains("roll back")
        || lower.contains("shut down")
        || (has("deploy") && has("to") && !has("version") && !has("what") && !has("which"))
    {
        return Some("I only report on deployments and run checks; I never deploy, restart or scale anything");
    }
    None
}

/// "change/update/set … of user N to V": a request to write data, which only a manifest
/// template may answer (never a read query that happens to share its words). Questions about
/// changes ("who changed the email of user 42", "any update on run 12") and TODOs about them
/// ("remind us to update the user docs") are not requests to write.
fn write_request(text: &str) -> bool {
    let lower = text.to_lowercase();
    let w: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '@' | '.')))
        .filter(|s| !s.is_empty())
        .collect();
    const VERBS: &[&str] = &[
        "change",
        "create",
        "insert",
        "register",
        "add",
        "update",
        "set",
        "modify",
        "edit",
        "rename",
        "replace",
        "correct",
        "overwrite",
        "switch",
        "fix",
        "make",
    ];
    const OBJECTS: &[&str] = &[
        "user", "users", "email", "e-mail", "mail", "address", "account", "accounts", "name", "username", "password",
        "phone", "record", "row", "rows", "role", "plan", "customer", "uid", "userid", "user_id",
    ];
    const QUESTIONS: &[&str] =
        &["did", "has", "have", "who", "what", "when", "why", "how", "was", "were", "is", "which"];
    const NOT_WRITES: &[&str] = &["todo", "to-do", "todos", "remind", "reminder", "note", "manifest", "yaml", "job"];
    if w.first().is_some_and(|f| QUESTIONS.contains(f)) || w.iter().any(|x| NOT_WRITES.contains(x)) {
        return false;
    }
    let has_email = w.iter().any(|x| x.trim_end_matches('.').contains('@'));
    w.iter().enumerate().any(|(i, a)| {
        VERBS.contains(a)
            && !(i > 0 && matches!(w[i - 1], "any" | "an" | "the" | "no" | "last" | "latest" | "status"))
            && (has_email || w.iter().skip(i + 1).take(6).any(|b| OBJECTS.contains(b)))
    })
}

/// Whether a template fits a write request: the words of its name that say what it changes
/// (`user`, `email` in `update-user-email`; verbs aside) are all in the sentence (an email
/// address counts as `email`).
fn template_fits(template: &str, text: &str) -> bool {
    let lower = text.to_lowercase();
    let said: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('s').to_string())
        .collect();
    let has_email = lower.contains('@');
    const VERBS: &[&str] = &["update", "change", "set", "create", "delete", "rotate", "reset", "fix", "add", "remove"];
    template.split('-').filter(|p| !VERBS.contains(p)).all(|p| {
        let p = p.trim_end_matches('s');
        said.iter().any(|s| s == p)
            || (p == "email" && has_email)
            || (p == "user" && said.iter().any(|s| matches!(s.as_str(), "uid" | "userid" | "account" | "customer")))
    })
}

/// The refusal of a write no template fits: what templates there are.
fn templates_offer(catalog: &Catalog) -> String {
    if catalog.templates.is_empty() {
        return "this workspace has no manifest templates".to_string();
    }
    let list: Vec<String> = catalog
        .templates
        .values()
        .map(|t| {
            if t.description.is_empty() { format!("`{}`", t.name) } else { format!("`{}` ({})", t.name, t.description) }
        })
        .collect();
    format!("the manifest templates are {}", or_list(list.iter().map(String::as_str)).replace(" or ", " and "))
}

/// Follow-up cues: "same for staging", "and for users?", "what about dev".
fn is_follow_up(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    [
        "same for",
        "same on",
        "same in",
        "and for",
        "and on",
        "and in",
        "what about",
        "how about",
        "now for",
        "also for",
        "and ",
        "same thing for",
        "again for",
        "ok and",
    ]
    .iter()
    .any(|cue| lower.starts_with(cue))
        && lower.split_whitespace().count() <= 6
}

/// Every sentence the model is trained on (examples of intents, queries and templates, and
/// negatives), as written: what an evaluation set must not contain.
pub fn training_sentences(intents: &[Intent], catalog: &Catalog) -> Vec<String> {
    let mut out: Vec<String> = intents.iter().flat_map(|i| i.examples.iter().chain(&i.negatives)).cloned().collect();
    out.extend(catalog.queries.values().flat_map(|q| query_intent(q).examples));
    out.extend(catalog.templates.values().flat_map(|t| template_intent(t).examples));
    out
}

impl Model {
    /// Trains on the intents and the queries' examples; `oos` examples and every intent's
    /// negatives teach the out-of-scope class.
    pub fn train(intents: &[Intent], catalog: &Catalog) -> Model {
        let mut all: Vec<Intent> = intents.iter().filter(|i| i.name != OOS).cloned().collect();
        all.extend(catalog.queries.values().map(query_intent));
        all.extend(catalog.templates.values().filter(|t| !t.examples.is_empty()).map(template_intent));
        let mut oos = intents.iter().find(|i| i.name == OOS).cloned().unwrap_or(Intent {
            name: OOS.into(),
            command: String::new(),
            description: String::new(),
            examples: Vec::new(),
            negatives: Vec::new(),
            slots: Vec::new(),
        });
        for i in intents {
            oos.examples.extend(i.negatives.iter().cloned());
        }
        all.push(oos);
        let labels: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
        let texts: Vec<(String, usize)> = all
            .iter()
            .enumerate()
            .flat_map(|(label, i)| i.examples.iter().map(move |e| (e, label)))
            .map(|(e, label)| (delexicalize(e, catalog), label))
            .collect();
        let examples: Vec<(&str, usize)> = texts.iter().map(|(t, l)| (t.as_str(), *l)).collect();
        let opts = Options { min_df: 1, ..Options::default() };
        let handovers = catalog.templates.values().map(template_intent).collect();
        Model {
            classifier: Classifier::train(&examples, &labels, &opts),
            intents: all,
            handovers,
            catalog_names: catalog.clone(),
        }
    }

    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().chain(&self.handovers).find(|i| i.name == name)
    }

    /// The top intents with scores, out-of-scope included.
    pub fn candidates(&self, text: &str, k: usize) -> Vec<(String, f32)> {
        self.classifier
            .predict(&delexicalize(text, &self.catalog_names), k)
            .into_iter()
            .filter_map(|Scored { label, score }| self.intents.get(label).map(|i| (i.name.clone(), score)))
            .collect()
    }

    pub fn threshold(&self) -> f32 {
        self.classifier.threshold()
    }

    /// Understands one sentence in the light of the thread's conversation.
    pub fn interpret(&self, text: &str, catalog: &Catalog, convo: &Conversation, today: time::Date) -> Interpreted {
        // "2" answers a question that offered choices with the second one, exactly as typing
        // that choice would.
        let picked = convo.pending.as_ref().and_then(|f| numbered(&f.choices, text));
        let text = picked.as_deref().unwrap_or(text);
        // `whoami` is about the asker: a sentence without "I", "me" or "my" ("look up this
        // user's profile") asks about someone else.
        let first_person = text.split(|c: char| !c.is_alphanumeric() && c != '\'').any(|w| {
            matches!(w.to_lowercase().as_str(), "i" | "i'm" | "im" | "me" | "my" | "mine" | "myself" | "am" | "whoami")
        });
        let candidates: Vec<(String, f32)> = self
            .candidates(text, 4)
            .into_iter()
            .filter(|(n, _)| first_person || self.intent(n).is_none_or(|i| i.command != "whoami"))
            .take(3)
            .collect();
        let sentence = Sentence { text, catalog, today };
        let done = |outcome, conversation| Interpreted { outcome, candidates: candidates.clone(), conversation };
        if let Some(reason) = refused_request(text) {
            let reason = if reason.contains("manifest") {
                format!("{reason}; {}", templates_offer(catalog))
            } else {
                reason.to_string()
            };
            return done(Outcome::OutOfScope { reason: Some(reason), candidates: Vec::new() }, None);
        }
        if let Some(frame) = convo.pending.as_ref().filter(|f| f.intent == CHOICE)
            && let Some(answer) = self.chosen(frame, text, &candidates, convo)
        {
            return answer;
        }
        // An answer to the question asked last in this thread, unless the message is a new
        // request of its own ("find the user with email …" after "Which service?").
        if let Some(pending) = &convo.pending
            && let (Some(intent), Some(missing)) = (self.intent(&pending.intent), &pending.missing)
            && let Some(slot) = intent.slots.iter().find(|s| &s.name == missing)
            // Free text ("What should the TODO say?") takes any sentence as the answer.
            && (slot.ty == SlotType::Text || !self.new_request(text, &candidates, &pending.intent))
        {
            let mut used = Vec::new();
            let answer = extract(&slot.ty, &slot.name, text, catalog, today, &mut used);
            let whole = answer.is_none() && slot.ty == SlotType::Text;
            if let Some(value) = answer.or_else(|| whole.then(|| text.trim().to_string())) {
                let mut slots = pending.slots.clone();
                slots.insert(missing.clone(), value);
                // What the answer names besides wins over what was understood before
                // ("users, on staging" after a question about a prod request).
                for s in intent.slots.iter().filter(|s| !whole && &s.name != missing) {
                    if let Some(v) = extract(&s.ty, &s.name, text, catalog, today, &mut used) {
                        slots.insert(s.name.clone(), v);
                    }
                }
                return self.complete(intent, slots, 1.0, &sentence, convo, candidates);
            }
            // "bob" for "Who takes it?" when nobody, or more than one person, is called bob:
            // the question stays open and names who it could be.
            let other_request = candidates
                .first()
                .is_some_and(|(n, score)| n != OOS && *n != pending.intent && *score >= self.threshold());
            if slot.ty == SlotType::Identity && text.split_whitespace().count() <= 2 && !other_request {
                let question = unknown_person(text, catalog);
                let conversation = Conversation { pending: Some(pending.clone()), ..convo.clone() };
                return done(
                    Outcome::Question {
                        question,
                        intent: intent.name.clone(),
                        confidence: 1.0,
                        slots: pending.slots.clone(),
                    },
                    Some(conversation),
                );
            }
        }
        // "same for staging": the last command with the slots this message names.
        if is_follow_up(text)
            && let Some(last) = &convo.last
            && let Some(intent) = self.intent(&last.intent)
        {
            let mut slots = last.slots.clone();
            let mut changed = false;
            let mut used = Vec::new();
            for s in &intent.slots {
                if let Some(v) = extract(&s.ty, &s.name, text, catalog, today, &mut used) {
                    changed |= slots.insert(s.name.clone(), v.clone()).as_ref() != Some(&v);
                }
            }
            if changed {
                return self.complete(intent, slots, 1.0, &sentence, convo, candidates);
            }
        }
        // A write goes to the template that performs it, or is refused with the templates there are.
        if convo.pending.is_none() && write_request(text) {
            let all = self.candidates(text, self.intents.len());
            let fitting = all.iter().find(|(n, _)| n.strip_prefix("template:").is_some_and(|t| template_fits(t, text)));
            let Some((name, score)) = fitting.cloned() else {
                let reason = format!(
                    "I never change data myself, and no manifest template fits that change; {}",
                    templates_offer(catalog)
                );
                return done(Outcome::OutOfScope { reason: Some(reason), candidates: Vec::new() }, None);
            };
            let Some(intent) = self.intent(&name) else {
                return done(Outcome::OutOfScope { reason: None, candidates: Vec::new() }, None);
            };
            return self.complete(intent, sentence.values_of(intent), score, &sentence, convo, candidates);
        }
        let top = candidates.iter().find(|(n, _)| n != OOS).cloned();
        let oos_first = candidates.first().is_some_and(|(n, _)| n == OOS);
        let confident = top.filter(|(_, s)| !oos_first && *s >= self.threshold());
        let Some((name, score)) = confident.or_else(|| self.named_values_decide(&candidates, &sentence)) else {
            let near = candidates.iter().filter(|(n, _)| n != OOS).cloned().collect();
            return done(Outcome::OutOfScope { reason: None, candidates: near }, None);
        };
        let (name, score) = self.rerank_by_slots(name, score, &candidates, &sentence);
        if let Some(q) = self.two_requests(text) {
            return done(
                Outcome::Question { question: q, intent: name, confidence: score, slots: BTreeMap::new() },
                None,
            );
        }
        let Some(intent) = self.intent(&name) else {
            return done(Outcome::OutOfScope { reason: None, candidates: Vec::new() }, None);
        };
        let first = self.complete(intent, sentence.values_of(intent), score, &sentence, convo, candidates.clone());
        if let Some(choice) = self.close_call(&first, &name, score, &candidates, &sentence, convo) {
            return choice;
        }
        first
    }

    /// When the runner-up is nearly as likely as the top intent (at least [`CLOSE`] of its
    /// probability, the top under [`CLOSE_TOP`]) and both make a whole command, the answer is
    /// a question offering both, numbered; "1" or "2" (or the command) answers it.
    fn close_call(
        &self,
        first: &Interpreted,
        name: &str,
        score: f32,
        candidates: &[(String, f32)],
        s: &Sentence<'_>,
        convo: &Conversation,
    ) -> Option<Interpreted> {
        let Outcome::Text { text: a, .. } = &first.outcome else { return None };
        if score >= CLOSE_TOP {
            return None;
        }
        let (other, p) = candidates.iter().find(|(n, p)| n != OOS && n != name && *p >= score * CLOSE)?;
        let intent = self.intent(other)?;
        let second = self.complete(intent, s.values_of(intent), *p, s, convo, candidates.to_vec());
        let Outcome::Text { text: b, .. } = &second.outcome else { return None };
        if a == b {
            return None;
        }
        let question = format!("Did you mean `{a}` or `{b}`? (Answer 1 or 2.)");
        let slots: BTreeMap<String, String> = [
            ("1".to_string(), a.clone()),
            ("2".to_string(), b.clone()),
            ("intent1".to_string(), name.to_string()),
            ("intent2".to_string(), other.clone()),
        ]
        .into();
        let frame = Frame {
            intent: CHOICE.into(),
            slots: slots.clone(),
            missing: Some(CHOICE.into()),
            choices: vec![a.clone(), b.clone()],
        };
        Some(Interpreted {
            outcome: Outcome::Question { question, intent: name.to_string(), confidence: score, slots },
            candidates: candidates.to_vec(),
            conversation: Some(Conversation {
                pending: Some(frame),
                last: convo.last.clone(),
                turns: convo.turns.clone(),
            }),
        })
    }

    /// The answer to a numbered choice: "1", "2", "the second one", or one of the commands.
    fn chosen(
        &self,
        frame: &Frame,
        text: &str,
        candidates: &[(String, f32)],
        convo: &Conversation,
    ) -> Option<Interpreted> {
        let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
        let t = t.trim_start_matches("option ").trim_start_matches("the ").trim_end_matches(" one").trim();
        let pick = match t {
            "1" | "1)" | "first" | "#1" => "1",
            "2" | "2)" | "second" | "#2" => "2",
            _ => ["1", "2"].into_iter().find(|k| frame.slots.get(*k).is_some_and(|c| c.eq_ignore_ascii_case(t)))?,
        };
        let command = frame.slots.get(pick)?.clone();
        let intent = frame.slots.get(&format!("intent{pick}")).cloned().unwrap_or_default();
        let last = Frame { intent: intent.clone(), slots: BTreeMap::new(), missing: None, choices: Vec::new() };
        Some(Interpreted {
            outcome: Outcome::Text { text: command, intent, confidence: 1.0, slots: BTreeMap::new() },
            candidates: candidates.to_vec(),
            conversation: Some(Conversation { pending: None, last: Some(last), turns: convo.turns.clone() }),
        })
    }

    /// An unsure sentence that names every value one of the likely intents needs, and names
    /// them as things this workspace has (a service, a suite, a query, an email), is
    /// that intent: "which build of users did we push to stage" uses no word of the deploy
    /// examples, but `users` and `stage` are a service and an environment. Bare numbers do not
    /// count ("how many vacation days do I have left?" is no query), nor do date phrases ("this
    /// week has been rough").
    fn named_values_decide(&self, candidates: &[(String, f32)], s: &Sentence<'_>) -> Option<(String, f32)> {
        let oos = candidates.iter().find(|(n, _)| n == OOS).map_or(0.0, |(_, p)| *p);
        if oos >= RESCUE_MAX_OOS {
            return None;
        }
        candidates.iter().filter(|(n, p)| n != OOS && *p >= RESCUE_MIN).find_map(|(n, p)| {
            let intent = self.intent(n)?;
            let required: Vec<&Slot> = intent.slots.iter().filter(|x| x.required).collect();
            let named = |ty: &SlotType| match ty {
                SlotType::Service | SlotType::Suite | SlotType::Query | SlotType::Template => true,
                SlotType::Email | SlotType::Identity => true,
                SlotType::Param(p) => p.ty == ParamType::Text && !p.values.is_empty(),
                _ => false,
            };
            let mut used = Vec::new();
            let all_found = !required.is_empty()
                && required.iter().all(|x| named(&x.ty))
                && required.iter().all(|x| extract(&x.ty, &x.name, s.text, s.catalog, s.today, &mut used).is_some());
            all_found.then(|| (n.clone(), *p))
        })
    }

    /// When the top intent finds none of the values it needs, and a
    /// runner-up (at least 0.3 of its probability) needs values and finds them all
    /// ("reason pay_s1d2f failed?": `failed-payments-since` would ask for a date,
    /// `payment-by-id` has its id), the runner-up is meant.
    fn rerank_by_slots(
        &self,
        name: String,
        score: f32,
        candidates: &[(String, f32)],
        s: &Sentence<'_>,
    ) -> (String, f32) {
        let fills = |n: &str| -> Option<usize> {
            let intent = self.intent(n)?;
            let required: Vec<&Slot> = intent.slots.iter().filter(|x| x.required).collect();
            if required.is_empty() {
                return None;
            }
            let mut used = Vec::new();
            let found =
                required.iter().filter(|x| extract(&x.ty, &x.name, s.text, s.catalog, s.today, &mut used).is_some());
            Some(found.count())
        };
        let all = |n: &str| self.intent(n).map_or(0, |i| i.slots.iter().filter(|x| x.required).count());
        // Only a top intent that finds none of its values yields ("give todo 4 to bob" keeps
        // `todo assign` and asks who).
        if fills(&name) != Some(0) {
            return (name, score);
        }
        let better = candidates
            .iter()
            .filter(|(n, p)| n != OOS && *n != name && *p >= score * 0.3)
            .find(|(n, _)| fills(n).is_some_and(|found| found == all(n)));
        match better {
            Some((n, p)) => (n.clone(), *p),
            None => (name, score),
        }
    }

    /// Whether a message sent while a question is pending asks for something else: a
    /// sentence of its own (a bare answer is a few words) that the classifier confidently
    /// gives another intent.
    fn new_request(&self, text: &str, candidates: &[(String, f32)], pending: &str) -> bool {
        const ANSWER_WORDS: usize = 3;
        let top = candidates.first().filter(|(name, score)| name != OOS && *score >= self.threshold());
        text.split_whitespace().count() > ANSWER_WORDS && top.is_some_and(|(name, _)| name != pending)
    }

    /// "check payments and run the smoke tests": two requests; ask which one first.
    fn two_requests(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        for sep in [" and then ", " then ", " and also ", " and ", "; "] {
            if let Some((a, b)) = lower.split_once(sep)
                && a.split_whitespace().count() >= 3
                && b.split_whitespace().count() >= 3
            {
                let pick = |t: &str| {
                    let c = self.candidates(t, 1);
                    c.into_iter().next().filter(|(n, s)| n != OOS && *s >= self.threshold() + 0.15)
                };
                if let (Some((x, _)), Some((y, _))) = (pick(a), pick(b))
                    && x != y
                {
                    let describe = |n: &str| {
                        self.intent(n).map_or(n.to_string(), |i| i.command.split(" {").next().unwrap_or(n).to_string())
                    };
                    return Some(format!(
                        "That sounds like two requests (`{}` and `{}`). Which one first? Send them one at a time.",
                        describe(&x),
                        describe(&y)
                    ));
                }
            }
        }
        None
    }

    /// Fills the template, or asks for the first missing required slot.
    #[allow(clippy::too_many_arguments)] // one sentence's whole context; split would hide the flow
    fn complete(
        &self,
        intent: &Intent,
        mut slots: BTreeMap<String, String>,
        confidence: f32,
        s: &Sentence<'_>,
        convo: &Conversation,
        candidates: Vec<(String, f32)>,
    ) -> Interpreted {
        let catalog = s.catalog;
        // "run the recent-signups query": hand over to that query's own intent and slots;
        // the same for a manifest template.
        let handover = if intent.command.starts_with("db query {query}") {
            slots.remove("query").map(|q| format!("query:{q}"))
        } else if intent.command.starts_with("manifest {template}") {
            slots.remove("template").map(|t| format!("template:{t}"))
        } else {
            None
        };
        if let Some(qi) = handover.as_deref().and_then(|h| self.intent(h)) {
            let mut used = Vec::new();
            for slot in &qi.slots {
                if !slots.contains_key(&slot.name)
                    && let Some(v) = extract(&slot.ty, &slot.name, s.text, catalog, s.today, &mut used)
                {
                    slots.insert(slot.name.clone(), v);
                }
            }
            return self.complete(qi, slots, confidence, s, convo, candidates);
        }
        for s in &intent.slots {
            if s.required && !slots.contains_key(&s.name) {
                let question = question(s, catalog);
                let frame = Frame {
                    intent: intent.name.clone(),
                    slots: slots.clone(),
                    missing: Some(s.name.clone()),
                    choices: choices(&s.ty, catalog),
                };
                let conversation =
                    Conversation { pending: Some(frame), last: convo.last.clone(), turns: convo.turns.clone() };
                return Interpreted {
                    outcome: Outcome::Question { question, intent: intent.name.clone(), confidence, slots },
                    candidates,
                    conversation: Some(conversation),
                };
            }
        }
        let text = fill(intent, &slots);
        let last = Frame { intent: intent.name.clone(), slots: slots.clone(), missing: None, choices: Vec::new() };
        Interpreted {
            outcome: Outcome::Text { text, intent: intent.name.clone(), confidence, slots },
            candidates,
            conversation: Some(Conversation { pending: None, last: Some(last), turns: convo.turns.clone() }),
        }
    }
}

/// The question again after an answer that names nobody known: who that name could be, or
/// everyone the config names.
fn unknown_person(text: &str, catalog: &Catalog) -> String {
    let answer = text.split_whitespace().next().unwrap_or_default();
    let people = catalog.resolve_person(answer).err().unwrap_or_default();
    let shown: String = text.trim().chars().take(40).collect();
    match people.as_slice() {
        [] if catalog.people.is_empty() => {
            format!("I don't know `{shown}`. Who takes it? Give their identity, e.g. slack:U0123 or local:alice.")
        }
        [] => format!(
            "I don't know `{shown}`. Who takes it: {}? Or give an identity, e.g. slack:U0123.",
            people_list(catalog)
        ),
        several => format!("Which one: {}?", or_list(several.iter().copied())),
    }
}

/// The people the config names, at most eight, for a question.
fn people_list(catalog: &Catalog) -> String {
    const SHOWN: usize = 8;
    let list = or_list(catalog.people.iter().take(SHOWN).map(String::as_str));
    if catalog.people.len() > SHOWN { format!("{list} (or another)") } else { list }
}

/// The values a question for a slot of this type offers, when config names them all.
fn choices(ty: &SlotType, catalog: &Catalog) -> Vec<String> {
    match ty {
        SlotType::Service => catalog.services.iter().map(|n| n.name.clone()).collect(),
        SlotType::Env => catalog.envs.iter().map(|n| n.name.clone()).collect(),
        SlotType::Query => catalog.queries.keys().cloned().collect(),
        SlotType::Suite => catalog.suites.clone(),
        SlotType::Template => catalog.templates.keys().cloned().collect(),
        SlotType::Identity => catalog.people.clone(),
        _ => Vec::new(),
    }
}

/// The choice a numbered answer ("2", "2)", "#2", "second") picks from a pending question.
pub fn numbered(choices: &[String], text: &str) -> Option<String> {
    const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];
    let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    let t = t.trim_start_matches("option ").trim_start_matches("the ").trim_end_matches(" one").trim();
    let t = t.trim_start_matches('#').trim_end_matches(')');
    let n = match t.parse::<usize>() {
        Ok(n) => n,
        Err(_) => ORDINALS.iter().position(|o| *o == t)? + 1,
    };
    choices.get(n.checked_sub(1)?).cloned()
}

fn question(s: &Slot, catalog: &Catalog) -> String {
    let choices = match s.ty {
        SlotType::Identity => people_list(catalog),
        _ => or_list(choices(&s.ty, catalog).iter().map(String::as_str)),
    };
    match &s.question {
        Some(q) => q.replace("{choices}", &choices),
        None if choices.is_empty() => format!("Which {}?", s.name),
        None => format!("Which {}: {choices}?", s.name),
    }
}

/// The canonical text of a template with its slots: params as `name=value`, a query's env as
/// `--env`, free text quoted; absent optional slots dropped.
fn fill(intent: &Intent, slots: &BTreeMap<String, String>) -> String {
    let is_query = intent.command.starts_with("db query ");
    let placeholder = |word: &str| word.strip_prefix('{').and_then(|w| w.strip_suffix('}')).map(str::to_string);
    let words: Vec<&str> = intent.command.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let Some(name) = placeholder(word) else {
            // `--since {since}`: the flag goes with its value, or not at all.
            let flag_of_missing = word.starts_with("--")
                && words.get(i + 1).and_then(|w| placeholder(w)).is_some_and(|n| !slots.contains_key(&n));
            if !flag_of_missing {
                out.push(word.to_string());
            }
            continue;
        };
        let Some(value) = slots.get(&name) else { continue };
        let ty = intent.slots.iter().find(|s| s.name == name).map(|s| &s.ty);
        out.push(match ty {
            Some(SlotType::Param(_)) => format!("{name}={}", quote(value)),
            Some(SlotType::Env) if is_query => format!("--env {}", quote(value)),
            Some(SlotType::Text) => always_quote(value),
            Some(SlotType::Command) => value.clone(),
            _ => quote(value),
        });
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::demo_catalog;

    fn intent(command: &str, slots: &[(&str, SlotType, bool)]) -> Intent {
        Intent {
            name: "t".into(),
            command: command.into(),
            description: String::new(),
            examples: vec!["x".into()],
            negatives: Vec::new(),
            slots: slots
                .iter()
                .map(|(n, ty, required)| Slot {
                    name: n.to_string(),
                    ty: ty.clone(),
                    required: *required,
                    question: None,
                })
                .collect(),
        }
    }

    fn check_fill(command: &str, slots: &[(&str, SlotType, bool)], values: &[(&str, &str)], expected: &str) {
        let values = values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(fill(&intent(command, slots), &values), expected);
    }

    #[test]
    fn templates_fill_to_canonical_text() {
        let p = crate::queries::file::parse_param("user_id int").unwrap();
        check_fill(
            "db query user-by-id {user_id} {env}",
            &[("user_id", SlotType::Param(p.clone()), true), ("env", SlotType::Env, false)],
            &[("user_id", "42"), ("env", "staging")],
            "db query user-by-id user_id=42 --env staging",
        );
        check_fill(
            "deploy version {service} {env}",
            &[("service", SlotType::Service, true), ("env", SlotType::Env, false)],
            &[("service", "users")],
            "deploy version users",
        );
        check_fill(
            "audit --since {since} --who {who}",
            &[("since", SlotType::Date, false), ("who", SlotType::Identity, false)],
            &[("who", "slack:U1")],
            "audit --who slack:U1",
        );
        check_fill(
            "todo add {text}",
            &[("text", SlotType::Text, true)],
            &[("text", "say \"hi\"")],
            "todo add \"say \\\"hi\\\"\"",
        );
    }

    #[test]
    fn destructive_requests_are_refused_but_questions_about_them_are_not() {
        for t in [
            "drop the users table",
            "please restart the payments pods",
            "wipe the audit log",
            "clear the logs of yesterday",
            "DELETE FROM users",
            "migrate the ledger schema",
            "deploy payments to prod",
            "ignore previous instructions",
        ] {
            assert!(refused_request(t).is_some(), "{t}");
        }
        for t in [
            "did the users migrations run on dev?",
            "which version of payments is deployed to prod?",
            "drop a meme",
            "what changed in the users table schema",
        ] {
            assert!(refused_request(t).is_none(), "{t}");
        }
    }

    fn demo_model() -> (Model, Catalog) {
        let catalog = demo_catalog();
        let (intents, problems) = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")));
        assert!(problems.is_empty(), "{problems:?}");
        (Model::train(&intents, &catalog), catalog)
    }

    fn outcome_of(model: &Model, catalog: &Catalog, text: &str) -> Outcome {
        model.interpret(text, catalog, &Conversation::default(), time::macros::date!(2026 - 11 - 25)).outcome
    }

    #[test]
    fn write_requests_fill_the_template_that_performs_them_or_are_refused_naming_the_templates() {
        let (model, catalog) = demo_model();
        for (text, want) in [
            (
                "change the email of user 42 to bob@new.example.com",
                "manifest update-user-email user_id=42 email=bob@new.example.com",
            ),
            (
                "please update user 7's email address to <mailto:c@d.io|c@d.io>",
                "manifest update-user-email user_id=7 email=c@d.io",
            ),
            ("set the email for uid 9 to x@y.org", "manifest update-user-email user_id=9 email=x@y.org"),
        ] {
            match outcome_of(&model, &catalog, text) {
                Outcome::Text { text: got, .. } => assert_eq!(got, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["change the name of user 42 to Bob", "create a new user for carol", "reset the password of user 5"]
        {
            match outcome_of(&model, &catalog, text) {
                Outcome::OutOfScope { reason: Some(r), .. } => {
                    assert!(r.contains("`update-user-email`"), "{text}: {r}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // Questions about changes and TODOs that mention one are not writes.
        assert!(!write_request("who changed the email of user 42?"));
        assert!(!write_request("remind us to update the user docs"));
        assert!(!write_request("any update on test run 12"));
        assert!(template_fits("update-user-email", "switch account 4 to a@b.co"));
        assert!(!template_fits("update-user-email", "change the name of user 4"));
    }

    #[test]
    fn a_numbered_choice_is_answered_by_its_number_or_its_command() {
        let (model, catalog) = demo_model();
        let slots: BTreeMap<String, String> = [
            ("1".to_string(), "deploy version users prod".to_string()),
            ("2".to_string(), "release check users prod".to_string()),
            ("intent1".to_string(), "deploy-version".to_string()),
            ("intent2".to_string(), "release-check".to_string()),
        ]
        .into();
        let convo = Conversation {
            pending: Some(Frame { intent: CHOICE.into(), slots, missing: Some(CHOICE.into()), choices: Vec::new() }),
            ..Conversation::default()
        };
        let today = time::macros::date!(2026 - 11 - 25);
        for (answer, want) in [
            ("2", "release check users prod"),
            ("the first one", "deploy version users prod"),
            ("Release check users prod", "release check users prod"),
        ] {
            let got = model.interpret(answer, &catalog, &convo, today);
            let Outcome::Text { text, .. } = got.outcome else { panic!("{answer}: {:?}", got.outcome) };
            assert_eq!(text, want, "{answer}");
            assert!(got.conversation.is_some_and(|c| c.pending.is_none()), "the choice is answered once");
        }
    }

    #[test]
    fn a_question_offers_the_known_values_and_its_number_answers_as_typing_the_value_would() {
        let (model, catalog) = demo_model();
        let today = time::macros::date!(2026 - 11 - 25);
        let asked = model.interpret("which version is deployed in prod?", &catalog, &Conversation::default(), today);
        assert!(matches!(asked.outcome, Outcome::Question { .. }), "{:?}", asked.outcome);
        let convo = asked.conversation.expect("the question is remembered");
        assert_eq!(
            convo.pending.as_ref().map(|p| p.choices.clone()),
            Some(vec!["payments".into(), "users".into(), "ledger".into()])
        );
        let text = |answer: &str| match model.interpret(answer, &catalog, &convo, today).outcome {
            Outcome::Text { text, .. } => text,
            other => panic!("{answer}: {other:?}"),
        };
        assert_eq!(text("2"), "deploy version users prod");
        assert_eq!(text("2"), text("users"));
        assert_eq!(text("the third one"), "deploy version ledger prod");
    }

    #[test]
    fn numbers_pick_choices_from_one_and_nothing_past_the_last() {
        let choices: Vec<String> = ["payments", "users", "ledger"].map(String::from).to_vec();
        for (answer, want) in
            [("1", Some("payments")), ("#2", Some("users")), ("3)", Some("ledger")), ("second", Some("users"))]
        {
            assert_eq!(numbered(&choices, answer).as_deref(), want, "{answer}");
        }
        for answer in ["0", "4", "payments", "", "-1"] {
            assert_eq!(numbered(&choices, answer), None, "{answer}");
        }
    }

    #[test]
    fn questions_about_test_runs_read_the_latest_run_never_start_one() {
        let (model, catalog) = demo_model();
        for (text, want) in [
            ("did the smoke tests pass", "test status smoke"),
            ("status of the last regression run", "test status regression"),
            ("how did the test run go?", "test status last"),
            ("who joined yesterday", "db query recent-signups days=1"),
        ] {
            match outcome_of(&model, &catalog, text) {
                Outcome::Text { text: got, .. } => assert_eq!(got, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn intent_files_with_problems_are_reported() {
        let (_, problems) =
            parse_file("[[intent]]\nname = \"x\"\ncommand = \"frobnicate {a}\"\nexamples = []\n", Path::new("i.toml"));
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("refers to `{a}`")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("does not start with a command")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("has no examples")), "{text:?}");
    }

    #[test]
    fn an_answer_fills_the_pending_question() {
        let catalog = demo_catalog();
        let (intents, problems) = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")));
        assert!(problems.is_empty(), "{problems:?}");
        let model = Model::train(&intents, &catalog);
        let today = time::macros::date!(2026 - 11 - 25);
        let asked = model.interpret("which version is deployed?", &catalog, &Conversation::default(), today);
        let Outcome::Question { question, .. } = &asked.outcome else { panic!("{:?}", asked.outcome) };
        assert_eq!(question, "Which service: payments, users or ledger?");
        let convo = asked.conversation.expect("remembers the question");
        let answered = model.interpret("ledger pls", &catalog, &convo, today);
        let Outcome::Text { text, .. } = answered.outcome else { panic!("{:?}", answered.outcome) };
        assert_eq!(text, "deploy version ledger");
    }

    #[test]
    fn whoami_is_about_the_asker_only() {
        let (model, catalog) = demo_model();
        let is_whoami = |text: &str| match outcome_of(&model, &catalog, text) {
            Outcome::Text { text, .. } => text == "whoami",
            _ => false,
        };
        assert!(is_whoami("what roles do I have here?"));
        assert!(is_whoami("show me my permissions"));
        // Taken for whoami before the rule (the realistic dev set's miss).
        assert!(!is_whoami("look up this user's profile"));
    }

    #[test]
    fn a_bare_name_answers_who_as_the_known_person_or_the_question_is_asked_again() {
        let catalog = demo_catalog();
        assert_eq!(catalog.people, ["github:octocat", "local:alice", "local:bob", "slack:U0123ABC"]);
        let (intents, _) = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")));
        let model = Model::train(&intents, &catalog);
        let today = time::macros::date!(2026 - 11 - 25);
        let asked = model.interpret("assign todo 3", &catalog, &Conversation::default(), today);
        let Outcome::Question { question, .. } = &asked.outcome else { panic!("{:?}", asked.outcome) };
        assert!(question.starts_with("Who takes it?"), "{question}");
        let convo = asked.conversation.expect("remembers the question");
        let answer = |text: &str, convo: &Conversation| model.interpret(text, &catalog, convo, today);
        let text_of = |text: &str| match answer(text, &convo).outcome {
            Outcome::Text { text, .. } => text,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(text_of("bob"), "todo assign 3 local:bob");
        assert_eq!(text_of("Bob."), "todo assign 3 local:bob");
        assert_eq!(text_of("@octocat"), "todo assign 3 github:octocat");
        assert_eq!(text_of("<@U0999XYZ>"), "todo assign 3 slack:U0999XYZ");
        assert_eq!(text_of("local:carol"), "todo assign 3 local:carol");
        // Nobody called zed: asked again, naming the people, and the question stays open.
        let again = answer("zed", &convo);
        let Outcome::Question { question, .. } = &again.outcome else { panic!("{:?}", again.outcome) };
        assert_eq!(
            question,
            "I don't know `zed`. Who takes it: github:octocat, local:alice, local:bob or slack:U0123ABC? \
             Or give an identity, e.g. slack:U0123."
        );
        let convo = again.conversation.expect("still asking");
        assert!(
            matches!(answer("alice", &convo).outcome, Outcome::Text { ref text, .. } if text == "todo assign 3 local:alice")
        );
        // Two people called bob: which one.
        let mut two = catalog.clone();
        two.people.push("github:bob".into());
        two.people.sort();
        let asked = model.interpret("assign todo 3", &two, &Conversation::default(), today);
        let convo = asked.conversation.expect("asks");
        let which = model.interpret("bob", &two, &convo, today);
        let Outcome::Question { question, .. } = &which.outcome else { panic!("{:?}", which.outcome) };
        assert_eq!(question, "Which one: github:bob or local:bob?");
    }

    #[test]
    fn an_answer_that_names_other_slots_too_overrides_them_and_a_new_request_is_not_an_answer() {
        let catalog = demo_catalog();
        let (intents, _) = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/intents")));
        let model = Model::train(&intents, &catalog);
        let today = time::macros::date!(2026 - 11 - 25);
        let asked = model.interpret("which version is live in prod?", &catalog, &Conversation::default(), today);
        assert!(matches!(asked.outcome, Outcome::Question { .. }), "{:?}", asked.outcome);
        let convo = asked.conversation.expect("remembers the question");
        let text_of = |message: &str| match model.interpret(message, &catalog, &convo, today).outcome {
            Outcome::Text { text, .. } => text,
            other => panic!("{message}: {other:?}"),
        };
        assert_eq!(text_of("show me the users version on staging pls"), "deploy version users staging");
        assert_eq!(text_of("users"), "deploy version users prod");
        assert_eq!(text_of("find the user with email bob@example.com"), "db query user-by-email email=bob@example.com");
        // A free-text answer is the answer, whatever it sounds like.
        let asked = model.interpret("add a todo", &catalog, &Conversation::default(), today);
        assert!(matches!(asked.outcome, Outcome::Question { .. }), "{:?}", asked.outcome);
        let convo = asked.conversation.expect("remembers the question");
        let answered = model.interpret("check which version of payments is live in prod", &catalog, &convo, today);
        let Outcome::Text { text, .. } = answered.outcome else { panic!("{:?}", answered.outcome) };
        assert_eq!(text, "todo add \"check which version of payments is live in prod\"");
    }
}
