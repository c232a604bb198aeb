//! The Slack Web API client: `chat.postMessage`, `chat.postEphemeral`, `chat.update`,
//! `auth.test`, and posts to a `response_url`. It waits out `429 Retry-After`, retries server
//! errors and refused connections a few times (never a timeout, which may have posted), and
//! turns `ok: false` into an error naming Slack's code.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::render::slack::SlackMessage;

/// How many times one call is tried before it fails.
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("SLACK_BOT_TOKEN is not set; set it to the app's bot token (xoxb-…)")]
    NoToken,
    #[error("slack {method} answered ok:false, error `{error}`")]
    NotOk { method: String, error: String },
    #[error("slack {method} answered HTTP {status}")]
    Status { method: String, status: u16 },
    #[error("slack {method} answered 429 (rate limited) {attempts} time(s); gave up rather than wait {wait_s} s more")]
    RateLimited { method: String, attempts: u32, wait_s: u64 },
    #[error("slack {method} could not be reached: {reason}")]
    Unreachable { method: String, reason: String },
}

/// Why `apps.connections.open` gave no URL. Messages say what to fix; the token is never in them.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "slack apps.connections.open answered ok:false, error `{0}` (invalid_auth or not_allowed_token_type: \
         SLACK_APP_TOKEN must be an app-level xapp- token with connections:write)"
    )]
    NotOk(String),
    #[error("slack apps.connections.open is rate limited; retrying after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("slack apps.connections.open answered HTTP {0}")]
    Status(u16),
    #[error("slack apps.connections.open could not be reached: {0}")]
    Unreachable(String),
}

/// Who the bot is in the workspace, from `auth.test`: its own messages are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotIdentity {
    pub user_id: String,
    pub bot_id: String,
}

pub struct SlackApi {
    http: crate::lazy_client::LazyClient,
    base: String,
    token: Option<String>,
    /// The longest `Retry-After` honoured before giving up.
    max_wait: Duration,
    identity: OnceCell<BotIdentity>,
}

enum Attempt {
    Done(reqwest::Response),
    Retry(Duration, ApiError),
}

