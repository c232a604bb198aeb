//! `lazyops.toml`: the strict configuration file. Every table refuses unknown keys, because a
//! typo in a policy must fail the load instead of silently opening a door; errors name the file,
//! the line and the key.

use indexmap::IndexMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub bot: BotConfig,
    #[serde(default)]
    pub envs: IndexMap<String, EnvConfig>,
    #[serde(default)]
    pub services: IndexMap<String, ServiceConfig>,
    /// A target database: one URL (or `env:NAME`) per environment.
    #[serde(default)]
    pub databases: IndexMap<String, IndexMap<String, String>>,
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(default)]
    pub teams: IndexMap<String, TeamConfig>,
    #[serde(default)]
    pub suites: IndexMap<String, SuiteConfig>,
    #[serde(default)]
    pub slack: SlackConfig,
    #[serde(default)]
    pub github: GithubConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotConfig {
    pub name: String,
    /// The environment used when a command names none; the first `[envs]` entry when unset.
    pub default_env: Option<String>,
    pub state_url: Option<String>,
    pub queries_dir: String,
    pub intents_dir: String,
    pub prompts_dir: String,
    pub manifests_dir: String,
    /// How long a pending confirmation waits, in seconds.
    pub confirm_ttl_secs: u64,
    /// How long a request waits for its approvals, in seconds.
    pub approval_ttl_secs: u64,
    /// Audit rows older than this are deleted at start-up.
    pub audit_retention_days: u32,
    /// Longer messages are refused, not truncated.
    pub max_message_bytes: usize,
    /// Statement timeout for predefined queries, in milliseconds.
    pub query_timeout_ms: u64,
    /// SQL functions a query may call on top of the built-in allow-list (names as the server
    /// resolves them; `schema.name` for a function in a schema).
    pub allow_functions: Vec<String>,
    /// SQL functions a query may never call, even when allowed (a denial wins).
    pub deny_functions: Vec<String>,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            name: "lazyops".into(),
            default_env: None,
            state_url: None,
            queries_dir: "queries".into(),
            intents_dir: "intents".into(),
            prompts_dir: "prompts".into(),
            manifests_dir: "manifests".into(),
            confirm_ttl_secs: 600,
            approval_ttl_secs: 3600,
            audit_retention_days: 90,
            max_message_bytes: 4096,
            query_timeout_ms: 5000,
            allow_functions: Vec::new(),
            deny_functions: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The target database that holds this service's tables (for `db schema check`).
    pub database: Option<String>,
    /// The service's migrations directory, relative to the config file.
    pub migrations: Option<String>,
    /// How `db schema check` reads the migrations and the live database.
    #[serde(default)]
    pub schema: SchemaConfig,
    /// Where `deploy version` reads the deployed version, per environment.
    #[serde(default)]
    pub version: IndexMap<String, VersionSource>,
    /// The release checklist (`release check`), in the order it is shown.
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
}

/// Migration file naming: sqlx's `NNNN_name.sql` (and `NNNN_name.up.sql`), or only `*.up.sql`
/// (golang-migrate, dbmate-style), where `.down.sql` files are skipped.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MigrationFiles {
    /// `*.up.sql` when the directory has any, else `NNNN_name.sql`.
    #[default]
    Auto,
    Sqlx,
    Up,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    #[serde(default)]
    pub files: MigrationFiles,
    /// The table where the service records applied migrations; `_sqlx_migrations` or
    /// `schema_migrations` when present. `"none"` turns the comparison off.
    pub versions_table: Option<String>,
    /// The tables this service owns (`*` wildcards); all tables of the database when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Tables never compared (`*` wildcards).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// A PostgreSQL or MariaDB server where lazyops may create and drop a temporary database
    /// for the migrations (or `env:NAME`); needed when the live database is not SQLite.
    pub scratch_url: Option<String>,
    /// On PostgreSQL: a temporary schema inside a transaction that is rolled back (fast, leaves
    /// nothing behind), or a temporary database (for migrations that cannot run in a
    /// transaction, such as `CREATE INDEX CONCURRENTLY`).
    #[serde(default)]
    pub scratch: ScratchKind,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScratchKind {
    #[default]
    Schema,
    Database,
}

