//! Which version of a service is deployed, from the source configured per service and
//! environment (`git`, `http`, `github`, `kubernetes`), and how two environments compare
//! ("staging is 2 versions ahead of prod").

pub mod git;
pub mod http;
pub mod kubernetes;

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::VersionSource;
use crate::workspace::Workspace;

/// A deployed version and where it was read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deployed {
    pub version: String,
    /// Where it was read, for the reply (`git tag payments/prod/v1.2.0 in deploy.git`).
    pub source: String,
    pub commit: Option<String>,
    pub deployed_at: Option<OffsetDateTime>,
    /// Versions this environment had, oldest first, ending with this one, when the source
    /// keeps a history (git tags, GitHub releases and deployments).
    pub history: Vec<String>,
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// Said to whoever asked; the config advice ([`admin_hint`]) goes to the log and `check`.
    #[error("{service} has no known version on {env}")]
    NotConfigured { service: String, env: String },
    #[error("the `git` program is not installed or not on PATH; `deploy version` reads git tags with it")]
    GitMissing,
    #[error("{0}")]
    Git(String),
    #[error("no tag in `{repo}` matches `{pattern}`")]
    NoTags { pattern: String, repo: String },
    #[error("{0}")]
    Http(String),
    #[error("{url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url} did not answer with JSON ({content_type}, starting \"{starts}\"); set `regex` to read text")]
    NotJson { url: String, content_type: String, starts: String },
    #[error("{0}")]
    Github(String),
    #[error("{0}")]
    Kubernetes(String),
}

/// What an admin adds so that `service` has a version on `env`: for `lazyops check` and the
/// log, not for the on-call person who asked.
pub fn admin_hint(service: &str, env: &str) -> String {
    format!(
        "service `{service}` has no version source for `{env}`: add [services.{service}.version.{env}] with source = \"git\", \"http\", \"github\" or \"kubernetes\""
    )
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// `2026-11-20 14:03 UTC (3 days ago)`
pub fn when(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let at = t.to_offset(time::UtcOffset::UTC).format(fmt).unwrap_or_default();
    let ago = (now - t).whole_seconds();
    let rel = match ago {
        s if s < 0 => "in the future".to_string(),
        s if s < 90 => "just now".to_string(),
        s if s < 90 * 60 => format!("{} minutes ago", s / 60),
        s if s < 36 * 3600 => format!("{} hours ago", (s + 1800) / 3600),
        s => format!("{} days ago", (s + 43_200) / 86_400),
    };
    format!("{at} ({rel})")
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deployed version of `service` in `env`.
pub async fn read(ws: &Workspace, service: &str, env: &str) -> Result<Deployed, VersionError> {
    let source = ws.config.services.get(service).and_then(|s| s.version.get(env)).ok_or_else(|| {
        tracing::warn!(hint = admin_hint(service, env), "deployed version asked for without a source");
        VersionError::NotConfigured { service: service.to_string(), env: env.to_string() }
    })?;
    let secs = |t: &Option<u64>| t.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    match source {
        VersionSource::Git { repo, pattern } => git::read(&ws.path(repo), repo, pattern).await,
        VersionSource::Http { url, pointer, regex, deployed_at_pointer, commit_pointer, timeout_secs } => {
            http::read(&http::HttpSource {
                url,
                pointer: pointer.as_deref(),
                regex: regex.as_deref(),
                deployed_at_pointer: deployed_at_pointer.as_deref(),
                commit_pointer: commit_pointer.as_deref(),
                timeout: secs(timeout_secs),
            })
            .await
        }
        VersionSource::Github { repo, environment, timeout_secs } => {
            http::github(repo, environment.as_deref(), secs(timeout_secs)).await
        }
        VersionSource::Kubernetes { api_url, token, ca_file, namespace, deployment, container, timeout_secs } => {
            let ca_pem = match ca_file {
                Some(f) => Some(
                    std::fs::read(ws.path(f))
                        .map_err(|e| VersionError::Kubernetes(format!("cannot read the cluster CA file `{f}`: {e}")))?,
                ),
                None => None,
            };
            kubernetes::read(&kubernetes::Target {
                api_url,
                token: kubernetes::secret(token, &ws.root)?,
                ca_pem,
                namespace,
                deployment,
                container: container.as_deref(),
                timeout: secs(timeout_secs),
            })
            .await
        }
    }
}

/// How one environment's version stands to another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    Same,
    /// The first is ahead, by this many versions when a history says.
    Ahead(Option<usize>),
    Behind(Option<usize>),
    /// Different versions with no order to tell.
    Differs,
}

/// `v1.4.0` → (1, 4, 0); anything that is not dotted numbers has no order.
fn semver(v: &str) -> Option<Vec<u64>> {
    let core = v.trim_start_matches(['v', 'V']).split(['-', '+']).next()?;
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty())
}

