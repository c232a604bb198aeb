//! Replies as terminal text: tables with `comfy-table`, colour only when writing to a TTY,
//! and never a control character that came from outside.

use std::borrow::Cow;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use super::reply::{Block, Reply, Status};

/// Table cells are cut past this many characters in chat messages and comments...
const CELL_MAX: usize = 60;
/// ...and past this many in a terminal, so help's descriptions and most values show whole on
/// a wide terminal.
const TERMINAL_CELL_MAX: usize = 120;

/// Removes control characters (ANSI escapes included) so nothing typed or stored by someone
/// else can drive the user's terminal; newlines and tabs stay.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color { format!("\u{1b}[{code}m{text}\u{1b}[0m") } else { text.to_string() }
}

/// A cell's text: an empty cell (SQL NULL) as `—`, numbers and booleans as JSON writes them, otherwise as
/// `cell_str`.
pub fn cell_text(v: &Value) -> Cow<'_, str> {
    cell_text_max(v, CELL_MAX)
}

fn cell_text_max(v: &Value, max: usize) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed("—"),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::String(s) => cell_str_max(s, max),
        other => Cow::Owned(cell_str_max(&other.to_string(), max).into_owned()),
    }
}

/// Text for one table cell: control characters dropped, line breaks as spaces, long text cut
/// with an ellipsis. Borrows when none of that is needed (the common case: every transport
/// renders every cell).
pub fn cell_str(s: &str) -> Cow<'_, str> {
    cell_str_max(s, CELL_MAX)
}

fn cell_str_max(s: &str, max: usize) -> Cow<'_, str> {
    // One pass over the bytes without an early exit, so it vectorises: anything below a space
    // or from DEL up (non-ASCII included) takes the careful path below.
    let unusual = s.bytes().fold(false, |acc, b| acc | !(b' '..0x7f).contains(&b));
    if s.len() <= max && (!unusual || !s.chars().any(char::is_control)) {
        return Cow::Borrowed(s); // bytes >= chars, so it is short enough
    }
    // One pass: line breaks become spaces, other controls go, and past `max` characters
    // the last one kept becomes an ellipsis.
    let mut kept = s.chars().filter_map(|c| match c {
        '\n' | '\t' => Some(' '),
        c if c.is_control() => None,
        c => Some(c),
    });
    let mut out = String::with_capacity(s.len().min(4 * max));
    out.extend(kept.by_ref().take(max - 1));
    match (kept.next(), kept.next()) {
        (Some(last), None) => out.push(last),
        (Some(_), Some(_)) => out.push('…'),
        _ => {}
    }
    Cow::Owned(out)
}

/// `1) payments 2) users 3) ledger`: the number answers the question.
pub fn numbered_choices(choices: &[String]) -> String {
    let items: Vec<String> = choices.iter().enumerate().map(|(i, c)| format!("{}) {c}", i + 1)).collect();
    items.join(" ")
}

