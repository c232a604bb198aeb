//! Replies as GitHub-flavoured Markdown, for issue and pull-request comments. Data is escaped
//! so it cannot break a table, open HTML, or mention (and so notify) anyone; long output folds
//! into `<details>`; a comment never exceeds GitHub's 65,536 characters.

use serde_json::Value;

use super::reply::{Block, PendingApproval, PendingConfirm, Reply};
use super::terminal::cell_text;

/// GitHub refuses longer comment bodies.
pub const MAX_COMMENT: usize = 65_536;
/// Room kept for the confirmation line and the truncation notice.
const RESERVE: usize = 1_024;
/// Tables and code longer than this many lines fold into `<details>`.
const FOLD_LINES: usize = 15;

/// A zero-width space after `@` keeps a login from becoming a mention.
const ZWSP: char = '\u{200B}';

/// `@login` and `@org/team` at a word start become inert; `alice@example.com` stays as is.
fn unmention(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let word_start = prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '`'));
        if c == '@' && word_start && chars.peek().is_some_and(|n| n.is_ascii_alphanumeric()) {
            out.push(ZWSP);
        }
        prev = Some(c);
    }
    out
}

/// Prose that may carry `code` spans (headlines, messages): HTML is shown, not run.
fn inline(s: &str) -> String {
    // The same three entities Slack needs, and control characters dropped.
    unmention(&super::slack::escape(s))
}

/// Data in a table cell or list: every character Markdown gives meaning to inline is escaped,
/// so a value is never a link, emphasis, code, HTML or a column break.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    unmention(&out)
}

/// A fence longer than any run of backticks inside, so the content cannot close it.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn len(s: &str) -> usize {
    s.chars().count()
}

fn fold(summary: &str, body: String, lines: usize) -> String {
    if lines <= FOLD_LINES {
        return body;
    }
    format!("<details><summary>{}</summary>\n\n{body}\n\n</details>", inline(summary))
}

/// Appends `lines` to `head` while they fit in `room`; returns the text and how many were left out.
fn fill(head: String, lines: impl Iterator<Item = String>, total: usize, room: usize, tail: &str) -> (String, usize) {
    let mut out = head;
    let mut taken = 0;
    for line in lines {
        if len(&out) + len(&line) + 1 + len(tail) > room {
            break;
        }
        out.push('\n');
        out.push_str(&line);
        taken += 1;
    }
    out.push_str(tail);
    (out, total - taken)
}

/// One block as Markdown within `room` characters, and whether something was cut.
fn block(b: &Block, room: usize) -> (String, bool) {
    let room = room.saturating_sub(64); // the <details> wrapper
    match b {
        Block::Text { text } => {
            let t = inline(text);
            if len(&t) <= room { (t, false) } else { (t.chars().take(room).collect(), true) }
        }
        Block::Fields { fields } => {
            let lines = fields.iter().map(|(k, v)| format!("- **{}**: {}", literal(k), literal(v)));
            let (text, left) = fill(String::new(), lines, fields.len(), room, "");
            (text.trim_start().to_string(), left > 0)
        }
        Block::List { items } => {
            let lines = items.iter().map(|i| format!("- {}", inline(i)));
            let (text, left) = fill(String::new(), lines, items.len(), room, "");
            (text.trim_start().to_string(), left > 0)
        }
        Block::Table { columns, rows, note } => {
            let header = format!("| {} |", columns.iter().map(|c| literal(c)).collect::<Vec<_>>().join(" | "));
            let rule = format!("|{}|", columns.iter().map(|_| " --- ").collect::<Vec<_>>().join("|"));
            let lines = rows.iter().map(|r| {
                let cells: Vec<String> = (0..columns.len().max(r.len()))
                    .map(|i| literal(&cell_text(r.get(i).unwrap_or(&Value::Null))))
                    .collect();
                format!("| {} |", cells.join(" | "))
            });
            let (table, left) = fill(format!("{header}\n{rule}"), lines, rows.len(), room, "");
            let mut text = fold(&format!("{} rows", rows.len()), table, rows.len());
            if left > 0 {
                text.push_str(&format!("\n\n_… {left} more rows not shown_"));
            }
            if let Some(n) = note {
                text.push_str(&format!("\n\n_{}_", literal(n)));
            }
            (text, left > 0)
        }
        Block::Code { lang, text } => {
            let fence = fence_for(text);
            let lang: String = lang.as_deref().unwrap_or("").chars().filter(char::is_ascii_alphanumeric).collect();
            let clean: String = text.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect();
            let total = clean.lines().count();
            let tail = format!("\n{fence}");
            let (code, left) = fill(format!("{fence}{lang}"), clean.lines().map(str::to_string), total, room, &tail);
            let mut text = fold(&format!("{total} lines"), code, total);
            if left > 0 {
                text.push_str(&format!("\n\n_… {left} more lines not shown_"));
            }
            (text, left > 0)
        }
        Block::Image { url, alt, link } => {
            let safe = |u: &str| {
                (u.starts_with("https://") || u.starts_with("http://"))
                    && !u.contains(|c: char| c.is_whitespace() || "()<>\"'`".contains(c))
            };
            if !safe(url) {
                return (format!("image: {}", literal(alt)), false);
            }
            let mut text = format!("![{}]({url})", literal(alt.trim()));
            if let Some(l) = link.as_deref().filter(|l| safe(l)) {
                text.push_str(&format!("\n\n[source]({l})"));
            }
            (text, false)
        }
    }
}

