//! `db schema check`: the schema a service's migrations build, applied to a scratch database,
//! compared with the live database's schema, which is only ever read. Column order never counts;
//! applied migration versions are compared where the service records them.

mod connect;
pub mod diff;
pub mod introspect;
pub mod migrations;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::act::{ActError, Ctx};
use crate::config::ServiceConfig;
use crate::queries::file::Dialect;
use crate::render::{Block, Reply};
use crate::workspace::Workspace;
use diff::Difference;
use introspect::Conn;
use model::{Schema, glob_match};

/// Tables that record migrations; never compared as part of the schema.
const VERSION_TABLES: &[&str] = &["_sqlx_migrations", "schema_migrations"];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("service `{0}` names no database: add `database = \"NAME\"` to [services.{0}]")]
    NoDatabase(String),
    #[error("database `{db}` has no URL for `{env}`: add `{env} = \"...\"` to [databases.{db}]")]
    NoUrl { db: String, env: String },
    #[error("service `{0}` has no migrations directory: add `migrations = \"path/to/migrations\"` to [services.{0}]")]
    NoMigrations(String),
    #[error("{0}")]
    Migrations(#[from] migrations::MigrationsError),
    #[error("{0}")]
    Url(#[from] crate::workspace::UrlError),
    #[error("cannot read the live database `{db}` ({env}): {reason}; nothing was compared")]
    LiveDown { db: String, env: String, reason: String },
    #[error(
        "the live database of `{service}` is on {engine}: set `scratch_url` in [services.{service}.schema] to a server where lazyops may create a temporary database"
    )]
    NoScratch { service: String, engine: &'static str },
    #[error("cannot create the scratch database: {0}")]
    Scratch(String),
    #[error("migration `{file}` failed on the scratch database: {error}")]
    MigrationFailed { file: String, error: String },
    #[error("cannot read the {side} schema: {error}")]
    Introspect { side: &'static str, error: String },
    #[error("the schema check took longer than {0} s and was stopped")]
    Timeout(u64),
    #[error("versions_table `{0}` is not a plain table name")]
    BadVersionsTable(String),
}

/// What was compared and what differs.
#[derive(Debug)]
pub struct Report {
    pub service: String,
    pub env: String,
    pub database: String,
    pub engine: Dialect,
    pub migrations_dir: String,
    pub migrations: usize,
    /// The newest migration file.
    pub latest: String,
    /// Tables the migrations create (within the service's tables).
    pub tables: usize,
    pub differences: BTreeMap<String, Vec<Difference>>,
    pub versions: Versions,
    pub elapsed: Duration,
}

#[derive(Debug, PartialEq)]
pub enum Versions {
    /// `versions_table = "none"`.
    Off,
    /// The live database has no table that records migrations.
    NotRecorded,
    Compared {
        table: String,
        applied: usize,
        /// Migration files the live database has not applied.
        pending: Vec<i64>,
        /// Versions the live database applied that no file has.
        unknown: Vec<String>,
        /// golang-migrate's flag for a migration that failed half-way.
        dirty: bool,
    },
}

impl Report {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
            && !matches!(&self.versions, Versions::Compared { pending, unknown, dirty, .. }
                if !pending.is_empty() || !unknown.is_empty() || *dirty)
    }

    pub fn count(&self) -> usize {
        self.differences.values().map(Vec::len).sum()
    }

    /// One line: the verdict as a release checklist shows it.
    pub fn summary(&self) -> String {
        if self.matches() {
            return format!("schema matches ({})", plural(self.tables, "table"));
        }
        let mut parts = Vec::new();
        if !self.differences.is_empty() {
            parts.push(format!(
                "{} in {}",
                plural(self.count(), "difference"),
                plural(self.differences.len(), "table")
            ));
        }
        if let Versions::Compared { pending, unknown, dirty, .. } = &self.versions {
            if !pending.is_empty() {
                parts.push(format!("{} not applied", plural(pending.len(), "migration")));
            }
            if !unknown.is_empty() {
                parts.push(format!("{} applied that the code does not have", plural(unknown.len(), "migration")));
            }
            if *dirty {
                parts.push("the last migration failed half-way (dirty)".into());
            }
        }
        format!("migrate before releasing: {}", parts.join(", "))
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// The plugin entry: `db schema check <service> <env>` as a reply.
pub async fn run(ctx: &Ctx<'_>, service: &str, env: &str) -> Result<Reply, ActError> {
    let ws = ctx.bot.workspace();
    let report = check(&ws, service, env).await.map_err(|e| ActError::User(e.to_string()))?;
    Ok(reply(&report))
}

/// Builds the expected schema from the migrations and compares it with the live one.
pub async fn check(ws: &Workspace, service: &str, env: &str) -> Result<Report, SchemaError> {
    let svc = ws.config.services.get(service).ok_or_else(|| SchemaError::NoDatabase(service.to_string()))?;
    let secs = svc.schema.timeout_secs.unwrap_or(60);
    tokio::time::timeout(Duration::from_secs(secs), check_inner(ws, service, svc, env))
        .await
        .unwrap_or(Err(SchemaError::Timeout(secs)))
}

async fn check_inner(ws: &Workspace, service: &str, svc: &ServiceConfig, env: &str) -> Result<Report, SchemaError> {
    let started = Instant::now();
    let db = svc.database.clone().ok_or_else(|| SchemaError::NoDatabase(service.to_string()))?;
    let dir = svc.migrations.clone().ok_or_else(|| SchemaError::NoMigrations(service.to_string()))?;
    let files = migrations::load(&ws.path(&dir), svc.schema.files)?;
    let url = ws
        .config
        .databases
        .get(&db)
        .and_then(|urls| urls.get(env))
        .ok_or_else(|| SchemaError::NoUrl { db: db.clone(), env: env.to_string() })?;
    let url = ws.resolve_url(url)?;
    let engine = Dialect::of_url(&url).ok_or_else(|| SchemaError::LiveDown {
        db: db.clone(),
        env: env.to_string(),
        reason: "the URL must start with sqlite:, postgres: or mysql:".into(),
    })?;
    let scratch_url = match (&svc.schema.scratch_url, engine) {
        (_, Dialect::Sqlite) => None,
        (Some(u), _) => Some(ws.resolve_url(u)?),
        (None, e) => return Err(SchemaError::NoScratch { service: service.to_string(), engine: engine_name(e) }),
    };
    // Both sides at once: the scratch database costs most of the time, the live side is a few
    // catalog queries. A live database that is down is the error reported first.
    let (live, expected) = tokio::join!(
        read_live(&url, &db, env, svc, &files),
        build_expected(engine, scratch_url.as_deref(), svc.schema.scratch, &files)
    );
    let (live_schema, versions) = live?;
    let expected = expected?;
    tracing::debug!(service, env, ms = started.elapsed().as_millis() as u64, "schema check compared");
    let keep = |name: &str| in_scope(svc, name);
    let expected = scoped(expected, keep);
    let live_schema = scoped(live_schema, keep);
    Ok(Report {
        service: service.to_string(),
        env: env.to_string(),
        database: db,
        engine,
        migrations_dir: dir,
        migrations: files.len(),
        latest: files.last().map(|m| m.file.clone()).unwrap_or_default(),
        tables: expected.tables.len(),
        differences: diff::diff(&expected, &live_schema),
        versions,
        elapsed: started.elapsed(),
    })
}

/// The live schema and its recorded migration versions, over a read-only connection.
async fn read_live(
    url: &str,
    db: &str,
    env: &str,
    svc: &ServiceConfig,
    files: &[migrations::Migration],
) -> Result<(Schema, Versions), SchemaError> {
    let down = |reason: String| SchemaError::LiveDown { db: db.to_string(), env: env.to_string(), reason };
    let mut live = connect::live(url).await.map_err(down)?;
    let schema = match live.introspect().await {
        Ok(s) => s,
        Err(e) => {
            live.close().await;
            return Err(down(crate::store::redact(&e.to_string())));
        }
    };
    let versions = recorded(&mut live, &schema, svc, files).await;
    live.close().await;
    Ok((schema, versions?))
}

fn engine_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
        Dialect::Mysql => "MariaDB/MySQL",
    }
}

