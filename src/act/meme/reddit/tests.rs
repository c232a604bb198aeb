use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::*;

const HOT: &str = include_str!("../../../../tests/fixtures/reddit/ProgrammerHumor.hot.json");
const NSFW: &str = include_str!("../../../../tests/fixtures/reddit/nsfw_only.json");

#[derive(Clone, Default)]
struct Fake {
    hits: Arc<AtomicUsize>,
    agents: Arc<Mutex<Vec<String>>>,
}

/// A loopback Reddit: the subreddit name picks the answer.
async fn listing(State(fake): State<Fake>, Path((sub, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    fake.hits.fetch_add(1, Ordering::SeqCst);
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    fake.agents.lock().unwrap().push(agent);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let json = |body: &'static str| ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], body).into_response();
    match (sub.as_str(), file.as_str()) {
        ("ProgrammerHumor", "hot.json" | "top.json") => json(HOT),
        ("nsfwonly", _) => json(NSFW),
        ("ratelimited", _) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "42")],
            "Too Many Requests",
        )
            .into_response(),
        ("private", _) => {
            (StatusCode::FORBIDDEN, json("{\"reason\": \"private\", \"message\": \"Forbidden\", \"error\": 403}"))
                .into_response()
        }
        ("maintenance", _) => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!doctype html><html><body>Reddit is down for maintenance</body></html>",
        )
            .into_response(),
        ("htmlasjson", _) => json("<html>oops</html>"),
        _ => (StatusCode::FOUND, [(header::LOCATION, "/subreddits/search.json?q=nope")], "").into_response(),
    }
}

async fn serve() -> (String, Fake) {
    let fake = Fake::default();
    let app = axum::Router::new().route("/r/{sub}/{file}", axum::routing::get(listing)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}"), fake)
}

#[test]
fn the_fixture_yields_only_safe_single_images() {
    let posts = parse_listing(HOT.as_bytes()).unwrap();
    assert_eq!(posts.len(), 11);
    let safe: Vec<&str> = posts.iter().filter(|p| p.is_safe_image()).map(|p| p.id.as_str()).collect();
    assert_eq!(safe, ["1p6a2kq", "1p6b9tw", "1p6c4mn", "1p6d7xe"]);
    let first = &posts[1];
    assert_eq!(first.image.as_deref(), Some("https://i.redd.it/1p6a2kqx7q2mz0e1.jpeg"));
    assert!(first.link.starts_with("https://www.reddit.com/r/ProgrammerHumor/comments/1p6a2kq/"), "{}", first.link);
    assert!(parse_listing(NSFW.as_bytes()).unwrap().iter().all(|p| !p.is_safe_image()));
}

#[test]
fn what_is_not_a_listing_is_refused() {
    assert_eq!(parse_listing(b"{\"kind\": \"t5\", \"data\": {}}"), Err(RedditError::NotJson));
    assert_eq!(parse_listing(b"[]"), Err(RedditError::NotJson));
    assert_eq!(
        parse_listing(b"{\"kind\":\"Listing\",\"data\":{\"children\":[{\"kind\":\"t3\",\"data\":{\"id\":\"../x\"}}]}}"),
        Ok(vec![])
    );
}

#[test]
fn odd_links_and_image_urls_are_not_passed_on() {
    let odd = br#"{"kind":"Listing","data":{"children":[{"kind":"t3","data":{"id":"abc","permalink":"/r/x/<!here>/","url":"https://i.redd.it/a<b>.png"}}]}}"#;
    let posts = parse_listing(odd).unwrap();
    assert_eq!(posts[0].link, "https://www.reddit.com/comments/abc/");
    assert_eq!(posts[0].image, None);
}

#[tokio::test]
async fn a_burst_of_requests_makes_one_fetch() {
    let (base, fake) = serve().await;
    let reddit = Arc::new(Reddit::default());
    let calls = (0..20).map(|_| {
        let (r, b) = (reddit.clone(), base.clone());
        tokio::spawn(async move { r.posts_at(&b, "ProgrammerHumor", Listing::Hot).await.map(|p| p.len()) })
    });
    for c in calls {
        assert_eq!(c.await.unwrap(), Ok(11));
    }
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);
    // Another listing is another request.
    reddit.posts_at(&base, "ProgrammerHumor", Listing::TopToday).await.unwrap();
    assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
    let agent = fake.agents.lock().unwrap()[0].clone();
    assert!(agent.contains(":dev.lazyops.chatops:v") && agent.contains("ChatOps bot"), "{agent}");
}

#[tokio::test]
async fn failures_become_friendly_errors_and_a_rate_limit_is_not_hammered() {
    let (base, fake) = serve().await;
    let reddit = Reddit::default();
    let check = |sub: &'static str, want: RedditError| {
        let (reddit, base) = (&reddit, &base);
        async move { assert_eq!(reddit.posts_at(base, sub, Listing::Hot).await, Err(want), "{sub}") }
    };
    check("ratelimited", RedditError::RateLimited(42)).await;
    check("ratelimited", RedditError::RateLimited(42)).await;
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1, "the second ask waits out the limit");
    check("private", RedditError::Forbidden("private".into())).await;
    check("maintenance", RedditError::NotJson).await;
    check("htmlasjson", RedditError::NotJson).await;
    check("doesnotexist", RedditError::NotFound("doesnotexist".into())).await;
    let closed = "http://127.0.0.1:9";
    assert_eq!(reddit.posts_at(closed, "ProgrammerHumor", Listing::Hot).await, Err(RedditError::Unreachable));
}
