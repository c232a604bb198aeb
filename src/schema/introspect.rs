//! Reading a schema out of a live connection: `sqlite_schema` + pragmas on SQLite,
//! `pg_catalog` on PostgreSQL, `information_schema` on MariaDB/MySQL. One query per kind of
//! object for the whole schema, never one per table, so 50 tables cost the same few round trips
//! as one.

use std::collections::BTreeMap;

use sqlx::{Connection, MySqlConnection, PgConnection, SqliteConnection};

use super::model::{Column, ForeignKey, Index, Schema, Table};

/// A connection to one of the three engines, scratch or live.
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

/// PostgreSQL lists are aggregated with this separator: expressions may hold commas.
const SEP: char = '\u{1f}';

fn list(s: &str) -> Vec<String> {
    if s.is_empty() { Vec::new() } else { s.split(SEP).map(str::to_string).collect() }
}

#[derive(Default)]
struct Builder {
    tables: BTreeMap<String, Table>,
}

impl Builder {
    fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_string()).or_default()
    }

    fn column(&mut self, table: &str, name: &str, ty: String, nullable: bool, default: Option<String>) {
        self.table(table).columns.insert(name.to_string(), Column { ty, nullable, default });
    }

    /// Constraints and indexes of tables the column query did not see (views, other schemas)
    /// are dropped.
    fn finish(self) -> Schema {
        Schema { tables: self.tables }
    }
}

fn fk_action(code: &str) -> String {
    match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        other => other,
    }
    .to_string()
}

impl Conn {
    pub async fn introspect(&mut self) -> Result<Schema, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => sqlite(c).await,
            Conn::Postgres(c) => postgres(c).await,
            Conn::Mysql(c) => mysql(c).await,
        }
    }

    /// Runs one migration file: several statements, as the file has them.
    pub async fn execute_script(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Conn::Sqlite(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
            Conn::Postgres(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
            Conn::Mysql(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(drop),
        }
    }

    /// The migration versions recorded in `table` (an identifier checked by the caller).
    /// `single_row` is golang-migrate's table: one row holding the current version.
    pub async fn recorded_versions(
        &mut self,
        table: &str,
        column: &str,
        success: bool,
    ) -> Result<Vec<String>, sqlx::Error> {
        let filter = if success { " WHERE success" } else { "" };
        let sql = match self {
            Conn::Sqlite(_) => format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"{filter}"),
            Conn::Postgres(_) => format!("SELECT \"{column}\"::text FROM \"{table}\"{filter}"),
            Conn::Mysql(_) => format!("SELECT CAST(`{column}` AS CHAR) FROM `{table}`{filter}"),
        };
        let sql = sqlx::AssertSqlSafe(sql);
        let rows: Vec<(Option<String>,)> = match self {
            Conn::Sqlite(c) => sqlx::query_as(sql).fetch_all(&mut *c).await?,
            Conn::Postgres(c) => sqlx::query_as(sql).fetch_all(&mut *c).await?,
            Conn::Mysql(c) => sqlx::query_as(sql).fetch_all(&mut *c).await?,
        };
        Ok(rows.into_iter().filter_map(|r| r.0).map(|v| v.trim().to_string()).collect())
    }

    pub async fn close(self) {
        let _ = match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres(c) => c.close().await,
            Conn::Mysql(c) => c.close().await,
        };
    }
}

const SQLITE_COLUMNS: &str = "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk \
     FROM sqlite_schema m, pragma_table_xinfo(m.name) p \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.hidden IN (0, 2, 3) ORDER BY m.name, p.cid";
const SQLITE_INDEXES: &str = "SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, \
     COALESCE(ii.name, '<expression>'), COALESCE((SELECT s.sql FROM sqlite_schema s WHERE s.type = 'index' AND s.name = il.name), '') \
     FROM sqlite_schema m, pragma_index_list(m.name) il, pragma_index_xinfo(il.name) ii \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND ii.key = 1 ORDER BY m.name, il.name, ii.seqno";
const SQLITE_FKS: &str = "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete \
     FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, f.id, f.seq";

type SqliteColumn = (String, String, String, i64, Option<String>, i64);
type SqliteIndex = (String, String, i64, String, i64, String, String);
type SqliteFk = (String, i64, String, String, Option<String>, String, String);