fn in_scope(svc: &ServiceConfig, name: &str) -> bool {
    let owned = svc.schema.tables.is_empty() || svc.schema.tables.iter().any(|p| glob_match(p, name));
    let ignored = svc.schema.ignore.iter().any(|p| glob_match(p, name))
        || VERSION_TABLES.contains(&name)
        || svc.schema.versions_table.as_deref() == Some(name);
    owned && !ignored
}

fn scoped(mut s: Schema, keep: impl Fn(&str) -> bool) -> Schema {
    s.tables.retain(|name, _| keep(name));
    s
}

/// Applies every migration to a fresh scratch database and reads the result back; the
/// scratch database is dropped whatever happens.
async fn build_expected(
    engine: Dialect,
    server: Option<&str>,
    kind: crate::config::ScratchKind,
    files: &[migrations::Migration],
) -> Result<Schema, SchemaError> {
    let started = Instant::now();
    let (scratch, mut conn) = connect::scratch(engine, server, kind).await.map_err(SchemaError::Scratch)?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "scratch database created");
    let mut result = Ok(());
    for m in files {
        if let Err(e) = conn.execute_script(&m.sql).await {
            result = Err(SchemaError::MigrationFailed { file: m.file.clone(), error: e.to_string() });
            break;
        }
    }
    let schema = match result {
        Ok(()) => {
            conn.introspect().await.map_err(|e| SchemaError::Introspect { side: "scratch", error: e.to_string() })
        }
        Err(e) => Err(e),
    };
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "scratch schema built and read");
    scratch.finish(conn).await;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "scratch database dropped");
    schema
}

