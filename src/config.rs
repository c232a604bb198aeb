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
    /// Audit rows older than this are deleted at start-up.
    pub audit_retention_days: u32,
    /// Longer messages are refused, not truncated.
    pub max_message_bytes: usize,
    /// Statement timeout for predefined queries, in milliseconds.
    pub query_timeout_ms: u64,
    /// Extra SQL functions a query may not call, on top of the built-in deny list.
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
            audit_retention_days: 90,
            max_message_bytes: 4096,
            query_timeout_ms: 5000,
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
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmMode {
    #[default]
    Off,
    Fallback,
    Always,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    #[serde(default)]
    pub mode: LlmMode,
    pub model: Option<String>,
    pub base_url: Option<String>,
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
    #[serde(default)]
    pub roles: IndexMap<String, RoleConfig>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    #[serde(default)]
    pub description: String,
    /// argv of the command that runs the suite; no shell.
    #[serde(default)]
    pub command: Vec<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The slash command's name, as Slack sends it.
    pub command: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig { command: "/lazyops".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// The bot's login, for `@login` mentions.
    pub login: String,
    /// `author_association` values trusted to run commands.
    pub trusted: Vec<String>,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig { login: "lazyops".into(), trusted: vec!["OWNER".into(), "MEMBER".into(), "COLLABORATOR".into()] }
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
