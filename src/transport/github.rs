//! GitHub webhooks: issue and pull-request comments that address the bot are answered with a
//! comment in the same thread. Deliveries are verified (`X-Hub-Signature-256`, constant time);
//! only trusted authors reach the pipeline, and comments by bots, edits and the bot's own
//! comments are ignored. Work happens after the acknowledgement.
//!
//! Replays: the signature covers the body but not `X-GitHub-Delivery`, so a captured delivery
//! sent again with a fresh delivery id verifies. A comment is therefore answered once by what
//! is signed — its repository, kind and id (and its edit time, for edits) — recorded in the
//! state store's `events` table so every instance agrees, and a comment older than that
//! record lives is refused as stale. The delivery id still drops GitHub's own redeliveries.

pub mod api;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::http::{AppState, bad_request};
use crate::config::Untrusted;
use crate::decide::policy::memberships;
use crate::message::{Identity, Message, Place, Transport};
use crate::pipeline::Options;
use crate::render::markdown;
use crate::store::now_ms;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("GITHUB_WEBHOOK_SECRET is not set, so no delivery can be verified")]
    NoSecret,
    #[error("no X-Hub-Signature-256 header (a sha1 X-Hub-Signature alone is not accepted)")]
    Missing,
    #[error("X-Hub-Signature-256 is malformed; expected sha256= and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body (wrong secret or altered body)")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256` over the raw body.
pub fn verify(secret: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or(VerifyError::NoSecret)?;
    let given = headers.get("x-hub-signature-256").ok_or(VerifyError::Missing)?;
    let given = given.to_str().map_err(|_| VerifyError::Malformed)?;
    let hex_sig = given.trim().strip_prefix("sha256=").ok_or(VerifyError::Malformed)?;
    if hex_sig.len() != 64 {
        return Err(VerifyError::Malformed);
    }
    let given = hex::decode(hex_sig).map_err(|_| VerifyError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| VerifyError::NoSecret)?;
    mac.update(body);
    // Constant time: an early-exit compare tells a forger how many leading bytes were right.
    mac.verify_slice(&given).map_err(|_| VerifyError::Mismatch)
}

