//! The strict command language (`grammar/command.pest`) and the one function that turns text
//! into a [`Command`]. Every path to execution, typed or understood from a sentence, ends here;
//! pest's `Rule` and `Pairs` never leave this module.

use pest::Parser;
use pest::iterators::Pair;

use crate::catalog::{Catalog, Unknown, closest, or_list};
use crate::command::{AUDIT_LIMIT, AUDIT_MAX_LIMIT, Command, Params, RunRef, Since};
use crate::param::{ParamSpec, ParamValue};
use crate::spec::{ArgKind, CommandKind, CommandSpec, SPECS, spec};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/command.pest"]
struct CommandParser;

/// Why a text is not a valid command, and where: the message is the power user's UI.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty command; try `help`")]
    Empty,
    #[error("unknown command `{given}`{}", hint_text(hint))]
    UnknownCommand { given: String, hint: Option<String> },
    #[error("`{family}` needs one of: {choices}")]
    Incomplete { family: String, choices: String },
    #[error("unbalanced quote: a value that starts with `\"` must end with one")]
    UnbalancedQuote,
    #[error("unexpected `{given}`; expected {expected}")]
    Syntax { given: String, expected: String },
    #[error("unknown environment `{given}`{}; environments are {choices}", hint_text(hint))]
    UnknownEnv { given: String, hint: Option<String>, choices: String },
    #[error("unknown service `{given}`{}; services are {choices}", hint_text(hint))]
    UnknownService { given: String, hint: Option<String>, choices: String },
    #[error("unknown query `{given}`{}; `db list` shows the queries", hint_text(hint))]
    UnknownQuery { given: String, hint: Option<String> },
    #[error("unknown test suite `{given}`{}; suites are {choices}", hint_text(hint))]
    UnknownSuite { given: String, hint: Option<String>, choices: String },
    #[error("unknown database `{given}`{}; databases are {choices}", hint_text(hint))]
    UnknownDatabase { given: String, hint: Option<String>, choices: String },
    #[error("unknown manifest template `{given}`{}", hint_text(hint))]
    UnknownTemplate { given: String, hint: Option<String> },
    #[error("unknown help topic `{given}`{}", hint_text(hint))]
    UnknownTopic { given: String, hint: Option<String> },
    #[error("unknown argument `{name}`{}", hint_text(hint))]
    UnknownArg { name: String, hint: Option<String> },
    #[error("`{name}` is given twice")]
    DuplicateArg { name: String },
    #[error("missing {what}")]
    MissingArg { what: String },
    #[error("unexpected extra argument `{given}`")]
    ExtraArg { given: String },
    #[error("{0}")]
    BadValue(String),
}