/// Where a deployed version is read; `source` picks the kind.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "source", rename_all = "lowercase", deny_unknown_fields)]
pub enum VersionSource {
    /// The newest tag matching `pattern` in a git repository.
    Git {
        /// The repository, relative to the config file.
        repo: String,
        /// A tag glob (`payments/prod/*`); the version is the tag without the part up to the
        /// last `/` of the pattern's fixed prefix.
        pattern: String,
    },
    /// A JSON field (`pointer`) or the first capture of `regex` in a GET response.
    Http {
        url: String,
        pointer: Option<String>,
        regex: Option<String>,
        /// JSON pointer to when it was deployed.
        deployed_at_pointer: Option<String>,
        /// JSON pointer to the commit.
        commit_pointer: Option<String>,
        timeout_secs: Option<u64>,
    },
    /// The latest GitHub release, or the latest successful deployment of `environment`.
    Github {
        /// `owner/name`
        repo: String,
        /// A deployment environment; the latest release when absent.
        environment: Option<String>,
        timeout_secs: Option<u64>,
    },
    /// The image tag of a Deployment's container.
    Kubernetes {
        /// `https://host:6443`
        api_url: String,
        /// The bearer token, usually `env:NAME` or `file:PATH`.
        token: String,
        /// The cluster CA certificate (PEM file, relative to the config file); the system
        /// roots when absent.
        ca_file: Option<String>,
        #[serde(default = "default_namespace")]
        namespace: String,
        deployment: String,
        /// The container; the first one when absent.
        container: Option<String>,
        timeout_secs: Option<u64>,
    },
}

fn default_namespace() -> String {
    "default".into()
}

/// One item of a release checklist; `check` picks the kind.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub name: String,
    pub check: CheckKind,
    /// Seconds before the item is given up as ❌ (default 30).
    pub timeout_secs: Option<u64>,
    /// A failing optional item is ⚠️, not ❌.
    #[serde(default)]
    pub optional: bool,
    /// `version`: the environment that must hold the version being released (default: the one
    /// after the checked environment in `[envs]`, e.g. staging for prod).
    pub env: Option<String>,
    /// `ci`: `owner/name` on GitHub.
    pub repo: Option<String>,
    /// `ci`: a branch, tag or sha; `version:ENV` is the commit or tag deployed there.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `http`: the URL to GET.
    pub url: Option<String>,
    /// `http`: the expected status (any 2xx when absent).
    pub status: Option<u16>,
    /// `http`: text the body must contain.
    pub contains: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// `db schema check` of the service.
    Schema,
    /// The version in `env` is the one to release: ahead of (or equal to) the checked env.
    Version,
    /// GitHub combined status and check runs of a commit.
    Ci,
    /// A GET that must answer with a status (and text).
    Http,
    /// Ticked by a person.
    Manual,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmMode {
    #[default]
    Off,
    Fallback,
    Always,
}

/// The optional LLM tier (`understand::llm`): a second opinion on sentences, never a second
/// parser. Times in milliseconds; limits per minute.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub mode: LlmMode,
    pub model: Option<String>,
    /// `OPENAI_BASE_URL` wins.
    pub base_url: Option<String>,
    /// The whole exchange with the model, retries included (chat, terminal, GitHub).
    pub timeout_ms: u64,
    /// The same inside Slack, where the first answer is due within 3 seconds.
    pub slack_timeout_ms: u64,
    /// Retries on 429 and 5xx (honouring `Retry-After`), within the timeout.
    pub max_retries: u32,
    /// Model calls per requester per minute; past it, the local answer with a note.
    pub per_user_per_minute: u32,
    /// Model calls per minute for the whole bot.
    pub global_per_minute: u32,
    /// Answers remembered (0 turns the cache off), and for how long.
    pub cache_size: usize,
    pub cache_ttl_secs: u64,
    /// Earlier turns of the thread passed to the model.
    pub history_turns: usize,
    pub temperature: f32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            mode: LlmMode::Off,
            model: None,
            base_url: None,
            timeout_ms: 4000,
            slack_timeout_ms: 2000,
            max_retries: 2,
            per_user_per_minute: 10,
            global_per_minute: 120,
            cache_size: 512,
            cache_ttl_secs: 3600,
            history_turns: 4,
            temperature: 0.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Identities: `local:alice`, `slack:U0123`, `github:octocat`; `local:*` is any terminal user.
    #[serde(default)]
    pub members: Vec<String>,
    /// Where the team's rules apply: `*`, `local`, `slack:C0123`, `github:owner/repo`.
    #[serde(default = "everywhere")]
    pub channels: Vec<String>,
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Command patterns every member may run (`db query *`, `test run * staging`).
    #[serde(default = "everywhere")]
    pub allow: Vec<String>,
    /// Patterns of configurable commands that need confirmation for this team.
    #[serde(default)]
    pub confirm: Vec<String>,
    /// Predefined queries the team may see and run (name patterns).
    #[serde(default = "everywhere")]
    pub queries: Vec<String>,
    /// Subreddits `meme` may show, checked when it runs; `meme` alone picks one of them.
    #[serde(default = "default_subreddits")]
    pub subreddits: Vec<String>,
    #[serde(default)]
    pub roles: IndexMap<String, RoleConfig>,
    /// Commands that wait for colleagues' approval (`[[teams.X.approval]]`), first match wins.
    #[serde(default)]
    pub approval: Vec<ApprovalRule>,
}

