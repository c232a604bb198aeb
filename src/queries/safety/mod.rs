//! The static half of "read-only three times over": every query must be exactly one read-only
//! statement, as a real SQL parser for its dialect sees it, calling only allow-listed functions
//! (`functions.rs`). It runs at load for every dialect a database may be reached with, and
//! again for the dialect of the resolved URL before each query runs (`queries::run::checked`).
//! The database's read-only transaction and the statement timeout are the other two layers
//! (see `queries::run`).
//!
//! The check must see what the server will run, not less: comments that MySQL and MariaDB
//! execute (`/*! … */`, `/*M! … */`) and MySQL's optimizer hints (`/*+ SET_VAR(…) */`) are
//! refused rather than read as comments, and PostgreSQL's unicode-escaped identifiers
//! (`U&"pg\005fsleep"`) are refused rather than compared as their escaped text.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectName, Query, SetExpr, Spanned, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use super::file::{Dialect, QueryFile};

mod functions;

use functions::Refusal;
pub use functions::{Functions, builtin};

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SafetyError {
    #[error("{dialect:?} SQL does not parse: {message}")]
    Parse { dialect: Dialect, message: String },
    #[error("a query must be exactly one statement, found {0}")]
    StatementCount(usize),
    #[error("only read-only SELECT, WITH … SELECT, VALUES or EXPLAIN queries are allowed, found {0}")]
    NotReadOnly(String),
    #[error("`SELECT … INTO` writes a table and is not allowed")]
    SelectInto,
    #[error("row locks (`FOR UPDATE` / `FOR SHARE`) are not allowed in a read-only query")]
    Lock,
    #[error("the function `{name}` is on the config's `deny_functions` list")]
    DeniedFunction { name: String, line: usize },
    #[error(
        "the function `{name}` is not on the {dialect} allow-list (aggregates, window, string, date/time, math, JSON, conditional, casts); if it only reads, an admin can add it to `[bot] allow_functions`"
    )]
    FunctionNotAllowed { name: String, dialect: &'static str, line: usize },
    #[error("`/*{opening}… */` is not a comment to MySQL and MariaDB, which run what it holds; write the SQL plainly")]
    ExecutableComment { opening: String, line: usize },
    #[error("optimizer hints (`/*+ … */`) can change server settings for the statement; remove the hint")]
    OptimizerHint { line: usize },
    #[error("unicode-escaped identifiers (`U&\"…\"`) are not allowed; write the name plainly")]
    UnicodeIdentifier { line: usize },
    #[error("assigning to a session variable (`:=`) changes the connection's state; compute the value in the query")]
    Assignment { line: usize },
}

impl SafetyError {
    /// The line of the SQL the problem is on, counted from 1, when the parser knows it.
    pub fn line(&self) -> Option<usize> {
        match self {
            SafetyError::DeniedFunction { line, .. }
            | SafetyError::FunctionNotAllowed { line, .. }
            | SafetyError::ExecutableComment { line, .. }
            | SafetyError::OptimizerHint { line }
            | SafetyError::UnicodeIdentifier { line }
            | SafetyError::Assignment { line } => Some(*line).filter(|l| *l > 0),
            _ => None,
        }
    }
}

/// Checks one query file's SQL for one dialect.
pub fn check(q: &QueryFile, dialect: Dialect, functions: Functions<'_>) -> Result<(), SafetyError> {
    let prepared = q.prepare(dialect).map_err(|message| SafetyError::Parse { dialect, message })?;
    check_sql(&prepared.sql, dialect, functions)
}

/// Checks SQL whose placeholders are already in the driver's style.
pub fn check_sql(sql: &str, dialect: Dialect, functions: Functions<'_>) -> Result<(), SafetyError> {
    let parser_dialect: Box<dyn SqlDialect> = match dialect {
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Mysql => Box::new(MySqlDialect {}),
    };
    let tokens = Tokenizer::new(parser_dialect.as_ref(), sql)
        .tokenize_with_location()
        .map_err(|e| SafetyError::Parse { dialect, message: e.to_string() })?;
    check_tokens(&tokens, dialect)?;
    let statements = Parser::new(parser_dialect.as_ref())
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| SafetyError::Parse { dialect, message: e.to_string() })?;
    if statements.len() != 1 {
        return Err(SafetyError::StatementCount(statements.len()));
    }
    let top = &statements[0];
    match top {
        Statement::Query(_) => {}
        // EXPLAIN ANALYZE runs the statement; it is still a query, checked below.
        Statement::Explain { statement, .. } => {
            if !matches!(**statement, Statement::Query(_)) {
                return Err(SafetyError::NotReadOnly(format!("EXPLAIN of {}", kind(statement))));
            }
        }
        other => return Err(SafetyError::NotReadOnly(kind(other))),
    }
    let mut v = ReadOnly { functions, dialect, top: true };
    match top.visit(&mut v) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// What the parser would not show: text a server runs from inside a comment, identifiers the