pub fn render(reply: &Reply, color: bool) -> String {
    let mut out = String::new();
    let (mark, code) = match reply.status {
        Status::Done => ("", "1"),
        Status::Failed => ("error: ", "1;31"),
        Status::Refused => ("refused: ", "1;31"),
        Status::Confirm => ("", "1;33"),
        Status::Question => ("", "1;36"),
        Status::NotUnderstood => ("", "1;33"),
        Status::AwaitingApproval => ("", "1;35"),
    };
    out.push_str(&paint(&format!("{mark}{}", clean(&reply.headline)), code, color));
    out.push('\n');
    for block in &reply.blocks {
        match block {
            Block::Text { text } => {
                out.push_str(&clean(text));
                out.push('\n');
            }
            Block::Fields { fields } => {
                let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                for (k, v) in fields {
                    let key = format!("{:width$}", clean(k));
                    out.push_str(&format!("  {}  {}\n", paint(&key, "2", color), clean(v)));
                }
            }
            // A reply with no rows says so in a sentence; an empty grid adds nothing.
            Block::Table { rows, note: None, .. } if rows.is_empty() => {}
            Block::Table { columns, rows, note } => {
                let mut t = Table::new();
                t.load_style(if color { presets::UTF8_FULL_CONDENSED } else { presets::ASCII_FULL_CONDENSED });
                t.set_content_arrangement(ContentArrangement::Disabled);
                t.set_header(columns.iter().map(|c| clean(c)));
                for r in rows.iter() {
                    t.add_row(r.iter().map(|v| cell_text_max(v, TERMINAL_CELL_MAX)));
                }
                out.push_str(&t.to_string());
                out.push('\n');
                if let Some(n) = note {
                    out.push_str(&paint(&clean(n), "2", color));
                    out.push('\n');
                }
            }
            Block::Code { text, .. } => {
                for line in clean(text).lines() {
                    out.push_str("    ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Block::Image { url, alt, link } => {
                out.push_str(&format!("[image: {}] {}\n", clean(alt), clean(url)));
                if let Some(l) = link {
                    out.push_str(&format!("  {}\n", clean(l)));
                }
            }
            Block::List { items } => {
                for i in items {
                    out.push_str(&format!("  • {}\n", clean(i)));
                }
            }
        }
    }
    if !reply.choices.is_empty() {
        out.push_str(&paint(&clean(&numbered_choices(&reply.choices)), "1", color));
        out.push('\n');
    }
    if let Some(c) = &reply.confirm {
        let line = format!("confirm {} to run it, cancel {} to drop it (expires {})", c.code, c.code, c.expires_at);
        out.push_str(&paint(&line, "2", color));
        out.push('\n');
    }
    if let Some(a) = &reply.approval {
        let line = format!(
            "approvers ({}): approve {} to approve, reject {} \"reason\" to turn it down (expires {})",
            a.approvers.join(", "),
            a.code,
            a.code,
            a.expires_at
        );
        out.push_str(&paint(&clean(&line), "2", color));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::reply::PendingConfirm;

    #[test]
    fn a_table_reply_renders_plain_when_piped() {
        let reply =
            Reply::done("2 rows from users (prod) in 1 ms").command("db query recent-signups").with(Block::Table {
                columns: vec!["id".into(), "email".into(), "note".into()],
                rows: vec![
                    vec![Value::from(1), Value::from("alice@example.com"), Value::Null],
                    vec![Value::from(2), Value::from("bob\u{1b}[31m@example.com"), Value::from("x".repeat(80))],
                ]
                .into(),
                note: Some("first 2 of more".into()),
            });
        insta::assert_snapshot!(render(&reply, false));
    }

    #[test]
    fn a_confirmation_shows_the_code_and_expiry() {
        let mut reply = Reply::new(Status::Confirm, "run `test run smoke staging`?");
        reply.confirm = Some(PendingConfirm {
            code: "7F3K".into(),
            command: "test run smoke staging".into(),
            expires_at: "2026-11-25T12:03:00Z".into(),
            id: "secret".into(),
        });
        let text = render(&reply, false);
        insta::assert_snapshot!(text);
        assert!(!text.contains("secret"));
    }

    #[test]
    fn a_question_numbers_its_choices() {
        let mut reply = Reply::new(Status::Question, "Which service: payments, users or ledger?");
        reply.choices = vec!["payments".into(), "users".into(), "ledger".into()];
        assert_eq!(
            render(&reply, false),
            "Which service: payments, users or ledger?\n1) payments 2) users 3) ledger\n"
        );
    }

    /// A `\r` would move the cursor back and let the rest of a value overwrite the question.
    #[test]
    fn a_carriage_return_in_a_confirmed_command_does_not_reach_the_terminal() {
        let mut reply = Reply::new(Status::Confirm, "run `todo add \"harmless\rdb query all\"`?");
        reply.confirm = Some(PendingConfirm {
            code: "7F3K".into(),
            command: "todo add \"harmless\rdb query all\"".into(),
            expires_at: "2026-11-25T12:03:00Z".into(),
            id: "secret".into(),
        });
        let text = render(&reply, true);
        assert!(!text.contains('\r'), "{text:?}");
        assert!(text.contains("run `todo add \"harmlessdb query all\"`?"), "{text:?}");
    }

    #[test]
    fn colour_only_when_asked() {
        let r = Reply::failed("boom");
        assert!(render(&r, true).contains('\u{1b}'));
        assert!(!render(&r, false).contains('\u{1b}'));
    }

    /// Cleaning a cell in several passes: what `cell_str` does in one.
    fn cell_by_passes(s: &str) -> String {
        let flat: String = s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect();
        let flat = flat.replace(['\n', '\t'], " ");
        if flat.chars().count() > CELL_MAX {
            format!("{}…", flat.chars().take(CELL_MAX - 1).collect::<String>())
        } else {
            flat
        }
    }

    proptest::proptest! {
        #[test]
        fn a_cell_is_cleaned_and_cut_in_one_pass(s in "[a-z\n\t\u{0}-\u{1f}\u{7f}-\u{a0}é😀 ]{0,80}") {
            proptest::prop_assert_eq!(cell_str(&s).into_owned(), cell_by_passes(&s));
        }
    }
}
