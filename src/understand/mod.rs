//! Understanding: text in, a `Command` (or one precise question, or "not understood") out.
//! The grammar always goes first; the intent layer only fills a command template and hands
//! the canonical text back to the grammar, so nothing reaches `decide` that a power user could
//! not have typed.

pub mod classifier;
pub mod embedding;
pub mod eval;
pub mod grammar;
pub mod intent;
pub mod llm;
pub mod slots;

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
        /// The layer that asks: the local intent layer or the model.
        tier: Tier,
    },
    NotUnderstood {
        /// Set when the text was meant as a command and the grammar refused it.
        error: Option<Box<ParseError>>,
        /// The closest commands, for "did you mean".
        suggestions: Vec<String>,
        /// Why a request is refused outright (a write, a restart), when it is.
        reason: Option<String>,
    },
}

/// What `understand` needs besides the text.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    /// The local intent layer; `None` understands typed commands only.
    pub model: Option<intent::LazyModel<'a>>,
    pub conversation: &'a intent::Conversation,
    pub today: time::Date,
}

/// The understanding of one message, with what `explain` shows and what the thread should
/// remember.
pub struct Result {
    pub understanding: Understanding,
    pub slots: std::collections::BTreeMap<String, String>,
    pub candidates: Vec<(String, f32)>,
    /// `Some` when the conversation of this thread changed.
    pub conversation: Option<intent::Conversation>,
    /// What the LLM tier did, when it was asked.
    pub llm: Option<llm::Report>,
    /// In `always` mode, the local answer when the model's answer differs from it.
    pub local: Option<Box<Result>>,
}

/// An understanding with nothing else to report: no slots, candidates, thread change or LLM.
fn plain(understanding: Understanding) -> Result {
    Result {
        understanding,
        slots: Default::default(),
        candidates: Vec::new(),
        conversation: None,
        llm: None,
        local: None,
    }
}

/// What the grammar tier makes of text that parsed as `command`, with no thread state.
pub fn typed(command: Command) -> Result {
    plain(Understanding::Command { command, tier: Tier::Grammar, intent: None, confidence: 1.0 })
}

/// Words a person adds around a command that no command takes.
const COURTESY: &[&str] = &["please", "pls", "plz", "plox", "kindly", "thanks", "thx", "ty"];

/// Words of a sentence that a typed command never has: with one of them, text that starts like
/// a command and does not parse is a sentence for the intent layer, not a typing mistake.
const FILLER: &[&str] = &["of", "the", "that", "this", "my", "me", "for", "an"];

/// The words of `text` outside double quotes, lower-case.
fn bare_words(text: &str) -> Vec<String> {
    text.split('"').step_by(2).flat_map(str::split_whitespace).map(|w| w.to_ascii_lowercase()).collect()
}

/// `text` without the courtesy words at its start and end ("todo list please", "please
/// todo list", "meme pls thanks"), when it has any.
fn without_courtesy(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let polite = |w: &&&str| {
        let w = w.trim_end_matches(['!', '.', ',']).to_ascii_lowercase();
        COURTESY.contains(&w.as_str()) || w == "thank" || w == "you"
    };
    let start = words.iter().take_while(polite).count();
    let end = words.len() - words[start..].iter().rev().take_while(polite).count();
    // "thank you" is courtesy, a lone "you" is not.
    let stripped = &words[start..end];
    (stripped.len() < words.len() && words[..start].iter().chain(&words[end..]).any(|w| !w.eq_ignore_ascii_case("you")))
        .then(|| stripped.join(" ").trim_end_matches([',', '!', '.']).to_string())
}

/// The message without a leading "@lazyops" (or "@lazyops:"), as people write it out of habit
/// where the transport did not take the mention off already (the terminal, a pasted message).
fn unaddressed(text: &str) -> &str {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.get(..8).filter(|w| w.eq_ignore_ascii_case("@lazyops")).map(|_| &trimmed[8..]) else {
        return text;
    };
    match rest.chars().next() {
        None => rest,
        Some(c) if c.is_whitespace() || c == ':' || c == ',' => rest.trim_start_matches([':', ',']).trim_start(),
        Some(_) => text,
    }
}