async fn sqlite(c: &mut SqliteConnection) -> Result<Schema, sqlx::Error> {
    let columns: Vec<SqliteColumn> = sqlx::query_as(SQLITE_COLUMNS).fetch_all(&mut *c).await?;
    let indexes: Vec<SqliteIndex> = sqlx::query_as(SQLITE_INDEXES).fetch_all(&mut *c).await?;
    let fks: Vec<SqliteFk> = sqlx::query_as(SQLITE_FKS).fetch_all(&mut *c).await?;
    let mut b = Builder::default();
    let mut pks: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (table, name, ty, notnull, default, pk) in columns {
        if pk > 0 {
            pks.entry(table.clone()).or_default().push((pk, name.clone()));
        }
        b.column(&table, &name, ty.trim().to_uppercase(), notnull == 0, default);
    }
    for (table, mut cols) in pks {
        cols.sort();
        b.table(&table).primary_key = cols.into_iter().map(|(_, n)| n).collect();
    }
    for (table, name, unique, origin, partial, column, sql) in indexes {
        let t = b.table(&table);
        match origin.as_str() {
            "pk" => {}
            "u" => t.uniques.entry(name).or_default().push(column),
            _ => {
                let detail = if partial != 0 { where_clause(&sql) } else { String::new() };
                let ix =
                    t.indexes.entry(name).or_insert_with(|| Index { unique: unique != 0, columns: Vec::new(), detail });
                ix.columns.push(column);
            }
        }
    }
    let mut grouped: BTreeMap<(String, i64), ForeignKey> = BTreeMap::new();
    for (table, id, to_table, from, to, on_update, on_delete) in fks {
        let fk = grouped.entry((table, id)).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table: to_table,
            ref_columns: Vec::new(),
            on_update,
            on_delete,
        });
        fk.columns.push(from);
        if let Some(to) = to {
            fk.ref_columns.push(to);
        }
    }
    for ((table, _), fk) in grouped {
        b.table(&table).foreign_keys.push(fk);
    }
    Ok(b.finish())
}

/// The `WHERE …` of a partial index's SQL, squeezed to single spaces.
fn where_clause(sql: &str) -> String {
    let squeezed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match squeezed.to_ascii_lowercase().rfind(" where ") {
        Some(at) => format!("where {}", &squeezed[at + 7..]),
        None => String::new(),
    }
}

const PG_COLUMNS: &str = "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
       CASE WHEN a.attidentity = 'a' THEN 'generated always as identity' \
            WHEN a.attidentity = 'd' THEN 'generated by default as identity' \
            WHEN a.attgenerated = 's' THEN 'generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ') stored' \
            ELSE pg_get_expr(d.adbin, d.adrelid) END \
     FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
     ORDER BY 1, a.attnum";
const PG_CONSTRAINTS: &str = "SELECT c.relname::text, con.conname::text, con.contype::text, \
       COALESCE((SELECT string_agg(a.attname::text, chr(31) ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord) \
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num), ''), \
       COALESCE(fc.relname::text, ''), \
       COALESCE((SELECT string_agg(a.attname::text, chr(31) ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord) \
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num), ''), \
       con.confupdtype::text, con.confdeltype::text \
     FROM pg_constraint con \
     JOIN pg_class c ON c.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_class fc ON fc.oid = con.confrelid \
     WHERE n.nspname = current_schema() AND con.contype IN ('p', 'u', 'f') \
     ORDER BY 1, 2";
const PG_INDEXES: &str = "SELECT t.relname::text, i.relname::text, ix.indisunique, \
       COALESCE((SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), chr(31) ORDER BY k) FROM generate_series(1, ix.indnkeyatts) AS k), ''), \
       CASE WHEN am.amname = 'btree' THEN '' ELSE 'using ' || am.amname END \
         || COALESCE(' where ' || pg_get_expr(ix.indpred, ix.indrelid, true), '') \
     FROM pg_index ix \
     JOIN pg_class i ON i.oid = ix.indexrelid \
     JOIN pg_class t ON t.oid = ix.indrelid \
     JOIN pg_namespace n ON n.oid = t.relnamespace \
     JOIN pg_am am ON am.oid = i.relam \
     WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p') \
       AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid \
                       AND con.contype IN ('p', 'u', 'x')) \
     ORDER BY 1, 2";

type PgColumn = (String, String, String, bool, Option<String>);
type PgConstraint = (String, String, String, String, String, String, String, String);
type PgIndex = (String, String, bool, String, String);

