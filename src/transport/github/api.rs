//! The GitHub REST client: comments on issues and pull requests, and replies in review
//! threads. It honours rate limits (`Retry-After`, else `x-ratelimit-reset` when the budget
//! is spent), retries server errors a few times, and names GitHub's message on failure.

use std::time::Duration;

use serde_json::{Value, json};

const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("GITHUB_TOKEN is not set; set it to a token that may comment on the repository")]
    NoToken,
    #[error("github {what} answered HTTP {status}: {message}")]
    Status { what: String, status: u16, message: String },
    #[error("github {what} is rate limited for {wait_s} s more; gave up")]
    RateLimited { what: String, wait_s: u64 },
    #[error("github {what} could not be reached: {reason}")]
    Unreachable { what: String, reason: String },
}

pub struct GithubApi {
    http: crate::lazy_client::LazyClient,
    base: String,
    token: Option<String>,
    /// The longest rate-limit wait honoured before giving up.
    max_wait: Duration,
}

/// How long GitHub asks us to wait, if this answer is a rate limit: `Retry-After`, else the
/// reset time when the remaining budget is zero (a 403 without either is a plain refusal,
/// such as a locked issue).
fn rate_limit_wait(resp: &reqwest::Response) -> Option<Duration> {
    let status = resp.status().as_u16();
    if status != 403 && status != 429 {
        return None;
    }
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())?;
        let now = crate::store::now_ms() / 1000;
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1) as u64));
    }
    (status == 429).then(|| Duration::from_secs(60))
}

impl GithubApi {
    pub fn new(
        http: crate::lazy_client::LazyClient,
        base: &str,
        token: Option<String>,
        max_wait: Duration,
    ) -> GithubApi {
        GithubApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            max_wait,
        }
    }

    async fn post(&self, what: &str, path: &str, body: &Value) -> Result<Value, ApiError> {
        let token = self.token.as_deref().ok_or(ApiError::NoToken)?;
        let url = format!("{}{path}", self.base);
        let http =
            self.http.get().map_err(|e| ApiError::Unreachable { what: what.to_string(), reason: e.to_string() })?;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let sent = http
                .post(&url)
                .bearer_auth(token)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .json(body)
                .send()
                .await;
            let (wait, err) = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(resp.json().await.unwrap_or(Value::Null)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let limited = rate_limit_wait(&resp);
                    let message = resp
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    match limited {
                        Some(wait) => {
                            tracing::warn!(what, status, wait_s = wait.as_secs(), "github rate limited");
                            (wait, ApiError::RateLimited { what: what.to_string(), wait_s: wait.as_secs() })
                        }
                        None if status >= 500 => {
                            (backoff(attempt), ApiError::Status { what: what.to_string(), status, message })
                        }
                        None => return Err(ApiError::Status { what: what.to_string(), status, message }),
                    }
                }
                Err(e) => {
                    let connect = e.is_connect();
                    let err = ApiError::Unreachable { what: what.to_string(), reason: e.without_url().to_string() };
                    // After a timeout the comment may exist already; only a refused connection
                    // is safe to try again.
                    if !connect {
                        return Err(err);
                    }
                    (backoff(attempt), err)
                }
            };
            if wait > self.max_wait || attempt + 1 == ATTEMPTS {
                return Err(err);
            }
            last = Some(err);
            tokio::time::sleep(wait).await;
        }
        Err(last.unwrap_or(ApiError::RateLimited { what: what.to_string(), wait_s: 0 }))
    }

    /// A comment in an issue or a pull request's conversation.
    pub async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<(), ApiError> {
        let path = format!("/repos/{repo}/issues/{number}/comments");
        self.post("issue comment", &path, &json!({"body": body})).await.map(|_| ())
    }

    /// A reply in the review thread of comment `comment_id` on pull request `number`.
    pub async fn reply_in_review(&self, repo: &str, number: u64, comment_id: u64, body: &str) -> Result<(), ApiError> {
        let path = format!("/repos/{repo}/pulls/{number}/comments/{comment_id}/replies");
        self.post("review comment reply", &path, &json!({"body": body})).await.map(|_| ())
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt))
}
