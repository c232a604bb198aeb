//! Reddit's public JSON listings (`/r/{sub}/hot.json`, `/r/{sub}/top.json?t=day`), with a
//! short cache per listing so a burst of `meme` in a channel makes one request, and a pause
//! after a 429 so a rate limit is not hammered. Every failure becomes a message a person can
//! act on; raw bodies are never shown or logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::lazy_client::LazyClient;

/// Where lazyops reads Reddit; tests point it at a loopback server.
pub const URL_VAR: &str = "LAZYOPS_REDDIT_URL";
const DEFAULT_URL: &str = "https://www.reddit.com";
/// Links shown to people always go to Reddit itself.
const PUBLIC_URL: &str = "https://www.reddit.com";
const FRESH_FOR: Duration = Duration::from_secs(120);
const FAILURE_PAUSE: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(8);
const LIMIT: u32 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listing {
    Hot,
    TopToday,
}

impl Listing {
    fn path(self, sub: &str) -> String {
        match self {
            Listing::Hot => format!("/r/{sub}/hot.json?limit={LIMIT}&raw_json=1"),
            Listing::TopToday => format!("/r/{sub}/top.json?t=day&limit={LIMIT}&raw_json=1"),
        }
    }
}

/// A post as lazyops uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Post {
    pub id: String,
    pub title: String,
    pub author: String,
    pub subreddit: String,
    /// The full link to the post on Reddit.
    pub link: String,
    /// The image itself, when the post is a single image.
    pub image: Option<String>,
    pub score: i64,
    pub num_comments: i64,
    pub over_18: bool,
    pub spoiler: bool,
    pub stickied: bool,
}

impl Post {
    /// What a work channel may be shown: a single safe-for-work, spoiler-free image that a
    /// moderator did not pin.
    pub fn is_safe_image(&self) -> bool {
        self.image.is_some() && !self.over_18 && !self.spoiler && !self.stickied
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RedditError {
    #[error("Reddit is rate limiting lazyops right now; try again in {0} seconds")]
    RateLimited(u64),
    #[error(
        "Reddit refused to show r/{0} (403): the subreddit may be private or banned, or Reddit is blocking this bot for now"
    )]
    Forbidden(String),
    #[error("r/{0} does not exist on Reddit")]
    NotFound(String),
    #[error("Reddit answered with a web page instead of data (maintenance or a block); try again later")]
    NotJson,
    #[error("Reddit is having trouble (HTTP {0}); try again later")]
    Status(u16),
    #[error("Reddit did not answer in time; try again later")]
    Timeout,
    #[error("could not reach Reddit; try again later")]
    Unreachable,
}

/// The cache and the HTTP client; one per process.
pub struct Reddit {
    http: LazyClient,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

struct Entry {
    until: Instant,
    result: Result<Arc<Vec<Post>>, RedditError>,
}

/// `<platform>:<app id>:<version> (by …)`, as Reddit asks: generic agents are blocked.
pub fn user_agent() -> String {
    format!(
        "{}:dev.lazyops.chatops:v{} (ChatOps bot; self-hosted by an engineering team)",
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION")
    )
}

impl Default for Reddit {
    fn default() -> Self {
        let http = LazyClient::new(|| {
            reqwest::Client::builder()
                .user_agent(user_agent())
                .timeout(TIMEOUT)
                // A missing subreddit redirects to search; that is an answer, not a page to follow.
                .redirect(reqwest::redirect::Policy::none())
        });
        Reddit { http, slots: Mutex::default() }
    }
}

impl Reddit {
    /// The posts of a listing, from the cache when it is fresh. Concurrent calls for the same
    /// listing wait for one request.
    pub async fn posts(&self, sub: &str, listing: Listing) -> Result<Arc<Vec<Post>>, RedditError> {
        let base = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_URL.into());
        self.posts_at(&base, sub, listing).await
    }

    async fn posts_at(&self, base: &str, sub: &str, listing: Listing) -> Result<Arc<Vec<Post>>, RedditError> {
        let url = format!("{}{}", base.trim_end_matches('/'), listing.path(sub));
        let slot = {
            let mut slots = match self.slots.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            slots.entry(url.to_ascii_lowercase()).or_default().clone()
        };
        let mut entry = slot.lock().await;
        if let Some(e) = entry.as_ref()
            && e.until > Instant::now()
        {
            return e.result.clone();
        }
        let result = self.fetch(&url, sub).await;
        let pause = match &result {
            Ok(_) => FRESH_FOR,
            Err(RedditError::RateLimited(secs)) => Duration::from_secs(*secs),
            Err(_) => FAILURE_PAUSE,
        };
        *entry = Some(Entry { until: Instant::now() + pause, result: result.clone() });
        result
    }

    fn http(&self) -> Result<&reqwest::Client, RedditError> {
        self.http.get().map_err(|e| {
            tracing::error!(error = %e, "cannot build the Reddit HTTP client");
            RedditError::Unreachable
        })
    }

