//! Predefined query files: a comment header (name, description, database, typed params,
//! max_rows, examples) and one SQL statement, optionally with per-dialect variants.
//!
//! Placeholders are `:name` in the file and are rewritten to each driver's style here, once,
//! at load; values are always bound, never spliced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Problem;
use crate::param::{ParamSpec, ParamType, ParamValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn from_name(s: &str) -> Option<Dialect> {
        match s {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    /// The dialect a database URL speaks, by scheme.
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?;
        Dialect::from_name(scheme)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryFile {
    pub name: String,
    pub description: String,
    pub database: String,
    pub params: Vec<ParamSpec>,
    pub max_rows: usize,
    pub timeout_ms: Option<u64>,
    pub examples: Vec<String>,
    /// The SQL as written, for `db describe`.
    pub sql: String,
    #[serde(skip)]
    pub variants: BTreeMap<Dialect, String>,
    #[serde(skip)]
    pub path: PathBuf,
    /// The line where the SQL body starts, for problems found in it.
    #[serde(skip)]
    pub sql_line: usize,
    /// The line where each dialect's variant starts.
    #[serde(skip)]
    pub variant_lines: BTreeMap<Dialect, usize>,
}

/// SQL ready for one driver: placeholders rewritten, and the declared params in bind order.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedSql {
    pub sql: String,
    pub binds: Vec<String>,
}

const DEFAULT_MAX_ROWS: usize = 1000;

impl QueryFile {
    /// The SQL body for a dialect: its own variant if the file has one, else the default body.
    pub fn body(&self, dialect: Dialect) -> &str {
        self.variants.get(&dialect).map_or(self.sql.as_str(), String::as_str)
    }

    /// The file line where the SQL body for a dialect starts.
    pub fn body_line(&self, dialect: Dialect) -> usize {
        if self.variants.contains_key(&dialect) {
            self.variant_lines.get(&dialect).copied().unwrap_or(self.sql_line)
        } else {
            self.sql_line
        }
    }

    /// The SQL for a dialect with its placeholders rewritten; decimal (and, on PostgreSQL, uuid)
    /// params are bound as text and cast in SQL, so no precision is lost on the way.
    pub fn prepare(&self, dialect: Dialect) -> Result<PreparedSql, String> {
        rewrite(self.body(dialect), dialect, |name| self.param(name).map(|p| p.ty))
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Parses a query file; every problem found is returned, each with its line.
    pub fn parse(text: &str, path: &Path) -> Result<QueryFile, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut q = QueryFile {
            name: String::new(),
            description: String::new(),
            database: String::new(),
            params: Vec::new(),
            max_rows: DEFAULT_MAX_ROWS,
            timeout_ms: None,
            examples: Vec::new(),
            sql: String::new(),
            variants: BTreeMap::new(),
            path: path.to_path_buf(),
            sql_line: 0,
            variant_lines: BTreeMap::new(),
        };
        let mut body = String::new();
        let mut current: Option<Dialect> = None;
        let mut in_header = true;
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let trimmed = line.trim();
            if in_header {
                if trimmed.is_empty() {
                    continue;
                }
                if let Some(rest) = trimmed.strip_prefix("--") {
                    if let Some((key, value)) = rest.split_once(':') {
                        let key = key.trim();
                        if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty() {
                            if let Err(msg) = q.header(key, value.trim()) {
                                problems.push(Problem::new(path, Some(lineno), msg));
                            }
                            continue;
                        }
                    }
                    // A plain comment in the header.
                    continue;
                }
                in_header = false;
                q.sql_line = lineno;
            }
            if let Some(d) = trimmed.strip_prefix("-- dialect:") {
                match Dialect::from_name(d.trim()) {
                    Some(d) => {
                        store_body(&mut q, current, std::mem::take(&mut body));
                        current = Some(d);
                        q.variant_lines.insert(d, lineno + 1);
                    }
                    None => problems.push(Problem::new(
                        path,
                        Some(lineno),
                        format!("unknown dialect `{}`: use sqlite, postgres or mysql", d.trim()),
                    )),
                }
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
        store_body(&mut q, current, body);
        let missing = |what: &str| format!("missing `-- {what}:` header line");
        if q.name.is_empty() {
            problems.push(Problem::new(path, Some(1), missing("name")));
        }
        if q.database.is_empty() {
            problems.push(Problem::new(path, Some(1), missing("database")));
        }
        if q.sql.trim().is_empty() {
            problems.push(Problem::new(path, None, "no SQL statement after the header"));
        }
        // Every placeholder must be declared, and every declared param used.
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            match q.prepare(dialect) {
                Ok(p) => {
                    for b in &p.binds {
                        if q.param(b).is_none() {
                            problems.push(Problem::new(
                                path,
                                Some(q.sql_line),
                                format!("placeholder `:{b}` has no `-- param: {b} <type>` line"),
                            ));
                        }
                    }
                    for param in &q.params {
                        if !p.binds.contains(&param.name) {
                            problems.push(Problem::new(
                                path,
                                Some(q.sql_line),
                                format!("param `{}` is declared but the SQL never uses `:{}`", param.name, param.name),
                            ));
                        }
                    }
                }
                Err(msg) => problems.push(Problem::new(path, Some(q.sql_line), msg)),
            }
        }
        problems.dedup();
        if problems.is_empty() { Ok(q) } else { Err(problems) }
    }

    fn header(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "name" => {
                if !is_name(value) {
                    return Err(format!(
                        "query name `{value}` must be lower-case letters, digits and dashes, starting with a letter"
                    ));
                }
                self.name = value.to_string();
            }
            "description" => self.description = value.to_string(),
            "database" => self.database = value.to_string(),
            "max_rows" => {
                self.max_rows = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("max_rows must be a positive number, not `{value}`"))?
            }
            "timeout_ms" => {
                self.timeout_ms = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("timeout_ms must be a positive number, not `{value}`"))?,
                )
            }
            "example" => self.examples.push(value.to_string()),
            "param" => {
                let p = parse_param(value)?;
                if self.param(&p.name).is_some() {
                    return Err(format!("param `{}` is declared twice", p.name));
                }
                self.params.push(p);
            }
            "dialect" => return Err("`-- dialect:` belongs after the header, before a variant's SQL".into()),
            other => {
                return Err(format!(
                    "unknown header `{other}`: use name, description, database, param, max_rows, timeout_ms or example"
                ));
            }
        }
        Ok(())
    }
}

