//! Understanding: text in, a `Command` (or one precise question, or "not understood") out.
//! The grammar always goes first; the intent layer only fills a command template and hands
//! the canonical text back to the grammar, so nothing reaches `decide` that a power user could
//! not have typed.

pub mod grammar;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::command::Command;
use grammar::ParseError;

/// Which layer understood the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Grammar,
    Local,
    Llm,
    None,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Grammar => "grammar",
            Tier::Local => "local",
            Tier::Llm => "llm",
            Tier::None => "none",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Understanding {
    Command {
        command: Command,
        tier: Tier,
        intent: Option<String>,
        confidence: f32,
    },
    /// A required value is missing: ask this, and the next message in the thread answers.
    Question {
        question: String,
        intent: String,
        confidence: f32,
    },
    NotUnderstood {
        /// Set when the text was meant as a command and the grammar refused it.
        error: Option<Box<ParseError>>,
        /// The closest commands, for "did you mean".
        suggestions: Vec<String>,
    },
}

/// Understands one message. Text that parses is a command with confidence 1; text that was
/// meant as a command (starts with a command word) and does not parse gets the parse error.
pub fn understand(text: &str, catalog: &Catalog) -> Understanding {
    match grammar::parse(text, catalog) {
        Ok(command) => Understanding::Command { command, tier: Tier::Grammar, intent: None, confidence: 1.0 },
        Err(e) => {
            let suggestions = e.kind.hint().map(|h| vec![h.to_string()]).unwrap_or_default();
            let meant = grammar::looks_like_command(text);
            Understanding::NotUnderstood { error: meant.then(|| Box::new(e)), suggestions }
        }
    }
}

/// How a text is understood, for `explain`: the stable JSON of `lazyops explain --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub command: Option<String>,
    pub question: Option<String>,
    pub intent: Option<String>,
    pub confidence: f32,
    pub tier: Tier,
    pub slots: std::collections::BTreeMap<String, String>,
    /// The best intents with their scores, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<(String, f32)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Explanation {
    pub fn of(u: &Understanding) -> Explanation {
        let mut e = Explanation {
            command: None,
            question: None,
            intent: None,
            confidence: 0.0,
            tier: Tier::None,
            slots: Default::default(),
            candidates: Vec::new(),
            error: None,
        };
        match u {
            Understanding::Command { command, tier, intent, confidence } => {
                e.command = Some(command.to_string());
                e.tier = *tier;
                e.intent = intent.clone();
                e.confidence = *confidence;
            }
            Understanding::Question { question, intent, confidence } => {
                e.question = Some(question.clone());
                e.intent = Some(intent.clone());
                e.confidence = *confidence;
                e.tier = Tier::Local;
            }
            Understanding::NotUnderstood { error, .. } => e.error = error.as_ref().map(|e| e.message()),
        }
        e
    }
}
