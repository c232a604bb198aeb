//! Chores (issue 10): `meme` against a loopback Reddit speaking the real listing format,
//! `todo` on SQLite and PostgreSQL, and `manifest` rendered, parsed back and checked.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lazyops::command::quote;
use lazyops::manifests::yaml::{self, Node};
use serde_json::Value;

use crate::support::{PgDb, Run, Ws, postgres_url};

const HOT: &str = include_str!("../fixtures/reddit/ProgrammerHumor.hot.json");
const NSFW: &str = include_str!("../fixtures/reddit/nsfw_only.json");
const EMPTY: &str = include_str!("../fixtures/reddit/empty.json");
/// The safe-for-work single-image posts of the fixture.
const SAFE_IDS: [&str; 4] = ["1p6a2kq", "1p6b9tw", "1p6c4mn", "1p6d7xe"];

// ── a loopback Reddit ───────────────────────────────────────────────────────

#[derive(Clone, Default)]
struct Reddit {
    requests: Arc<Mutex<Vec<(String, String)>>>,
    hits: Arc<AtomicUsize>,
}

async fn listing(State(r): State<Reddit>, Path((sub, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    r.hits.fetch_add(1, Ordering::SeqCst);
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    r.requests.lock().unwrap().push((format!("/r/{sub}/{file}"), agent));
    let json = |body: &'static str| ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], body).into_response();
    match sub.as_str() {
        "ProgrammerHumor" => json(HOT),
        "nsfwonly" => json(NSFW),
        "emptysub" => json(EMPTY),
        "ratelimited" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ratelimit-used", "100"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "37")],
            "Too Many Requests",
        )
            .into_response(),
        "private" => {
            (StatusCode::FORBIDDEN, json("{\"reason\": \"private\", \"message\": \"Forbidden\", \"error\": 403}"))
                .into_response()
        }
        "maintenance" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>reddit.com: over capacity</title></head><body>…</body></html>",
        )
            .into_response(),
        _ => (StatusCode::FOUND, [(header::LOCATION, format!("/subreddits/search.json?q={sub}"))], "").into_response(),
    }
}

/// Starts the fake on its own thread and runtime, so tests can block on the binary.
fn fake_reddit() -> (String, Reddit) {
    let state = Reddit::default();
    let app = axum::Router::new().route("/r/{sub}/{file}", axum::routing::get(listing)).with_state(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, app).await.ok();
        });
    });
    (format!("http://{addr}"), state)
}

fn meme(ws: &Ws, reddit: &str, text: &str) -> Run {
    Run::from(ws.cmd("alice", &["run", "--json", text]).env("LAZYOPS_REDDIT_URL", reddit).output().expect("run"))
}

fn image_of(v: &Value) -> (String, String) {
    let block = v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "image")).expect("an image block");
    (block["url"].as_str().unwrap_or_default().to_string(), block["link"].as_str().unwrap_or_default().to_string())
}

// ── meme ────────────────────────────────────────────────────────────────────

#[test]
fn meme_shows_a_safe_image_post_with_title_image_and_link() {
    let ws = Ws::new();
    let (url, reddit) = fake_reddit();
    let r = meme(&ws, &url, "meme");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["command"], "meme");
    let (image, link) = image_of(&v);
    // The post is picked at random among the safe ones; its link names it (images may be
    // hosted elsewhere, under another name).
    assert!(SAFE_IDS.iter().any(|id| link.contains(&format!("/comments/{id}/"))), "{link}");
    assert!(image.starts_with("https://"), "{image}");
    assert!(link.starts_with("https://www.reddit.com/r/ProgrammerHumor/comments/"), "{link}");
    assert!(!v["headline"].as_str().unwrap_or_default().is_empty());
    let requests = reddit.requests.lock().unwrap().clone();
    assert_eq!(requests[0].0, "/r/ProgrammerHumor/hot.json");
    assert!(requests[0].1.contains("lazyops") && requests[0].1.contains(":v"), "User-Agent {:?}", requests[0].1);
}