/// `[[teams.X.approval]]`: commands matching `commands` wait for `count` distinct `approvers`
/// (never the requester) before they run.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Command patterns, as in `allow`.
    pub commands: Vec<String>,
    /// Identities (`slack:U0123`, `local:bob`) or `role:NAME` of this team.
    pub approvers: Vec<String>,
    /// Distinct approvers needed.
    #[serde(default = "one")]
    pub count: u32,
    /// A Slack user group (`S0123ABC`) the approval card mentions, besides the approvers.
    pub slack_group: Option<String>,
}

fn one() -> u32 {
    1
}

fn default_subreddits() -> Vec<String> {
    vec!["ProgrammerHumor".to_string()]
}

fn everywhere() -> Vec<String> {
    vec!["*".to_string()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    #[serde(default)]
    pub description: String,
    /// argv of the command that runs the suite; no shell. `{env}`, `{suite}` and `{run}` are
    /// replaced in each argument.
    #[serde(default)]
    pub command: Vec<String>,
    pub timeout_secs: Option<u64>,
    /// The suite's environment variables (values may be `env:NAME`); nothing else of lazyops'
    /// environment is passed on except PATH, HOME, LANG, TZ and TMPDIR.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Run by a CI service over HTTP instead of a local command.
    pub http: Option<HttpSuiteConfig>,
    /// Runs of this suite at the same time; later ones wait queued (default 1).
    pub max_concurrent: Option<u32>,
    /// Output kept per run (its end), in bytes (default 65536).
    pub max_output_bytes: Option<usize>,
}

/// A suite run by another service: POST `trigger`, then GET `poll` until it says done.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HttpSuiteConfig {
    pub trigger: String,
    /// The status URL; `{id}` is the run id the trigger answered.
    pub poll: String,
    /// JSON pointer to the run id in the trigger's answer (default `/id`).
    pub id_pointer: Option<String>,
    /// JSON pointer to the state in the poll answer (default `/status`).
    pub state_pointer: Option<String>,
    /// JSON pointer to a link or log text in the poll answer.
    pub output_pointer: Option<String>,
    /// States that mean passed (default `passed`, `success`, `succeeded`).
    #[serde(default)]
    pub passed: Vec<String>,
    /// States that mean failed (default `failed`, `failure`, `error`, `cancelled`).
    #[serde(default)]
    pub failed: Vec<String>,
    /// Seconds between polls (default 5).
    pub poll_secs: Option<u64>,
    /// A bearer token, usually `env:NAME`.
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The slash command's name, as Slack sends it.
    pub command: String,
    /// How Slack reaches lazyops: `http` (Slack calls the public routes) or `socket` (lazyops
    /// opens a Socket Mode WebSocket; no public URL). `serve --socket` sets it too.
    pub mode: SlackMode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    #[default]
    Http,
    Socket,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig { command: "/lazyops".into(), mode: SlackMode::Http }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// The bot's login, for `@login` mentions.
    pub login: String,
    /// A comment line starting with this addresses the bot, as does `@login`.
    pub prefix: String,
    /// `author_association` values trusted to run commands.
    pub trusted: Vec<String>,
    /// What an untrusted author who addresses the bot gets: one polite refusal per thread, or
    /// silence.
    pub untrusted: Untrusted,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Untrusted {
    #[default]
    Refuse,
    Silence,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            login: "lazyops".into(),
            prefix: "/lazyops".into(),
            trusted: vec!["OWNER".into(), "MEMBER".into(), "COLLABORATOR".into()],
            untrusted: Untrusted::Refuse,
        }
    }
}