    #[tracing::instrument(skip_all, fields(subreddit = sub))]
    async fn fetch(&self, url: &str, sub: &str) -> Result<Arc<Vec<Post>>, RedditError> {
        let resp = self.http()?.get(url).header("accept", "application/json").send().await.map_err(|e| {
            tracing::warn!(error = %e, "reddit request failed");
            if e.is_timeout() { RedditError::Timeout } else { RedditError::Unreachable }
        })?;
        let status = resp.status().as_u16();
        tracing::info!(status, remaining = header(&resp, "x-ratelimit-remaining").as_deref(), "reddit answered");
        match status {
            200 => {}
            429 => return Err(RedditError::RateLimited(retry_after(&resp))),
            403 => return Err(RedditError::Forbidden(sub.to_string())),
            404 | 301 | 302 | 307 | 308 => return Err(RedditError::NotFound(sub.to_string())),
            other => return Err(RedditError::Status(other)),
        }
        let json_type = header(&resp, "content-type").is_some_and(|t| t.to_ascii_lowercase().contains("json"));
        let body = read_capped(resp).await?;
        if !json_type || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            return Err(RedditError::NotJson);
        }
        parse_listing(&body).map(Arc::new)
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Seconds until Reddit takes requests again: `Retry-After`, else `X-Ratelimit-Reset`, else a
/// minute; never more than ten minutes.
fn retry_after(resp: &reqwest::Response) -> u64 {
    let secs =
        |name| header(resp, name).and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
    let s = secs("retry-after").or_else(|| secs("x-ratelimit-reset")).unwrap_or(60.0);
    (s.ceil() as u64).clamp(1, 600)
}

async fn read_capped(resp: reqwest::Response) -> Result<Vec<u8>, RedditError> {
    use crate::http_body::{self, BodyError};
    http_body::read(resp).await.map_err(|e| match e {
        BodyError::TooLarge => {
            tracing::warn!("reddit listing larger than {} bytes", http_body::MAX_BODY);
            RedditError::NotJson
        }
        BodyError::Timeout => RedditError::Timeout,
        BodyError::Broken(_) => RedditError::Unreachable,
    })
}

#[derive(Deserialize)]
struct Envelope {
    kind: String,
    data: ListingData,
}

#[derive(Deserialize)]
struct ListingData {
    #[serde(default)]
    children: Vec<Thing>,
}

#[derive(Deserialize)]
struct Thing {
    kind: String,
    data: serde_json::Value,
}

/// The fields lazyops reads from a `t3`; everything else Reddit sends is ignored.
#[derive(Deserialize)]
struct RawPost {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    subreddit: String,
    #[serde(default)]
    permalink: String,
    url: Option<String>,
    url_overridden_by_dest: Option<String>,
    post_hint: Option<String>,
    #[serde(default)]
    is_self: bool,
    #[serde(default)]
    is_video: bool,
    #[serde(default)]
    is_gallery: bool,
    #[serde(default)]
    over_18: bool,
    #[serde(default)]
    spoiler: bool,
    #[serde(default)]
    stickied: bool,
    #[serde(default)]
    score: i64,
    #[serde(default)]
    num_comments: i64,
}

/// Posts of a listing body; items that are not posts, or that lack an id, are skipped.
pub fn parse_listing(body: &[u8]) -> Result<Vec<Post>, RedditError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, "reddit listing did not parse");
        RedditError::NotJson
    })?;
    if env.kind != "Listing" {
        return Err(RedditError::NotJson);
    }
    Ok(env
        .data
        .children
        .into_iter()
        .filter(|t| t.kind == "t3")
        .filter_map(|t| serde_json::from_value::<RawPost>(t.data).ok())
        .filter(|p| !p.id.is_empty() && p.id.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(post)
        .collect())
}

fn post(p: RawPost) -> Post {
    let target = p.url_overridden_by_dest.or(p.url).map(|u| u.replace("&amp;", "&"));
    let single_image = !p.is_self && !p.is_video && !p.is_gallery;
    let image = target.filter(|u| {
        let image_url = u.starts_with("https://") && has_image_extension(u) && plain_url(u);
        single_image
            && image_url
            && match p.post_hint.as_deref() {
                None | Some("image") => true,
                Some(_) => false,
            }
    });
    // Reddit's permalinks are slugs; anything else links to the post by id.
    let slug = |c: char| c.is_ascii_alphanumeric() || "/_-".contains(c);
    let permalink = if p.permalink.starts_with('/') && p.permalink.chars().all(slug) {
        p.permalink
    } else {
        format!("/comments/{}/", p.id)
    };
    Post {
        link: format!("{PUBLIC_URL}{permalink}"),
        id: p.id,
        title: p.title,
        author: p.author,
        subreddit: p.subreddit,
        image,
        score: p.score,
        num_comments: p.num_comments,
        over_18: p.over_18,
        spoiler: p.spoiler,
        stickied: p.stickied,
    }
}

/// A URL a renderer can put in a link or an image without escaping: no spaces, quotes or
/// brackets that chat markup gives meaning to.
fn plain_url(url: &str) -> bool {
    url.len() <= 2000 && url.chars().all(|c| c.is_ascii_graphic() && !"<>\"'|\\`{}^".contains(c))
}

fn has_image_extension(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".gif", ".webp"].iter().any(|ext| path.ends_with(ext))
}

#[cfg(test)]
mod tests;
