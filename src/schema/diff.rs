//! The differences between the schema the migrations build and the live one, grouped by
//! table. Both sides come from the same engine, so types and defaults are compared as the
//! engine spells them.

use std::collections::BTreeMap;

use super::model::{ForeignKey, Schema, Table};

/// One difference, worded from the migrations' point of view: "missing" means the live
/// database lacks what the migrations create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    MissingTable { columns: usize },
    ExtraTable,
    MissingColumn { column: String, expected: String },
    ExtraColumn { column: String, live: String },
    Type { column: String, expected: String, live: String },
    Nullability { column: String, expected_nullable: bool },
    Default { column: String, expected: Option<String>, live: Option<String> },
    PrimaryKey { expected: Vec<String>, live: Vec<String> },
    MissingIndex(String),
    ExtraIndex(String),
    MissingUnique(Vec<String>),
    ExtraUnique(Vec<String>),
    MissingForeignKey(String),
    ExtraForeignKey(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Difference as D;
        let opt = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
        match self {
            D::MissingTable { columns } => write!(f, "table missing from the live database ({columns} columns)"),
            D::ExtraTable => write!(f, "table in the live database that no migration creates"),
            D::MissingColumn { column, expected } => write!(f, "column `{column}` missing (expected {expected})"),
            D::ExtraColumn { column, live } => write!(f, "column `{column}` ({live}) is not in the migrations"),
            D::Type { column, expected, live } => {
                write!(f, "column `{column}` type: expected {expected}, live {live}")
            }
            D::Nullability { column, expected_nullable } => {
                let (want, have) = if *expected_nullable { ("NULL", "NOT NULL") } else { ("NOT NULL", "NULL") };
                write!(f, "column `{column}`: expected {want}, live {have}")
            }
            D::Default { column, expected, live } => {
                write!(f, "column `{column}` default: expected {}, live {}", opt(expected), opt(live))
            }
            D::PrimaryKey { expected, live } => {
                write!(f, "primary key: expected ({}), live ({})", expected.join(", "), live.join(", "))
            }
            D::MissingIndex(i) => write!(f, "{i} missing"),
            D::ExtraIndex(i) => write!(f, "{i} is not in the migrations"),
            D::MissingUnique(c) => write!(f, "unique constraint ({}) missing", c.join(", ")),
            D::ExtraUnique(c) => write!(f, "unique constraint ({}) is not in the migrations", c.join(", ")),
            D::MissingForeignKey(k) => write!(f, "{k} missing"),
            D::ExtraForeignKey(k) => write!(f, "{k} is not in the migrations"),
        }
    }
}

/// Differences per table, tables in name order; empty when the schemas match.
pub fn diff(expected: &Schema, live: &Schema) -> BTreeMap<String, Vec<Difference>> {
    let mut out = BTreeMap::new();
    for (name, want) in &expected.tables {
        let changes = match live.tables.get(name) {
            None => vec![Difference::MissingTable { columns: want.columns.len() }],
            Some(have) => diff_table(want, have),
        };
        if !changes.is_empty() {
            out.insert(name.clone(), changes);
        }
    }
    for name in live.tables.keys().filter(|n| !expected.tables.contains_key(*n)) {
        out.insert(name.clone(), vec![Difference::ExtraTable]);
    }
    out
}

fn diff_table(want: &Table, have: &Table) -> Vec<Difference> {
    use Difference as D;
    let mut out = Vec::new();
    for (name, w) in &want.columns {
        let Some(h) = have.columns.get(name) else {
            out.push(D::MissingColumn { column: name.clone(), expected: w.describe() });
            continue;
        };
        if w.ty != h.ty {
            out.push(D::Type { column: name.clone(), expected: w.ty.clone(), live: h.ty.clone() });
        }
        if w.nullable != h.nullable {
            out.push(D::Nullability { column: name.clone(), expected_nullable: w.nullable });
        }
        if w.default != h.default {
            out.push(D::Default { column: name.clone(), expected: w.default.clone(), live: h.default.clone() });
        }
    }
    for (name, h) in have.columns.iter().filter(|(n, _)| !want.columns.contains_key(*n)) {
        out.push(D::ExtraColumn { column: name.clone(), live: h.describe() });
    }
    if want.primary_key != have.primary_key {
        out.push(D::PrimaryKey { expected: want.primary_key.clone(), live: have.primary_key.clone() });
    }
    let (missing, extra) = unmatched(&want.indexes, &have.indexes);
    out.extend(missing.into_iter().map(|(n, i)| D::MissingIndex(i.describe(n))));
    out.extend(extra.into_iter().map(|(n, i)| D::ExtraIndex(i.describe(n))));
    let (missing, extra) = unmatched(&want.uniques, &have.uniques);
    out.extend(missing.into_iter().map(|(_, c)| D::MissingUnique(c.clone())));
    out.extend(extra.into_iter().map(|(_, c)| D::ExtraUnique(c.clone())));
    let (missing, extra) = unmatched_list(&want.foreign_keys, &have.foreign_keys);
    out.extend(missing.into_iter().map(|k| D::MissingForeignKey(k.describe())));
    out.extend(extra.into_iter().map(|k| D::ExtraForeignKey(k.describe())));
    out
}

