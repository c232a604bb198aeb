//! Replies as Slack Block Kit. Everything that came from outside (rows, errors, names) is
//! escaped so it can never mention a person or a channel, and every message stays inside
//! Slack's limits: 50 blocks, 3000 characters per section, 10 fields of 2000, and a `text`
//! fallback that is always set.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use super::reply::{Block, PendingConfirm, Reply};
use super::terminal::{cell_str, cell_text};

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD: usize = 2000;
const MAX_ALT: usize = 2000;
const MAX_URL: usize = 3000;
/// Slack truncates longer fallbacks and `chat.update` refuses them over 4,000.
const MAX_FALLBACK: usize = 3000;
/// A code fence and its newlines take this much of a section.
const FENCE: usize = 8;

/// `action_id`s of the two buttons; their `value` is the confirmation's full id.
pub const CONFIRM_ACTION: &str = "lazyops_confirm";
pub const CANCEL_ACTION: &str = "lazyops_cancel";

/// A message body for `chat.postMessage`, `chat.update`, a `response_url` or an HTTP answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// Escapes the three characters Slack's `mrkdwn` gives meaning to, so `<!channel>`,
/// `<@U123>` and `<https://x|y>` from data stay text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s, false);
    out
}

/// Whether text has nothing `push_escaped` would change: checked on bytes, since nearly all
/// text is plain ASCII (non-ASCII text takes the character loop, for C1 controls).
fn is_plain(s: &str, code: bool) -> bool {
    s.bytes().all(|b| {
        b.is_ascii()
            && !matches!(b, b'&' | b'<' | b'>')
            && !(code && b == b'`')
            && (!b.is_ascii_control() || b == b'\n' || b == b'\t')
    })
}

/// Appends `s` escaped as `escape` does; inside a code fence (`code`) backticks also become a
/// look-alike, so data cannot close the fence.
fn push_escaped(out: &mut String, s: &str, code: bool) {
    if is_plain(s, code) {
        out.push_str(s);
        return;
    }
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
}

/// Text inside a code fence: escaped, and with backticks swapped for a look-alike so data
/// cannot close the fence.
fn code_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s, true);
    out
}

/// Cuts at a character boundary, with an ellipsis when something was dropped.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Splits text into pieces of at most `max` characters, at line ends where it can.
fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for line in text.split('\n') {
        let len = line.chars().count();
        if cur_len > 0 && cur_len + 1 + len > max {
            out.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if len > max {
            let chars: Vec<char> = line.chars().collect();
            for piece in chars.chunks(max) {
                if cur_len > 0 {
                    out.push(std::mem::take(&mut cur));
                }
                cur = piece.iter().collect();
                cur_len = piece.len();
            }
            continue;
        }
        if cur_len > 0 {
            cur.push('\n');
            cur_len += 1;
        }
        cur.push_str(line);
        cur_len += len;
    }
    if cur_len > 0 || out.is_empty() {
        out.push(cur);
    }
    out
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, MAX_SECTION)}]})
}

/// Sections of already-escaped mrkdwn text.
fn sections(text: &str) -> Vec<Value> {
    chunks(text, MAX_SECTION).iter().map(|t| section(t)).collect()
}

/// Monospace sections; each keeps its own fence, and `repeat` (a table's header) opens every
/// piece after the first.
fn code_sections(text: &str, repeat: Option<&str>) -> Vec<Value> {
    // A header too wide to repeat is shown once.
    let repeat = repeat.filter(|h| h.chars().count() < MAX_SECTION / 3);
    let room = MAX_SECTION - FENCE - repeat.map_or(0, |h| h.chars().count() + 1);
    chunks(text, room)
        .iter()
        .enumerate()
        .map(|(i, piece)| match repeat {
            Some(head) if i > 0 => section(&format!("```\n{head}\n{piece}\n```")),
            _ => section(&format!("```\n{piece}\n```")),
        })
        .collect()
}

