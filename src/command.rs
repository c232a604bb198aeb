//! `Command`: what a message means once understood. Only `understand::grammar` builds one from
//! text; its `Display` is the canonical text that confirmations show, the audit stores and
//! `explain` returns, and that text parses back to the same value.

use std::fmt;

use serde::Serialize;

use crate::param::ParamValue;
use crate::spec::CommandKind;

/// A checked parameter: its declared name and typed value, in declared order.
pub type Params = Vec<(String, ParamValue)>;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `topic` is a command or a family of commands by its words: `deploy`, `db query`.
    Help {
        topic: Option<String>,
    },
    Whoami,
    Explain {
        text: String,
    },
    Confirm {
        code: String,
    },
    Cancel {
        code: String,
    },
    Approve {
        code: String,
    },
    Reject {
        code: String,
        reason: Option<String>,
    },
    Approvals,
    Audit {
        since: Option<Since>,
        who: Option<String>,
        /// `None` is [`AUDIT_LIMIT`] rows.
        limit: Option<u32>,
    },
    DbList,
    DbDescribe {
        query: String,
    },
    /// `env` is `None` for the default environment, so the canonical text stays short.
    DbQuery {
        query: String,
        params: Params,
        env: Option<String>,
    },
    DbSchemaCheck {
        service: String,
        env: String,
    },
    /// Ad-hoc read-only SQL; the environment is always written out, so an approval of the
    /// text is an approval of one target even if the default environment changes.
    DbSql {
        database: String,
        sql: String,
        env: String,
    },
    DeployVersion {
        service: String,
        env: String,
    },
    ReleaseCheck {
        service: String,
        env: String,
    },
    TestRun {
        suite: String,
        env: String,
    },
    TestStatus {
        run: RunRef,
    },
    TestList,
    TestCancel {
        id: u64,
    },
    Meme {
        subreddit: Option<String>,
    },
    TodoAdd {
        text: String,
    },
    TodoList,
    TodoDone {
        id: u64,
    },
    TodoUndo {
        id: u64,
    },
    TodoAssign {
        id: u64,
        who: String,
    },
    Manifest {
        template: String,
        params: Params,
    },
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        use CommandKind as K;
        match self {
            Command::Help { .. } => K::Help,
            Command::Whoami => K::Whoami,
            Command::Explain { .. } => K::Explain,
            Command::Confirm { .. } => K::Confirm,
            Command::Cancel { .. } => K::Cancel,
            Command::Approve { .. } => K::Approve,
            Command::Reject { .. } => K::Reject,
            Command::Approvals => K::Approvals,
            Command::Audit { .. } => K::Audit,
            Command::DbList => K::DbList,
            Command::DbDescribe { .. } => K::DbDescribe,
            Command::DbQuery { .. } => K::DbQuery,
            Command::DbSchemaCheck { .. } => K::DbSchemaCheck,
            Command::DbSql { .. } => K::DbSql,
            Command::DeployVersion { .. } => K::DeployVersion,
            Command::ReleaseCheck { .. } => K::ReleaseCheck,
            Command::TestRun { .. } => K::TestRun,
            Command::TestStatus { .. } => K::TestStatus,
            Command::TestList => K::TestList,
            Command::TestCancel { .. } => K::TestCancel,
            Command::Meme { .. } => K::Meme,
            Command::TodoAdd { .. } => K::TodoAdd,
            Command::TodoList => K::TodoList,
            Command::TodoDone { .. } => K::TodoDone,
            Command::TodoUndo { .. } => K::TodoUndo,
            Command::TodoAssign { .. } => K::TodoAssign,
            Command::Manifest { .. } => K::Manifest,
        }
    }

    pub fn spec(&self) -> &'static crate::spec::CommandSpec {
        crate::spec::spec(self.kind())
    }
}

/// How many rows `audit` lists when no `--limit` is given, and the most it lists at all.
pub const AUDIT_LIMIT: u32 = 50;
pub const AUDIT_MAX_LIMIT: u32 = 1000;