/// Whether `given` is `keyword` mistyped: one slip (a letter wrong, missing, extra or two
/// swapped) in a word, two in a long one. Looser matching took "recent signups" for `reject`.
fn is_typo_of(given: &str, keyword: &str) -> bool {
    let slips = strsim::damerau_levenshtein(&given.to_lowercase(), keyword);
    slips <= if keyword.len() >= 8 { 2 } else { 1 }
}

/// Whether text that starts like a command has words a command would not ("test status of
/// run 3", "cancel that run", "todo list please"): such text goes to the intent layer.
fn has_extra_words(text: &str) -> bool {
    bare_words(text).iter().any(|w| {
        let w = w.trim_end_matches(['!', '.', ',', '?']);
        COURTESY.contains(&w) || FILLER.contains(&w)
    })
}

/// Whether text that was not understood was an attempt at a typed command (a typing mistake),
/// rather than a sentence: it starts with a command's word and has no sentence's words.
pub fn typed_attempt(text: &str) -> bool {
    grammar::looks_like_command(text) && !has_extra_words(text) && without_courtesy(text).is_none()
}

/// The command `text` was typed as, when it is exactly a command: a command with a courtesy
/// word around it ("meme pls" is not r/pls) is a sentence, which is confirmed first.
pub fn typed_command(text: &str, catalog: &Catalog) -> Option<Command> {
    if without_courtesy(text).is_some() {
        return None;
    }
    grammar::parse(text, catalog).ok()
}

/// Understands one message. Text that parses is a command with confidence 1. Otherwise the
/// intent layer may fill a command template, whose text goes back through the grammar; text
/// that was meant as a command (starts with a command word) and is not understood gets the
/// parse error, anything else "not understood" with the closest commands.
pub fn understand(text: &str, ctx: &Context<'_>) -> Result {
    let text = unaddressed(text);
    // "todo list please": the command without its courtesy words, shown for confirmation.
    if let Some(stripped) = without_courtesy(text)
        && let Ok(command) = grammar::parse(&stripped, ctx.catalog)
    {
        let intent = Some("courtesy".to_string());
        return plain(Understanding::Command { command, tier: Tier::Local, intent, confidence: 0.95 });
    }
    let parse_error = match grammar::parse(text, ctx.catalog) {
        Ok(command) => {
            // A typed command ends any question that was pending in this thread.
            let conversation = ctx.conversation.pending.as_ref().map(|_| intent::Conversation {
                pending: None,
                last: ctx.conversation.last.clone(),
                turns: ctx.conversation.turns.clone(),
            });
            return Result { conversation, ..typed(command) };
        }
        Err(e) => e,
    };
    // "deplyo version payments": the command the grammar suggests, if the rest then parses.
    if let grammar::ParseErrorKind::UnknownCommand { given, hint: Some(hint) } = &parse_error.kind
        && given.split_whitespace().count() == hint.split_whitespace().count()
        && given.split_whitespace().zip(hint.split_whitespace()).all(|(g, h)| is_typo_of(g, h))
    {
        let rest: Vec<&str> = text.split_whitespace().skip(given.split_whitespace().count()).collect();
        let fixed = format!("{hint} {}", rest.join(" "));
        if let Ok(command) = grammar::parse(fixed.trim(), ctx.catalog) {
            let confidence = strsim::normalized_damerau_levenshtein(given, hint) as f32;
            let understanding =
                Understanding::Command { command, tier: Tier::Local, intent: Some("typo".into()), confidence };
            return plain(understanding);
        }
    }
    // "test status of run 3" is a sentence; "db query user-by-id abc" is a typing mistake.
    let extra = has_extra_words(text);
    let meant = grammar::looks_like_command(text) && !extra;
    if !extra && grammar::typed_as_command(text, ctx.catalog) {
        return plain(Understanding::NotUnderstood {
            error: Some(Box::new(parse_error)),
            suggestions: Vec::new(),
            reason: None,
        });
    }
    let not_understood = |suggestions: Vec<String>, reason: Option<String>| {
        if meant {
            Understanding::NotUnderstood { error: Some(Box::new(parse_error.clone())), suggestions, reason }
        } else {
            let suggestions = if suggestions.is_empty() {
                parse_error.kind.hint().map(|h| vec![h.to_string()]).unwrap_or_default()
            } else {
                suggestions
            };
            Understanding::NotUnderstood { error: None, suggestions, reason }
        }
    };
    let Some(model) = ctx.model.map(|m| m.get()) else {
        return plain(not_understood(Vec::new(), None));
    };
    let i = model.interpret(text, ctx.catalog, ctx.conversation, ctx.today);
    let candidates = i.candidates;
    match i.outcome {
        intent::Outcome::Text { text: canonical, intent, confidence, slots } => {
            match grammar::parse(&canonical, ctx.catalog) {
                Ok(command) => Result {
                    understanding: Understanding::Command {
                        command,
                        tier: Tier::Local,
                        intent: Some(intent),
                        confidence,
                    },
                    slots,
                    candidates,
                    conversation: i.conversation,
                    llm: None,
                    local: None,
                },
                // The sentence named a value the command refuses (an unknown name, a bad number).
                Err(e) => Result {
                    understanding: Understanding::NotUnderstood {
                        error: Some(Box::new(e)),
                        suggestions: Vec::new(),
                        reason: None,
                    },
                    slots,
                    candidates,
                    conversation: None,
                    llm: None,
                    local: None,
                },
            }
        }
        intent::Outcome::Question { question, intent, confidence, slots } => Result {
            understanding: Understanding::Question { question, intent, confidence, tier: Tier::Local },
            slots,
            candidates,
            conversation: i.conversation,
            llm: None,
            local: None,
        },
        intent::Outcome::OutOfScope { reason, candidates: near } => {
            let suggestions = near
                .iter()
                .filter_map(|(name, _)| {
                    model.intent(name).map(|i| i.command.split(" {").next().unwrap_or(name).to_string())
                })
                .collect();
            Result { candidates, ..plain(not_understood(suggestions, reason)) }
        }
    }
}

