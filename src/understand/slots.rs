//! Slot extraction: finding the values a command template needs in a plain sentence.
//! Names come from the catalog (with aliases and typo tolerance); numbers, ids, emails, dates
//! ("yesterday", "since Monday", "last 3 days"), quoted and free text from the words.

use time::{Date, Duration, Weekday};

use crate::catalog::{Catalog, Named};
use crate::param::{ParamSpec, ParamType};

/// What kind of value a slot holds, as intent files name it.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotType {
    Service,
    Env,
    Query,
    Suite,
    Template,
    Subreddit,
    Int,
    Id,
    Text,
    Date,
    Email,
    Identity,
    Command,
    /// A test run for `test status`: a number, else a suite name (its latest run), else `last`.
    Run,
    /// A query's or template's declared parameter.
    Param(ParamSpec),
}

impl SlotType {
    pub fn parse(s: &str) -> Option<SlotType> {
        Some(match s {
            "service" => SlotType::Service,
            "env" => SlotType::Env,
            "query" => SlotType::Query,
            "suite" => SlotType::Suite,
            "template" => SlotType::Template,
            "subreddit" => SlotType::Subreddit,
            "int" => SlotType::Int,
            "id" => SlotType::Id,
            "text" => SlotType::Text,
            "date" => SlotType::Date,
            "email" => SlotType::Email,
            "identity" => SlotType::Identity,
            "command" => SlotType::Command,
            "run" => SlotType::Run,
            _ => return None,
        })
    }
}

/// A word of the sentence: lower-cased, with punctuation trimmed.
#[derive(Debug)]
struct Word<'a> {
    raw: &'a str,
    lower: String,
}

fn words(text: &str) -> Vec<Word<'_>> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .map(slack_link)
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(c, '.' | '?' | '!' | ':' | '"' | '\'' | '`' | '*' | '<' | '>' | '\u{201C}' | '\u{201D}')
            })
        })
        .filter(|w| !w.is_empty())
        .map(|raw| {
            let lower = raw.to_lowercase();
            let lower = lower.strip_suffix("'s").map(str::to_string).unwrap_or(lower);
            Word { raw, lower }
        })
        .collect()
}

/// Slack writes an email it recognised as `<mailto:bob@x.io|bob@x.io>` and a link as
/// `<https://x|x>`: the text shown is the value.
fn slack_link(w: &str) -> &str {
    let inner = w.trim_start_matches('<').trim_end_matches(['>', '.', '?', '!']);
    if w.starts_with('<')
        && let Some((target, shown)) = inner.split_once('|')
        && (target.starts_with("mailto:") || target.contains("://"))
    {
        return shown;
    }
    w.strip_prefix("<mailto:").map_or(w, |rest| rest.trim_end_matches('>'))
}

/// Words that look like names but are everyday English; never fuzzy-matched to config names.
const COMMON: &[&str] = &[
    "please",
    "version",
    "versions",
    "deployed",
    "running",
    "staged",
    "things",
    "status",
    "service",
    "services",
    "release",
    "releases",
    "checks",
    "schema",
    "tests",
    "latest",
    "current",
    "change",
    "changes",
    "pending",
    "people",
    "person",
    "pages",
    "players",
    "ledger's",
    "setup",
    "server",
    "production's",
];

/// The configured name a word names: exact name or alias first, then a close typo.
fn find_named(list: &[Named], ws: &[Word<'_>]) -> Option<String> {
    let exact = |s: &str| {
        list.iter().find(|n| n.name.eq_ignore_ascii_case(s) || n.aliases.iter().any(|a| a.eq_ignore_ascii_case(s)))
    };
    // Two-word aliases ("user svc") before single words.
    for pair in ws.windows(2) {
        for joined in [format!("{} {}", pair[0].lower, pair[1].lower), format!("{}-{}", pair[0].lower, pair[1].lower)] {
            if let Some(n) = exact(&joined) {
                return Some(n.name.clone());
            }
        }
    }
    // Several names ("what's live on dev": `live` is prod's alias): the one a preposition
    // introduces is the one meant, else one written by its own name rather than an alias that
    // doubles as an everyday word ("the live schema of payments staging"), else the first.
    let found: Vec<(usize, &Named)> =
        ws.iter().enumerate().filter_map(|(i, w)| exact(&w.lower).map(|n| (i, n))).collect();
    let introduced = |i: usize| {
        i > 0 && matches!(ws[i - 1].lower.as_str(), "on" | "in" | "to" | "at" | "for" | "from" | "against" | "of")
    };
    let by_name = |i: usize, n: &Named| n.name.eq_ignore_ascii_case(&ws[i].lower);
    let chosen = found
        .iter()
        .find(|(i, _)| introduced(*i))
        .or_else(|| found.iter().find(|(i, n)| by_name(*i, n)))
        .or(found.first());
    if let Some((_, n)) = chosen {
        return Some(n.name.clone());
    }
    let mut best: Option<(f64, &Named)> = None;
    for w in ws.iter().filter(|w| w.lower.chars().count() >= 5 && !COMMON.contains(&w.lower.as_str())) {
        for n in list {
            for cand in std::iter::once(&n.name).chain(n.aliases.iter()) {
                if cand.chars().count() < 4 {
                    continue;
                }
                let score = strsim::normalized_damerau_levenshtein(&w.lower, &cand.to_lowercase());
                if score >= 0.75 && best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, n));
                }
            }
        }
    }
    best.map(|(_, n)| n.name.clone())
}