impl SlackApi {
    pub fn new(
        http: crate::lazy_client::LazyClient,
        base: &str,
        token: Option<String>,
        max_wait: Duration,
    ) -> SlackApi {
        SlackApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            max_wait,
            identity: OnceCell::new(),
        }
    }

    /// One POST with the retry policy: 429 waits `Retry-After`, 5xx and network errors back off.
    async fn send(
        &self,
        what: &str,
        req: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let client =
            self.http.get().map_err(|e| ApiError::Unreachable { method: what.to_string(), reason: e.to_string() })?;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let outcome = match req(client).send().await {
                Ok(resp) if resp.status().as_u16() == 429 => {
                    let wait = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(Duration::from_secs(1), Duration::from_secs);
                    tracing::warn!(method = what, retry_after_s = wait.as_secs(), "slack rate limited");
                    Attempt::Retry(
                        wait,
                        ApiError::RateLimited {
                            method: what.to_string(),
                            attempts: attempt + 1,
                            wait_s: wait.as_secs(),
                        },
                    )
                }
                Ok(resp) if resp.status().is_server_error() => {
                    let status = resp.status().as_u16();
                    Attempt::Retry(backoff(attempt), ApiError::Status { method: what.to_string(), status })
                }
                Ok(resp) => Attempt::Done(resp),
                Err(e) => {
                    let connect = e.is_connect();
                    let err = ApiError::Unreachable { method: what.to_string(), reason: e.without_url().to_string() };
                    // Only a request that never left is safe to send again: after a timeout
                    // Slack may have posted it already.
                    if !connect {
                        return Err(err);
                    }
                    Attempt::Retry(backoff(attempt), err)
                }
            };
            match outcome {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Retry(wait, err) => {
                    if wait > self.max_wait || attempt + 1 == ATTEMPTS {
                        return Err(err);
                    }
                    last = Some(err);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(last.unwrap_or(ApiError::RateLimited { method: what.to_string(), attempts: ATTEMPTS, wait_s: 0 }))
    }

    /// Calls a Web API method with a JSON body; `ok: false` is an error.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let token = self.token.as_deref().ok_or(ApiError::NoToken)?;
        let url = format!("{}/{method}", self.base);
        let resp = self.send(method, |http| http.post(&url).bearer_auth(token).json(body)).await?;
        let status = resp.status().as_u16();
        let value: Value = resp.json().await.map_err(|_| ApiError::Status { method: method.to_string(), status })?;
        if value["ok"].as_bool() == Some(true) {
            if let Some(w) = value["warning"].as_str() {
                tracing::warn!(method, warning = w, "slack api warning");
            }
            return Ok(value);
        }
        let error = value["error"].as_str().unwrap_or("unknown_error").to_string();
        Err(ApiError::NotOk { method: method.to_string(), error })
    }

    /// Posts a message, in a thread when `thread_ts` is set; returns the new message's `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        msg: &SlackMessage,
    ) -> Result<String, ApiError> {
        let mut body = json!({"channel": channel, "text": msg.text, "blocks": msg.blocks, "unfurl_links": false});
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let v = self.call("chat.postMessage", &body).await?;
        Ok(v["ts"].as_str().unwrap_or_default().to_string())
    }

    /// A message only `user` sees, in `channel`.
    pub async fn post_ephemeral(&self, channel: &str, user: &str, msg: &SlackMessage) -> Result<(), ApiError> {
        let body = json!({"channel": channel, "user": user, "text": msg.text, "blocks": msg.blocks});
        self.call("chat.postEphemeral", &body).await.map(|_| ())
    }

    pub async fn update(&self, channel: &str, ts: &str, msg: &SlackMessage) -> Result<(), ApiError> {
        let body = json!({"channel": channel, "ts": ts, "text": msg.text, "blocks": msg.blocks});
        self.call("chat.update", &body).await.map(|_| ())
    }

    /// Posts to a `response_url` if the payload gave one; none is an error like a failed post,
    /// so callers fall back to the Web API the same way.
    pub async fn respond_if_given(&self, response_url: Option<&str>, body: &Value) -> Result<(), ApiError> {
        match response_url {
            Some(url) => self.respond(url, body).await,
            None => Err(ApiError::Unreachable { method: "response_url".into(), reason: "none given".into() }),
        }
    }

    /// Posts to a `response_url` (no token: the URL is the credential, so it is never logged).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), ApiError> {
        let what = "response_url";
        let resp = self.send(what, |http| http.post(response_url).json(body)).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ApiError::Status { method: what.to_string(), status: status.as_u16() });
        }
        // Slack answers `ok` as text or `{"ok": …}`; only an explicit false is a failure.
        let text = resp.text().await.unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&text)
            && v["ok"].as_bool() == Some(false)
        {
            let error = v["error"].as_str().unwrap_or("unknown_error").to_string();
            return Err(ApiError::NotOk { method: what.to_string(), error });
        }
        Ok(())
    }

    /// `apps.connections.open` with the app-level token: the URL of a new Socket Mode
    /// connection. One attempt: the Socket Mode client owns the back-off between attempts.
    pub async fn connections_open(&self, app_token: &str) -> Result<String, OpenError> {
        let client = self.http.get().map_err(|e| OpenError::Unreachable(e.to_string()))?;
        let url = format!("{}/apps.connections.open", self.base);
        let resp = client
            .post(&url)
            .bearer_auth(app_token)
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .map_err(|e| OpenError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        if status == 429 {
            let secs =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
            return Err(OpenError::RateLimited { retry_after: Duration::from_secs(secs.unwrap_or(1)) });
        }
        let value: Value = resp.json().await.map_err(|_| OpenError::Status(status))?;
        if value["ok"].as_bool() != Some(true) {
            return Err(OpenError::NotOk(value["error"].as_str().unwrap_or("unknown_error").to_string()));
        }
        match value["url"].as_str() {
            Some(u) if u.starts_with("wss://") || u.starts_with("ws://") => Ok(u.to_string()),
            _ => Err(OpenError::NotOk("no_websocket_url".into())),
        }
    }

    /// The bot's own user and bot ids, asked once with `auth.test`.
    pub async fn identity(&self) -> Result<&BotIdentity, ApiError> {
        self.identity
            .get_or_try_init(|| async {
                let v = self.call("auth.test", &json!({})).await?;
                Ok(BotIdentity {
                    user_id: v["user_id"].as_str().unwrap_or_default().to_string(),
                    bot_id: v["bot_id"].as_str().unwrap_or_default().to_string(),
                })
            })
            .await
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt))
}
