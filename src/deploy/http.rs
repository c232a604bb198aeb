//! Versions over HTTP: a service's own version endpoint (a JSON field or a regex over the
//! body), and GitHub's releases and deployments through its REST API.

use std::time::Duration;

use serde_json::Value;

use super::{Deployed, VersionError, parse_time};
use crate::http_body::{self, BodyError};
use crate::redact::redact;

pub fn client(timeout: Duration) -> Result<reqwest::Client, VersionError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("lazyops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| VersionError::Http(format!("cannot build an HTTP client: {e}")))
}

/// A failed request as the user should read it: timeouts named as such, URLs without secrets.
pub fn request_error(url: &str, secs: u64, e: &reqwest::Error) -> VersionError {
    let url = redact(url);
    if e.is_timeout() {
        VersionError::Timeout { url, secs }
    } else if e.is_connect() {
        VersionError::Http(format!("cannot connect to {url}: {}", root_cause(e)))
    } else {
        VersionError::Http(format!("GET {url} failed: {}", root_cause(e)))
    }
}

/// A body read with the cap (`http_body`), its failure named with the request's URL.
pub async fn body(url: &str, secs: u64, resp: reqwest::Response) -> Result<String, VersionError> {
    http_body::text(resp).await.map_err(|e| match e {
        BodyError::Timeout => VersionError::Timeout { url: redact(url), secs },
        other => VersionError::Http(format!("GET {}: {other}", redact(url))),
    })
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The first characters of a body, for messages about answers that were not what we asked.
fn peek(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(40).collect();
    if one_line.chars().count() > 40 { format!("{cut}…") } else { cut }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub struct HttpSource<'a> {
    pub url: &'a str,
    pub pointer: Option<&'a str>,
    pub regex: Option<&'a str>,
    pub deployed_at_pointer: Option<&'a str>,
    pub commit_pointer: Option<&'a str>,
    pub timeout: Duration,
}

pub async fn read(s: &HttpSource<'_>) -> Result<Deployed, VersionError> {
    let secs = s.timeout.as_secs();
    // What replies and errors show of the URL: without its credentials.
    let shown = redact(s.url);
    let resp = client(s.timeout)?.get(s.url).send().await.map_err(|e| request_error(s.url, secs, &e))?;
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_string();
    let body = body(s.url, secs, resp).await?;
    if !status.is_success() {
        return Err(VersionError::Http(format!("GET {shown} answered {status}")));
    }
    let source = format!("GET {shown}");
    if let Some(re) = s.regex {
        let re = regex_lite::Regex::new(re).map_err(|e| VersionError::Http(format!("regex `{re}` is invalid: {e}")))?;
        let caps = re.captures(&body).ok_or_else(|| {
            VersionError::Http(format!("{shown} does not match `{re}` (the answer starts with \"{}\")", peek(&body)))
        })?;
        let m = caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str().to_string()).unwrap_or_default();
        return Ok(Deployed { version: m, source, ..Deployed::default() });
    }
    let json: Value = serde_json::from_str(&body).map_err(|_| VersionError::NotJson {
        url: shown.clone(),
        content_type: ctype.clone(),
        starts: peek(&body),
    })?;
    let pointer = s.pointer.unwrap_or("/version");
    let version = json
        .pointer(pointer)
        .and_then(as_text)
        .ok_or_else(|| VersionError::Http(format!("the JSON from {shown} has no text at `{pointer}`")))?;
    Ok(Deployed {
        version,
        source,
        commit: s.commit_pointer.and_then(|p| json.pointer(p)).and_then(as_text),
        deployed_at: s.deployed_at_pointer.and_then(|p| json.pointer(p)).and_then(as_text).and_then(|t| parse_time(&t)),
        history: Vec::new(),
        detail: None,
    })
}

/// GitHub's REST API root: `LAZYOPS_GITHUB_API_URL` (tests point it at loopback) or github.com.
pub fn github_api() -> String {
    std::env::var("LAZYOPS_GITHUB_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://api.github.com".into())
        .trim_end_matches('/')
        .to_string()
}

