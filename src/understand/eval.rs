//! Measuring understanding: `lazyops intents eval` on held-out cases of the workspace, and
//! `lazyops intents bench` on CLINC150-format data for the classifier alone.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::classifier::{Classifier, Options};
use super::intent::Conversation;
use super::llm::{Allowed, Asking, Llm};
use super::{Context, Tier, Understanding, understand, understand_with};
use crate::config::LlmMode;
use crate::spec::CommandKind;
use crate::workspace::Workspace;

#[derive(Debug, Deserialize)]
struct Case {
    text: String,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    expect_question: bool,
    /// The date "yesterday" is relative to; today when absent.
    #[serde(default)]
    today: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Miss {
    pub text: String,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub support: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub total: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub misses: Vec<Miss>,
    pub per_intent: BTreeMap<String, Score>,
    /// (expected, got) label pairs that were confused, with counts.
    pub confusion: Vec<(String, String, usize)>,
    /// How well confidence predicts being right, over the cases answered with a command or a
    /// question by the intent layer (typed commands, confidence 1 by definition, left out).
    pub calibration: Calibration,
    /// With `--llm`: the same cases with the local layer alone, and what the model did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSummary>,
}

/// Reliability of the confidence: cases in ten equal-width bins of confidence, each bin's
/// mean confidence against its accuracy; the expected calibration error is their gap weighted
/// by the bins' sizes.
#[derive(Debug, Default, Serialize)]
pub struct Calibration {
    pub answered: usize,
    pub expected_calibration_error: f64,
    pub bins: Vec<Bin>,
    /// Wrong commands given at confidence 0.9 or more: the target is none.
    pub wrong_at_or_above_0_9: Vec<Miss>,
}

#[derive(Debug, Default, Serialize)]
pub struct Bin {
    /// `[from, to)`; the last bin includes 1.
    pub from: f64,
    pub to: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

impl Calibration {
    /// From (confidence, right) pairs.
    pub fn of(points: &[(f64, bool)]) -> Calibration {
        const BINS: usize = 10;
        let mut bins: Vec<Bin> = (0..BINS)
            .map(|i| Bin { from: i as f64 / BINS as f64, to: (i + 1) as f64 / BINS as f64, ..Bin::default() })
            .collect();
        for &(c, right) in points {
            let i = ((c.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
            let b = &mut bins[i];
            b.count += 1;
            b.mean_confidence += c;
            b.accuracy += f64::from(u8::from(right));
        }
        let n = points.len().max(1) as f64;
        let mut ece = 0.0;
        for b in bins.iter_mut().filter(|b| b.count > 0) {
            b.mean_confidence /= b.count as f64;
            b.accuracy /= b.count as f64;
            ece += b.count as f64 / n * (b.accuracy - b.mean_confidence).abs();
        }
        Calibration { answered: points.len(), expected_calibration_error: ece, bins, wrong_at_or_above_0_9: Vec::new() }
    }
}

/// The LLM tier against the local layer on the same cases.
#[derive(Debug, Default, Serialize)]
pub struct LlmSummary {
    pub mode: &'static str,
    pub local_correct: usize,
    pub local_accuracy: f64,
    /// Which tier gave the answers (grammar, local, llm, none).
    pub tiers: BTreeMap<&'static str, usize>,
    /// What came of asking the model: command, question, refused, failed, timeout, ...
    pub outcomes: BTreeMap<&'static str, usize>,
    pub asked: usize,
    pub cached: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub mean_latency_ms: f64,
    /// Cases the two tiers answered differently.
    pub changed: Vec<Change>,
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub text: String,
    pub expected: String,
    pub local: String,
    pub with_llm: String,
}

/// The LLM tier for `intents eval --llm`: a client and the mode to run it in.
pub struct EvalLlm<'a> {
    pub llm: &'a Llm,
    pub mode: LlmMode,
}

fn outcome(u: &Understanding) -> String {
    match u {
        Understanding::Command { command, .. } => command.to_string(),
        Understanding::Question { .. } => "(question)".to_string(),
        Understanding::NotUnderstood { .. } => "(out of scope)".to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{file}:{line}: {message}")]
    Case { file: String, line: usize, message: String },
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
}

/// A case's label for precision/recall: the command (and query) it names.
fn label(canonical: &str) -> String {
    let words: Vec<&str> = canonical.split_whitespace().collect();
    let spec = crate::spec::SPECS
        .iter()
        .filter(|s| s.words.len() <= words.len() && s.words.iter().zip(&words).all(|(a, b)| a == b))
        .max_by_key(|s| s.words.len());
    match spec {
        Some(s) if s.kind == CommandKind::DbQuery => format!("db query {}", words.get(2).unwrap_or(&"")),
        Some(s) => s.name(),
        None => canonical.to_string(),
    }
}

/// Scores the cases; with `with_llm`, through the LLM tier as well, against the local layer alone.
pub async fn eval(
    ws: &Workspace,
    cases_text: &str,
    file: &str,
    with_llm: Option<EvalLlm<'_>>,
) -> Result<Report, EvalError> {
    ws.model(); // trained once up front, so per-case timings do not include it
    let mut report = Report {
        total: 0,
        correct: 0,
        accuracy: 0.0,
        misses: Vec::new(),
        per_intent: BTreeMap::new(),
        confusion: Vec::new(),
        calibration: Calibration::default(),
        llm: None,
    };
    let mut points: Vec<(f64, bool)> = Vec::new();
    let mut confident_wrong: Vec<Miss> = Vec::new();
    let asking = with_llm.as_ref().map(|e| Asking {
        llm: e.llm,
        mode: e.mode,
        config: &ws.config.llm,
        setup: &ws.llm,
        allowed: Allowed::everything(&ws.catalog),
        bot_name: &ws.config.bot.name,
        who: "local:eval",
        timeout: std::time::Duration::from_millis(ws.config.llm.timeout_ms),
        rate_limited: false,
    });
    let mut summary = with_llm.as_ref().map(|e| LlmSummary {
        mode: if e.mode == LlmMode::Always { "always" } else { "fallback" },
        ..LlmSummary::default()
    });
    let mut latency_total = 0u64;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (i, line) in cases_text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| EvalError::Case {
            file: file.into(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let today = match &case.today {
            Some(d) => match crate::param::ParamValue::parse(crate::param::ParamType::Date, d) {
                Ok(crate::param::ParamValue::Date(d)) => d,
                _ => {
                    return Err(EvalError::Case {
                        file: file.into(),
                        line: i + 1,
                        message: format!("today `{d}` is not a date"),
                    });
                }
            },
            None => time::OffsetDateTime::now_utc().date(),
        };
        let convo = Conversation::default();
        let ctx = Context { catalog: &ws.catalog, model: Some(ws.lazy_model()), conversation: &convo, today };
        let expected = match (&case.expect, case.expect_question) {
            (_, true) => "(question)".to_string(),
            (Some(c), false) => c.clone(),
            (None, false) => "(out of scope)".to_string(),
        };
        let got = match (&asking, &mut summary) {
            (Some(asking), Some(sum)) => {
                let local = outcome(&understand(case.text.trim(), &ctx).understanding);
                let r = understand_with(case.text.trim(), &ctx, Some(asking)).await;
                let got = outcome(&r.understanding);
                let tier = match &r.understanding {
                    Understanding::Command { tier, .. } | Understanding::Question { tier, .. } => *tier,
                    Understanding::NotUnderstood { .. } => Tier::None,
                };
                *sum.tiers.entry(tier.name()).or_default() += 1;
                if let Some(l) = &r.llm {
                    sum.asked += 1;
                    sum.cached += usize::from(l.cached);
                    *sum.outcomes.entry(l.outcome).or_default() += 1;
                    sum.prompt_tokens += u64::from(l.prompt_tokens);
                    sum.completion_tokens += u64::from(l.completion_tokens);
                    latency_total += l.latency_ms;
                }
                sum.local_correct += usize::from(local == expected);
                if local != got {
                    let change =
                        Change { text: case.text.clone(), expected: expected.clone(), local, with_llm: got.clone() };
                    sum.changed.push(change);
                }
                got
            }
            _ => {
                let u = understand(case.text.trim(), &ctx).understanding;
                let got = outcome(&u);
                match &u {
                    Understanding::Command { tier, confidence, .. }
                    | Understanding::Question { tier, confidence, .. }
                        if *tier != Tier::Grammar =>
                    {
                        points.push((f64::from(*confidence), got == expected));
                        if got != expected && *confidence >= 0.9 && matches!(u, Understanding::Command { .. }) {
                            confident_wrong.push(Miss {
                                text: case.text.clone(),
                                expected: expected.clone(),
                                got: got.clone(),
                            });
                        }
                    }
                    _ => {}
                }
                got
            }
        };
        report.total += 1;
        if got == expected {
            report.correct += 1;
        } else {
            report.misses.push(Miss { text: case.text.clone(), expected: expected.clone(), got: got.clone() });
        }
        pairs.push((label(&expected), label(&got)));
    }
    report.accuracy = if report.total == 0 { 0.0 } else { report.correct as f64 / report.total as f64 };
    report.calibration = Calibration { wrong_at_or_above_0_9: confident_wrong, ..Calibration::of(&points) };
    if let Some(mut sum) = summary {
        sum.local_accuracy = if report.total == 0 { 0.0 } else { sum.local_correct as f64 / report.total as f64 };
        sum.mean_latency_ms = if sum.asked == 0 { 0.0 } else { latency_total as f64 / sum.asked as f64 };
        report.llm = Some(sum);
    }
    let labels: std::collections::BTreeSet<&String> = pairs.iter().flat_map(|(a, b)| [a, b]).collect();
    for l in labels {
        let tp = pairs.iter().filter(|(e, g)| e == l && g == l).count();
        let expected = pairs.iter().filter(|(e, _)| e == l).count();
        let predicted = pairs.iter().filter(|(_, g)| g == l).count();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        report.per_intent.insert(
            l.clone(),
            Score { precision: ratio(tp, predicted), recall: ratio(tp, expected), support: expected },
        );
    }
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (e, g) in pairs.into_iter().filter(|(e, g)| e != g) {
        *confusion.entry((e, g)).or_default() += 1;
    }
    let mut confusion: Vec<(String, String, usize)> = confusion.into_iter().map(|((e, g), n)| (e, g, n)).collect();
    confusion.sort_by_key(|c| std::cmp::Reverse(c.2));
    report.confusion = confusion;
    Ok(report)
}

#[derive(Debug, Deserialize)]
struct Labelled {
    text: String,
    intent: String,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub in_scope_accuracy: f64,
    pub oos_recall: f64,
    pub train_ms: f64,
    pub us_per_sentence: f64,
}

fn read_labelled(text: &str, file: &str) -> Result<Vec<Labelled>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Case {
                file: file.into(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Trains the classifier on `train` (intent `oos` = out of scope) and scores it on `test`.
pub fn bench(train: &str, test: &str, train_file: &str, test_file: &str) -> Result<BenchReport, EvalError> {
    let train = read_labelled(train, train_file)?;
    let test = read_labelled(test, test_file)?;
    let mut labels: Vec<String> = train.iter().map(|l| l.intent.clone()).collect();
    labels.sort();
    labels.dedup();
    let index = |name: &str| labels.iter().position(|l| l == name);
    let examples: Vec<(&str, usize)> =
        train.iter().filter_map(|l| index(&l.intent).map(|i| (l.text.as_str(), i))).collect();
    let started = Instant::now();
    let opts = Options::default();
    let clf = Classifier::train(&examples, &labels, &opts);
    let train_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (mut in_scope, mut in_ok, mut oos, mut oos_ok) = (0usize, 0usize, 0usize, 0usize);
    let started = Instant::now();
    for l in &test {
        let decided = clf.decide(&l.text).and_then(|s| labels.get(s.label));
        if l.intent == "oos" {
            oos += 1;
            oos_ok += usize::from(decided.is_none());
        } else {
            in_scope += 1;
            in_ok += usize::from(decided == Some(&l.intent));
        }
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / test.len().max(1) as f64;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(BenchReport {
        in_scope_accuracy: ratio(in_ok, in_scope),
        oos_recall: ratio(oos_ok, oos),
        train_ms,
        us_per_sentence: us,
    })
}