/// The versions the live database says it applied, compared with the files.
async fn recorded(
    live: &mut Conn,
    schema: &Schema,
    svc: &ServiceConfig,
    files: &[migrations::Migration],
) -> Result<Versions, SchemaError> {
    let table = match svc.schema.versions_table.as_deref() {
        Some("none") => return Ok(Versions::Off),
        Some(t) => {
            if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || t.is_empty() {
                return Err(SchemaError::BadVersionsTable(t.to_string()));
            }
            t.to_string()
        }
        None => match VERSION_TABLES.iter().find(|t| schema.tables.contains_key(**t)) {
            Some(t) => t.to_string(),
            None => return Ok(Versions::NotRecorded),
        },
    };
    let Some(t) = schema.tables.get(&table) else { return Ok(Versions::NotRecorded) };
    let read_err = |e: sqlx::Error| SchemaError::Introspect { side: "live", error: e.to_string() };
    let applied =
        live.recorded_versions(&table, "version", t.columns.contains_key("success")).await.map_err(read_err)?;
    let on_disk: BTreeSet<i64> = files.iter().map(|m| m.version).collect();
    let (applied_set, dirty): (BTreeSet<String>, bool) = if t.columns.contains_key("dirty") {
        // golang-migrate keeps one row: the version the database is at.
        let at = applied.iter().filter_map(|v| v.parse::<i64>().ok()).max().unwrap_or(0);
        let dirty = live.recorded_versions(&table, "dirty", false).await.map_err(read_err)?;
        let dirty = dirty.iter().any(|d| matches!(d.as_str(), "1" | "t" | "true"));
        let mut set: BTreeSet<String> = on_disk.iter().filter(|v| **v <= at).map(i64::to_string).collect();
        if at > 0 && !on_disk.contains(&at) {
            set.insert(at.to_string());
        }
        (set, dirty)
    } else {
        (applied.iter().map(|v| v.parse::<i64>().map_or_else(|_| v.clone(), |n| n.to_string())).collect(), false)
    };
    let pending = on_disk.iter().filter(|v| !applied_set.contains(&v.to_string())).copied().collect();
    let unknown =
        applied_set.iter().filter(|v| v.parse::<i64>().map_or(true, |n| !on_disk.contains(&n))).cloned().collect();
    Ok(Versions::Compared { table, applied: applied_set.len(), pending, unknown, dirty })
}

/// The reply: the verdict, what was compared, and the differences grouped by table.
pub fn reply(r: &Report) -> Reply {
    let mut fields = vec![
        ("database".to_string(), format!("{} ({}, {})", r.database, r.env, engine_name(r.engine))),
        (
            "migrations".to_string(),
            format!("{} in {} (latest {})", plural(r.migrations, "file"), r.migrations_dir, r.latest),
        ),
    ];
    let versions = match &r.versions {
        Versions::Off => "not compared (versions_table = \"none\")".to_string(),
        Versions::NotRecorded => "the live database records no applied migrations".to_string(),
        Versions::Compared { table, applied, pending, unknown, dirty } => {
            let mut s = format!("{applied} recorded in {table}");
            if !pending.is_empty() {
                let list: Vec<String> = pending.iter().map(i64::to_string).collect();
                s.push_str(&format!("; not applied: {}", list.join(", ")));
            }
            if !unknown.is_empty() {
                s.push_str(&format!("; unknown to the code: {}", unknown.join(", ")));
            }
            if *dirty {
                s.push_str("; dirty");
            }
            s
        }
    };
    fields.push(("applied".to_string(), versions));
    fields.push(("took".to_string(), format!("{} ms", r.elapsed.as_millis())));
    let mut reply = Reply::done(format!("{} ({}): {}", r.service, r.env, r.summary())).with(Block::Fields { fields });
    if !r.differences.is_empty() {
        let mut rows = Vec::new();
        for (table, diffs) in &r.differences {
            for (i, d) in diffs.iter().enumerate() {
                let name = if i == 0 { Value::from(table.as_str()) } else { Value::from("") };
                rows.push(vec![name, Value::from(d.to_string())]);
            }
        }
        reply = reply.with(Block::Table {
            columns: vec!["table".into(), "difference".into()],
            rows: rows.into(),
            note: None,
        });
    }
    if !r.matches() {
        reply = reply.text(format!(
            "Apply the migrations in {} to {} ({}) before releasing, then run `db schema check {} {}` again.",
            r.migrations_dir, r.database, r.env, r.service, r.env
        ));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drift_reply_groups_differences_by_table_and_says_what_to_do() {
        let mut differences = BTreeMap::new();
        differences.insert(
            "users".to_string(),
            vec![
                Difference::MissingColumn { column: "last_login_at".into(), expected: "TIMESTAMP NULL".into() },
                Difference::MissingIndex("index `users_by_status` (status)".into()),
            ],
        );
        differences.insert("old_things".to_string(), vec![Difference::ExtraTable]);
        let report = Report {
            service: "users".into(),
            env: "prod".into(),
            database: "users".into(),
            engine: Dialect::Postgres,
            migrations_dir: "migrations/users".into(),
            migrations: 2,
            latest: "0002_last_login.sql".into(),
            tables: 1,
            differences,
            versions: Versions::Compared {
                table: "_sqlx_migrations".into(),
                applied: 1,
                pending: vec![2],
                unknown: vec![],
                dirty: false,
            },
            elapsed: Duration::from_millis(412),
        };
        assert!(!report.matches());
        insta::assert_snapshot!(crate::render::terminal::render(&reply(&report), false));
    }
}
