//! The workspace: a config file and the query, intent, prompt and manifest files beside it,
//! loaded and checked as one. Also the built-in demo workspace, materialised under
//! `./.lazyops/` on first use and reused after that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Named, TemplateSig};
use crate::config::{Config, Problem, line_of};
use crate::manifests::template::Template;
use crate::queries::file::{Dialect, QueryFile};
use crate::understand::intent::{self, Intent, Model};
use std::sync::OnceLock;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Where the built-in demo lands, relative to the working directory.
pub const DEMO_DIR: &str = ".lazyops";

#[derive(Debug)]
pub struct Workspace {
    /// The directory of the config file; relative paths start here.
    pub root: PathBuf,
    pub config_path: PathBuf,
    pub config: Config,
    /// The raw config text, so later checks can point at lines.
    pub config_text: String,
    pub catalog: Catalog,
    /// Manifest templates by name; their signatures are also in `catalog.templates`.
    pub manifests: BTreeMap<String, Template>,
    pub intents: Vec<Intent>,
    /// The LLM tier's prompts (`prompts/`) and tools, reloaded with everything else.
    pub llm: crate::understand::llm::Setup,
    /// Trained on first use: typed commands never wait for it.
    model: OnceLock<Model>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("config file `{0}` does not exist")]
    Missing(PathBuf),
    #[error("cannot write the demo workspace to `{path}`: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in the workspace:\n{}", .0.len(), list(.0))]
    Problems(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// Which config to use: `--config`, else `LAZYOPS_CONFIG`, else `./lazyops.toml`, else the
/// built-in demo (materialised under `./.lazyops/`).
pub async fn locate(flag: Option<&Path>) -> Result<PathBuf, WorkspaceError> {
    let explicit = flag.map(Path::to_path_buf).or_else(|| std::env::var_os("LAZYOPS_CONFIG").map(PathBuf::from));
    if let Some(path) = explicit {
        return if path.is_file() { Ok(path) } else { Err(WorkspaceError::Missing(path)) };
    }
    let local = PathBuf::from("lazyops.toml");
    if local.is_file() {
        return Ok(local);
    }
    let dir = PathBuf::from(DEMO_DIR);
    materialise(&dir).await?;
    Ok(dir.join("lazyops.toml"))
}

/// A fingerprint of the embedded files, so start-up can tell the demo is already in place.
fn fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (path, text) in embedded::FILES {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.update(crate::demo::DATA_VERSION.to_le_bytes());
    hex::encode(h.finalize())
}

/// Writes the demo workspace into `dir` unless this very version is already there.
pub async fn materialise(dir: &Path) -> Result<(), WorkspaceError> {
    let stamp = dir.join(".demo-version");
    let want = fingerprint();
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have.trim() == want) {
        return Ok(());
    }
    write_demo(dir, true).await?;
    std::fs::write(&stamp, &want).map_err(|source| WorkspaceError::Write { path: stamp, source })
}