async fn postgres(c: &mut PgConnection) -> Result<Schema, sqlx::Error> {
    let columns: Vec<PgColumn> = sqlx::query_as(PG_COLUMNS).fetch_all(&mut *c).await?;
    let constraints: Vec<PgConstraint> = sqlx::query_as(PG_CONSTRAINTS).fetch_all(&mut *c).await?;
    let indexes: Vec<PgIndex> = sqlx::query_as(PG_INDEXES).fetch_all(&mut *c).await?;
    let mut b = Builder::default();
    for (table, name, ty, nullable, default) in columns {
        b.column(&table, &name, ty, nullable, default);
    }
    for (table, name, kind, cols, ref_table, ref_cols, on_update, on_delete) in constraints {
        if !b.tables.contains_key(&table) {
            continue;
        }
        let t = b.table(&table);
        match kind.as_str() {
            "p" => t.primary_key = list(&cols),
            "u" => {
                t.uniques.insert(name, list(&cols));
            }
            _ => t.foreign_keys.push(ForeignKey {
                columns: list(&cols),
                table: ref_table,
                ref_columns: list(&ref_cols),
                on_update: fk_action(&on_update),
                on_delete: fk_action(&on_delete),
            }),
        }
    }
    for (table, name, unique, cols, detail) in indexes {
        if let Some(t) = b.tables.get_mut(&table) {
            t.indexes.insert(name, Index { unique, columns: list(&cols), detail });
        }
    }
    for t in b.tables.values_mut() {
        t.foreign_keys.sort();
    }
    Ok(b.finish())
}

const MY_COLUMNS: &str = "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA \
     FROM information_schema.COLUMNS c \
     JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' \
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";
const MY_INDEXES: &str = "SELECT TABLE_NAME, INDEX_NAME, CAST(NON_UNIQUE AS SIGNED), COALESCE(COLUMN_NAME, '<expression>'), INDEX_TYPE \
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
     ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";
const MY_FKS: &str = "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, \
       r.UPDATE_RULE, r.DELETE_RULE \
     FROM information_schema.KEY_COLUMN_USAGE k \
     JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
       ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
     WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
     ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

type MyColumn = (String, String, String, String, Option<String>, String);
type MyIndex = (String, String, i64, String, String);
type MyFk = (String, String, String, String, String, String, String);

async fn mysql(c: &mut MySqlConnection) -> Result<Schema, sqlx::Error> {
    let columns: Vec<MyColumn> = sqlx::query_as(MY_COLUMNS).fetch_all(&mut *c).await?;
    let indexes: Vec<MyIndex> = sqlx::query_as(MY_INDEXES).fetch_all(&mut *c).await?;
    let fks: Vec<MyFk> = sqlx::query_as(MY_FKS).fetch_all(&mut *c).await?;
    let mut b = Builder::default();
    for (table, name, ty, nullable, default, extra) in columns {
        let ty = if extra.trim().is_empty() { ty } else { format!("{ty} {}", extra.trim().to_lowercase()) };
        // MariaDB spells "no default" of a nullable column as the text NULL.
        let default = default.filter(|d| d != "NULL");
        b.column(&table, &name, ty, nullable == "YES", default);
    }
    // InnoDB creates an index for a foreign key that has none; it comes and goes with the key,
    // which is reported already.
    let fk_names: std::collections::BTreeSet<(String, String)> =
        fks.iter().map(|(table, name, ..)| (table.clone(), name.clone())).collect();
    for (table, name, non_unique, column, kind) in indexes {
        let Some(t) = b.tables.get_mut(&table) else { continue };
        if fk_names.contains(&(table.clone(), name.clone())) {
            continue;
        }
        if name == "PRIMARY" {
            t.primary_key.push(column);
        } else if non_unique == 0 && kind == "BTREE" {
            t.uniques.entry(name).or_default().push(column);
        } else {
            let detail = if kind == "BTREE" { String::new() } else { format!("using {}", kind.to_lowercase()) };
            let ix =
                t.indexes.entry(name).or_insert_with(|| Index { unique: non_unique == 0, columns: Vec::new(), detail });
            ix.columns.push(column);
        }
    }
    let mut grouped: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
    for (table, name, column, ref_table, ref_column, on_update, on_delete) in fks {
        let fk = grouped.entry((table, name)).or_insert_with(|| ForeignKey {
            columns: Vec::new(),
            table: ref_table,
            ref_columns: Vec::new(),
            on_update,
            on_delete,
        });
        fk.columns.push(column);
        fk.ref_columns.push(ref_column);
    }
    for ((table, _), fk) in grouped {
        if let Some(t) = b.tables.get_mut(&table) {
            t.foreign_keys.push(fk);
        }
    }
    for t in b.tables.values_mut() {
        t.foreign_keys.sort();
    }
    Ok(b.finish())
}
