//! The static half of "read-only three times over": at load, every query must be exactly one
//! read-only statement, as a real SQL parser for its dialect sees it. The database's read-only
//! transaction and the statement timeout are the other two (see `queries::run`).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectName, Query, SetExpr, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use super::file::{Dialect, QueryFile};

/// Functions that sleep, signal other sessions, touch files or the network, or take locks.
/// Teams add their own with `bot.deny_functions`.
pub const DENIED_FUNCTIONS: &[&str] = &[
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_file_write",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_create",
    "lo_from_bytea",
    "lo_put",
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_send_query",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_lock",
    "pg_advisory_lock_shared",
    "set_config",
    "nextval",
    "setval",
    "txid_current",
    "pg_notify",
    "pg_logical_emit_message",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "load_file",
    "sleep",
    "benchmark",
    "get_lock",
    "release_lock",
    "release_all_locks",
    "sys_exec",
    "sys_eval",
    "load_extension",
    "readfile",
    "writefile",
    "fts3_tokenizer",
    "edit",
];

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
    #[error("the function `{0}` is on the deny list")]
    DeniedFunction(String),
}

/// Checks one query file's SQL for one dialect.
pub fn check(q: &QueryFile, dialect: Dialect, extra_denied: &[String]) -> Result<(), SafetyError> {
    let prepared = q.prepare(dialect).map_err(|message| SafetyError::Parse { dialect, message })?;
    check_sql(&prepared.sql, dialect, extra_denied)
}

/// Checks SQL whose placeholders are already in the driver's style.
pub fn check_sql(sql: &str, dialect: Dialect, extra_denied: &[String]) -> Result<(), SafetyError> {
    let parser_dialect: Box<dyn SqlDialect> = match dialect {
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Mysql => Box::new(MySqlDialect {}),
    };
    let statements = Parser::parse_sql(parser_dialect.as_ref(), sql)
        .map_err(|e| SafetyError::Parse { dialect, message: e.to_string() })?;
    if statements.len() != 1 {
        return Err(SafetyError::StatementCount(statements.len()));
    }
    let top = &statements[0];
    match top {
        Statement::Query(_) => {}
        Statement::Explain { statement, analyze, .. } => {
            if !matches!(**statement, Statement::Query(_)) {
                return Err(SafetyError::NotReadOnly(format!("EXPLAIN of {}", kind(statement))));
            }
            if *analyze {
                // EXPLAIN ANALYZE runs the statement; still read-only, checked below.
            }
        }
        other => return Err(SafetyError::NotReadOnly(kind(other))),
    }
    let mut v = ReadOnly { denied: extra_denied, top: true };
    match top.visit(&mut v) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
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
    denied: &'a [String],
    top: bool,
}

impl ReadOnly<'_> {
    fn check_name(&self, name: &ObjectName) -> ControlFlow<SafetyError> {
        let Some(last) = name.0.last() else { return ControlFlow::Continue(()) };
        let last = last.to_string().trim_matches(|c| c == '"' || c == '`').to_ascii_lowercase();
        if DENIED_FUNCTIONS.contains(&last.as_str()) || self.denied.iter().any(|d| d.eq_ignore_ascii_case(&last)) {
            return ControlFlow::Break(SafetyError::DeniedFunction(last));
        }
        ControlFlow::Continue(())
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
            return self.check_name(&f.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<SafetyError> {
        match t {
            TableFactor::Table { name, args: Some(_), .. } => self.check_name(name),
            TableFactor::Function { name, .. } => self.check_name(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, dialect: Dialect) -> Result<(), String> {
        check_sql(sql, dialect, &["my_udf".to_string()]).map_err(|e| e.to_string())
    }

    fn all(sql: &str) -> Vec<Result<(), String>> {
        [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql].map(|d| check(sql, d)).to_vec()
    }

    #[test]
    fn read_only_statements_pass() {
        for sql in [
            "SELECT id FROM users WHERE id = 1",
            "WITH recent AS (SELECT * FROM users) SELECT count(*) FROM recent",
            "SELECT a FROM t UNION SELECT b FROM u",
            "VALUES (1), (2)",
            "EXPLAIN SELECT 1",
        ] {
            assert!(all(sql).iter().all(Result::is_ok), "{sql}: {:?}", all(sql));
        }
    }

    #[test]
    fn writes_are_refused_in_every_dialect() {
        for sql in [
            "DELETE FROM users",
            "UPDATE users SET email = 'x'",
            "INSERT INTO users VALUES (1)",
            "DROP TABLE users",
            "TRUNCATE users",
            "ALTER TABLE users ADD COLUMN x int",
            "GRANT ALL ON users TO public",
            "CALL do_things()",
            "SELECT 1; DELETE FROM users",
            "SELECT 1; -- harmless\nDROP TABLE users",
            "SELECT 1 /* ; */ ; UPDATE users SET id = 1",
        ] {
            for (i, r) in all(sql).into_iter().enumerate() {
                assert!(r.is_err(), "dialect {i} let through {sql}");
            }
        }
    }

    #[test]
    fn postgres_specific_writes_are_refused() {
        let pg = |sql| check(sql, Dialect::Postgres);
        assert!(
            pg("WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone").unwrap_err().contains("read-only")
        );
        assert_eq!(
            pg("SELECT * INTO backup FROM users").unwrap_err(),
            "`SELECT … INTO` writes a table and is not allowed"
        );
        assert!(pg("SELECT * FROM users FOR UPDATE").unwrap_err().contains("row locks"));
        assert!(pg("COPY users TO '/tmp/x'").is_err());
        assert!(pg("SELECT pg_sleep(10)").unwrap_err().contains("`pg_sleep`"));
        assert!(pg("SELECT pg_catalog.pg_terminate_backend(1)").unwrap_err().contains("pg_terminate_backend"));
        assert!(pg("SELECT * FROM dblink('x', 'select 1') AS t(a int)").unwrap_err().contains("dblink"));
        assert!(pg("SELECT my_udf(1)").unwrap_err().contains("my_udf"));
    }

    #[test]
    fn mysql_specific_calls_are_refused() {
        let my = |sql| check(sql, Dialect::Mysql);
        assert!(my("SELECT SLEEP(5)").unwrap_err().contains("sleep"));
        assert!(my("SELECT BENCHMARK(1000000, MD5('x'))").unwrap_err().contains("benchmark"));
        assert!(my("SELECT LOAD_FILE('/etc/passwd')").unwrap_err().contains("load_file"));
        assert!(my("SELECT * FROM users INTO OUTFILE '/tmp/x'").is_err());
    }
}