/// Writes the demo files and data into `dir`. With `overwrite` false, existing files are kept
/// (`lazyops init` never clobbers a team's edits).
pub async fn write_demo(dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, WorkspaceError> {
    let mut written = Vec::new();
    for (rel, text) in embedded::FILES {
        let path = dir.join(rel);
        if !overwrite && path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| WorkspaceError::Write { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&path, text).map_err(|source| WorkspaceError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    let data = crate::demo::create_databases(&dir.join("demo"), overwrite)
        .await
        .map_err(|e| WorkspaceError::Write { path: dir.join("demo"), source: std::io::Error::other(e) })?;
    written.extend(data);
    match crate::demo::create_release_repo(&dir.join("demo/releases"), overwrite, time::OffsetDateTime::now_utc()) {
        Ok(repo) => written.extend(repo),
        // The rest of the demo works without git; `deploy version` explains what is missing.
        Err(e) => tracing::warn!(error = %e, "demo release repository not created"),
    }
    Ok(written)
}

impl Workspace {
    /// Loads and checks everything; every problem found is reported, not just the first.
    pub fn load(config_path: &Path) -> Result<Workspace, WorkspaceError> {
        let text =
            std::fs::read_to_string(config_path).map_err(|_| WorkspaceError::Missing(config_path.to_path_buf()))?;
        let config = Config::parse(&text, config_path).map_err(|p| WorkspaceError::Problems(vec![p]))?;
        let root = config_path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
        let mut problems = check_config(&config, &text, config_path);
        let queries = load_queries(&root.join(&config.bot.queries_dir), &config, &mut problems);
        let manifests = load_manifests(&root.join(&config.bot.manifests_dir), &config, &mut problems);
        let catalog = catalog_of(&config, queries, manifests.values());
        let (intents, intent_problems) = intent::load_dir(&root.join(&config.bot.intents_dir));
        problems.extend(intent_problems);
        let llm = crate::understand::llm::Setup::load(&root.join(&config.bot.prompts_dir), &config.llm, &mut problems);
        if !problems.is_empty() {
            return Err(WorkspaceError::Problems(problems));
        }
        Ok(Workspace {
            root,
            config_path: config_path.to_path_buf(),
            config,
            config_text: text,
            catalog,
            manifests,
            intents,
            llm,
            model: OnceLock::new(),
        })
    }

    /// The local intent model, trained from the intents and the queries' examples on first use.
    pub fn model(&self) -> &Model {
        self.lazy_model().get()
    }

    /// The model without training it yet: trained by the first message that needs it.
    pub fn lazy_model(&self) -> intent::LazyModel<'_> {
        intent::LazyModel { cell: &self.model, intents: &self.intents, catalog: &self.catalog }
    }

    /// A path from config, relative to the config file.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// The semantic checks serde cannot do: names that must exist, aliases that must be unique.
fn check_config(config: &Config, text: &str, file: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |needle: &str, msg: String| problems.push(Problem::new(file, line_of(text, needle), msg));
    if config.envs.is_empty() {
        problem("[envs", "no environments: add at least one `[envs.NAME]` table".into());
    }
    let default = config.default_env();
    if !config.envs.is_empty() && !config.envs.contains_key(&default) {
        problem("default_env", format!("default_env `{default}` is not one of the `[envs]`"));
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (kind, names) in [
        ("environment", config.envs.iter().map(|(n, e)| (n, &e.aliases)).collect::<Vec<_>>()),
        ("service", config.services.iter().map(|(n, s)| (n, &s.aliases)).collect::<Vec<_>>()),
    ] {
        seen.clear();
        for (name, aliases) in names {
            if !crate::queries::file::is_name(name) {
                problem(
                    &format!("{kind}s.{name}"),
                    format!("{kind} name `{name}` must be lower-case letters, digits and dashes"),
                );
            }
            for a in std::iter::once(name).chain(aliases.iter()) {
                let key = a.to_lowercase();
                if let Some(other) = seen.insert(key.clone(), name.clone())
                    && other != *name
                {
                    problem(&format!("\"{a}\""), format!("{kind} alias `{a}` is used by both `{other}` and `{name}`"));
                }
            }
        }
    }
    for (db, urls) in &config.databases {
        for (env, url) in urls {
            if !config.envs.contains_key(env) {
                problem(
                    &format!("[databases.{db}]"),
                    format!("database `{db}` names environment `{env}`, which is not in `[envs]`"),
                );
            }
            let known = url.starts_with("env:") || Dialect::of_url(url).is_some();
            if !known {
                problem(
                    &format!("[databases.{db}]"),
                    format!("database `{db}` ({env}): URL must start with sqlite:, postgres:, mysql: or env:NAME"),
                );
            }
        }
    }
    for (name, svc) in &config.services {
        if let Some(db) = &svc.database
            && !config.databases.contains_key(db)
        {
            problem(
                &format!("[services.{name}]"),
                format!("service `{name}` names database `{db}`, which is not in `[databases]`"),
            );
        }
    }
    for (name, svc) in &config.services {
        for env in svc.version.keys().filter(|e| !config.envs.contains_key(*e)) {
            problem(
                &format!("[services.{name}.version.{env}]"),
                format!("service `{name}` has a version source for `{env}`, which is not in `[envs]`"),
            );
        }
        for item in &svc.checklist {
            let at = format!("\"{}\"", item.name);
            use crate::config::CheckKind as K;
            let missing = match item.check {
                K::Ci if item.repo.is_none() => Some("`repo = \"owner/name\"`"),
                K::Http if item.url.is_none() => Some("`url`"),
                _ => None,
            };
            if let Some(field) = missing {
                problem(&at, format!("checklist item `{}` of service `{name}` needs {field}", item.name));
            }
            if let Some(env) = item.env.as_ref().filter(|e| !config.envs.contains_key(*e)) {
                problem(
                    &at,
                    format!("checklist item `{}` names environment `{env}`, which is not in `[envs]`", item.name),
                );
            }
        }
    }
    for (name, suite) in &config.suites {
        if suite.command.is_empty() && suite.http.is_none() {
            problem(
                &format!("[suites.{name}]"),
                format!("suite `{name}` needs a `command` (argv) or an `http` trigger"),
            );
        }
        if suite.max_concurrent == Some(0) {
            problem(&format!("[suites.{name}]"), format!("suite `{name}`: max_concurrent must be at least 1"));
        }
    }
    let plugins = crate::spec::plugin_names();
    for (team, t) in &config.teams {
        let at = format!("[teams.{team}]");
        for p in &t.plugins {
            if !plugins.contains(&p.as_str()) || p == "core" {
                let names: Vec<&str> = plugins.iter().copied().filter(|p| *p != "core").collect();
                problem(&at, format!("team `{team}` enables unknown plugin `{p}`; plugins are {}", names.join(", ")));
            }
        }
        for m in t.members.iter().chain(t.roles.values().flat_map(|r| r.members.iter())) {
            if let Err(e) = crate::message::Identity::parse_pattern(m) {
                problem(&at, format!("team `{team}`: {e}"));
            }
        }
        for sub in &t.subreddits {
            let ok = (2..=21).contains(&sub.len()) && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                problem(&at, format!("team `{team}`: subreddit `{sub}` must be 2 to 21 letters, digits or _"));
            }
        }
        for p in crate::decide::approval::problems(team, t) {
            problem(&at, p);
        }
        let patterns = t.allow.iter().chain(&t.confirm).chain(t.roles.values().flat_map(|r| r.allow.iter()));
        for pat in patterns {
            if let Err(e) = crate::decide::policy::Pattern::parse(pat) {
                problem(&at, format!("team `{team}`: {e}"));
            }
        }
    }
    problems
}

fn load_queries(dir: &Path, config: &Config, problems: &mut Vec<Problem>) -> BTreeMap<String, QueryFile> {
    let mut out: BTreeMap<String, QueryFile> = BTreeMap::new();
    let Some(paths) = files_in(dir, &["sql"]) else {
        if dir.exists() || config.bot.queries_dir != "queries" {
            problems.push(Problem::new(dir, None, "queries_dir cannot be read"));
        }
        return out;
    };
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(Problem::new(&path, None, "cannot be read as UTF-8 text"));
            continue;
        };
        match QueryFile::parse(&text, &path) {
            Ok(q) => {
                if !config.databases.contains_key(&q.database) {
                    problems.push(Problem::new(
                        &path,
                        line_of(&text, "-- database:"),
                        format!("database `{}` is not in the config's `[databases]`", q.database),
                    ));
                }
                let dialects = query_dialects(config, &q.database);
                // One report per problem, naming the dialects it was found in.
                let mut found: Vec<(usize, String, Vec<&str>)> = Vec::new();
                for d in dialects {
                    if let Err(e) = crate::queries::safety::check(&q, d, config.bot.functions()) {
                        let line = e.line().map_or(q.body_line(d), |l| q.body_line(d) + l - 1);
                        let message = match e {
                            crate::queries::safety::SafetyError::Parse { message, .. } => {
                                format!("SQL does not parse: {message}")
                            }
                            other => other.to_string(),
                        };
                        match found.iter_mut().find(|(l, m, _)| *l == line && *m == message) {
                            Some((_, _, ds)) => ds.push(dialect_name(d)),
                            None => found.push((line, message, vec![dialect_name(d)])),
                        }
                    }
                }
                for (line, message, ds) in found {
                    problems.push(Problem::new(&path, Some(line), format!("{message} ({})", ds.join(", "))));
                }
                if let Some(first) = out.get(&q.name) {
                    problems.push(Problem::new(
                        &path,
                        Some(1),
                        format!("query name `{}` is also used by {}", q.name, first.path.display()),
                    ));
                    continue;
                }
                out.insert(q.name.clone(), q);
            }
            Err(ps) => problems.extend(ps),
        }
    }
    out
}

/// Manifest templates (`*.yaml`, `*.yml`); a missing default directory just means none.
fn load_manifests(dir: &Path, config: &Config, problems: &mut Vec<Problem>) -> BTreeMap<String, Template> {
    let mut out: BTreeMap<String, Template> = BTreeMap::new();
    let Some(paths) = files_in(dir, &["yaml", "yml"]) else {
        if dir.exists() || config.bot.manifests_dir != "manifests" {
            problems.push(Problem::new(dir, None, "manifests_dir cannot be read"));
        }
        return out;
    };
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(Problem::new(&path, None, "cannot be read as UTF-8 text"));
            continue;
        };
        match Template::parse(&text, &path) {
            Ok(t) => {
                if let Some(first) = out.get(&t.name) {
                    let msg = format!("manifest name `{}` is also used by {}", t.name, first.path.display());
                    problems.push(Problem::new(&path, line_of(&text, "# name:"), msg));
                    continue;
                }
                out.insert(t.name.clone(), t);
            }
            Err(ps) => problems.extend(ps),
        }
    }
    out
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "mysql",
    }
}

