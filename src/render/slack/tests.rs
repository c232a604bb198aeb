use serde_json::Value;

use super::*;
use crate::render::reply::{Block, PendingApproval, PendingConfirm, Reply, Status};

/// Renders and checks the limits every message must respect, then returns it for a snapshot.
fn check(reply: &Reply) -> SlackMessage {
    let msg = render(reply);
    assert!(msg.blocks.len() <= MAX_BLOCKS, "{} blocks", msg.blocks.len());
    assert!(!msg.text.is_empty());
    assert!(msg.text.chars().count() <= MAX_FALLBACK);
    for b in &msg.blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= MAX_SECTION, "section of {} chars", t.chars().count());
        }
        if let Some(fields) = b["fields"].as_array() {
            assert!(fields.len() <= MAX_FIELDS);
        }
    }
    msg
}

fn confirm_reply() -> Reply {
    let mut reply = Reply::new(Status::Confirm, "run `test run smoke staging`?").command("test run smoke staging");
    reply.confirm = Some(PendingConfirm {
        code: "7F3K".into(),
        command: "test run smoke staging".into(),
        expires_at: "2026-11-25T12:03:00Z".into(),
        id: "0123456789abcdef0123456789abcdef".into(),
    });
    reply
}

#[test]
fn a_table_reply_is_a_monospace_block_with_a_fallback() {
    let reply = Reply::done("2 rows from users (prod) in 1 ms").command("db query recent-signups").with(Block::Table {
        columns: vec!["id".into(), "email".into(), "note".into()],
        rows: vec![
            vec![Value::from(1), Value::from("alice@example.com"), Value::Null],
            vec![Value::from(2), Value::from("bob@example.com"), Value::from("likes `code` & <tags>")],
        ]
        .into(),
        note: Some("first 2 of more".into()),
    });
    insta::assert_json_snapshot!(check(&reply));
}

#[test]
fn a_confirmation_has_confirm_and_cancel_buttons_carrying_the_id() {
    let msg = check(&confirm_reply());
    let actions = msg.blocks.last().unwrap();
    assert_eq!(actions["type"], "actions");
    assert_eq!(actions["elements"][0]["action_id"], CONFIRM_ACTION);
    assert_eq!(actions["elements"][0]["value"], "0123456789abcdef0123456789abcdef");
    assert_eq!(actions["elements"][1]["action_id"], CANCEL_ACTION);
    assert!(msg.text.contains("confirm 7F3K"));
    assert!(!msg.text.contains("0123456789abcdef"), "the id is never shown as text");
    insta::assert_json_snapshot!(msg);
}

/// Issue 17: the command a confirmation names (in its headline) stays one line inside its
/// code span.
#[test]
fn a_line_break_in_a_value_stays_inside_the_confirm_line() {
    let mut reply = confirm_reply();
    let command = "todo add \"fix\r\n\n<!channel> *bold*\"";
    reply.headline = format!("run `{command}`?");
    reply.confirm.as_mut().unwrap().command = command.into();
    let msg = check(&reply);
    let texts: Vec<&str> = msg.blocks.iter().filter_map(|b| b["text"]["text"].as_str()).collect();
    let line = texts.iter().find(|t| t.contains("todo add")).unwrap_or_else(|| panic!("{texts:?}"));
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    assert!(line.contains("`todo add \"fix\\r\\n\\n&lt;!channel&gt; bold\"`?"), "{line}");
}

fn checklist_reply(items: usize) -> Reply {
    let mut reply = Reply::done("⚠️ payments → prod: 1 item to look at before releasing")
        .with(Block::List { items: vec!["⚠️ changelog reviewed: waiting for someone to tick it".into()] });
    for i in 0..items {
        let name = if i == 0 { "changelog reviewed".to_string() } else { format!("item {i}") };
        reply
            .actions
            .push(crate::render::Action {
                id: format!("tick:payments:prod:{name}"), label: format!("tick “{name}”")
            });
    }
    reply
}