/// Where an `audit` listing starts. Relative forms stay relative in the canonical text, so the
/// audit row of `audit --since 2h` says what was asked, and each run counts back from its own now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// From the start of this day (UTC).
    Date(time::Date),
    Today,
    Yesterday,
    /// `30m`, `2h`, `7d`, `2w` back from now.
    Ago(u32, SpanUnit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl SpanUnit {
    fn letter(self) -> char {
        match self {
            SpanUnit::Minutes => 'm',
            SpanUnit::Hours => 'h',
            SpanUnit::Days => 'd',
            SpanUnit::Weeks => 'w',
        }
    }

    fn seconds(self) -> i64 {
        match self {
            SpanUnit::Minutes => 60,
            SpanUnit::Hours => 3600,
            SpanUnit::Days => 86_400,
            SpanUnit::Weeks => 7 * 86_400,
        }
    }
}

impl Since {
    /// The forms a user may type, for error messages and `help`.
    pub const FORMS: &'static str = "today, yesterday, 30m, 2h, 7d, 2w or a date like 2026-11-25";

    /// `today`, `yesterday`, `<n>m|h|d|w` (up to ten years back) or an ISO date; `None` otherwise.
    pub fn parse(text: &str) -> Option<Since> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "today" => return Some(Since::Today),
            "yesterday" => return Some(Since::Yesterday),
            _ => {}
        }
        if let Ok(ParamValue::Date(d)) = ParamValue::parse(crate::param::ParamType::Date, &lower) {
            return Some(Since::Date(d));
        }
        let unit = match lower.chars().last()? {
            'm' => SpanUnit::Minutes,
            'h' => SpanUnit::Hours,
            'd' => SpanUnit::Days,
            'w' => SpanUnit::Weeks,
            _ => return None,
        };
        let digits = &lower[..lower.len() - 1];
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        (n > 0 && i64::from(n) * unit.seconds() <= 3650 * 86_400).then_some(Since::Ago(n, unit))
    }

    /// The first instant listed, in Unix milliseconds, counted back from `now`.
    pub fn start_ms(self, now: time::OffsetDateTime) -> i64 {
        let now = now.to_offset(time::UtcOffset::UTC);
        let midnight = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
        match self {
            Since::Date(d) => midnight(d),
            Since::Today => midnight(now.date()),
            Since::Yesterday => midnight(now.date().previous_day().unwrap_or(now.date())),
            Since::Ago(n, unit) => (now.unix_timestamp() - i64::from(n) * unit.seconds()) * 1000,
        }
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Since::Date(d) => write!(f, "{}", ParamValue::Date(*d)),
            Since::Today => f.write_str("today"),
            Since::Yesterday => f.write_str("yesterday"),
            Since::Ago(n, unit) => write!(f, "{n}{}", unit.letter()),
        }
    }
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A value as the canonical text writes it: bare when it holds only letters, digits and
/// `@ . _ + - : /`, otherwise double-quoted with `"` and `\` escaped.
pub fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && !value.starts_with("--")
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "@._+-:/".contains(c));
    if bare { value.to_string() } else { always_quote(value) }
}

/// Free text is always quoted, so a TODO that reads like a flag stays text.
pub fn always_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &Params) -> fmt::Result {
    for (name, value) in params {
        write!(f, " {name}={}", quote(&value.to_string()))?;
    }
    Ok(())
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec().name())?;
        match self {
            Command::Help { topic } => {
                if let Some(topic) = topic {
                    write!(f, " {topic}")?;
                }
            }
            Command::Whoami | Command::DbList | Command::TestList | Command::TodoList | Command::Approvals => {}
            Command::Explain { text } | Command::TodoAdd { text } => write!(f, " {}", always_quote(text))?,
            Command::Confirm { code } | Command::Cancel { code } | Command::Approve { code } => write!(f, " {code}")?,
            Command::Reject { code, reason } => {
                write!(f, " {code}")?;
                if let Some(r) = reason {
                    write!(f, " {}", always_quote(r))?;
                }
            }
            Command::Audit { since, who, limit } => {
                if let Some(s) = since {
                    write!(f, " --since {s}")?;
                }
                if let Some(w) = who {
                    write!(f, " --who {}", quote(w))?;
                }
                if let Some(n) = limit {
                    write!(f, " --limit {n}")?;
                }
            }
            Command::DbDescribe { query } => write!(f, " {query}")?,
            Command::DbQuery { query, params, env } => {
                write!(f, " {query}")?;
                write_params(f, params)?;
                if let Some(env) = env {
                    write!(f, " --env {env}")?;
                }
            }
            Command::DbSql { database, sql, env } => {
                write!(f, " {} {} --env {env}", quote(database), always_quote(sql))?
            }
            Command::DbSchemaCheck { service, env }
            | Command::DeployVersion { service, env }
            | Command::ReleaseCheck { service, env } => write!(f, " {service} {env}")?,
            Command::TestRun { suite, env } => write!(f, " {suite} {env}")?,
            Command::TestStatus { run } => write!(f, " {run}")?,
            Command::TestCancel { id } | Command::TodoDone { id } | Command::TodoUndo { id } => write!(f, " {id}")?,
            Command::Meme { subreddit } => {
                if let Some(s) = subreddit {
                    write!(f, " {s}")?;
                }
            }
            Command::TodoAssign { id, who } => write!(f, " {id} {}", quote(who))?,
            Command::Manifest { template, params } => {
                write!(f, " {template}")?;
                write_params(f, params)?;
            }
        }
        Ok(())
    }
}