/// Entries matched by value, not name: an index the engine named differently is the same
/// index. Each live entry matches at most one expected entry.
/// Named entries: (name, entry).
type Named<'a, T> = Vec<(&'a String, &'a T)>;

fn unmatched<'a, T: PartialEq>(
    want: &'a BTreeMap<String, T>,
    have: &'a BTreeMap<String, T>,
) -> (Named<'a, T>, Named<'a, T>) {
    let mut left: Vec<(&String, &T)> = have.iter().collect();
    let mut missing = Vec::new();
    for (name, w) in want {
        // Prefer the entry of the same name, so a renamed-and-changed index reads naturally.
        let at =
            left.iter().position(|(n, h)| *n == name && *h == w).or_else(|| left.iter().position(|(_, h)| *h == w));
        match at {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push((name, w)),
        }
    }
    (missing, left)
}

fn unmatched_list<'a>(want: &'a [ForeignKey], have: &'a [ForeignKey]) -> (Vec<&'a ForeignKey>, Vec<&'a ForeignKey>) {
    let mut left: Vec<&ForeignKey> = have.iter().collect();
    let mut missing = Vec::new();
    for w in want {
        match left.iter().position(|h| *h == w) {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push(w),
        }
    }
    (missing, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{Column, Index};

    fn index(unique: bool, cols: &[&str]) -> Index {
        Index { unique, columns: cols.iter().map(|c| c.to_string()).collect(), detail: String::new() }
    }

    fn col(ty: &str, nullable: bool) -> Column {
        Column { ty: ty.into(), nullable, default: None }
    }

    fn table(cols: &[(&str, Column)]) -> Table {
        Table { columns: cols.iter().map(|(n, c)| (n.to_string(), c.clone())).collect(), ..Table::default() }
    }

    fn check(want: Schema, have: Schema, expected: &[&str]) {
        let got: Vec<String> = diff(&want, &have)
            .into_iter()
            .flat_map(|(t, ds)| ds.into_iter().map(move |d| format!("{t}: {d}")))
            .collect();
        assert_eq!(got, expected);
    }

    fn schema(tables: Vec<(&str, Table)>) -> Schema {
        Schema { tables: tables.into_iter().map(|(n, t)| (n.to_string(), t)).collect() }
    }

    #[test]
    fn column_order_is_not_a_difference() {
        let a = schema(vec![("t", table(&[("a", col("INT", false)), ("b", col("TEXT", true))]))]);
        let b = schema(vec![("t", table(&[("b", col("TEXT", true)), ("a", col("INT", false))]))]);
        check(a, b, &[]);
    }

    #[test]
    fn every_kind_of_difference_is_reported_per_table() {
        let mut want = table(&[("id", col("INT", false)), ("email", col("TEXT", false)), ("n", col("INT", true))]);
        want.primary_key = vec!["id".into()];
        want.indexes.insert("by_email".into(), index(false, &["email"]));
        want.uniques.insert("u1".into(), vec!["email".into()]);
        want.foreign_keys.push(ForeignKey {
            columns: vec!["n".into()],
            table: "other".into(),
            ref_columns: vec!["id".into()],
            on_update: "NO ACTION".into(),
            on_delete: "CASCADE".into(),
        });
        let mut have = table(&[("id", col("BIGINT", false)), ("email", col("TEXT", true)), ("x", col("INT", true))]);
        have.columns.get_mut("email").unwrap().default = Some("''".into());
        have.indexes.insert("by_x".into(), index(true, &["x"]));
        check(
            schema(vec![("t", want), ("gone", table(&[]))]),
            schema(vec![("t", have), ("old", table(&[]))]),
            &[
                "gone: table missing from the live database (0 columns)",
                "old: table in the live database that no migration creates",
                "t: column `email`: expected NOT NULL, live NULL",
                "t: column `email` default: expected none, live ''",
                "t: column `id` type: expected INT, live BIGINT",
                "t: column `n` missing (expected INT NULL)",
                "t: column `x` (INT NULL) is not in the migrations",
                "t: primary key: expected (id), live ()",
                "t: index `by_email` (email) missing",
                "t: unique index `by_x` (x) is not in the migrations",
                "t: unique constraint (email) missing",
                "t: foreign key (n) → other(id) on delete cascade missing",
            ],
        );
    }

    #[test]
    fn an_index_with_another_name_but_the_same_columns_matches() {
        let mut a = table(&[]);
        a.indexes.insert("sqlite_autoindex_t_1".into(), index(true, &["email"]));
        let mut b = table(&[]);
        b.indexes.insert("t_email_key".into(), index(true, &["email"]));
        check(schema(vec![("t", a)]), schema(vec![("t", b)]), &[]);
    }
}