fn store_body(q: &mut QueryFile, dialect: Option<Dialect>, body: String) {
    let blank_lines = body.len() - body.trim_start_matches(['\n', '\r', ' ', '\t']).len();
    let skipped = body[..blank_lines].matches('\n').count();
    let body = body.trim().to_string();
    match dialect {
        None => q.sql = body,
        Some(d) => {
            if let Some(line) = q.variant_lines.get_mut(&d) {
                *line += skipped;
            }
            q.variants.insert(d, body);
        }
    }
}

/// Names of queries, templates and params: safe in canonical text without quotes.
pub fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `user_id int default=7 values=a|b secret "help text"`
pub fn parse_param(spec: &str) -> Result<ParamSpec, String> {
    let (head, help) = match spec.find('"') {
        Some(at) => {
            let help = spec[at..].trim();
            let help = help
                .strip_prefix('"')
                .and_then(|h| h.strip_suffix('"'))
                .ok_or_else(|| format!("unbalanced quote in param help `{help}`"))?;
            (&spec[..at], help.to_string())
        }
        None => (spec, String::new()),
    };
    let mut words = head.split_whitespace();
    let name = words.next().ok_or("param line needs `<name> <type>`")?;
    if !is_name(name) || name.contains('-') {
        return Err(format!("param name `{name}` must be lower-case letters, digits and underscores"));
    }
    let ty_word = words
        .next()
        .ok_or_else(|| format!("param `{name}` needs a type: int, text, date, timestamp, bool, decimal or uuid"))?;
    let ty = ParamType::parse(ty_word).ok_or_else(|| {
        format!("param `{name}` has unknown type `{ty_word}`: use int, text, date, timestamp, bool, decimal or uuid")
    })?;
    let mut p = ParamSpec { name: name.to_string(), ty, default: None, values: Vec::new(), help, secret: false };
    let mut default_raw = None;
    for word in words {
        if let Some(v) = word.strip_prefix("default=") {
            default_raw = Some(v.to_string());
        } else if let Some(v) = word.strip_prefix("values=") {
            p.values = v.split('|').filter(|s| !s.is_empty()).map(str::to_string).collect();
        } else if word == "secret" {
            p.secret = true;
        } else {
            return Err(format!("param `{name}`: unknown option `{word}` (use default=, values=, secret or \"help\")"));
        }
    }
    if let Some(raw) = default_raw {
        let v: ParamValue = p.check(&raw).map_err(|e| format!("default of {e}"))?;
        p.default = Some(v);
    }
    Ok(p)
}

/// Rewrites `:name` placeholders to the driver's style, skipping strings, quoted identifiers,
/// comments and PostgreSQL `::` casts. Returns the param names in bind order.
pub fn rewrite_placeholders(sql: &str, dialect: Dialect) -> Result<PreparedSql, String> {
    rewrite(sql, dialect, |_| None)
}

/// A bound value's placeholder; a type that travels as text gets a cast to its SQL type.
fn placeholder(dialect: Dialect, n: usize, ty: Option<ParamType>) -> String {
    let bare = match dialect {
        Dialect::Postgres => format!("${n}"),
        Dialect::Sqlite | Dialect::Mysql => "?".to_string(),
    };
    match (dialect, ty) {
        (Dialect::Postgres, Some(ParamType::Decimal)) => format!("CAST({bare} AS numeric)"),
        (Dialect::Mysql, Some(ParamType::Decimal)) => format!("CAST({bare} AS DECIMAL(65,30))"),
        (Dialect::Sqlite, Some(ParamType::Decimal)) => format!("CAST({bare} AS NUMERIC)"),
        (Dialect::Postgres, Some(ParamType::Uuid)) => format!("CAST({bare} AS uuid)"),
        _ => bare,
    }
}