impl ParseErrorKind {
    /// The "did you mean" suggestion, if any.
    pub fn hint(&self) -> Option<&str> {
        use ParseErrorKind as E;
        match self {
            E::UnknownCommand { hint, .. }
            | E::UnknownEnv { hint, .. }
            | E::UnknownService { hint, .. }
            | E::UnknownQuery { hint, .. }
            | E::UnknownSuite { hint, .. }
            | E::UnknownTemplate { hint, .. }
            | E::UnknownDatabase { hint, .. }
            | E::UnknownTopic { hint, .. }
            | E::UnknownArg { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

fn hint_text(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default()
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The input, for the caret display.
    pub input: String,
    /// Character offset and length of the offending part.
    pub at: usize,
    pub len: usize,
    pub usage: Option<String>,
}

impl ParseError {
    /// The one-line message: what happened and what to do.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// 1-based column of the offending part.
    pub fn column(&self) -> usize {
        self.at + 1
    }

    /// The input with a caret under the offending part, control characters made visible.
    pub fn caret(&self) -> String {
        let shown: String = self.input.chars().map(visible).collect();
        format!("  {shown}\n  {}{}", " ".repeat(self.at), "^".repeat(self.len.max(1)))
    }
}

/// Control characters and escapes are shown as `�` so nothing a user typed can drive a terminal.
fn visible(c: char) -> char {
    if c.is_control() { '\u{FFFD}' } else { c }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (column {})\n{}", self.message(), self.column(), self.caret())?;
        if let Some(usage) = &self.usage {
            write!(f, "\nusage: {usage}")?;
        }
        Ok(())
    }
}

/// One argument as typed, before it is checked.
#[derive(Debug)]
struct RawArg {
    /// `Some` for `name=value` and `--name value`.
    name: Option<String>,
    flag: bool,
    value: String,
    /// Byte span of the whole argument.
    start: usize,
    end: usize,
}

/// Whether the text starts with a command word, i.e. was meant as a command.
pub fn looks_like_command(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    SPECS.iter().any(|s| s.words[0] == first)
}

/// Whether the text was typed as this exact command: it starts with all of a command's
/// words and that command is not one a sentence often starts with ("help me…", "meme about…").
/// Such text gets the grammar's error rather than a guess.
pub fn typed_as_command(text: &str, catalog: &Catalog) -> bool {
    let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
    SPECS.iter().any(|s| {
        s.words.len() <= words.len()
            && s.words.iter().zip(&words).all(|(a, b)| a == b)
            && (s.words.len() >= 2
                || matches!(s.kind, CommandKind::Audit | CommandKind::Whoami | CommandKind::Approvals)
                // `approve 7F3K9Q`, `reject 7F3K9Q too broad`; "approve the deploy" is a sentence.
                || (matches!(s.kind, CommandKind::Approve | CommandKind::Reject)
                    && words.get(1).is_some_and(|c| {
                        (4..=12).contains(&c.len()) && c.chars().all(|c| c.is_ascii_alphanumeric())
                            && c.chars().any(|c| c.is_ascii_digit())
                    }))
                // `cancel 7F3K`, but "cancel test run 12" is a sentence.
                || (matches!(s.kind, CommandKind::Confirm | CommandKind::Cancel) && words.len() <= 2)
                || (s.kind == CommandKind::Manifest
                    && words.get(1).is_some_and(|t| {
                        catalog.templates.contains_key(t) || (t.contains('-') && crate::queries::file::is_name(t))
                    })))
    })
}

/// Parses command text against the workspace catalog.
#[allow(clippy::result_large_err)] // the error carries what the caret display needs; it is off the hot path
pub fn parse(text: &str, catalog: &Catalog) -> Result<Command, ParseError> {
    let err = |kind, start: usize, end: usize, usage: Option<String>| ParseError {
        kind,
        input: text.to_string(),
        at: text.get(..start).map_or(0, |s| s.chars().count()),
        len: text.get(start..end).map_or(1, |s| s.chars().count()),
        usage,
    };
    if text.trim().is_empty() {
        return Err(err(ParseErrorKind::Empty, 0, 0, None));
    }
    let pairs = match CommandParser::parse(Rule::input, text) {
        Ok(pairs) => pairs,
        Err(e) => return Err(syntax_error(text, e, err)),
    };
    // The command's pair, after the shared first word of a group ("db", "test", "todo").
    let Some((cmd_pair, kind)) = pairs
        .into_iter()
        .next()
        .and_then(|input| input.into_inner().find_map(|p| kind_of(p.as_rule()).map(|k| (p, k))))
    else {
        return Err(err(ParseErrorKind::Empty, 0, 0, None));
    };
    let spec = spec(kind);
    if has_unbalanced_quote(text) {
        let at = text.rfind('"').or_else(|| text.rfind('\u{201C}')).unwrap_or(0);
        return Err(err(ParseErrorKind::UnbalancedQuote, at, text.len(), Some(spec.usage())));
    }
    let mut free_text = None;
    let mut args = Vec::new();
    for p in cmd_pair.into_inner() {
        match p.as_rule() {
            Rule::named | Rule::flag => {
                let span = p.as_span();
                let flag = p.as_rule() == Rule::flag;
                let mut inner = p.into_inner();
                let name = inner.next().map(|n| n.as_str().to_string());
                let value = inner.next().map(value_text).unwrap_or_default();
                args.push(RawArg { name, flag, value, start: span.start(), end: span.end() });
            }
            Rule::value => {
                let span = p.as_span();
                args.push(RawArg {
                    name: None,
                    flag: false,
                    value: value_text(p),
                    start: span.start(),
                    end: span.end(),
                });
            }
            Rule::free_text => free_text = Some(free_text_of(p)),
            _ => {} // keywords
        }
    }
    let b = Binder { text, catalog, spec };
    // The usage line is built only for an error: parsing stays allocation-light.
    b.build(args, free_text).map_err(|(kind, start, end)| err(kind, start, end, Some(spec.usage())))
}

/// Maps a parse failure to a message a power user can act on.
fn syntax_error(
    text: &str,
    e: pest::error::Error<Rule>,
    err: impl Fn(ParseErrorKind, usize, usize, Option<String>) -> ParseError,
) -> ParseError {
    let words: Vec<(usize, &str)> = word_spans(text);
    let lower: Vec<String> = words.iter().map(|(_, w)| w.to_ascii_lowercase()).collect();
    // Which spec's keywords does the text start with?
    let matched = SPECS
        .iter()
        .filter(|s| s.words.len() <= lower.len() && s.words.iter().zip(&lower).all(|(a, b)| a == b))
        .max_by_key(|s| s.words.len());
    if let Some(s) = matched {
        if has_unbalanced_quote(text) {
            let at = text.rfind('"').or_else(|| text.rfind('\u{201C}')).unwrap_or(0);
            return err(ParseErrorKind::UnbalancedQuote, at, text.len(), Some(s.usage()));
        }
        let pos = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((p, _)) => p,
        };
        let end = text[pos..].find(char::is_whitespace).map_or(text.len(), |n| pos + n);
        let given = text.get(pos..end).unwrap_or("").to_string();
        return err(
            ParseErrorKind::Syntax { given, expected: "an argument".into() },
            pos,
            end.max(pos + 1),
            Some(s.usage()),
        );
    }
    let first = lower.first().cloned().unwrap_or_default();
    let family: Vec<&CommandSpec> = SPECS.iter().filter(|s| s.words[0] == first && s.words.len() > 1).collect();
    if !family.is_empty() {
        // `db frobnicate`: the family is right, the sub-command is not.
        let (start, end) = match words.get(1) {
            Some((at, w)) => (*at, at + w.len()),
            None => (words[0].0, words[0].0 + words[0].1.len()),
        };
        let given: String = lower.iter().take(family[0].words.len()).cloned().collect::<Vec<_>>().join(" ");
        let names: Vec<String> = family.iter().map(|s| s.name()).collect();
        if lower.len() == 1 {
            let choices = or_list(family.iter().map(|s| &s.words[1..]).map(|w| w[0]).collect::<Vec<_>>().into_iter());
            return err(ParseErrorKind::Incomplete { family: first, choices }, start, end, None);
        }
        let hint = closest(names.iter().map(String::as_str), &given);
        return err(ParseErrorKind::UnknownCommand { given, hint }, start, end, None);
    }
    // An unknown first word: compare as many words as each command has.
    let mut best: Option<(f64, String)> = None;
    for s in SPECS {
        let given = lower.iter().take(s.words.len()).cloned().collect::<Vec<_>>().join(" ");
        let score = strsim::normalized_damerau_levenshtein(&s.name(), &given);
        if score >= 0.5 && best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, s.name()));
        }
    }
    let (start, word) = words.first().copied().unwrap_or((0, ""));
    err(
        ParseErrorKind::UnknownCommand { given: word.to_string(), hint: best.map(|b| b.1) },
        start,
        start + word.len(),
        None,
    )
}