/// The header value GitHub would send for a body. For tests.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct App {
    slug: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    body: String,
    /// RFC 3339 (the creation time until the comment is edited), signed with the rest of the
    /// body: what tells an old comment sent again from a new one.
    updated_at: String,
    user: User,
    #[serde(default)]
    author_association: String,
    performed_via_github_app: Option<App>,
    /// Review comments: the thread's first comment.
    in_reply_to_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Numbered {
    number: u64,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct CommentEvent {
    action: String,
    comment: Comment,
    /// `issue_comment` (issues and pull requests alike).
    issue: Option<Numbered>,
    /// `pull_request_review_comment`.
    pull_request: Option<Numbered>,
    repository: Repository,
    sender: User,
}

fn is_bot(u: &User) -> bool {
    u.kind.eq_ignore_ascii_case("bot") || u.login.ends_with("[bot]")
}

/// `owner/name` with GitHub's characters only, so it is safe in an API path.
fn valid_repo(full_name: &str) -> bool {
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    full_name.split_once('/').is_some_and(|(o, n)| ok(o) && ok(n) && n != "." && n != "..")
}

/// The command in a comment: the rest of the first line that starts with the prefix
/// (`/lazyops`) or the bot's mention (`@lazyops`); `None` when the comment is not for us.
pub fn addressed(body: &str, prefix: &str, login: &str) -> Option<String> {
    let mention = format!("@{login}");
    body.lines().map(str::trim).find_map(|line| {
        [prefix, mention.as_str()].iter().filter(|p| !p.is_empty()).find_map(|p| {
            let head = line.get(..p.len())?;
            let rest = &line[p.len()..];
            let boundary = rest.is_empty() || rest.starts_with(char::is_whitespace) || rest.starts_with([':', ',']);
            (head.eq_ignore_ascii_case(p) && boundary).then(|| rest.trim_start_matches([':', ',']).trim().to_string())
        })
    })
}

/// What identifies a comment among everything GitHub signs: the same comment delivered again
/// (with any delivery id) has the same key; an edit of it, a new one. Hashed, so a long
/// repository name fits the `events` key column.
fn comment_key(event: &str, ev: &CommentEvent) -> String {
    let c = &ev.comment;
    let key = match ev.action.as_str() {
        "edited" => format!("{event}:{}:{}@{}", ev.repository.full_name, c.id, c.updated_at),
        _ => format!("{event}:{}:{}", ev.repository.full_name, c.id),
    };
    hex::encode(<Sha256 as sha2::Digest>::digest(key.as_bytes()))
}

/// Whether a comment was written (or last edited) longer ago than its record in `events`
/// lives: a replay of it would no longer be recognised, so it is not answered at all.
fn stale(c: &Comment, window: std::time::Duration, now_secs: i64) -> Result<bool, String> {
    let at = time::OffsetDateTime::parse(&c.updated_at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("comment.updated_at `{}` is not an RFC 3339 time", c.updated_at))?;
    Ok(now_secs - at.unix_timestamp() > window.as_secs() as i64)
}

fn ack(what: &str) -> Response {
    (StatusCode::OK, format!("{what}\n")).into_response()
}

pub(crate) async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = verify(state.settings.github_webhook_secret.as_deref(), &headers, &body) {
        state.metrics.error("signature");
        tracing::warn!(reason = %e, "github delivery refused");
        return (StatusCode::UNAUTHORIZED, "invalid X-Hub-Signature-256\n").into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event = header("x-github-event").to_string();
    let delivery = header("x-github-delivery").to_string();
    let json_body = match payload_bytes(&headers, &body) {
        Ok(b) => b,
        Err(reason) => return bad_request(&state, "github", reason),
    };
    match event.as_str() {
        "ping" => return ack("pong"),
        "issue_comment" | "pull_request_review_comment" => {}
        "" => return bad_request(&state, "github", "no X-GitHub-Event header".into()),
        other => {
            tracing::info!(event = other, "github event ignored");
            return ack("ignored");
        }
    }
    let ev: CommentEvent = match serde_json::from_slice(&json_body) {
        Ok(ev) => ev,
        Err(e) => return bad_request(&state, "github", format!("malformed {event} payload: {e}")),
    };
    if ev.action != "created" {
        return ack("ignored: only new comments are read");
    }
    let ws = state.bot.workspace();
    let gh = &ws.config.github;
    let own = ev.comment.user.login.eq_ignore_ascii_case(&gh.login)
        || ev.comment.performed_via_github_app.as_ref().and_then(|a| a.slug.as_deref()).is_some_and(|s| s == gh.login);
    if is_bot(&ev.sender) || is_bot(&ev.comment.user) || own {
        return ack("ignored: comment by a bot");
    }
    let Some(text) = addressed(&ev.comment.body, &gh.prefix, &gh.login) else {
        return ack("ignored: not addressed to the bot");
    };
    let Some(number) = ev.issue.as_ref().or(ev.pull_request.as_ref()).map(|n| n.number) else {
        return bad_request(&state, "github", format!("{event} without an issue or pull_request number"));
    };
    if !valid_repo(&ev.repository.full_name) {
        return bad_request(&state, "github", "repository.full_name is not owner/name".into());
    }
    if delivery.is_empty() || delivery.len() > 200 {
        return bad_request(&state, "github", "no usable X-GitHub-Delivery header".into());
    }
    let window = state.settings.dedup_ttl;
    match stale(&ev.comment, window, state.settings.clock.now_secs()) {
        Ok(false) => {}
        Ok(true) => {
            tracing::warn!(delivery = %delivery, comment = ev.comment.id, "stale github comment dropped (replay?)");
            return ack("ignored: comment older than the replay window");
        }
        Err(reason) => return bad_request(&state, "github", reason),
    }
    // Busy before the deliveries are recorded, so GitHub's "Redeliver" can try again later.
    let asked = Message {
        who: Identity::new(Transport::Github, &ev.comment.user.login),
        place: Place {
            transport: Transport::Github,
            channel: format!("{}#{number}", ev.repository.full_name),
            thread: None,
        },
        text: text.clone(),
    };
    let permit = match state.admit(&asked).await {
        Ok(permit) => permit,
        Err(busy) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", busy.headline)).into_response(),
    };
    // GitHub's own redelivery first (same delivery id), then the comment itself under any id.
    let seen = [
        ("github", delivery.clone(), "duplicate delivery"),
        ("github-comment", comment_key(&event, &ev), "comment already answered"),
    ];
    for (source, key, said) in seen {
        match state.bot.store().first_delivery(source, &key, window, now_ms()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(delivery = %delivery, reason = said, "github delivery dropped");
                return ack(said);
            }
            Err(e) => {
                state.metrics.error("store");
                tracing::error!(error = %e, "cannot record the github delivery");
                return (StatusCode::SERVICE_UNAVAILABLE, "state database unavailable\n").into_response();
            }
        }
    }
    let text = if text.is_empty() { "help".to_string() } else { text };
    let review = event == "pull_request_review_comment";
    let thread = review.then(|| ev.comment.in_reply_to_id.unwrap_or(ev.comment.id));
    let job = Job {
        repo: ev.repository.full_name,
        number,
        thread,
        login: ev.comment.user.login,
        association: ev.comment.author_association,
        text,
    };
    let work = state.clone();
    state.tasks.spawn(async move {
        let _permit = permit;
        answer(&work, job).await;
    });
    (StatusCode::ACCEPTED, "accepted\n").into_response()
}