/// Understands one message with the LLM tier as a second opinion. The local answer comes
/// first; when `asking` says this message goes to the model, the model's answer (whose tool call
/// went through the grammar like typed text) is used if it is usable, and the local answer is
/// kept for `explain` when they differ. Otherwise the local answer stands, with the tier's
/// report (and its note, when the model failed).
pub async fn understand_with(text: &str, ctx: &Context<'_>, asking: Option<&llm::Asking<'_>>) -> Result {
    let local = understand(text, ctx);
    let Some(asking) = asking.filter(|a| a.wanted(&local.understanding)) else {
        return local;
    };
    let (answer, report) = asking.ask(ctx.catalog, text, &ctx.conversation.turns).await;
    let Some((understanding, slots)) = answer else {
        return Result { llm: Some(report), ..local };
    };
    // The model's "out of scope" words a refusal better; it does not overrule a local answer.
    let local_understood = !matches!(local.understanding, Understanding::NotUnderstood { .. });
    if matches!(understanding, Understanding::NotUnderstood { .. }) && local_understood {
        return Result { llm: Some(report), ..local };
    }
    let keep_local =
        asking.mode == crate::config::LlmMode::Always && gist(&understanding) != gist(&local.understanding);
    // A model's answer ends any question the local layer had pending in this thread.
    let conversation = Some(intent::Conversation {
        pending: None,
        last: ctx.conversation.last.clone(),
        turns: ctx.conversation.turns.clone(),
    });
    Result {
        understanding,
        slots,
        candidates: local.candidates.clone(),
        conversation,
        llm: Some(report),
        local: keep_local.then(|| Box::new(local)),
    }
}

/// What an answer amounts to, to tell whether two tiers agree.
fn gist(u: &Understanding) -> Option<String> {
    match u {
        Understanding::Command { command, .. } => Some(command.to_string()),
        Understanding::Question { question, .. } => Some(format!("? {question}")),
        Understanding::NotUnderstood { .. } => None,
    }
}