/// A table as aligned monospace text: header, rule, rows. Returns (header line, the rest).
/// Written straight into two strings: every table reply passes through here.
fn table_text(columns: &[String], rows: &[Vec<Value>]) -> (String, String) {
    let header: Vec<Cow<'_, str>> = columns.iter().map(|c| cell_str(c)).collect();
    let body: Vec<Vec<Cow<'_, str>>> = rows.iter().map(|r| r.iter().map(cell_text).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (i, c) in r.iter().enumerate() {
            let w = c.chars().count();
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    let line = |out: &mut String, cells: &[Cow<'_, str>]| {
        let start = out.len();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            push_escaped(out, c, true);
            let pad = widths[i].saturating_sub(c.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        let end = out[start..].trim_end().len() + start;
        out.truncate(end);
    };
    let mut head = String::new();
    line(&mut head, &header);
    for (i, w) in widths.iter().enumerate() {
        head.push_str(if i == 0 { "\n" } else { "  " });
        head.extend(std::iter::repeat_n('-', *w));
    }
    let mut rest = String::with_capacity(body.len() * (widths.iter().sum::<usize>() + 2 * widths.len()));
    for (i, r) in body.iter().enumerate() {
        if i > 0 {
            rest.push('\n');
        }
        line(&mut rest, r);
    }
    (head, rest)
}

fn block(b: &Block) -> Vec<Value> {
    match b {
        Block::Text { text } => sections(&escape(text)),
        Block::Fields { fields } => fields
            .chunks(MAX_FIELDS)
            .map(|group| {
                let items: Vec<Value> = group
                    .iter()
                    .map(|(k, v)| {
                        let key = escape(&k.replace('*', ""));
                        let room = MAX_FIELD.saturating_sub(key.chars().count() + 3);
                        json!({"type": "mrkdwn", "text": format!("*{key}*\n{}", cut(&escape(v), room))})
                    })
                    .collect();
                json!({"type": "section", "fields": items})
            })
            .collect(),
        Block::Table { columns, rows, note } => {
            let (head, rest) = table_text(columns, rows);
            let text = if rest.is_empty() { head.clone() } else { format!("{head}\n{rest}") };
            let mut out = code_sections(&text, Some(&head));
            if let Some(n) = note {
                out.push(context(&escape(n)));
            }
            out
        }
        Block::Code { text, .. } => code_sections(&code_text(text), None),
        Block::Image { url, alt, link } => {
            let safe = (url.starts_with("https://") || url.starts_with("http://")) && url.chars().count() <= MAX_URL;
            if !safe {
                return sections(&format!("image: {}", escape(alt)));
            }
            let alt = cut(alt.trim(), MAX_ALT);
            let alt = if alt.is_empty() { "image".to_string() } else { alt };
            let mut out = vec![json!({"type": "image", "image_url": url, "alt_text": alt})];
            if let Some(l) = link {
                let linkable = (l.starts_with("https://") || l.starts_with("http://"))
                    && !l.contains(['|', '<', '>', ' '])
                    && l.chars().count() <= MAX_URL;
                out.push(context(&if linkable { format!("<{l}|source>") } else { escape(l) }));
            }
            out
        }
        Block::List { items } => {
            let text: Vec<String> = items.iter().map(|i| format!("• {}", escape(i))).collect();
            sections(&text.join("\n"))
        }
    }
}

fn confirm_blocks(c: &PendingConfirm) -> Vec<Value> {
    let text = format!(
        "Run `{}`? Press Confirm, or reply `confirm {}` (`cancel {}` drops it). Expires {}.",
        code_text(&c.command),
        escape(&c.code),
        escape(&c.code),
        escape(&c.expires_at)
    );
    vec![
        section(&cut(&text, MAX_SECTION)),
        json!({
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary", "value": c.id,
                 "text": {"type": "plain_text", "text": "Confirm"}},
                {"type": "button", "action_id": CANCEL_ACTION, "value": c.id,
                 "text": {"type": "plain_text", "text": "Cancel"}},
            ],
        }),
    ]
}

/// The notification text: the headline and the plain text blocks, escaped and cut.
fn fallback(reply: &Reply) -> String {
    let mut text = reply.plain();
    if let Some(c) = &reply.confirm {
        text.push_str(&format!("\nreply `confirm {}` to run it", c.code));
    }
    let text = cut(escape(text.trim()).as_str(), MAX_FALLBACK);
    if text.is_empty() { "lazyops".to_string() } else { text }
}

pub fn render(reply: &Reply) -> SlackMessage {
    let headline = format!("{}{}", reply.status.mark(), escape(&reply.headline));
    let mut blocks = sections(&headline);
    for b in &reply.blocks {
        blocks.extend(block(b));
    }
    let tail = reply.confirm.as_ref().map(confirm_blocks).unwrap_or_default();
    let room = MAX_BLOCKS - tail.len();
    if blocks.len() > room {
        let dropped = blocks.len() - (room - 1);
        blocks.truncate(room - 1);
        blocks.push(context(&format!("… {dropped} more blocks not shown: Slack allows {MAX_BLOCKS} per message")));
    }
    blocks.extend(tail);
    SlackMessage { text: fallback(reply), blocks }
}

/// The original confirmation message once answered: who answered and the outcome, no buttons.
pub fn answered(outcome: &Reply, user_id: &str, confirmed: bool) -> SlackMessage {
    let verb = if confirmed { "Confirmed" } else { "Cancelled" };
    let user: String = user_id.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut msg = render(outcome);
    if msg.blocks.len() >= MAX_BLOCKS {
        msg.blocks.truncate(MAX_BLOCKS - 1);
    }
    msg.blocks.insert(0, context(&format!("{verb} by <@{user}>")));
    msg.text = cut(&format!("{verb} by <@{user}>: {}", msg.text), MAX_FALLBACK);
    msg
}

#[cfg(test)]
mod tests;