/// How far ahead `a` is of `b`, counted in `a`'s history.
fn ahead_in_history(a: &Deployed, b: &Deployed) -> Option<usize> {
    let i = a.history.iter().rposition(|v| *v == a.version)?;
    let j = a.history.iter().position(|v| *v == b.version)?;
    (i > j).then_some(i - j)
}

pub fn relation(a: &Deployed, b: &Deployed) -> Relation {
    if a.version == b.version {
        return Relation::Same;
    }
    if let Some(n) = ahead_in_history(a, b) {
        return Relation::Ahead(Some(n));
    }
    if let Some(n) = ahead_in_history(b, a) {
        return Relation::Behind(Some(n));
    }
    match (semver(&a.version), semver(&b.version)) {
        (Some(x), Some(y)) if x > y => Relation::Ahead(None),
        (Some(x), Some(y)) if x < y => Relation::Behind(None),
        _ => Relation::Differs,
    }
}

/// "staging is 2 versions ahead of prod", with the environment that is ahead first.
pub fn sentence(a_env: &str, a: &Deployed, b_env: &str, b: &Deployed) -> String {
    let versions = |n: usize| if n == 1 { "1 version".to_string() } else { format!("{n} versions") };
    match relation(a, b) {
        Relation::Same => format!("{a_env} and {b_env} run the same version ({})", a.version),
        Relation::Ahead(Some(n)) => format!("{a_env} is {} ahead of {b_env}", versions(n)),
        Relation::Behind(Some(n)) => format!("{b_env} is {} ahead of {a_env}", versions(n)),
        Relation::Ahead(None) => format!("{a_env} ({}) is ahead of {b_env} ({})", a.version, b.version),
        Relation::Behind(None) => format!("{b_env} ({}) is ahead of {a_env} ({})", b.version, a.version),
        Relation::Differs => format!("{a_env} runs {}, {b_env} runs {}", a.version, b.version),
    }
}

/// The environments next to `env` in `[envs]` order that have a version source for the
/// service: the ones a release moves a version between.
pub fn neighbours(ws: &Workspace, service: &str, env: &str) -> Vec<String> {
    let envs: Vec<&String> = ws.config.envs.keys().collect();
    let Some(at) = envs.iter().position(|e| *e == env) else { return Vec::new() };
    let configured = |e: &str| ws.config.services.get(service).is_some_and(|s| s.version.contains_key(e));
    [at + 1, at.wrapping_sub(1)]
        .iter()
        .filter_map(|i| envs.get(*i))
        .filter(|e| configured(e.as_str()))
        .map(|e| e.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(version: &str, history: &[&str]) -> Deployed {
        Deployed {
            version: version.into(),
            history: history.iter().map(|h| h.to_string()).collect(),
            ..Deployed::default()
        }
    }

    #[test]
    fn comparisons_count_versions_from_history_or_fall_back_to_semver() {
        let staging = d("v1.4.0", &["v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"]);
        let prod = d("v1.2.0", &["v1.0.0", "v1.2.0"]);
        assert_eq!(sentence("staging", &staging, "prod", &prod), "staging is 2 versions ahead of prod");
        assert_eq!(sentence("prod", &prod, "staging", &staging), "staging is 2 versions ahead of prod");
        assert_eq!(sentence("prod", &prod, "dev", &d("v1.2.0", &[])), "prod and dev run the same version (v1.2.0)");
        assert_eq!(sentence("dev", &d("2.0.1", &[]), "prod", &d("1.9", &[])), "dev (2.0.1) is ahead of prod (1.9)");
        assert_eq!(sentence("dev", &d("abc123", &[]), "prod", &d("def456", &[])), "dev runs abc123, prod runs def456");
        assert_eq!(sentence("a", &d("v2", &["v1", "v2"]), "b", &d("v1", &[])), "a is 1 version ahead of b");
    }

    #[test]
    fn times_read_as_dates_and_ages() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
        assert_eq!(when(now - time::Duration::days(3), now), "2025-11-21 16:00 UTC (3 days ago)");
        assert_eq!(when(now - time::Duration::minutes(5), now), "2025-11-24 15:55 UTC (5 minutes ago)");
    }
}