#[test]
fn meme_never_repeats_a_post_in_the_same_place_then_says_so() {
    let ws = Ws::new();
    let (url, _reddit) = fake_reddit();
    let mut seen = BTreeSet::new();
    for _ in SAFE_IDS {
        let r = meme(&ws, &url, "meme ProgrammerHumor");
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let (image, _) = image_of(&r.json());
        assert!(seen.insert(image.clone()), "{image} shown twice");
    }
    let r = meme(&ws, &url, "meme programmerhumor");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.json()["headline"].as_str().unwrap_or_default().contains("already shown here"), "{}", r.stdout);
}

#[test]
fn a_title_with_mentions_cannot_ping() {
    let ws = Ws::new();
    let (url, _reddit) = fake_reddit();
    // Every safe post is shown once; one of them is titled "… <!channel> ship it".
    for _ in SAFE_IDS {
        let r = ws.cmd("alice", &["run", "meme"]).env("LAZYOPS_REDDIT_URL", &url).output().expect("run");
        let text = String::from_utf8_lossy(&r.stdout).into_owned();
        assert!(!text.contains("<!channel>") && !text.contains("@here"), "{text}");
    }
}

#[test]
fn meme_of_a_subreddit_the_team_does_not_allow_names_the_allowed_ones() {
    let ws = Ws::new();
    let (url, reddit) = fake_reddit();
    let r = meme(&ws, &url, "meme rustjerk");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.json()["headline"], "r/rustjerk is not allowed for team `oncall`; you may use r/ProgrammerHumor");
    assert_eq!(reddit.hits.load(Ordering::SeqCst), 0, "nothing is fetched for a refused subreddit");
}

/// The grammar's verdict on a typed command, with the demo catalog.
fn grammar_error(text: &str) -> String {
    let catalog = lazyops::workspace::demo_catalog();
    match lazyops::understand::grammar::parse(text, &catalog) {
        Ok(c) => panic!("`{text}` parsed as `{c}`"),
        Err(e) => e.message(),
    }
}

#[test]
fn a_subreddit_name_that_is_not_a_name_is_refused_and_nothing_is_fetched() {
    let ws = Ws::new();
    let (url, reddit) = fake_reddit();
    for (bad, name) in [
        ("meme a", "a"),
        ("meme r/ProgrammerHumor", "r/ProgrammerHumor"),
        ("meme abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuv"),
        ("meme \"two words\"", "two words"),
        ("meme pro-humor", "pro-humor"),
    ] {
        let msg = grammar_error(bad);
        assert!(
            msg.contains(&format!("`{name}` is not a subreddit name (2 to 21 letters, digits or _)")),
            "{bad}: {msg}"
        );
        // Through the whole pipeline nothing may run unconfirmed, and no name but an allowed one is fetched.
        let r = meme(&ws, &url, bad);
        assert_ne!(r.code, 0, "{bad}: {}", r.stdout);
    }
    assert_eq!(reddit.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn reddit_failures_get_a_friendly_answer() {
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "subreddits = [\"ProgrammerHumor\"]",
        "subreddits = [\"ProgrammerHumor\", \"ratelimited\", \"private\", \"maintenance\", \"emptysub\", \"nsfwonly\", \"gone\"]",
    );
    let (url, _reddit) = fake_reddit();
    for (sub, want) in [
        ("ratelimited", "Reddit is rate limiting lazyops right now; try again in 37 seconds"),
        ("private", "Reddit refused to show r/private (403)"),
        ("maintenance", "Reddit answered with a web page instead of data"),
        ("emptysub", "r/emptysub has no posts right now"),
        ("nsfwonly", "r/nsfwonly has no safe-for-work image posts right now"),
        ("gone", "r/gone does not exist on Reddit"),
    ] {
        let r = meme(&ws, &url, &format!("meme {sub}"));
        assert_eq!(r.code, 1, "{sub}: {}", r.stdout);
        let headline = r.json()["headline"].as_str().unwrap_or_default().to_string();
        assert!(headline.starts_with(want), "{sub}: {headline}");
    }
    let r = meme(&ws, "http://127.0.0.1:9", "meme ProgrammerHumor");
    assert_eq!(r.json()["headline"], "could not reach Reddit; try again later");
}

#[test]
fn a_bad_subreddit_in_config_is_a_check_problem() {
    let ws = Ws::new();
    ws.edit("lazyops.toml", "subreddits = [\"ProgrammerHumor\"]", "subreddits = [\"r/bad name\"]");
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subreddit `r/bad name` must be 2 to 21 letters, digits or _"), "{}", r.stdout);
}

// ── todo ────────────────────────────────────────────────────────────────────

/// `lazyops run` with the state database at `state` (the config's SQLite file when `None`).
fn todo(ws: &Ws, state: Option<&str>, who: &str, args: &[&str]) -> Run {
    let mut cmd = ws.cmd(who, &[&["run"], args].concat());
    if let Some(url) = state {
        cmd.env("LAZYOPS_STATE_URL", url);
    }
    Run::from(cmd.output().expect("run lazyops"))
}

fn rows(r: &Run) -> Vec<Vec<Value>> {
    let v = r.json();
    let table = v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "table")).cloned();
    table.map(|t| serde_json::from_value(t["rows"].clone()).unwrap_or_default()).unwrap_or_default()
}