/// A name from a plain list (queries, suites, templates), also written with spaces for dashes.
fn find_name<'a>(names: impl Iterator<Item = &'a str>, text: &str, ws: &[Word<'_>]) -> Option<String> {
    let names: Vec<&str> = names.collect();
    let spaced = format!(" {} ", ws.iter().map(|w| w.lower.as_str()).collect::<Vec<_>>().join(" "));
    let lower = text.to_lowercase();
    let mut found: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            let n = n.to_lowercase();
            spaced.contains(&format!(" {n} "))
                || spaced.contains(&format!(" {} ", n.replace('-', " ")))
                || lower.contains(&n) && n.contains('-')
        })
        .collect();
    found.sort_by_key(|n| std::cmp::Reverse(n.len()));
    if let Some(n) = found.first() {
        return Some(n.to_string());
    }
    // "update a user's email" names `update-user-email` by most of its words.
    let stem = |w: &str| w.trim_end_matches('s').to_string();
    let said: Vec<String> = ws.iter().map(|w| stem(&w.lower)).collect();
    let by_words = names
        .iter()
        .filter(|n| n.contains('-'))
        .map(|n| {
            let parts: Vec<String> = n.split('-').map(stem).collect();
            let hits = parts.iter().filter(|p| said.contains(p)).count();
            (hits * 3 >= parts.len() * 2 && hits >= 2, hits, n)
        })
        .filter(|(ok, _, _)| *ok)
        .max_by_key(|(_, hits, _)| *hits);
    if let Some((_, _, n)) = by_words {
        return Some(n.to_string());
    }
    let mut best: Option<(f64, &str)> = None;
    for w in ws.iter().filter(|w| w.lower.chars().count() >= 4) {
        for n in &names {
            let score = strsim::normalized_damerau_levenshtein(&w.lower, &n.to_lowercase());
            if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, n));
            }
        }
    }
    best.map(|(_, n)| n.to_string())
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn is_email(s: &str) -> bool {
    let Some((user, domain)) = s.split_once('@') else { return false };
    !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
}

/// An id like `pay_8f3k2` or `ord-77a`: letters and digits mixed, or words joined by `_`.
fn is_id_like(s: &str) -> bool {
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    let has_alpha = s.chars().any(|c| c.is_ascii_alphabetic());
    let charset = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    charset && s.len() >= 4 && ((has_digit && has_alpha) || s.contains('_')) && !is_iso_date(s)
}