/// A problem found in a workspace file: where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl Problem {
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Problem {
        Problem { file: file.to_path_buf(), line, message: message.into() }
    }
}

/// The 1-based line of a byte offset.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).map_or(1, |t| t.matches('\n').count() + 1)
}

/// The line where a TOML table header or key first appears, so semantic errors point somewhere.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle).map(|at| line_at(text, at))
}

impl BotConfig {
    /// The SQL functions queries may call beyond the built-in allow-list, and those they may not.
    pub fn functions(&self) -> crate::queries::safety::Functions<'_> {
        crate::queries::safety::Functions { allow: &self.allow_functions, deny: &self.deny_functions }
    }
}

impl Config {
    /// Parses a config file's text; a syntax error or unknown key names the line and the key.
    pub fn parse(text: &str, file: &Path) -> Result<Config, Problem> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start));
            Problem::new(file, line, e.message().trim().to_string())
        })
    }

    pub fn default_env(&self) -> String {
        self.bot.default_env.clone().or_else(|| self.envs.keys().next().cloned()).unwrap_or_else(|| "prod".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        Config::parse(text, Path::new("lazyops.toml")).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_key() {
        let got = problem("[bot]\ndefault_env = \"prod\"\n\n[teams.oncall]\nmembrs = [\"local:*\"]\n");
        assert!(got.starts_with("lazyops.toml:5: unknown field `membrs`"), "{got}");
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let got = problem("[bot]\nname = \"x\"\nstate_url = \n");
        assert!(got.starts_with("lazyops.toml:3:"), "{got}");
    }

    #[test]
    fn an_empty_file_is_a_valid_config_with_defaults() {
        let cfg = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(cfg.bot.confirm_ttl_secs, 600);
        assert_eq!(cfg.default_env(), "prod");
    }
}

#[cfg(test)]
mod release_config_tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("lazyops.toml")).map_err(|p| p.to_string())
    }

    #[test]
    fn version_sources_are_tagged_by_source_and_refuse_unknown_keys() {
        let cfg = parse(
            "[services.pay.version.prod]\nsource = \"git\"\nrepo = \"deploy.git\"\npattern = \"pay/prod/*\"\n\
             [services.pay.version.staging]\nsource = \"kubernetes\"\napi_url = \"https://k\"\ntoken = \"env:T\"\ndeployment = \"pay\"\n",
        )
        .unwrap();
        let v = &cfg.services["pay"].version;
        assert!(matches!(&v["prod"], VersionSource::Git { pattern, .. } if pattern == "pay/prod/*"));
        assert!(matches!(&v["staging"], VersionSource::Kubernetes { namespace, .. } if namespace == "default"));
        let err =
            parse("[services.pay.version.prod]\nsource = \"git\"\nrepo = \"x\"\npattern = \"*\"\npatern = \"y\"\n")
                .unwrap_err();
        assert!(err.contains("unknown field `patern`"), "{err}");
        let err = parse("[services.pay.version.prod]\nsource = \"svn\"\n").unwrap_err();
        assert!(err.contains("svn"), "{err}");
    }

    #[test]
    fn checklist_items_and_suites_parse() {
        let cfg = parse(
            "[[services.pay.checklist]]\nname = \"ci green\"\ncheck = \"ci\"\nrepo = \"o/r\"\nref = \"main\"\n\
             [suites.smoke]\ncommand = [\"sh\", \"x.sh\"]\nmax_concurrent = 2\n[suites.smoke.env]\nA = \"b\"\n",
        )
        .unwrap();
        assert_eq!(cfg.services["pay"].checklist[0].check, CheckKind::Ci);
        assert_eq!(cfg.services["pay"].checklist[0].git_ref.as_deref(), Some("main"));
        assert_eq!(cfg.suites["smoke"].env["A"], "b");
        let err = parse("[[services.pay.checklist]]\nname = \"x\"\ncheck = \"vibes\"\n").unwrap_err();
        assert!(err.contains("vibes"), "{err}");
    }
}