/// The dialects a query's database may be reached with: an `env:NAME` URL can name any engine
/// when it is read, so a database with one (or none known) is checked in all three.
fn query_dialects(config: &Config, database: &str) -> Vec<Dialect> {
    let urls = config.databases.get(database);
    let literal: Option<Vec<Option<Dialect>>> =
        urls.map(|urls| urls.values().map(|u| Dialect::of_url(u)).collect()).filter(|ds: &Vec<_>| !ds.is_empty());
    let mut ds = match literal {
        Some(ds) if ds.iter().all(Option::is_some) => ds.into_iter().flatten().collect(),
        _ => vec![Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql],
    };
    ds.sort();
    ds.dedup();
    ds
}

/// The embedded demo as a catalog, without touching the disk: for tests and benchmarks.
pub fn demo_catalog() -> Catalog {
    let text = embedded::FILES.iter().find(|(p, _)| *p == "lazyops.toml").map_or("", |(_, t)| t);
    let config = Config::parse(text, Path::new("lazyops.toml")).unwrap_or_default();
    let queries = embedded::FILES
        .iter()
        .filter(|(p, _)| p.starts_with("queries/"))
        .filter_map(|(p, t)| QueryFile::parse(t, Path::new(p)).ok())
        .map(|q| (q.name.clone(), q))
        .collect();
    let templates: Vec<Template> = embedded::FILES
        .iter()
        .filter(|(p, _)| p.starts_with("manifests/") && p.ends_with(".yaml"))
        .filter_map(|(p, t)| Template::parse(t, Path::new(p)).ok())
        .collect();
    catalog_of(&config, queries, templates.iter())
}

