//! A database schema as both sides of a schema check see it: tables keyed by name, columns
//! keyed by name (so column order never counts), and indexes, unique constraints and foreign
//! keys compared by what they cover rather than by their generated names.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: BTreeMap<String, Column>,
    pub primary_key: Vec<String>,
    /// Indexes created on their own (`CREATE INDEX`), by name.
    pub indexes: BTreeMap<String, Index>,
    /// Unique constraints, by name; their columns.
    pub uniques: BTreeMap<String, Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// As the engine spells it (`character varying(255)`, `bigint(20)`, `TEXT`).
    pub ty: String,
    pub nullable: bool,
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Index {
    pub unique: bool,
    /// Column names, or expressions, in key order.
    pub columns: Vec<String>,
    /// Method and predicate where the engine has them (`btree`, `WHERE (status = 'x')`).
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub table: String,
    /// Empty when the engine leaves it to the referenced table's primary key (SQLite).
    pub ref_columns: Vec<String>,
    pub on_update: String,
    pub on_delete: String,
}

impl Column {
    pub fn describe(&self) -> String {
        let mut s = self.ty.clone();
        s.push_str(if self.nullable { " NULL" } else { " NOT NULL" });
        if let Some(d) = &self.default {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        s
    }
}

impl Index {
    pub fn describe(&self, name: &str) -> String {
        let kind = if self.unique { "unique index" } else { "index" };
        let detail = if self.detail.is_empty() { String::new() } else { format!(" {}", self.detail) };
        format!("{kind} `{name}` ({}){detail}", self.columns.join(", "))
    }
}

impl ForeignKey {
    pub fn describe(&self) -> String {
        let to = if self.ref_columns.is_empty() { String::new() } else { format!("({})", self.ref_columns.join(", ")) };
        let mut s = format!("foreign key ({}) → {}{to}", self.columns.join(", "), self.table);
        if !self.on_delete.is_empty() && !self.on_delete.eq_ignore_ascii_case("no action") {
            s.push_str(&format!(" on delete {}", self.on_delete.to_lowercase()));
        }
        if !self.on_update.is_empty() && !self.on_update.eq_ignore_ascii_case("no action") {
            s.push_str(&format!(" on update {}", self.on_update.to_lowercase()));
        }
        s
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else { return pattern == name };
    let Some(mut tail) = name.strip_prefix(head) else { return false };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split yields at least one part");
    for part in middle {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_stars_anywhere() {
        let check = |p: &str, n: &str, want: bool| assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        check("users", "users", true);
        check("users", "user", false);
        check("*", "anything", true);
        check("pay*", "payments", true);
        check("*_log", "audit_log", true);
        check("*_log", "audit_logs", false);
        check("a*b*c", "aXbYc", true);
        check("a*b*c", "aXc", false);
        check("ab*ba", "aba", false);
    }
}