/// Whole numbers in the text, in order: `42`, `#7`, `id=3`, `uid:3`; not parts of dates, ids
/// or emails.
fn numbers(ws: &[Word<'_>]) -> Vec<i64> {
    ws.iter()
        .filter_map(|w| {
            let s = w.lower.trim_start_matches('#');
            let s = s.rsplit_once(['=', ':']).map_or(s, |(_, v)| v);
            let s = s.trim_start_matches('#');
            if s.chars().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
        })
        .collect()
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// `nov`, `november`, `sept`: a month by its name or its usual short form.
fn month(s: &str) -> Option<time::Month> {
    use time::Month::*;
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let months = [January, February, March, April, May, June, July, August, September, October, November, December];
    let i = FULL.iter().position(|f| *f == s || (s.len() >= 3 && f.get(..s.len()) == Some(s) && s.len() <= 4))?;
    // "mar" and "may" are words too; only the full or three-letter forms count, and "may" only
    // next to a day number (the caller checks that).
    Some(months[i])
}

/// "since the 25th of november", "nov 25", "the 1st": a day of a month, the latest such date not
/// after today (this month, else the one before; this year, else the last).
fn day_of_month(lower: &[&str], today: Date) -> Option<Date> {
    let day = |s: &str| -> Option<u8> {
        let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let suffix = &s[digits.len()..];
        let ok = matches!(suffix, "" | "st" | "nd" | "rd" | "th");
        let n: u8 = digits.parse().ok()?;
        (ok && (1..=31).contains(&n)).then_some(n)
    };
    for (i, w) in lower.iter().enumerate() {
        let ordinal = w.len() > 2 && w.ends_with(['t', 'd', 'h']) && day(w).is_some();
        let named_month = |j: Option<usize>| j.and_then(|j| lower.get(j)).and_then(|m| month(m));
        let m = named_month(i.checked_add(1))
            .or_else(|| named_month(i.checked_add(2)).filter(|_| lower.get(i + 1) == Some(&"of")))
            .or_else(|| named_month(i.checked_sub(1)));
        let Some(d) = day(w) else { continue };
        if m.is_none() && !(ordinal && i > 0 && matches!(lower[i - 1], "the" | "since" | "from" | "after")) {
            continue;
        }
        let candidate = |year: i32, month: time::Month| Date::from_calendar_date(year, month, d).ok();
        let found = match m {
            Some(m) => candidate(today.year(), m).filter(|c| *c <= today).or_else(|| candidate(today.year() - 1, m)),
            None => candidate(today.year(), today.month()).filter(|c| *c <= today).or_else(|| {
                let prev = today.month().previous();
                let year = if prev == time::Month::December { today.year() - 1 } else { today.year() };
                candidate(year, prev)
            }),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// How far back "recently" (and "lately", "recent") reaches: a week. Written down in the
/// README too, so people know what they get.
pub const RECENTLY_DAYS: i64 = 7;

/// A date in the text: ISO, or relative to `today`. Dates are days, so anything within today
/// ("in the last hour", "this morning", "so far today") is today; "last night"
/// and "overnight" are yesterday; "recently" and "lately" are [`RECENTLY_DAYS`] back;
/// "the last few days" three, "a couple of days" two; "48h" or "36 hours" whole days rounded up.
pub fn find_date(text: &str, today: Date) -> Option<Date> {
    let ws = words(text);
    for w in &ws {
        if is_iso_date(&w.lower) {
            return crate::param::ParamValue::parse(ParamType::Date, &w.lower).ok().and_then(|v| match v {
                crate::param::ParamValue::Date(d) => Some(d),
                _ => None,
            });
        }
    }
    let lower: Vec<&str> = ws.iter().map(|w| w.lower.as_str()).collect();
    if let Some(d) = day_of_month(&lower, today) {
        return Some(d);
    }
    let back = |days: i64| Some(today - Duration::days(days.clamp(0, 36_500)));
    for (i, w) in lower.iter().enumerate() {
        let prev = if i > 0 { lower[i - 1] } else { "" };
        match *w {
            "today" | "tonight" | "hour" => return Some(today),
            "morning" | "afternoon" | "evening" if prev == "this" => return Some(today),
            "yesterday" | "overnight" => return today.previous_day(),
            "night" if matches!(prev, "last" | "yesterday") => return today.previous_day(),
            "recently" | "lately" => return back(RECENTLY_DAYS),
            "days" if prev == "few" => return back(3),
            "days" if prev == "couple" || (prev == "of" && i > 1 && lower[i - 2] == "couple") => return back(2),
            "hours" | "hrs" | "hr" if i > 0 => {
                if let Ok(n) = prev.parse::<i64>() {
                    return back((n.clamp(0, 876_000) + 23) / 24);
                }
                if matches!(prev, "few" | "couple" | "last" | "past") {
                    return Some(today);
                }
            }
            h if h.len() > 1 && h.ends_with('h') && h[..h.len() - 1].chars().all(|c| c.is_ascii_digit()) => {
                if let Ok(n) = h[..h.len() - 1].parse::<i64>() {
                    return back((n.clamp(0, 876_000) + 23) / 24);
                }
            }
            "week" | "month" if i > 0 && lower[i - 1] == "this" => {
                let into = if *w == "week" { today.weekday().number_days_from_monday() } else { today.day() - 1 };
                return Some(today - Duration::days(i64::from(into)));
            }
            // "last week", "the past month", "a week ago": a week is 7 days, a month 30.
            "week" | "month" if i > 0 && matches!(lower[i - 1], "last" | "past" | "previous" | "a" | "one") => {
                return Some(today - Duration::days(if *w == "week" { 7 } else { 30 }));
            }
            "days" | "day" | "weeks" | "week" | "months" | "month" if i > 0 => {
                if let Ok(n) = lower[i - 1].parse::<i64>() {
                    let unit = match *w {
                        "weeks" | "week" => 7,
                        "months" | "month" => 30,
                        _ => 1,
                    };
                    return Some(today - Duration::days(n.clamp(0, 36_500) * unit));
                }
            }
            _ => {}
        }
        if let Some(day) = weekday(w) {
            let mut d = today;
            for _ in 0..7 {
                if d.weekday() == day {
                    return Some(d);
                }
                d = d.previous_day()?;
            }
        }
    }
    None
}

/// Text in double quotes, if any.
fn quoted(text: &str) -> Option<String> {
    for (open, close) in [('"', '"'), ('\u{201C}', '\u{201D}'), ('\'', '\'')] {
        if let Some(start) = text.find(open) {
            let rest = &text[start + open.len_utf8()..];
            if let Some(end) = rest.find(close) {
                let inner = rest[..end].trim();
                if !inner.is_empty() && (open != '\'' || inner.contains(' ')) {
                    return Some(inner.to_string());
                }
            }
        }
    }
    None
}

/// Free text after a cue: "todo: x", "remind the team to x", "add a todo to x".
fn free_text(text: &str) -> Option<String> {
    if let Some(q) = quoted(text) {
        return Some(q);
    }
    if let Some((_, after)) = text.split_once(':') {
        let after = after.trim();
        if !after.is_empty() && !after.starts_with("//") {
            return Some(clean_tail(after));
        }
    }
    let lower = text.to_lowercase();
    const CUES: &[&str] = &[
        "remind the team to ",
        "remind us to ",
        "remind me to ",
        "remind everyone to ",
        "remember to ",
        "don't forget to ",
        "dont forget to ",
        "todo to ",
        "to-do to ",
        "task to ",
        "todo for ",
        "todo that says ",
        "todo saying ",
        "to the todo list ",
        "to our todo list ",
        "to the todos ",
        "to the to-do list ",
        "on the todo list ",
        "todo item ",
        "todo add ",
        "add todo ",
        "new todo ",
        "todo ",
        "to-do ",
        "note to ",
    ];
    for cue in CUES {
        if let Some(at) = lower.find(cue) {
            let start = at + cue.len();
            let tail = text.get(start..).unwrap_or("").trim();
            let tail = tail.strip_prefix("to ").unwrap_or(tail);
            if tail.split_whitespace().count() >= 1
                && !matches!(tail.to_lowercase().as_str(), "list" | "please" | "pls")
            {
                return Some(clean_tail(tail));
            }
        }
    }
    None
}

/// Drops trailing politeness and punctuation: "rotate the keys please!" → "rotate the keys".
fn clean_tail(s: &str) -> String {
    // "new todo - upgrade the nodes": the dash or colon after the cue is not part of the text.
    let s = s.trim().trim_start_matches(['-', ':', '\u{2013}', '\u{2014}']).trim();
    let mut s = s.trim_end_matches(['.', '!', '?']).trim().to_string();
    for tail in [" please", " pls", " plz", " thanks", " thx", " asap"] {
        if s.to_lowercase().ends_with(tail) {
            s.truncate(s.len() - tail.len());
        }
    }
    s.trim().trim_end_matches([',', '.']).trim().to_string()
}

/// The command word a `help` question is about.
fn topic(ws: &[Word<'_>]) -> Option<String> {
    // "how do i use deploy version?": a command's full words first.
    for pair in ws.windows(2) {
        let (a, b) = (pair[0].lower.as_str(), pair[1].lower.as_str());
        if let Some(s) = crate::spec::SPECS.iter().find(|s| s.words.len() == 2 && s.words[0] == a && s.words[1] == b) {
            return Some(s.name());
        }
    }
    for w in ws {
        let t = match w.lower.as_str() {
            "deploy" | "deploys" | "deployed" | "deployment" | "deployments" | "version" | "versions" => "deploy",
            "db" | "database" | "databases" | "query" | "queries" | "sql" => "db",
            "test" | "tests" | "suite" | "suites" | "testing" => "test",
            "todo" | "todos" | "to-do" | "tasks" => "todo",
            "release" | "releases" | "releasing" | "checklist" => "release",
            "meme" | "memes" => "meme",
            "manifest" | "manifests" | "kubernetes" | "k8s" => "manifest",
            "audit" => "audit",
            "explain" => "explain",
            "whoami" => "whoami",
            "confirm" | "confirmation" | "confirmations" => "confirm",
            _ => continue,
        };
        return Some(t.to_string());
    }
    None
}

fn subreddit(ws: &[Word<'_>]) -> Option<String> {
    for (i, w) in ws.iter().enumerate() {
        if let Some(name) = w.raw.strip_prefix("r/").or_else(|| w.raw.strip_prefix("/r/")) {
            return Some(name.to_string());
        }
        if (w.lower == "from" || w.lower == "on") && i + 1 < ws.len() {
            let next = &ws[i + 1];
            let name = if next.lower == "the" { ws.get(i + 2) } else { Some(next) };
            if let Some(n) = name {
                let ok = n.raw.len() >= 2 && n.raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ok && !matches!(n.lower.as_str(), "reddit" | "there" | "today" | "it" | "me") {
                    return Some(n.raw.to_string());
                }
            }
        }
    }
    None
}

/// What a sentence gives for one slot; `None` when it does not say.
pub fn extract(
    slot: &SlotType,
    name: &str,
    text: &str,
    catalog: &Catalog,
    today: Date,
    used_ints: &mut Vec<i64>,
) -> Option<String> {
    let ws = words(text);
    // `name=value` in the sentence wins.
    for w in &ws {
        if let Some((k, v)) = w.raw.split_once('=')
            && k.eq_ignore_ascii_case(name)
            && !v.is_empty()
        {
            return Some(v.to_string());
        }
    }
    let mut next_int = || {
        let all = numbers(&ws);
        let n = all.into_iter().find(|n| !used_ints.contains(n))?;
        used_ints.push(n);
        Some(n.to_string())
    };
    match slot {
        SlotType::Service => find_named(&catalog.services, &ws),
        SlotType::Env => find_named(&catalog.envs, &ws),
        SlotType::Query => find_name(catalog.queries.keys().map(String::as_str), text, &ws),
        SlotType::Suite => find_name(catalog.suites.iter().map(String::as_str), text, &ws),
        SlotType::Template => find_name(catalog.templates.keys().map(String::as_str), text, &ws),
        SlotType::Subreddit => subreddit(&ws),
        SlotType::Int | SlotType::Id => next_int(),
        SlotType::Text => free_text(text),
        SlotType::Date => find_date(text, today).map(|d| crate::param::ParamValue::Date(d).to_string()),
        SlotType::Email => ws.iter().find(|w| is_email(&w.lower)).map(|w| w.raw.to_string()),
        SlotType::Identity => identity(text, &ws, catalog),
        SlotType::Command => topic(&ws),
        SlotType::Run => next_int()
            .or_else(|| find_name(catalog.suites.iter().map(String::as_str), text, &ws))
            .or_else(|| Some("last".to_string())),
        SlotType::Param(p) => match p.ty {
            // A number of days from any date phrase ("last 2 weeks", "since Monday"); otherwise
            // the next free number.
            ParamType::Int
                if p.name.contains("day")
                    && let Some(d) = find_date(text, today) =>
            {
                Some((today - d).whole_days().max(1).to_string())
            }
            ParamType::Int | ParamType::Decimal => next_int(),
            ParamType::Date => find_date(text, today).map(|d| crate::param::ParamValue::Date(d).to_string()),
            ParamType::Bool => None,
            ParamType::Timestamp => ws
                .iter()
                .find(|w| w.raw.contains('T') && is_iso_date(w.raw.get(..10).unwrap_or("")))
                .map(|w| w.raw.to_string()),
            ParamType::Uuid => ws.iter().find(|w| uuid::Uuid::parse_str(w.raw).is_ok()).map(|w| w.raw.to_string()),
            ParamType::Text => {
                if !p.values.is_empty() {
                    return ws
                        .iter()
                        .find(|w| p.values.iter().any(|v| v.eq_ignore_ascii_case(&w.lower)))
                        .map(|w| w.lower.clone());
                }
                if p.name.contains("email") {
                    return ws.iter().find(|w| is_email(&w.lower)).map(|w| w.raw.to_string());
                }
                quoted(text).or_else(|| {
                    ws.iter()
                        .find(|w| is_id_like(w.raw) && !catalog.queries.contains_key(&w.lower) && !is_email(&w.lower))
                        .map(|w| w.raw.to_string())
                })
            }
        },
    }
}

/// Who a sentence names: an identity as written (`slack:U0123`), a Slack mention, or the bare
/// name of one known person ("give it to bob" → `local:bob`).
fn identity(text: &str, ws: &[Word<'_>], catalog: &Catalog) -> Option<String> {
    // Mentions are read from the text itself: `words` drops the angle brackets.
    if let Some(start) = text.find("<@")
        && let Some(len) = text[start..].find('>')
        && let Ok(who) = catalog.resolve_person(&text[start..=start + len])
    {
        return Some(who);
    }
    ws.iter().find_map(|w| catalog.resolve_person(w.raw).ok())
}

/// The sentence with its values replaced by their kind (`SERVICE`, `ENV`, `EMAIL`, `ID`,
/// `DATE`, `NUM`), so the classifier learns "version of SERVICE on ENV" once instead of once
/// per service; used the same way for training and for classifying.
pub fn delexicalize(text: &str, catalog: &Catalog) -> String {
    let ws = words(text);
    let mut out: Vec<String> = Vec::with_capacity(ws.len());
    let is_named = |list: &[Named], w: &str| {
        list.iter().any(|n| n.name.eq_ignore_ascii_case(w) || n.aliases.iter().any(|a| a.eq_ignore_ascii_case(w)))
    };
    let near = |list: &[Named], w: &str| {
        w.chars().count() >= 5
            && !COMMON.contains(&w)
            && list.iter().any(|n| {
                std::iter::once(&n.name).chain(n.aliases.iter()).any(|c| {
                    c.chars().count() >= 4 && strsim::normalized_damerau_levenshtein(w, &c.to_lowercase()) >= 0.75
                })
            })
    };
    for w in &ws {
        let l = w.lower.as_str();
        let token = if is_email(l) {
            "EMAIL"
        } else if is_iso_date(l) {
            "DATE"
        } else if l.trim_start_matches('#').chars().all(|c| c.is_ascii_digit()) {
            "NUM"
        } else if is_named(&catalog.envs, l) {
            "ENV"
        } else if is_named(&catalog.services, l) {
            "SERVICE"
        } else if catalog.queries.contains_key(l) {
            "QUERYNAME"
        } else if catalog.suites.iter().any(|s| s == l) {
            "SUITE"
        } else if catalog.templates.contains_key(l) {
            "TEMPLATE"
        } else if is_id_like(l) {
            "ID"
        } else if near(&catalog.envs, l) {
            "ENV"
        } else if near(&catalog.services, l) {
            "SERVICE"
        } else {
            out.push(l.to_string());
            continue;
        };
        out.push(token.to_string());
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::demo_catalog;

    fn check(slot: SlotType, text: &str, expected: Option<&str>) {
        let today = time::macros::date!(2026 - 11 - 25); // a Wednesday
        let got = extract(&slot, "x", text, &demo_catalog(), today, &mut Vec::new());
        assert_eq!(got.as_deref(), expected, "{slot:?} in {text:?}");
    }

    #[test]
    fn names_resolve_through_aliases_and_typos() {
        check(SlotType::Service, "which version of paymnets is live", Some("payments"));
        check(SlotType::Service, "whats deployed for the user svc", Some("users"));
        check(SlotType::Service, "version of billing", None);
        check(SlotType::Env, "is it on stg yet", Some("staging"));
        check(SlotType::Env, "what runs in production", Some("prod"));
        check(SlotType::Env, "stagign please", Some("staging"));
        check(SlotType::Env, "whats live on dev for ledger", Some("dev"));
        check(SlotType::Env, "is payments live?", Some("prod"));
        check(SlotType::Service, "the users version of payments", Some("payments"));
        check(SlotType::Query, "run the recent signups query", Some("recent-signups"));
        check(SlotType::Suite, "kick off the smoke tests", Some("smoke"));
    }

    #[test]
    fn an_environment_written_by_its_name_beats_an_alias_used_as_a_word() {
        check(SlotType::Env, "compare the live schema with the migrations for users staging", Some("staging"));
        check(SlotType::Env, "is the live site on dev?", Some("dev"));
        check(SlotType::Env, "is payments live", Some("prod"));
    }

    #[test]
    fn values_come_from_the_words() {
        check(SlotType::Int, "look up user #42 please", Some("42"));
        check(SlotType::Email, "find alice@example.com.", Some("alice@example.com"));
        check(SlotType::Date, "failed payments since yesterday", Some("2026-11-24"));
        check(SlotType::Date, "since Monday", Some("2026-11-23"));
        check(SlotType::Date, "in the last 3 days", Some("2026-11-22"));
        check(SlotType::Date, "failed payments over the past week", Some("2026-11-18"));
        check(SlotType::Date, "a month ago", Some("2026-10-26"));
        check(SlotType::Date, "in the last 2 weeks", Some("2026-11-11"));
        check(SlotType::Date, "since this month", Some("2026-11-01"));
        let days = SlotType::Param(crate::queries::file::parse_param("days int default=7").unwrap());
        check(days.clone(), "signups over the last 2 weeks", Some("14"));
        check(days.clone(), "who signed up in the last 30 days", Some("30"));
        check(days, "new accounts since monday", Some("2"));
        check(SlotType::Date, "since 2026-11-01", Some("2026-11-01"));
        check(
            SlotType::Text,
            "remind the team to rotate the staging db password please",
            Some("rotate the staging db password"),
        );
        check(SlotType::Text, "todo: update the runbook", Some("update the runbook"));
        check(SlotType::Text, "add \"buy cake\" to the list", Some("buy cake"));
        check(SlotType::Subreddit, "a meme from r/rustjerk", Some("rustjerk"));
        check(SlotType::Command, "how do i use deployments?", Some("deploy"));
    }

    #[test]
    fn time_phrases_become_dates_by_the_written_rule() {
        // today is Wednesday 2026-11-25
        check(SlotType::Date, "payment failures in the last hour", Some("2026-11-25"));
        check(SlotType::Date, "failed payments this morning", Some("2026-11-25"));
        check(SlotType::Date, "anything fail recently?", Some("2026-11-18"));
        check(SlotType::Date, "declines lately", Some("2026-11-18"));
        check(SlotType::Date, "failures last night", Some("2026-11-24"));
        check(SlotType::Date, "failures in the last 48h", Some("2026-11-23"));
        check(SlotType::Date, "failures in the past 36 hours", Some("2026-11-23"));
        check(SlotType::Date, "the last few days", Some("2026-11-22"));
        check(SlotType::Date, "since the 20th", Some("2026-11-20"));
        check(SlotType::Date, "since the 28th", Some("2026-10-28"));
        check(SlotType::Date, "since the 3rd of november", Some("2026-11-03"));
        check(SlotType::Date, "since nov 3", Some("2026-11-03"));
        check(SlotType::Date, "since 12 december", Some("2025-12-12"));
        check(SlotType::Date, "the 12 apostles", None);
        let days = SlotType::Param(crate::queries::file::parse_param("days int default=7").unwrap());
        check(days.clone(), "who joined yesterday", Some("1"));
        check(days.clone(), "who signed up today", Some("1"));
        check(days, "anyone new recently", Some("7"));
    }

    #[test]
    fn identifiers_in_the_wild_are_found() {
        check(SlotType::Int, "lookup userid 5521", Some("5521"));
        check(SlotType::Int, "who is uid:77", Some("77"));
        check(SlotType::Int, "user #42's orders", Some("42"));
        check(
            SlotType::Email,
            "<mailto:bob@new.example.com|bob@new.example.com> is whose?",
            Some("bob@new.example.com"),
        );
        check(SlotType::Email, "whose is BOB@EXAMPLE.COM?", Some("BOB@EXAMPLE.COM"));
        let p = crate::queries::file::parse_param("payment_id text").unwrap();
        check(SlotType::Param(p), "pay_4kd8s declined?", Some("pay_4kd8s"));
        check(SlotType::Run, "did test run 12 pass", Some("12"));
        check(SlotType::Run, "did the e2e suite pass", Some("e2e"));
        check(SlotType::Run, "how did the tests go", Some("last"));
    }

    #[test]
    fn text_params_pick_ids_not_words() {
        let p = crate::queries::file::parse_param("payment_id text").unwrap();
        check(SlotType::Param(p), "what happened to payment pay_8f3k2?", Some("pay_8f3k2"));
    }
}