fn confirm_line(c: &PendingConfirm, prefix: &str) -> String {
    format!(
        "To run `{}`, reply `{prefix} confirm {}` (or `{prefix} cancel {}`). Only you can; it expires {}.",
        super::one_line(&c.command).replace('`', "'"),
        literal(&c.code),
        literal(&c.code),
        literal(&c.expires_at)
    )
}

/// `@login` for GitHub identities (checked characters only), so the people named are notified;
/// everything else in a comment is escaped and pings no one.
fn github_mention(identity: &str) -> Option<String> {
    let login = identity.strip_prefix("github:")?;
    let ok = !login.is_empty() && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then(|| format!("@{login}"))
}

fn approval_line(a: &PendingApproval, prefix: &str) -> String {
    let people: Vec<String> = a.mentions.iter().filter_map(|m| github_mention(m)).collect();
    let who = if people.is_empty() { String::new() } else { format!("{} ", people.join(" ")) };
    format!(
        "{who}This needs {} approval{} ({}), never the requester's own: reply `{prefix} approve {}` or `{prefix} reject {} <reason>`. It expires {}.",
        a.count,
        if a.count == 1 { "" } else { "s" },
        literal(&a.approvers.join(", ")),
        literal(&a.code),
        literal(&a.code),
        literal(&a.expires_at)
    )
}

/// The comment body. `prefix` is how a comment addresses the bot (`/lazyops`), for the
/// confirmation instructions.
pub fn render(reply: &Reply, prefix: &str) -> String {
    let budget = MAX_COMMENT - RESERVE;
    let mut out = format!("{}{}", reply.status.mark(), inline(&super::one_line(&reply.headline)));
    let mut cut = false;
    for b in &reply.blocks {
        let room = budget.saturating_sub(len(&out) + 2);
        let (text, was_cut) = block(b, room);
        if !text.is_empty() {
            out.push_str("\n\n");
            out.push_str(&text);
        }
        if was_cut {
            cut = true;
            break;
        }
    }
    if cut {
        out.push_str("\n\n_… output truncated: a GitHub comment holds 65,536 characters_");
    }
    if !reply.choices.is_empty() {
        let items: Vec<String> =
            reply.choices.iter().enumerate().map(|(i, c)| format!("{}. `{}`", i + 1, c.replace('`', "'"))).collect();
        out.push_str(&format!("\n\n{}\n\nReply `{prefix} <number>` or the value.", items.join("\n")));
    }
    if let Some(c) = &reply.confirm {
        out.push_str("\n\n");
        out.push_str(&confirm_line(c, prefix));
    }
    if let Some(a) = &reply.approval {
        out.push_str("\n\n");
        out.push_str(&approval_line(a, prefix));
    }
    let told: Vec<String> = reply.mention.iter().filter_map(|m| github_mention(m)).collect();
    if !told.is_empty() {
        out.push_str(&format!("\n\n{}", told.join(" ")));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