/// One GET on the GitHub API, with the headers GitHub asks for; 404s and refusals explained.
pub async fn github_get(client: &reqwest::Client, path: &str, secs: u64) -> Result<Value, VersionError> {
    let url = format!("{}{path}", github_api());
    let mut req =
        client.get(&url).header("Accept", "application/vnd.github+json").header("X-GitHub-Api-Version", "2022-11-28");
    if let Ok(token) = std::env::var("GITHUB_TOKEN")
        && !token.is_empty()
    {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| request_error(&url, secs, &e))?;
    let status = resp.status();
    let body = body(&url, secs, resp).await?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| peek(&body));
        let hint = match status.as_u16() {
            401 | 403 => " (set GITHUB_TOKEN to a token that can read the repository)",
            404 => " (check the repository name, and GITHUB_TOKEN for private repositories)",
            _ => "",
        };
        return Err(VersionError::Github(format!("GitHub answered {status} for {path}: {message}{hint}")));
    }
    serde_json::from_str(&body)
        .map_err(|_| VersionError::Github(format!("GitHub's answer for {path} is not JSON: \"{}\"", peek(&body))))
}

/// The latest published release, or the latest successful deployment of an environment.
pub async fn github(repo: &str, environment: Option<&str>, timeout: Duration) -> Result<Deployed, VersionError> {
    let client = client(timeout)?;
    let secs = timeout.as_secs();
    match environment {
        None => {
            let list = github_get(&client, &format!("/repos/{repo}/releases?per_page=30"), secs).await?;
            let releases: Vec<&Value> = list
                .as_array()
                .map(|a| a.iter().filter(|r| !flag(r, "draft") && !flag(r, "prerelease")).collect())
                .unwrap_or_default();
            let latest = releases
                .first()
                .ok_or_else(|| VersionError::Github(format!("{repo} has no published release on GitHub")))?;
            let tag = |r: &Value| r.get("tag_name").and_then(as_text);
            Ok(Deployed {
                version: tag(latest).unwrap_or_default(),
                source: format!("GitHub release of {repo}"),
                commit: latest.get("target_commitish").and_then(as_text),
                deployed_at: latest.get("published_at").and_then(as_text).and_then(|t| parse_time(&t)),
                history: releases.iter().rev().filter_map(|r| tag(r)).collect(),
                detail: latest.get("html_url").and_then(as_text),
            })
        }
        Some(env) => github_deployment(&client, repo, env, secs).await,
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Deployments come newest first; the first whose latest status is `success` is live.
async fn github_deployment(
    client: &reqwest::Client,
    repo: &str,
    env: &str,
    secs: u64,
) -> Result<Deployed, VersionError> {
    let env_q: String = env.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    let list = github_get(client, &format!("/repos/{repo}/deployments?environment={env_q}&per_page=30"), secs).await?;
    let deployments = list.as_array().cloned().unwrap_or_default();
    for (i, d) in deployments.iter().enumerate().take(10) {
        let Some(id) = d.get("id").and_then(Value::as_i64) else { continue };
        let statuses = github_get(client, &format!("/repos/{repo}/deployments/{id}/statuses?per_page=1"), secs).await?;
        let Some(latest) = statuses.as_array().and_then(|a| a.first()) else { continue };
        if latest.get("state").and_then(Value::as_str) != Some("success") {
            continue;
        }
        let version_of = |d: &Value| {
            let r = d.get("ref").and_then(as_text).unwrap_or_default();
            if r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()) { r[..7].to_string() } else { r }
        };
        let mut history: Vec<String> = deployments[i..].iter().rev().map(version_of).collect();
        history.dedup();
        return Ok(Deployed {
            version: version_of(d),
            source: format!("GitHub deployment {id} of {repo} to {env}"),
            commit: d.get("sha").and_then(as_text).map(|s| s.chars().take(12).collect()),
            deployed_at: latest.get("created_at").and_then(as_text).and_then(|t| parse_time(&t)),
            history,
            detail: None,
        });
    }
    Err(VersionError::Github(format!("{repo} has no successful deployment to `{env}` among its latest deployments")))
}