/// The names commands may use, from the config and the loaded files.
fn catalog_of<'t>(
    config: &Config,
    queries: BTreeMap<String, QueryFile>,
    templates: impl Iterator<Item = &'t Template>,
) -> Catalog {
    let named = |n: &String, aliases: &Vec<String>| Named { name: n.clone(), aliases: aliases.clone() };
    Catalog {
        envs: config.envs.iter().map(|(n, e)| named(n, &e.aliases)).collect(),
        default_env: config.default_env(),
        services: config.services.iter().map(|(n, s)| named(n, &s.aliases)).collect(),
        queries,
        suites: config.suites.keys().cloned().collect(),
        templates: templates.map(|t| (t.name.clone(), t.sig())).collect::<BTreeMap<String, TemplateSig>>(),
        databases: config.databases.keys().cloned().collect(),
        people: people_of(config),
    }
}

fn people_of(config: &Config) -> Vec<String> {
    let mut people: Vec<String> = config
        .teams
        .values()
        .flat_map(|t| {
            let roles = t.roles.values().flat_map(|r| r.members.iter());
            let approvers = t.approval.iter().flat_map(|a| a.approvers.iter());
            t.members.iter().chain(roles).chain(approvers)
        })
        .filter(|p| !p.contains('*') && !p.starts_with("role:") && p.contains(':'))
        .cloned()
        .collect();
    people.sort();
    people.dedup();
    people
}

/// The files in a workspace directory with one of these extensions, sorted; `None` when the
/// directory cannot be read (a problem only if it exists or was configured).
pub fn files_in(dir: &Path, extensions: &[&str]) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| extensions.iter().any(|e| x == *e)))
        .collect();
    paths.sort();
    Some(paths)
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("environment variable `{0}` is not set (the config says `env:{0}`)")]
    Unset(String),
}

impl Workspace {
    /// A database URL from config made usable: `env:NAME` read now (never earlier, never
    /// logged), relative SQLite paths taken from the config file's directory.
    pub fn resolve_url(&self, url: &str) -> Result<String, UrlError> {
        resolve_url(url, &self.root)
    }

    /// The bot's own database: `LAZYOPS_STATE_URL`, else `bot.state_url`, else `state.db` here.
    pub fn state_url(&self) -> Result<String, UrlError> {
        let url = std::env::var("LAZYOPS_STATE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.config.bot.state_url.clone())
            .unwrap_or_else(|| "sqlite://state.db".into());
        self.resolve_url(&url)
    }
}

pub fn resolve_url(url: &str, root: &Path) -> Result<String, UrlError> {
    let url = match url.strip_prefix("env:") {
        Some(var) => std::env::var(var).map_err(|_| UrlError::Unset(var.to_string()))?,
        None => url.to_string(),
    };
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(url);
    };
    if rest.starts_with('/') || rest.starts_with(":memory:") {
        return Ok(url);
    }
    Ok(format!("sqlite://{}", root.join(rest).display()))
}