fn word_spans(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

fn has_unbalanced_quote(text: &str) -> bool {
    let mut open = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if open => {
                chars.next();
            }
            '"' => open = !open,
            '\u{201C}' if !open => open = true,
            '\u{201D}' if open => open = false,
            _ => {}
        }
    }
    open
}

fn kind_of(rule: Rule) -> Option<CommandKind> {
    use CommandKind as K;
    Some(match rule {
        Rule::help => K::Help,
        Rule::whoami => K::Whoami,
        Rule::explain => K::Explain,
        Rule::confirm => K::Confirm,
        Rule::cancel => K::Cancel,
        Rule::approve => K::Approve,
        Rule::reject => K::Reject,
        Rule::approvals => K::Approvals,
        Rule::audit => K::Audit,
        Rule::db_list => K::DbList,
        Rule::db_describe => K::DbDescribe,
        Rule::db_query => K::DbQuery,
        Rule::db_schema_check => K::DbSchemaCheck,
        Rule::db_sql => K::DbSql,
        Rule::deploy_version => K::DeployVersion,
        Rule::release_check => K::ReleaseCheck,
        Rule::test_run => K::TestRun,
        Rule::test_status => K::TestStatus,
        Rule::test_list => K::TestList,
        Rule::test_cancel => K::TestCancel,
        Rule::meme => K::Meme,
        Rule::todo_add => K::TodoAdd,
        Rule::todo_list => K::TodoList,
        Rule::todo_done => K::TodoDone,
        Rule::todo_undo => K::TodoUndo,
        Rule::todo_assign => K::TodoAssign,
        Rule::manifest => K::Manifest,
        _ => return None,
    })
}

