use serde_json::Value;

use super::*;
use crate::render::reply::{Block, PendingConfirm, Reply, Status};

/// Renders and checks what every comment must respect, then returns it for a snapshot.
fn check(reply: &Reply) -> String {
    let text = render(reply, "/lazyops");
    assert!(text.chars().count() <= MAX_COMMENT, "{} chars", text.chars().count());
    text
}

fn table(rows: Vec<Vec<Value>>) -> Reply {
    Reply::done(format!("{} rows from users (prod)", rows.len()))
        .command("db query recent-signups")
        .with(Block::Table { columns: vec!["id".into(), "email".into(), "note".into()], rows: rows.into(), note: None })
}

#[test]
fn a_table_reply_is_a_markdown_table() {
    let reply = table(vec![
        vec![Value::from(1), Value::from("alice@example.com"), Value::Null],
        vec![Value::from(2), Value::from("bob@example.com"), Value::from("vip")],
    ]);
    insta::assert_snapshot!(check(&reply));
}

#[test]
fn injection_in_cells_is_escaped_so_the_table_holds_and_nobody_is_pinged() {
    let reply = table(vec![vec![
        Value::from(1),
        Value::from("a|b `code` <details><summary>x</summary> [click](https://evil.example)"),
        Value::from("@octocat and @github/security, cc alice@example.com\nnext line"),
    ]]);
    let text = check(&reply);
    insta::assert_snapshot!(text);
    let row = text.lines().find(|l| l.starts_with("| 1 ")).unwrap();
    // Exactly the four column borders are unescaped pipes.
    let borders = row.char_indices().filter(|(i, c)| *c == '|' && (*i == 0 || &row[i - 1..*i] != "\\")).count();
    assert_eq!(borders, 4, "{row}");
    assert!(!text.contains("<details>"), "{text}");
    assert!(!text.contains("@octocat") && !text.contains("@github/security"));
    assert!(text.contains("alice@example.com"), "emails stay readable");
    assert!(!text.contains("](https://evil"), "no live links from data");
}

#[test]
fn a_long_table_folds_into_details() {
    let rows = (0..40).map(|i| vec![Value::from(i), Value::from(format!("u{i}@example.com")), Value::Null]).collect();
    let text = check(&table(rows));
    assert!(text.contains("<details><summary>40 rows</summary>\n\n| id | email | note |"), "{text}");
    assert!(text.trim_end().ends_with("</details>"));
}

#[test]
fn a_huge_result_stays_under_65536_characters_and_says_so() {
    let rows =
        (0..5000).map(|i| vec![Value::from(i), Value::from("x".repeat(50)), Value::from("y".repeat(50))]).collect();
    let text = check(&table(rows));
    assert!(text.chars().count() > 60_000);
    assert!(text.contains("more rows not shown"));
    assert!(text.contains("output truncated"));
}

#[test]
fn code_with_backticks_gets_a_longer_fence() {
    let reply =
        Reply::failed("boom").with(Block::Code { lang: Some("sql".into()), text: "select '```' -- @octocat".into() });
    let text = check(&reply);
    assert!(text.contains("````sql\nselect '```' -- @octocat\n````"), "{text}");
}

#[test]
fn mentions_in_headlines_and_text_are_neutralised() {
    let reply = Reply::failed("unknown service `@admin`").text("ping @octocat <b>bold</b>");
    let text = check(&reply);
    assert!(!text.contains("@octocat") && !text.contains("<b>"), "{text}");
}

#[test]
fn a_confirmation_tells_how_to_confirm_by_comment() {
    let mut reply = Reply::new(Status::Confirm, "run `test run smoke staging`?").command("test run smoke staging");
    reply.confirm = Some(PendingConfirm {
        code: "7F3K".into(),
        command: "test run smoke staging".into(),
        expires_at: "2026-11-25T12:03:00Z".into(),
        id: "0123456789abcdef".into(),
    });
    let text = check(&reply);
    assert!(!text.contains("0123456789abcdef"));
    insta::assert_snapshot!(text);
}

/// Issue 17: a lone `\r` in a typed value ended the confirm line's code span and paragraph
/// on GitHub, and what followed rendered raw (mentions, HTML, links).
#[test]
fn a_carriage_return_in_a_value_cannot_break_out_of_the_confirm_line() {
    let command = "todo add \"fix\r\r@octocat <b>hi</b> [x](https://evil.example)\"";
    let mut reply = Reply::new(Status::Confirm, format!("run `{command}`?")).command(command);
    reply.confirm = Some(PendingConfirm {
        code: "7F3K".into(),
        command: command.into(),
        expires_at: "2026-11-25T12:03:00Z".into(),
        id: "0123456789abcdef".into(),
    });
    let text = check(&reply);
    assert!(!text.contains('\r'), "{text:?}");
    let line = text.lines().find(|l| l.starts_with("To run")).expect("the confirm line");
    assert!(
        line.starts_with(
            "To run `todo add \"fix\\r\\r@octocat <b>hi</b> [x](https://evil.example)\"`, reply `/lazyops confirm 7F3K`"
        ),
        "{line}"
    );
}

#[test]
fn images_fields_and_lists_render() {
    let reply = Reply::done("a meme")
        .with(Block::Image {
            url: "https://i.redd.it/abc.png".into(),
            alt: "It works [on my] machine".into(),
            link: Some("https://www.reddit.com/r/ProgrammerHumor/comments/abc/".into()),
        })
        .with(Block::Fields { fields: vec![("usage".into(), "db query <query>".into())] })
        .with(Block::List { items: vec!["e.g. db list".into()] })
        .with(Block::Image { url: "javascript:alert(1)".into(), alt: "x".into(), link: None });
    insta::assert_snapshot!(check(&reply));
}

#[test]
fn an_approval_asks_github_reviewers_by_mention_and_says_how_to_answer() {
    let mut reply = Reply::new(Status::AwaitingApproval, "`db sql users \"SELECT 1\" --env prod` waits for approval");
    reply.approval = Some(crate::render::reply::PendingApproval {
        code: "7F3K9Q".into(),
        command: "db sql users \"SELECT 1\" --env prod".into(),
        approvers: vec!["role:reviewer".into()],
        count: 2,
        expires_at: "2026-11-25T12:03:00Z".into(),
        mentions: vec!["github:hubot".into(), "slack:U1".into(), "github:a@b".into()],
        slack_group: None,
        id: "secret-id".into(),
    });
    reply.mention = vec!["github:octocat".into()];
    let out = render(&reply, "/lazyops");
    assert!(out.contains("@hubot This needs 2 approvals (role:reviewer)"), "{out}");
    assert!(out.contains("reply `/lazyops approve 7F3K9Q` or `/lazyops reject 7F3K9Q <reason>`"), "{out}");
    assert!(out.trim_end().ends_with("@octocat"), "{out}");
    assert!(!out.contains("@a@b") && !out.contains("secret-id") && !out.contains("U1"), "{out}");
}

#[test]
fn a_question_lists_its_choices_numbered_and_says_how_to_answer() {
    let mut reply = Reply::new(Status::Question, "Which service: payments, users or ledger?");
    reply.choices = vec!["payments".into(), "users".into(), "led`ger".into()];
    let out = render(&reply, "/lazyops");
    assert!(out.contains("1. `payments`\n2. `users`\n3. `led'ger`"), "{out}");
    assert!(out.contains("Reply `/lazyops <number>` or the value."), "{out}");
}