fn todo_lifecycle(state: Option<&str>) {
    let ws = Ws::new();
    let r = todo(&ws, state, "alice", &["--json", "todo add \"rotate the staging db password\""]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["headline"], "added #1 to oncall's TODO list");
    let r = todo(&ws, state, "bob", &["--json", "todo add renew the TLS cert for ledger"]);
    assert_eq!(r.json()["headline"], "added #2 to oncall's TODO list", "{}", r.stdout);

    let r = todo(&ws, state, "alice", &["--json", "todo list"]);
    assert_eq!(r.json()["headline"], "2 open items on oncall's TODO list, oldest first");
    let got = rows(&r);
    assert_eq!(
        got[0][..4],
        [Value::from("#1"), "rotate the staging db password".into(), "local:alice".into(), "just now".into()]
    );
    assert_eq!(got[1][..3], [Value::from("#2"), "renew the TLS cert for ledger".into(), "local:bob".into()]);

    // The demo team confirms `todo done`.
    let r = todo(&ws, state, "bob", &["--json", "todo done 1"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    let r = todo(&ws, state, "bob", &["--json", "--yes", "todo done 1"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("by local:bob at "), "who and when: {}", r.stdout);
    let r = todo(&ws, state, "bob", &["--json", "--yes", "todo done #1"]);
    assert_eq!(r.code, 1);
    assert!(r.json()["headline"].as_str().unwrap_or_default().starts_with("#1 is already done (by local:bob"));
    let r = todo(&ws, state, "alice", &["--json", "todo list"]);
    assert_eq!(rows(&r).len(), 1);

    let r = todo(&ws, state, "alice", &["--json", "todo undo 1"]);
    assert_eq!(r.json()["headline"], "#1 is open again", "{}", r.stdout);
    let r = todo(&ws, state, "alice", &["--json", "todo assign 2 local:carol"]);
    assert_eq!(r.json()["headline"], "#2 is assigned to local:carol", "{}", r.stdout);
    let got = rows(&todo(&ws, state, "alice", &["--json", "todo list"]));
    assert_eq!(got.len(), 2);
    assert_eq!(got[1][4], "local:carol");

    let r = todo(&ws, state, "alice", &["--json", "--yes", "todo done 99"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["headline"], "oncall's TODO list has no item #99; `todo list` shows the open ones");
}

#[test]
fn todo_add_list_done_undo_assign_on_sqlite() {
    todo_lifecycle(None);
}

/// A fresh PostgreSQL database for one test, dropped when the guard goes.
#[test]
fn todo_add_list_done_undo_assign_on_postgres() {
    let Some(admin) = postgres_url() else { return };
    let db = PgDb::new(&admin);
    todo_lifecycle(Some(&db.url));
}

#[test]
fn one_team_cannot_see_or_complete_another_teams_items() {
    let ws = Ws::new();
    ws.edit(
        "lazyops.toml",
        "members = [\"local:*\", \"slack:U0123ABC\", \"github:octocat\"]",
        "members = [\"local:alice\"]",
    );
    // bob is only in web: not the demo's oncall reviewer either.
    ws.edit("lazyops.toml", "members = [\"local:bob\"]", "members = [\"local:carol\"]");
    ws.edit(
        "lazyops.toml",
        "[teams.oncall]",
        "[teams.web]\nmembers = [\"local:bob\"]\nplugins = [\"todo\"]\n\n[teams.oncall]",
    );
    let r = todo(&ws, None, "bob", &["--json", "todo add \"fix the flaky checkout test\""]);
    assert_eq!(r.json()["headline"], "added #1 to web's TODO list", "{}", r.stdout);
    let r = todo(&ws, None, "alice", &["--json", "--yes", "todo done 1"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["headline"], "oncall's TODO list has no item #1; `todo list` shows the open ones");
    assert_eq!(todo(&ws, None, "alice", &["--json", "todo list"]).json()["headline"], "oncall's TODO list is empty");
    let r = todo(&ws, None, "bob", &["--json", "todo list"]);
    assert_eq!(rows(&r).len(), 1, "bob's item is still open: {}", r.stdout);
    // Without confirmation configured, web completes at once.
    assert_eq!(todo(&ws, None, "bob", &["--json", "todo done 1"]).code, 0);
}

#[test]
fn todo_text_that_is_empty_or_too_long_is_refused() {
    let ws = Ws::new();
    for empty in ["todo add", "todo add \"\"", "todo add \"   \""] {
        assert!(grammar_error(empty).contains("the TODO text"), "{empty}");
        let r = todo(&ws, None, "alice", &[empty]);
        assert_ne!(r.code, 0, "{empty}: {}", r.stdout);
    }
    let huge = format!("todo add \"{}\"", "x".repeat(10 * 1024));
    let r = todo(&ws, None, "alice", &["--json", &huge]);
    assert_eq!(r.code, 2);
    assert!(r.json()["headline"].as_str().unwrap_or_default().starts_with("message too long"), "{}", r.stdout);
    // With a larger message limit, the plugin's own limit still holds.
    ws.edit("lazyops.toml", "audit_retention_days = 90", "audit_retention_days = 90\nmax_message_bytes = 20000");
    let r = todo(&ws, None, "alice", &["--json", &huge]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.json()["headline"]
            .as_str()
            .unwrap_or_default()
            .starts_with("a TODO item is at most 500 characters and this one has 10240"),
        "{}",
        r.stdout
    );
    assert_eq!(todo(&ws, None, "alice", &["--json", "todo list"]).json()["headline"], "oncall's TODO list is empty");
}

#[test]
fn todo_text_with_mentions_cannot_ping() {
    let ws = Ws::new();
    let r = todo(&ws, None, "alice", &["todo add \"<!channel> @here <@U0123ABC> rotate the keys\""]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    for out in [
        r.stdout,
        todo(&ws, None, "alice", &["todo list"]).stdout,
        todo(&ws, None, "alice", &["--json", "todo list"]).stdout,
    ] {
        for mention in ["<!channel>", "@here", "<@U0123ABC>"] {
            assert!(!out.contains(mention), "{mention} in {out}");
        }
        assert!(out.contains("rotate the keys"), "{out}");
    }
}

// ── manifest ────────────────────────────────────────────────────────────────

fn manifest(ws: &Ws, user_id: &str, email: &str) -> Run {
    let text = format!("manifest update-user-email user_id={} email={}", quote(user_id), quote(email));
    ws.run("alice", &["run", "--json", "--yes", &text])
}

/// The YAML code block of a reply, parsed, and the env value the container would get.
fn env_of(r: &Run, var: &str) -> (Node, String) {
    let v = r.json();
    let yaml_text = v["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "code" && b["lang"] == "yaml"))
        .and_then(|b| b["text"].as_str())
        .unwrap_or_else(|| panic!("no YAML block: {}", r.stdout))
        .to_string();
    let tree = yaml::parse(&yaml_text).unwrap_or_else(|e| panic!("{e}: {yaml_text}"));
    let containers =
        tree.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec")).and_then(|s| s.get("containers"));
    let Some(Node::Seq(cs)) = containers else { panic!("no containers: {yaml_text}") };
    let Some(Node::Seq(env)) = cs[0].get("env") else { panic!("no env: {yaml_text}") };
    let value = env
        .iter()
        .find(|e| e.get("name").and_then(Node::as_str) == Some(var))
        .and_then(|e| e.get("value"))
        .and_then(Node::as_str)
        .unwrap_or_else(|| panic!("no {var}: {yaml_text}"))
        .to_string();
    (tree, value)
}

#[test]
fn manifest_renders_the_demo_job_with_the_kubectl_line() {
    let ws = Ws::new();
    let waiting = ws.run("alice", &["run", "--json", "manifest update-user-email 42 new@example.com"]);
    assert_eq!(waiting.code, 3, "a manifest is always confirmed: {}", waiting.stdout);
    assert_eq!(waiting.json()["confirm"]["command"], "manifest update-user-email user_id=42 email=new@example.com");
    let r = manifest(&ws, "42", "new@example.com");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["headline"], "Job update-user-email-42 is ready to apply; lazyops does not apply it");
    let (tree, email) = env_of(&r, "NEW_EMAIL");
    assert_eq!(email, "new@example.com");
    assert_eq!(env_of(&r, "USER_ID").1, "42");
    assert_eq!(tree.get("kind").and_then(Node::as_str), Some("Job"));
    assert_eq!(tree.get("metadata").and_then(|m| m.get("name")).and_then(Node::as_str), Some("update-user-email-42"));
    let shell = v["blocks"].as_array().and_then(|b| b.iter().find(|b| b["lang"] == "sh")).expect("a kubectl block");
    assert_eq!(shell["text"], "kubectl apply -f update-user-email-42.yaml");
}

#[test]
fn hostile_manifest_values_are_rendered_as_inert_strings() {
    let ws = Ws::new();
    for email in [
        "a@example.com\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen",
        "x\"\n        - name: EVIL\n          value: \"y",
        "{{ user_id }}",
        "&anchor a@example.com",
        "*anchor",
        "<<: *anchor",
        "--- a@example.com",
        "a@example.com # not a comment",
        "it's \"quoted\" and \\back\\slashed",
        "!!binary aGk=",
        "{a: b}",
    ] {
        let r = manifest(&ws, "7", email);
        assert_eq!(r.code, 0, "{email:?}: {}{}", r.stdout, r.stderr);
        let (tree, got) = env_of(&r, "NEW_EMAIL");
        assert_eq!(got, email);
        assert_eq!(tree.get("kind").and_then(Node::as_str), Some("Job"), "{email:?}");
        assert_eq!(env_of(&r, "USER_ID").1, "7");
    }
}

#[test]
fn manifest_values_are_typed_before_anything_renders() {
    let ws = Ws::new();
    for (text, want) in [
        ("manifest update-user-email user_id=abc email=a@example.com", "`user_id` must be a whole number, not `abc`"),
        ("manifest update-user-email user_id=1", "`email` (text)"),
        ("manifest update-user-emial user_id=1 email=a@example.com", "update-user-email"),
        ("manifest update-user-email user_id=1 email=a@example.com colour=blue", "colour"),
        ("manifest update-user-email user_id=1 email=\"a\u{0}b\"", "email"),
    ] {
        let msg = grammar_error(text);
        assert!(msg.contains(want), "{text}: {msg}");
        // Through standard input, which also carries a NUL byte argv cannot.
        let r = ws.run_stdin("alice", &["run", "--yes", "-"], text.as_bytes());
        assert_ne!(r.code, 0, "{text}: {}", r.stdout);
        assert!(!r.stdout.contains("kubectl apply"), "{text}: {}", r.stdout);
    }
}

#[test]
fn a_value_that_would_make_an_invalid_object_is_refused() {
    let ws = Ws::new();
    ws.edit("manifests/update-user-email.yaml", "name: update-user-email-{{ user_id }}", "name: \"fix-{{ email }}\"");
    for email in ["Not A Label", "a\n---\nb", "x.example.com"] {
        let r = manifest(&ws, "1", email);
        assert_eq!(r.code, 1, "{email:?}: {}", r.stdout);
        let headline = r.json()["headline"].as_str().unwrap_or_default().to_string();
        assert!(headline.contains("is not a DNS-1123 label"), "{email:?}: {headline}");
        assert!(!r.stdout.contains("kubectl apply"), "{}", r.stdout);
    }
}

#[test]
fn template_problems_are_listed_by_check_with_file_and_line() {
    let ws = Ws::new();
    ws.write(
        "manifests/broken.yaml",
        "# name: broken\n# param: id int\n# colour: blue\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: \"x-{{ idd }}\"\n",
    );
    let r = ws.run("alice", &["check"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    for want in [
        "broken.yaml:3: unknown header `colour`",
        "broken.yaml:7: placeholder `{{ idd }}` has no `# param: idd <type>` line",
        "broken.yaml:2: param `id` is declared but the manifest never uses `{{ id }}`",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in {}", r.stdout);
    }
}