/// The JSON of a delivery: the body itself, or the `payload` field of a form-encoded hook.
fn payload_bytes(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(body.to_vec());
    }
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    serde_urlencoded::from_bytes::<Form>(body)
        .map(|f| f.payload.into_bytes())
        .map_err(|e| format!("form-encoded delivery without a payload field: {e}"))
}

/// What the background work needs from a delivery.
struct Job {
    repo: String,
    number: u64,
    /// The review thread's first comment, for pull-request review comments.
    thread: Option<u64>,
    login: String,
    association: String,
    text: String,
}

/// Trusted: a team lists this login, or its `author_association` is in `[github] trusted`.
fn trusted(state: &AppState, who: &Identity, association: &str) -> bool {
    let ws = state.bot.workspace();
    let listed = memberships(&ws.config, who)
        .iter()
        .any(|m| m.team.members.iter().any(|p| p.eq_ignore_ascii_case(who.as_str())));
    listed || ws.config.github.trusted.iter().any(|t| t.eq_ignore_ascii_case(association))
}

async fn answer(state: &AppState, job: Job) {
    let who = Identity::new(Transport::Github, &job.login);
    let place = Place {
        transport: Transport::Github,
        channel: format!("{}#{}", job.repo, job.number),
        thread: job.thread.map(|t| t.to_string()),
    };
    let ws = state.bot.workspace();
    let prefix = ws.config.github.prefix.clone();
    let body = if trusted(state, &who, &job.association) {
        let msg = Message { who: who.clone(), place: place.clone(), text: job.text.clone() };
        let reply = state.bot.handle(&msg, Options::default()).await;
        state.observe(&reply);
        markdown::render(&reply, &prefix)
    } else {
        tracing::info!(who = %who, association = %job.association, "untrusted github author");
        if ws.config.github.untrusted == Untrusted::Silence {
            return;
        }
        // One refusal per person and thread, so a persistent stranger cannot make the bot spam.
        let key = format!("{}:{}", place.key(), who.as_str());
        let ttl = std::time::Duration::from_secs(30 * 24 * 3600);
        if !state.bot.store().first_delivery("github-refusal", &key, ttl, now_ms()).await.unwrap_or(false) {
            return;
        }
        format!(
            "Sorry @{}, I only take commands from members of this project's teams. A maintainer can add `github:{}` to a team in lazyops.toml.\n",
            job.login.replace('@', ""),
            job.login
        )
    };
    let sent = match job.thread {
        Some(root) => state.github.reply_in_review(&job.repo, job.number, root, &body).await,
        None => state.github.comment(&job.repo, job.number, &body).await,
    };
    if let Err(e) = sent {
        state.metrics.error("github_api");
        state.undelivered(&who, &place, None, &e.to_string()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_github_docs_test_vector_verifies() {
        let secret = "It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), sig);
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", HeaderValue::from_static(sig));
        assert_eq!(verify(Some(secret), &h, b"Hello, World!"), Ok(()));
        assert_eq!(verify(Some(secret), &h, b"Hello, World?"), Err(VerifyError::Mismatch));
        assert_eq!(verify(Some("other"), &h, b"Hello, World!"), Err(VerifyError::Mismatch));
        assert_eq!(verify(None, &h, b"Hello, World!"), Err(VerifyError::NoSecret));
    }

    #[test]
    fn sha1_only_or_malformed_signatures_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature", HeaderValue::from_static("sha1=0123456789abcdef0123456789abcdef01234567"));
        assert_eq!(verify(Some("s"), &h, b"x"), Err(VerifyError::Missing));
        h.insert("x-hub-signature-256", HeaderValue::from_static("sha1=0123"));
        assert_eq!(verify(Some("s"), &h, b"x"), Err(VerifyError::Malformed));
        h.insert("x-hub-signature-256", HeaderValue::from_static("sha256=zz"));
        assert_eq!(verify(Some("s"), &h, b"x"), Err(VerifyError::Malformed));
    }

    #[test]
    fn a_comment_addresses_the_bot_by_prefix_or_mention_on_any_line() {
        let check = |body: &str| addressed(body, "/lazyops", "lazyops-bot");
        assert_eq!(check("/lazyops db list").as_deref(), Some("db list"));
        assert_eq!(
            check("LGTM\n\n/LazyOps deploy version payments\nthanks").as_deref(),
            Some("deploy version payments")
        );
        assert_eq!(
            check("@lazyops-bot: which version of payments is live?").as_deref(),
            Some("which version of payments is live?")
        );
        assert_eq!(check("/lazyops").as_deref(), Some(""));
        assert_eq!(check("/lazyopsx db list"), None);
        assert_eq!(check("> /lazyops db list"), None, "a quote is not a command");
        assert_eq!(check("@lazyops-bots hi"), None);
        assert_eq!(check("nothing here"), None);
    }

    fn event(action: &str, repo: &str, id: u64, updated_at: &str) -> CommentEvent {
        serde_json::from_value(serde_json::json!({
            "action": action,
            "comment": {"id": id, "body": "/lazyops help", "user": {"login": "octocat"}, "updated_at": updated_at},
            "repository": {"full_name": repo},
            "sender": {"login": "octocat"},
        }))
        .unwrap()
    }

    #[test]
    fn a_comment_is_known_by_its_repository_kind_and_id_and_an_edit_by_its_time() {
        let t = "2026-11-20T10:00:00Z";
        let key = |action, repo, id, at| comment_key("issue_comment", &event(action, repo, id, at));
        let first = key("created", "acme/app", 7, t);
        assert_eq!(first, key("created", "acme/app", 7, "2026-11-21T10:00:00Z"), "a replay is the same comment");
        assert_ne!(first, key("created", "acme/app", 8, t));
        assert_ne!(first, key("created", "acme/other", 7, t));
        assert_ne!(first, comment_key("pull_request_review_comment", &event("created", "acme/app", 7, t)));
        assert_ne!(key("edited", "acme/app", 7, t), key("edited", "acme/app", 7, "2026-11-20T10:05:00Z"));
        assert_eq!(first.len(), 64, "fits the events key column whatever the repository name");
    }

    #[test]
    fn comments_older_than_the_replay_window_are_stale() {
        let day = std::time::Duration::from_secs(24 * 3600);
        let c = event("created", "acme/app", 7, "2026-11-20T10:00:00Z").comment;
        let written = 1_795_168_800; // 2026-11-20T10:00:00Z
        assert_eq!(stale(&c, day, written + 60), Ok(false));
        assert_eq!(stale(&c, day, written + 24 * 3600 + 1), Ok(true));
        let bad = event("created", "acme/app", 7, "yesterday").comment;
        assert!(stale(&bad, day, written).is_err());
    }

    #[test]
    fn repository_names_are_checked_before_they_reach_an_api_path() {
        assert!(valid_repo("Codertocat/Hello-World"));
        assert!(!valid_repo("a/../b") && !valid_repo("a/..") && !valid_repo("noslash") && !valid_repo("a/b?x=1"));
    }
}