/// How the bot answered, as one line of the thread's history for the LLM tier: the canonical
/// command, or the question or refusal in the answer format the prompts use.
pub fn turn_summary(u: &Understanding) -> String {
    match u {
        Understanding::Command { command, .. } => format!("Understood as the command `{command}`."),
        Understanding::Question { question, .. } => format!("QUESTION: {question}"),
        Understanding::NotUnderstood { reason: Some(r), .. } => format!("OUT_OF_SCOPE: {r}"),
        Understanding::NotUnderstood { error: Some(e), .. } => format!("OUT_OF_SCOPE: {}", e.message()),
        Understanding::NotUnderstood { .. } => "OUT_OF_SCOPE: not understood.".to_string(),
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
    /// What the LLM tier did, when it was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<llm::Report>,
    /// In `always` mode, the local answer when the model's answer differs from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Box<Explanation>>,
}

impl Explanation {
    pub fn of(r: &Result) -> Explanation {
        let u = &r.understanding;
        let mut e = Explanation {
            command: None,
            question: None,
            intent: None,
            confidence: 0.0,
            tier: Tier::None,
            slots: Default::default(),
            candidates: Vec::new(),
            error: None,
            llm: r.llm.clone(),
            local: r.local.as_deref().map(|l| Box::new(Explanation::of(l))),
        };
        match u {
            Understanding::Command { command, tier, intent, confidence } => {
                e.command = Some(command.to_string());
                e.tier = *tier;
                e.intent = intent.clone();
                e.confidence = *confidence;
            }
            Understanding::Question { question, intent, confidence, tier } => {
                e.question = Some(question.clone());
                e.intent = Some(intent.clone());
                e.confidence = *confidence;
                e.tier = *tier;
            }
            Understanding::NotUnderstood { error, reason, .. } => {
                e.error = reason.clone().or_else(|| error.as_ref().map(|e| e.message()))
            }
        }
        e.slots = r.slots.clone();
        e.candidates = r.candidates.clone();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn courtesy_words_around_a_command_are_taken_off() {
        assert_eq!(without_courtesy("todo list please").as_deref(), Some("todo list"));
        assert_eq!(without_courtesy("please todo list").as_deref(), Some("todo list"));
        assert_eq!(without_courtesy("meme pls").as_deref(), Some("meme"));
        assert_eq!(without_courtesy("release check ledger pls!").as_deref(), Some("release check ledger"));
        assert_eq!(without_courtesy("todo list, thank you").as_deref(), Some("todo list"));
        assert_eq!(without_courtesy("todo list"), None);
        assert_eq!(without_courtesy("todo assign 3 you"), None, "a lone `you` is not courtesy");
    }

    #[test]
    fn filler_words_mark_a_sentence_but_a_bad_value_does_not() {
        assert!(has_extra_words("test status of run 3"));
        assert!(has_extra_words("cancel that run"));
        assert!(!has_extra_words("db query user-by-id abc"));
        assert!(!has_extra_words("todo add \"fix the bug\""), "quoted text is not looked at");
    }

    #[test]
    fn a_typo_is_one_slip_not_any_word_of_the_same_length() {
        assert!(is_typo_of("deplyo", "deploy"));
        assert!(is_typo_of("Relase", "release"));
        assert!(is_typo_of("aprovals", "approvals"));
        assert!(!is_typo_of("recent", "reject"), "two letters apart: another word");
        assert!(!is_typo_of("orders", "reject"));
        assert!(!is_typo_of("mine", "meme"));
    }

    #[test]
    fn a_leading_mention_of_the_bot_is_not_part_of_the_message() {
        assert_eq!(unaddressed("@lazyops deploy version ledger"), "deploy version ledger");
        assert_eq!(unaddressed("  @LazyOps: who joined today"), "who joined today");
        assert_eq!(unaddressed("@lazyops, meme"), "meme");
        assert_eq!(unaddressed("@lazyopsbot meme"), "@lazyopsbot meme");
        assert_eq!(unaddressed("ask @lazyops"), "ask @lazyops");
        assert_eq!(unaddressed("@lazyops"), "");
        assert_eq!(unaddressed("@lazyop€"), "@lazyop€", "no panic on a multi-byte character at the cut");
    }
}