fn rewrite(sql: &str, dialect: Dialect, ty: impl Fn(&str) -> Option<ParamType>) -> Result<PreparedSql, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut binds: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' | '`' => {
                let end = find_close(&chars, i + 1, c).ok_or_else(|| format!("unterminated {c} in SQL"))?;
                out.extend(&chars[i..=end]);
                i = end + 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let end = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p);
                out.extend(&chars[i..end]);
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .ok_or("unterminated /* comment in SQL")?;
                out.extend(&chars[i..end + 2]);
                i = end + 2;
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push_str("::");
                i += 2;
            }
            ':' if chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let cast = ty(&name);
                binds.push(name);
                out.push_str(&placeholder(dialect, binds.len(), cast));
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(PreparedSql { sql: out, binds })
}

/// The index of the closing quote, where a doubled quote is an escaped one.
fn find_close(chars: &[char], mut i: usize, quote: char) -> Option<usize> {
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        if chars[i] == '\\' && quote == '\'' {
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_BY_ID: &str = "-- name: user-by-id\n-- description: Look up one user\n-- database: users\n-- param: user_id int \"the user's numeric id\"\n-- max_rows: 50\n-- example: look up user 42\nSELECT id, email FROM users WHERE id = :user_id\n";

    #[test]
    fn a_header_and_body_parse() {
        let q = QueryFile::parse(USER_BY_ID, Path::new("q.sql")).unwrap();
        assert_eq!(q.name, "user-by-id");
        assert_eq!(q.max_rows, 50);
        assert_eq!(q.params[0].help, "the user's numeric id");
        assert_eq!(q.examples, ["look up user 42"]);
        assert_eq!(q.sql_line, 7);
        assert_eq!(q.prepare(Dialect::Postgres).unwrap().sql, "SELECT id, email FROM users WHERE id = $1");
        assert_eq!(q.prepare(Dialect::Mysql).unwrap().sql, "SELECT id, email FROM users WHERE id = ?");
    }

    #[test]
    fn placeholders_inside_strings_comments_and_casts_are_left_alone() {
        let p = rewrite_placeholders(
            "SELECT ':no', \":no\", x::text -- :no\n FROM t WHERE a = :a AND b = :b /* :c */ OR a = :a",
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(p.binds, ["a", "b", "a"]);
        assert_eq!(p.sql, "SELECT ':no', \":no\", x::text -- :no\n FROM t WHERE a = $1 AND b = $2 /* :c */ OR a = $3");
    }

    #[test]
    fn header_problems_name_their_line() {
        let bad = "-- name: Bad Name\n-- database: users\n-- param: x integer-ish\n-- colour: blue\nSELECT :y\n";
        let problems = QueryFile::parse(bad, Path::new("bad.sql")).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|t| t.starts_with("bad.sql:1: query name")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("bad.sql:3: param `x` has unknown type")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("bad.sql:4: unknown header `colour`")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("placeholder `:y` has no")), "{text:?}");
    }

    #[test]
    fn a_file_without_header_is_refused() {
        let problems = QueryFile::parse("SELECT 1\n", Path::new("x.sql")).unwrap_err();
        assert!(problems.iter().any(|p| p.message.contains("`-- name:`")));
    }

    #[test]
    fn params_take_defaults_enumerations_and_help() {
        let p = parse_param("days int default=7 \"how many days back\"").unwrap();
        assert_eq!(p.default, Some(ParamValue::Int(7)));
        assert_eq!(p.help, "how many days back");
        let p = parse_param("status text values=active|suspended").unwrap();
        assert_eq!(p.values, ["active", "suspended"]);
        assert!(parse_param("days int default=seven").is_err());
    }

    #[test]
    fn decimals_and_postgres_uuids_travel_as_text_and_are_cast() {
        let text = "-- name: typed\n-- database: d\n-- param: n decimal\n-- param: u uuid\nSELECT :n, :u\n";
        let q = QueryFile::parse(text, Path::new("t.sql")).unwrap();
        let sql = |d| q.prepare(d).unwrap().sql;
        assert_eq!(sql(Dialect::Postgres), "SELECT CAST($1 AS numeric), CAST($2 AS uuid)");
        assert_eq!(sql(Dialect::Mysql), "SELECT CAST(? AS DECIMAL(65,30)), ?");
        assert_eq!(sql(Dialect::Sqlite), "SELECT CAST(? AS NUMERIC), ?");
    }

    #[test]
    fn dialect_variants_replace_the_default_body() {
        let text = "-- name: recent\n-- database: users\n-- param: days int default=7\nSELECT 1 WHERE :days > 0\n-- dialect: postgres\nSELECT 2 WHERE :days > 0\n";
        let q = QueryFile::parse(text, Path::new("r.sql")).unwrap();
        assert_eq!(q.body(Dialect::Sqlite), "SELECT 1 WHERE :days > 0");
        assert_eq!(q.body(Dialect::Postgres), "SELECT 2 WHERE :days > 0");
    }
}