/// server decodes, session assignments.
fn check_tokens(tokens: &[TokenWithSpan], dialect: Dialect) -> Result<(), SafetyError> {
    for (i, t) in tokens.iter().enumerate() {
        let line = usize::try_from(t.span.start.line).unwrap_or(0);
        match &t.token {
            // Executable in every MySQL and MariaDB; refused in any dialect, since the same
            // file may be run against MariaDB in another environment.
            Token::Whitespace(Whitespace::MultiLineComment(text)) => {
                let opening: String = text.chars().take_while(|c| *c == '!' || c.is_ascii_alphanumeric()).collect();
                if text.starts_with('!') || text.starts_with("M!") || text.starts_with("m!") {
                    let opening = opening.chars().take_while(|c| !c.is_ascii_digit()).collect();
                    return Err(SafetyError::ExecutableComment { opening, line });
                }
                if dialect == Dialect::Mysql && text.starts_with('+') {
                    return Err(SafetyError::OptimizerHint { line });
                }
            }
            // `U&"…"` is one token to PostgreSQL and three to the tokenizer: `U`, `&`, `"…"`.
            Token::Word(w)
                if dialect == Dialect::Postgres && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("u") =>
            {
                let adjacent = |j: usize| tokens.get(j).map(|n: &TokenWithSpan| (&n.token, n.span.start));
                if let (Some((Token::Ampersand, amp)), Some((Token::Word(q), quoted))) =
                    (adjacent(i + 1), adjacent(i + 2))
                    && q.quote_style == Some('"')
                    && amp.line == t.span.end.line
                    && amp.column == t.span.end.column
                    && quoted.line == amp.line
                    && quoted.column == amp.column + 1
                {
                    return Err(SafetyError::UnicodeIdentifier { line });
                }
            }
            Token::Assignment if dialect == Dialect::Mysql => return Err(SafetyError::Assignment { line }),
            _ => {}
        }
    }
    Ok(())
}

/// The statement's kind for messages: its first keyword or two.
fn kind(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [a, b] if matches!(a.to_ascii_uppercase().as_str(), "CREATE" | "DROP" | "ALTER") => format!("{a} {b}"),
        [a, ..] => a.to_ascii_uppercase(),
        [] => "an empty statement".into(),
    }
}

struct ReadOnly<'a> {
    functions: Functions<'a>,
    dialect: Dialect,
    top: bool,
}

impl ReadOnly<'_> {
    fn check_call(&self, name: &ObjectName) -> ControlFlow<SafetyError> {
        let line = usize::try_from(name.span().start.line).unwrap_or(0);
        match self.functions.check(name, self.dialect) {
            Ok(()) => ControlFlow::Continue(()),
            Err((name, Refusal::Denied)) => ControlFlow::Break(SafetyError::DeniedFunction { name, line }),
            Err((name, Refusal::NotAllowed)) => ControlFlow::Break(SafetyError::FunctionNotAllowed {
                name,
                dialect: match self.dialect {
                    Dialect::Sqlite => "SQLite",
                    Dialect::Postgres => "PostgreSQL",
                    Dialect::Mysql => "MySQL/MariaDB",
                },
                line,
            }),
        }
    }
}

fn check_body(body: &SetExpr) -> ControlFlow<SafetyError> {
    match body {
        SetExpr::Select(s) if s.into.is_some() => ControlFlow::Break(SafetyError::SelectInto),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
            ControlFlow::Break(SafetyError::NotReadOnly(kind(s)))
        }
        _ => ControlFlow::Continue(()),
    }
}

impl Visitor for ReadOnly<'_> {
    type Break = SafetyError;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<SafetyError> {
        if std::mem::take(&mut self.top) {
            return ControlFlow::Continue(());
        }
        match s {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(SafetyError::NotReadOnly(kind(other))),
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<SafetyError> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(SafetyError::Lock);
        }
        check_body(&q.body)
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<SafetyError> {
        if let Expr::Function(f) = e {
            return self.check_call(&f.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<SafetyError> {
        match t {
            TableFactor::Table { name, args: Some(_), .. } => self.check_call(name),
            TableFactor::Function { name, .. } => self.check_call(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

#[cfg(test)]
mod tests;