#[test]
fn a_checklist_item_to_tick_is_a_button_carrying_its_action_id() {
    let msg = check(&checklist_reply(1));
    let actions = msg.blocks.last().unwrap();
    assert_eq!(actions["type"], "actions");
    assert_eq!(actions["elements"][0]["action_id"], format!("{REPLY_ACTION}_0"));
    assert_eq!(actions["elements"][0]["value"], "tick:payments:prod:changelog reviewed");
    assert_eq!(actions["elements"][0]["text"]["text"], "tick “changelog reviewed”");
    insta::assert_json_snapshot!(msg);
}

#[test]
fn many_buttons_stay_inside_slacks_limits_and_unusable_ids_get_none() {
    let mut reply = checklist_reply(300);
    reply.actions[1].label = "x".repeat(200);
    reply.actions[2].id = format!("tick:payments:prod:{}", "y".repeat(3000));
    let msg = check(&reply);
    let blocks: Vec<&Value> = msg.blocks.iter().filter(|b| b["type"] == "actions").collect();
    assert_eq!(blocks.len(), MAX_ACTION_BLOCKS);
    let buttons: Vec<&Value> = blocks.iter().flat_map(|b| b["elements"].as_array().unwrap()).collect();
    assert_eq!(buttons.len(), MAX_ACTION_BLOCKS * MAX_BUTTONS);
    assert!(blocks.iter().all(|b| b["elements"].as_array().unwrap().len() <= MAX_BUTTONS));
    assert!(buttons.iter().all(|b| b["value"].as_str().unwrap().len() <= MAX_BUTTON_VALUE));
    assert!(buttons.iter().all(|b| b["text"]["text"].as_str().unwrap().chars().count() <= MAX_BUTTON_TEXT));
    let ids: std::collections::HashSet<&str> = buttons.iter().map(|b| b["action_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), buttons.len(), "action ids are unique");
    assert!(!buttons.iter().any(|b| b["value"].as_str().unwrap().contains("yyy")), "a cut id would match nothing");
    // With a confirmation too, both sets of buttons fit.
    let mut both = reply.clone();
    both.confirm = confirm_reply().confirm;
    let msg = check(&both);
    assert_eq!(msg.blocks.last().unwrap()["elements"][0]["action_id"], CONFIRM_ACTION);
}

#[test]
fn mentions_and_links_in_data_stay_text() {
    let reply = Reply::failed("<!channel> boom <@U123>").text("see <https://evil.example|here> & more");
    let msg = check(&reply);
    let all = serde_json::to_string(&msg).unwrap();
    assert!(!all.contains("<!channel>") && !all.contains("<@U123>") && !all.contains("<https://"), "{all}");
    insta::assert_json_snapshot!(msg);
}

#[test]
fn long_text_is_split_into_sections_of_at_most_3000_characters() {
    let long = "word ".repeat(2000);
    let msg = check(&Reply::done("long").text(long.clone()));
    assert_eq!(msg.blocks.len(), 1 + long.chars().count().div_ceil(MAX_SECTION));
}

#[test]
fn a_long_table_is_one_code_block_and_a_count_of_the_rows_not_shown() {
    let rows: Vec<_> = (0..118)
        .map(|i| {
            let email = format!("customer.number{i}@example.com");
            vec![Value::from(i), Value::from(email), Value::from("2026-11-20T14:03:00Z"), Value::from("failed")]
        })
        .collect();
    let reply = Reply::done("118 rows").with(Block::Table {
        columns: vec!["id".into(), "email".into(), "created_at".into(), "status".into()],
        rows: rows.into(),
        note: None,
    });
    let msg = check(&reply);
    assert_eq!(msg.blocks.len(), 3, "headline, one code block, the count: {:?}", msg.blocks);
    let t = msg.blocks[1]["text"]["text"].as_str().unwrap();
    assert!(t.starts_with("```\nid   email") && t.ends_with("\n```"), "{t}");
    assert!(t.chars().count() <= MAX_SECTION);
    let shown = t.lines().count() - 4;
    let count = msg.blocks[2]["elements"][0]["text"].as_str().unwrap();
    assert_eq!(
        count,
        format!("{} more rows not shown ({shown} of 118); `lazyops run` in a terminal shows them all", 118 - shown)
    );
}

#[test]
fn a_headline_is_bold_and_times_are_date_tokens_each_reader_sees_in_local_time() {
    let msg = check(&Reply::done("deployed 2026-11-20 14:03 UTC (3 days ago)").text("expires 2026-12-03T12:11:16Z"));
    assert_eq!(
        msg.blocks[0]["text"]["text"],
        "*deployed <!date^1795183380^{date_short_pretty} {time}|2026-11-20 14:03 UTC> (3 days ago)*"
    );
    assert_eq!(
        msg.blocks[1]["text"]["text"],
        "expires <!date^1796299876^{date_short_pretty} {time}|2026-12-03T12:11:16Z>"
    );
    let code = check(&Reply::done("x").with(Block::Code { lang: None, text: "2026-12-03T12:11:16Z".into() }));
    assert!(!code.blocks[1]["text"]["text"].as_str().unwrap().contains("<!date"), "code stays as written");
}

#[test]
fn a_confirmation_names_its_command_once() {
    let msg = check(&confirm_reply());
    let all: String = msg.blocks.iter().filter_map(|b| b["text"]["text"].as_str()).collect();
    assert_eq!(all.matches("test run smoke staging").count(), 1, "{all}");
}

#[test]
fn backticks_in_a_cell_cannot_close_the_code_fence() {
    let reply = Reply::done("x").with(Block::Table {
        columns: vec!["v".into()],
        rows: vec![vec![Value::from("```\n<!here>")]].into(),
        note: None,
    });
    let msg = check(&reply);
    let t = msg.blocks[1]["text"]["text"].as_str().unwrap();
    assert_eq!(t.matches("```").count(), 2, "{t}");
    assert!(!t.contains("<!here>"));
}

#[test]
fn more_than_50_blocks_are_cut_with_a_notice_and_the_buttons_kept() {
    let mut reply = confirm_reply();
    for i in 0..80 {
        reply = reply.text(format!("paragraph {i}"));
    }
    let msg = check(&reply);
    assert_eq!(msg.blocks.len(), MAX_BLOCKS);
    assert_eq!(msg.blocks.last().unwrap()["type"], "actions");
    let notice = &msg.blocks[MAX_BLOCKS - 3];
    assert_eq!(notice["type"], "context");
    assert!(notice["elements"][0]["text"].as_str().unwrap().contains("more blocks not shown"));
}

#[test]
fn many_fields_are_grouped_by_ten() {
    let fields = (0..23).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let msg = check(&Reply::done("fields").with(Block::Fields { fields }));
    assert_eq!(msg.blocks.len(), 1 + 3);
}

#[test]
fn an_image_is_an_image_block_with_alt_text_and_a_source_link() {
    let reply = Reply::done("a meme from r/ProgrammerHumor").with(Block::Image {
        url: "https://i.redd.it/abc.png".into(),
        alt: "It works on my machine".into(),
        link: Some("https://www.reddit.com/r/ProgrammerHumor/comments/abc/".into()),
    });
    insta::assert_json_snapshot!(check(&reply));
}

#[test]
fn an_image_that_is_not_http_becomes_text() {
    let reply = Reply::done("x").with(Block::Image { url: "javascript:alert(1)".into(), alt: "".into(), link: None });
    let msg = check(&reply);
    assert_eq!(msg.blocks[1]["type"], "section");
}

#[test]
fn an_answered_confirmation_says_who_and_drops_the_buttons() {
    let outcome = Reply::done("cancelled `test run smoke staging`").command("test run smoke staging");
    let msg = answered(&outcome, "U2147483697", false);
    assert!(msg.blocks.iter().all(|b| b["type"] != "actions"));
    insta::assert_json_snapshot!(msg);
}

proptest::proptest! {
    /// Pieces stay within the limit, are slices of the text, and lose nothing but the line
    /// breaks they were split at (and blank lines at the start of a piece).
    #[test]
    fn chunks_keep_every_character_within_the_limit(
        lines in proptest::collection::vec("[a-zé€ ]{0,40}", 0..30),
        max in 1usize..50,
    ) {
        let text = lines.join("\n");
        let pieces = chunks(&text, max);
        proptest::prop_assert!(!pieces.is_empty());
        for p in &pieces {
            proptest::prop_assert!(p.chars().count() <= max, "{p:?} over {max}");
        }
        let kept: String = pieces.concat().chars().filter(|c| *c != '\n').collect();
        let given: String = text.chars().filter(|c| *c != '\n').collect();
        proptest::prop_assert_eq!(kept, given);
    }
}

/// Escaping one character at a time: what `push_escaped` does on bytes.
fn escaped_by_chars(s: &str, code: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' if code => out.push('ˋ'),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn escaping_bytes_matches_escaping_characters(s in "[a-z<>&`\n\t\u{0}-\u{1f}\u{7f}-\u{a0}é€😀 ]{0,40}", code: bool) {
        let mut out = String::new();
        push_escaped(&mut out, &s, code);
        proptest::prop_assert_eq!(out, escaped_by_chars(&s, code));
    }
}

#[test]
fn an_approval_card_mentions_the_approvers_and_has_approve_and_reject_buttons() {
    let mut reply = Reply::new(Status::AwaitingApproval, "`db sql users \"SELECT 1\" --env prod` waits for approval")
        .with(Block::Code { lang: Some("sql".into()), text: "SELECT 1".into() });
    reply.approval = Some(PendingApproval {
        code: "7F3K9Q".into(),
        command: "db sql users \"SELECT 1\" --env prod".into(),
        approvers: vec!["role:reviewer".into()],
        count: 2,
        expires_at: "2026-11-25T12:03:00Z".into(),
        mentions: vec!["slack:U0BOB".into(), "local:carol".into(), "slack:<!here>".into()],
        slack_group: Some("S0REVIEW".into()),
        id: "0123456789abcdef0123456789abcdef".into(),
    });
    let msg = check(&reply);
    let actions = msg.blocks.last().unwrap();
    assert_eq!(actions["elements"][0]["action_id"], APPROVE_ACTION);
    assert_eq!(actions["elements"][0]["value"], "0123456789abcdef0123456789abcdef");
    assert_eq!(actions["elements"][1]["action_id"], REJECT_ACTION);
    assert!(msg.text.starts_with("<@U0BOB> <!subteam^S0REVIEW>"), "{}", msg.text);
    assert!(!msg.text.contains("<!here>") && !msg.text.contains("carol"), "only checked Slack identities ping");
    insta::assert_json_snapshot!(msg);
}

fn question(choices: &[&str]) -> Reply {
    let mut reply = Reply::new(Status::Question, "Which query?");
    reply.choices = choices.iter().map(|c| c.to_string()).collect();
    reply
}

#[test]
fn a_question_with_a_few_choices_carries_one_button_each_valued_by_the_choice() {
    let msg = check(&question(&["payments", "users", "ledger"]));
    let actions = msg.blocks.iter().find(|b| b["type"] == "actions").expect("choice buttons");
    let buttons = actions["elements"].as_array().unwrap();
    assert_eq!(buttons.len(), 3);
    for (i, (b, want)) in buttons.iter().zip(["payments", "users", "ledger"]).enumerate() {
        assert_eq!(b["type"], "button");
        assert_eq!(b["action_id"], format!("{CHOICE_ACTION}_{i}"));
        assert_eq!(b["value"], want);
        assert_eq!(b["text"]["text"], want);
    }
}

#[test]
fn a_question_with_more_than_five_choices_carries_a_static_select() {
    let six =
        ["user-by-id", "user-by-email", "orders-by-user", "payment-by-id", "failed-payments-since", "recent-signups"];
    let msg = check(&question(&six));
    let actions = msg.blocks.iter().find(|b| b["type"] == "actions").expect("a menu");
    let elements = actions["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 1);
    assert_eq!(elements[0]["type"], "static_select");
    assert_eq!(elements[0]["action_id"], CHOICE_ACTION);
    let values: Vec<&str> =
        elements[0]["options"].as_array().unwrap().iter().map(|o| o["value"].as_str().unwrap()).collect();
    assert_eq!(values, six);
}

#[test]
fn a_question_without_choices_has_no_buttons() {
    let msg = check(&question(&[]));
    assert!(msg.blocks.iter().all(|b| b["type"] != "actions"));
}