/// The text of a `value` pair: quoted values unescaped, bare values as typed.
fn value_text(p: Pair<'_, Rule>) -> String {
    let Some(inner) = p.into_inner().next() else { return String::new() };
    match inner.as_rule() {
        Rule::quoted => {
            let Some(body) = inner.into_inner().next() else { return String::new() };
            if body.as_rule() == Rule::dq_inner { unescape(body.as_str()) } else { body.as_str().to_string() }
        }
        _ => inner.as_str().to_string(),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn free_text_of(p: Pair<'_, Rule>) -> String {
    match p.into_inner().next() {
        Some(inner) if inner.as_rule() == Rule::quoted_only => inner.into_inner().next().map(|q| {
            let rule = q.as_rule();
            let text = q.as_str().to_string();
            if rule == Rule::quoted {
                let body = q.into_inner().next();
                match body {
                    Some(b) if b.as_rule() == Rule::dq_inner => unescape(b.as_str()),
                    Some(b) => b.as_str().to_string(),
                    None => String::new(),
                }
            } else {
                text
            }
        }),
        Some(inner) => Some(inner.as_str().trim().to_string()),
        None => None,
    }
    .unwrap_or_default()
}

type BindError = (ParseErrorKind, usize, usize);

struct Binder<'a> {
    text: &'a str,
    catalog: &'a Catalog,
    spec: &'static CommandSpec,
}

/// Arguments matched to the spec, still as text.
struct Bound<'r> {
    slots: Vec<Option<&'r RawArg>>,
    /// Query or template params: (name if given, arg).
    params: Vec<(Option<String>, &'r RawArg)>,
}

impl<'a> Binder<'a> {
    fn end(&self) -> usize {
        self.text.trim_end().len()
    }

    fn build(&self, args: Vec<RawArg>, free_text: Option<String>) -> Result<Command, BindError> {
        use CommandKind as K;
        if matches!(self.spec.kind, K::Explain | K::TodoAdd) {
            let text = free_text.unwrap_or_default();
            if text.trim().is_empty() {
                let what = if self.spec.kind == K::TodoAdd { "the TODO text" } else { "the sentence to explain" };
                return Err((ParseErrorKind::MissingArg { what: what.into() }, self.end(), self.end() + 1));
            }
            if text.contains('\0') {
                return Err((ParseErrorKind::BadValue("text may not contain NUL bytes".into()), 0, self.end()));
            }
            return Ok(if self.spec.kind == K::TodoAdd {
                Command::TodoAdd { text }
            } else {
                Command::Explain { text }
            });
        }
        let bound = self.bind(&args)?;
        let get = |name: &str| -> Option<&RawArg> {
            self.spec.args.iter().position(|a| a.name == name).and_then(|i| bound.slots[i])
        };
        let need = |name: &str| -> Result<&RawArg, BindError> {
            get(name).ok_or_else(|| {
                let arg = self.spec.arg(name).map_or("", |a| a.help);
                (ParseErrorKind::MissingArg { what: format!("<{name}> ({arg})") }, self.end(), self.end() + 1)
            })
        };
        let env = |a: Option<&RawArg>| -> Result<String, BindError> {
            match a {
                None => Ok(self.catalog.default_env.clone()),
                Some(a) => self.catalog.resolve_env(&a.value).map_err(|Unknown { hint }| {
                    (
                        ParseErrorKind::UnknownEnv {
                            given: a.value.clone(),
                            hint,
                            choices: self.catalog.env_choices(),
                        },
                        a.start,
                        a.end,
                    )
                }),
            }
        };
        let service = |a: &RawArg| -> Result<String, BindError> {
            self.catalog.resolve_service(&a.value).map_err(|Unknown { hint }| {
                (
                    ParseErrorKind::UnknownService {
                        given: a.value.clone(),
                        hint,
                        choices: self.catalog.service_choices(),
                    },
                    a.start,
                    a.end,
                )
            })
        };
        let id = |a: &RawArg| -> Result<u64, BindError> {
            match a.value.trim_start_matches('#').parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err((
                    ParseErrorKind::BadValue(format!(
                        "`{}` must be a positive whole number, not `{}`",
                        a_name(a, "id"),
                        a.value
                    )),
                    a.start,
                    a.end,
                )),
            }
        };
        Ok(match self.spec.kind {
            K::Help => Command::Help { topic: self.topic(&args)? },
            K::Whoami => Command::Whoami,
            K::DbList => Command::DbList,
            K::TestList => Command::TestList,
            K::TodoList => Command::TodoList,
            K::Approvals => Command::Approvals,
            K::Approve | K::Reject => {
                let a = need("code")?;
                let code = a.value.to_ascii_uppercase();
                if !(4..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err((
                        ParseErrorKind::BadValue(format!(
                            "`{}` is not an approval code (6 letters or digits, like 7F3K9Q)",
                            a.value
                        )),
                        a.start,
                        a.end,
                    ));
                }
                if self.spec.kind == K::Approve {
                    Command::Approve { code }
                } else {
                    let reason = free_text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
                    if reason.as_deref().is_some_and(|r| r.contains('\0')) {
                        return Err((ParseErrorKind::BadValue("text may not contain NUL bytes".into()), 0, self.end()));
                    }
                    Command::Reject { code, reason }
                }
            }
            K::Confirm | K::Cancel => {
                let a = need("code")?;
                let code = a.value.to_ascii_uppercase();
                if !(4..=12).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err((
                        ParseErrorKind::BadValue(format!(
                            "`{}` is not a confirmation code (4 letters or digits, like 7F3K)",
                            a.value
                        )),
                        a.start,
                        a.end,
                    ));
                }
                if self.spec.kind == K::Confirm { Command::Confirm { code } } else { Command::Cancel { code } }
            }
            K::Audit => {
                let since = match get("since") {
                    None => None,
                    Some(a) => Some(Since::parse(&a.value).ok_or_else(|| {
                        (
                            ParseErrorKind::BadValue(format!("`since` takes {}, not `{}`", Since::FORMS, a.value)),
                            a.start,
                            a.end,
                        )
                    })?),
                };
                let who = get("who").map(|a| self.who(a)).transpose()?;
                let limit = match get("limit") {
                    None => None,
                    Some(a) => Some(
                        a.value.parse::<u32>().ok().filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n)).ok_or_else(|| {
                            (
                                ParseErrorKind::BadValue(format!(
                                    "`limit` takes a number of rows from 1 to {AUDIT_MAX_LIMIT}, not `{}`",
                                    a.value
                                )),
                                a.start,
                                a.end,
                            )
                        })?,
                    ),
                };
                // The default is omitted, like a query's default parameter.
                Command::Audit { since, who, limit: limit.filter(|n| *n != AUDIT_LIMIT) }
            }
            K::DbDescribe => Command::DbDescribe { query: self.query(need("query")?)?.name.clone() },
            K::DbQuery => {
                let q = self.query(need("query")?)?;
                let params = self.params(&q.params, &bound.params, ("db query", &q.name))?;
                let env = env(get("env"))?;
                let env = (env != self.catalog.default_env).then_some(env);
                Command::DbQuery { query: q.name.clone(), params, env }
            }
            K::DbSql => {
                let a = need("database")?;
                let database = self.catalog.resolve_database(&a.value).map_err(|Unknown { hint }| {
                    let choices = or_list(self.catalog.databases.iter().map(String::as_str));
                    (ParseErrorKind::UnknownDatabase { given: a.value.clone(), hint, choices }, a.start, a.end)
                })?;
                let s = need("sql")?;
                if s.value.trim().is_empty() || s.value.contains('\0') {
                    return Err((
                        ParseErrorKind::BadValue("the SQL must be one non-empty quoted statement".into()),
                        s.start,
                        s.end,
                    ));
                }
                Command::DbSql { database, sql: s.value.trim().to_string(), env: env(get("env"))? }
            }
            K::DbSchemaCheck => Command::DbSchemaCheck { service: service(need("service")?)?, env: env(get("env"))? },
            K::DeployVersion => Command::DeployVersion { service: service(need("service")?)?, env: env(get("env"))? },
            K::ReleaseCheck => Command::ReleaseCheck { service: service(need("service")?)?, env: env(get("env"))? },
            K::TestRun => {
                let a = need("suite")?;
                let suite = self.catalog.resolve_suite(&a.value).map_err(|Unknown { hint }| {
                    let choices = or_list(self.catalog.suites.iter().map(String::as_str));
                    (ParseErrorKind::UnknownSuite { given: a.value.clone(), hint, choices }, a.start, a.end)
                })?;
                Command::TestRun { suite, env: env(get("env"))? }
            }
            K::TestStatus => {
                let a = need("id")?;
                let word = a.value.to_ascii_lowercase();
                let run = if matches!(word.as_str(), "last" | "latest") {
                    RunRef::Last
                } else if word.trim_start_matches(['#', '-', '+']).chars().all(|c| c.is_ascii_digit()) {
                    RunRef::Id(id(a)?)
                } else {
                    let suite = self.catalog.resolve_suite(&a.value).map_err(|Unknown { hint }| {
                        let choices = or_list(self.catalog.suites.iter().map(String::as_str));
                        let hint = hint.map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default();
                        let message = format!("`{}` is not a run id, `last` or a suite ({choices}){hint}", a.value);
                        (ParseErrorKind::BadValue(message), a.start, a.end)
                    })?;
                    RunRef::Suite(suite)
                };
                Command::TestStatus { run }
            }
            K::TestCancel => Command::TestCancel { id: id(need("id")?)? },
            K::TodoDone => Command::TodoDone { id: id(need("id")?)? },
            K::TodoUndo => Command::TodoUndo { id: id(need("id")?)? },
            K::TodoAssign => Command::TodoAssign { id: id(need("id")?)?, who: self.who(need("who")?)? },
            K::Meme => Command::Meme {
                subreddit: match get("subreddit") {
                    None => None,
                    Some(a) => {
                        let ok = (2..=21).contains(&a.value.len())
                            && a.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                        if !ok {
                            return Err((
                                ParseErrorKind::BadValue(format!(
                                    "`{}` is not a subreddit name (2 to 21 letters, digits or _)",
                                    a.value
                                )),
                                a.start,
                                a.end,
                            ));
                        }
                        Some(a.value.clone())
                    }
                },
            },
            K::Manifest => {
                let a = need("template")?;
                let t = self.catalog.resolve_template(&a.value).map_err(|Unknown { hint }| {
                    (ParseErrorKind::UnknownTemplate { given: a.value.clone(), hint }, a.start, a.end)
                })?;
                let params = self.params(&t.params, &bound.params, ("manifest", &t.name))?;
                Command::Manifest { template: t.name.clone(), params }
            }
            K::Explain | K::TodoAdd => unreachable!("free-text commands return above"),
        })
    }

    /// Matches raw arguments to the spec's slots; the rest are query/template params.
    fn bind<'r>(&self, args: &'r [RawArg]) -> Result<Bound<'r>, BindError> {
        let spec = self.spec;
        let has_params = spec.args.iter().any(|a| a.kind == ArgKind::Params);
        let mut bound = Bound { slots: vec![None; spec.args.len()], params: Vec::new() };
        // Help takes its topic as several words; it is read separately.
        if spec.kind == CommandKind::Help {
            return Ok(bound);
        }
        for a in args {
            match &a.name {
                Some(name) => {
                    let slot = spec.args.iter().position(|s| s.name == name && s.kind != ArgKind::Params);
                    // With params, `name=value` is a param; `--name` is the command's own.
                    let slot = if has_params
                        && !a.flag
                        && slot.is_some_and(|i| {
                            spec.args[i].kind != ArgKind::Query && spec.args[i].kind != ArgKind::Template
                        }) {
                        None
                    } else {
                        slot
                    };
                    match slot {
                        Some(i) => {
                            if bound.slots[i].is_some() {
                                return Err((ParseErrorKind::DuplicateArg { name: name.clone() }, a.start, a.end));
                            }
                            bound.slots[i] = Some(a);
                        }
                        None if has_params => bound.params.push((Some(name.clone()), a)),
                        None => {
                            let hint = closest(spec.args.iter().map(|s| s.name), name);
                            return Err((ParseErrorKind::UnknownArg { name: name.clone(), hint }, a.start, a.end));
                        }
                    }
                }
                None => {
                    // Positional: the next free slot, except that a command with params takes
                    // only its leading name positionally (its env must be named).
                    let next = spec.args.iter().enumerate().position(|(i, s)| {
                        bound.slots[i].is_none()
                            && s.kind != ArgKind::Params
                            && (!has_params || matches!(s.kind, ArgKind::Query | ArgKind::Template))
                    });
                    match next {
                        Some(i) => bound.slots[i] = Some(a),
                        None if has_params => bound.params.push((None, a)),
                        None => return Err((ParseErrorKind::ExtraArg { given: a.value.clone() }, a.start, a.end)),
                    }
                }
            }
        }
        Ok(bound)
    }

    fn topic(&self, args: &[RawArg]) -> Result<Option<String>, BindError> {
        if args.is_empty() {
            return Ok(None);
        }
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            return Err((ParseErrorKind::ExtraArg { given: self.text[a.start..a.end].to_string() }, a.start, a.end));
        }
        let words: Vec<String> = args.iter().map(|a| a.value.to_ascii_lowercase()).collect();
        let (start, end) = (args[0].start, args[args.len() - 1].end);
        let known =
            SPECS.iter().any(|s| s.words.len() >= words.len() && s.words.iter().zip(&words).all(|(a, b)| a == b));
        if known {
            return Ok(Some(words.join(" ")));
        }
        let given = words.join(" ");
        let mut names: Vec<String> = SPECS.iter().map(|s| s.name()).collect();
        names.extend(SPECS.iter().map(|s| s.words[0].to_string()));
        let hint = closest(names.iter().map(String::as_str), &given);
        Err((ParseErrorKind::UnknownTopic { given, hint }, start, end))
    }

    fn query(&self, a: &RawArg) -> Result<&'a crate::queries::file::QueryFile, BindError> {
        self.catalog
            .resolve_query(&a.value)
            .map_err(|Unknown { hint }| (ParseErrorKind::UnknownQuery { given: a.value.clone(), hint }, a.start, a.end))
    }

    fn who(&self, a: &RawArg) -> Result<String, BindError> {
        let ok = !a.value.is_empty()
            && a.value.len() <= 128
            && a.value.chars().all(|c| c.is_ascii_alphanumeric() || "@._+-:/".contains(c));
        if ok {
            Ok(a.value.clone())
        } else {
            Err((
                ParseErrorKind::BadValue(format!("`{}` is not an identity like local:alice or slack:U0123", a.value)),
                a.start,
                a.end,
            ))
        }
    }

    /// Checks params against their declarations: positional in declared order, then named;
    /// defaults omitted so the canonical text stays the shortest.
    fn params(
        &self,
        decl: &[ParamSpec],
        given: &[(Option<String>, &RawArg)],
        // (command, name) for the usage line, formatted only for an error.
        usage_of: (&str, &str),
    ) -> Result<Params, BindError> {
        let mut values: Vec<Option<(ParamValue, &RawArg)>> = vec![None; decl.len()];
        for (name, a) in given.iter().filter(|(n, _)| n.is_some()) {
            let name = name.as_deref().unwrap_or_default();
            let Some(i) = decl.iter().position(|p| p.name == name) else {
                let hint = closest(decl.iter().map(|p| p.name.as_str()), name);
                return Err((ParseErrorKind::UnknownArg { name: name.to_string(), hint }, a.start, a.end));
            };
            if values[i].is_some() {
                return Err((ParseErrorKind::DuplicateArg { name: name.to_string() }, a.start, a.end));
            }
            values[i] = Some((self.check_param(&decl[i], a)?, a));
        }
        for (_, a) in given.iter().filter(|(n, _)| n.is_none()) {
            let Some(i) = values.iter().position(Option::is_none) else {
                return Err((ParseErrorKind::ExtraArg { given: a.value.clone() }, a.start, a.end));
            };
            values[i] = Some((self.check_param(&decl[i], a)?, a));
        }
        let mut out = Vec::new();
        for (p, v) in decl.iter().zip(values) {
            match v {
                Some((value, _)) if p.default.as_ref() == Some(&value) => {}
                Some((value, _)) => out.push((p.name.clone(), value)),
                None if p.required() => {
                    let what = format!(
                        "`{}` ({}){}; usage: {} {} {}=<{}>",
                        p.name,
                        p.ty.name(),
                        help_suffix(p),
                        usage_of.0,
                        usage_of.1,
                        p.name,
                        p.ty.name()
                    );
                    return Err((ParseErrorKind::MissingArg { what }, self.end(), self.end() + 1));
                }
                None => {}
            }
        }
        Ok(out)
    }

    fn check_param(&self, p: &ParamSpec, a: &RawArg) -> Result<ParamValue, BindError> {
        p.check(&a.value).map_err(|e| (ParseErrorKind::BadValue(e.to_string()), a.start, a.end))
    }
}

fn help_suffix(p: &ParamSpec) -> String {
    if p.help.is_empty() { String::new() } else { format!(": {}", p.help) }
}

fn a_name<'a>(a: &'a RawArg, default: &'a str) -> &'a str {
    a.name.as_deref().unwrap_or(default)
}

#[cfg(test)]
mod tests;