/// Which test run `test status` means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunRef {
    /// `test status 12`
    Id(u64),
    /// `test status last`: the latest run of any suite.
    Last,
    /// `test status smoke`: the latest run of that suite.
    Suite(String),
}

impl fmt::Display for RunRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunRef::Id(id) => write!(f, "{id}"),
            RunRef::Last => f.write_str("last"),
            RunRef::Suite(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_matches_the_design_examples() {
        let check = |c: Command, want: &str| assert_eq!(c.to_string(), want);
        check(
            Command::DeployVersion { service: "payments".into(), env: "prod".into() },
            "deploy version payments prod",
        );
        check(
            Command::DbQuery {
                query: "user-by-id".into(),
                params: vec![("user_id".into(), ParamValue::Int(42))],
                env: None,
            },
            "db query user-by-id user_id=42",
        );
        check(
            Command::DbQuery {
                query: "user-by-email".into(),
                params: vec![("email".into(), ParamValue::Text("alice@example.com".into()))],
                env: None,
            },
            "db query user-by-email email=alice@example.com",
        );
        check(
            Command::TodoAdd { text: "rotate the staging db password".into() },
            "todo add \"rotate the staging db password\"",
        );
        check(Command::Meme { subreddit: None }, "meme");
        check(Command::Help { topic: Some("deploy".into()) }, "help deploy");
    }

    #[test]
    fn values_with_other_characters_are_quoted_and_escaped() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("--env"), "\"--env\"");
        assert_eq!(quote("pay_8f3k2"), "pay_8f3k2");
    }

    #[test]
    fn since_counts_back_from_now_in_utc_days_and_spans() {
        let now = time::macros::datetime!(2026-12-03 14:30 UTC);
        let ms = |s: &str| Since::parse(s).map(|s| s.start_ms(now));
        let at = |dt: time::OffsetDateTime| Some(dt.unix_timestamp() * 1000);
        assert_eq!(ms("today"), at(time::macros::datetime!(2026-12-03 0:00 UTC)));
        assert_eq!(ms("YESTERDAY"), at(time::macros::datetime!(2026-12-02 0:00 UTC)));
        assert_eq!(ms("2h"), at(time::macros::datetime!(2026-12-03 12:30 UTC)));
        assert_eq!(ms("30m"), at(time::macros::datetime!(2026-12-03 14:00 UTC)));
        assert_eq!(ms("7d"), at(time::macros::datetime!(2026-11-26 14:30 UTC)));
        assert_eq!(ms("2w"), at(time::macros::datetime!(2026-11-19 14:30 UTC)));
        assert_eq!(ms("2026-11-01"), at(time::macros::datetime!(2026-11-01 0:00 UTC)));
        for bad in ["", "d", "0d", "2y", "2.5h", "+2h", "3651d", "tomorrow", "2026-13-01"] {
            assert_eq!(Since::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Since::parse("3650d").map(|s| s.to_string()).as_deref(), Some("3650d"));
    }
}
