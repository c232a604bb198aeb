//! Replies as Slack Block Kit. Everything that came from outside (rows, errors, names) is
//! escaped so it can never mention a person or a channel, and every message stays inside
//! Slack's limits: 50 blocks, 3000 characters per section, 10 fields of 2000, and a `text`
//! fallback that is always set.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use super::reply::{Action, Block, PendingApproval, PendingConfirm, Reply};
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
/// `action_id`s of an approval card's buttons; their `value` is the request's full id.
pub const APPROVE_ACTION: &str = "lazyops_approve";
pub const REJECT_ACTION: &str = "lazyops_reject";
/// `action_id` prefix of a reply's other buttons (`Reply::actions`, e.g. a checklist item to
/// tick), numbered because ids must differ within a block; their `value` is the action's id.
pub const REPLY_ACTION: &str = "lazyops_action";
/// `action_id` prefix of a question's choice buttons (numbered), and the `action_id` of its
/// menu when there are more than [`MAX_CHOICE_BUTTONS`]; the `value` is the choice itself.
pub const CHOICE_ACTION: &str = "lazyops_choice";
/// More choices than this become a `static_select` (a row of buttons wraps badly on a phone).
const MAX_CHOICE_BUTTONS: usize = 5;
/// Slack's limit of options in a `static_select`, and of an option's text.
const MAX_OPTIONS: usize = 100;
const MAX_OPTION_TEXT: usize = 75;
const MAX_OPTION_VALUE: usize = 150;
/// Slack's limits for a button: its label, its value, and buttons per actions block.
const MAX_BUTTON_TEXT: usize = 75;
const MAX_BUTTON_VALUE: usize = 2000;
const MAX_BUTTONS: usize = 25;
/// At most this many actions blocks, so the rest of the reply keeps its room.
const MAX_ACTION_BLOCKS: usize = 4;

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
/// text is plain ASCII (non-ASCII text takes the character loop, for C1 controls). One pass
/// without an early exit or branches, so the compiler vectorises it.
fn is_plain(s: &str, code: bool) -> bool {
    let tick = if code { b'`' } else { b'&' };
    !s.bytes().fold(false, |bad, b| {
        let control = (b < b' ') & (b != b'\n') & (b != b'\t');
        bad | control | (b >= 0x7f) | (b == b'&') | (b == b'<') | (b == b'>') | (b == tick)
    })
}

/// Width of text in characters; ASCII (nearly every cell) is its length.
fn width(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.chars().count() }
}

/// Appends `s` escaped as `escape` does; inside a code fence (`code`) backticks also become a
/// look-alike, so data cannot close the fence. Control characters other than newline and tab
/// are dropped (C1 controls are `0xC2 0x80..=0x9F` in UTF-8). Works on bytes and copies the
/// runs between the few that change.
fn push_escaped(out: &mut String, s: &str, code: bool) {
    if is_plain(s, code) {
        out.push_str(s);
        return;
    }
    let bytes = s.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        let (len, with) = match bytes[i] {
            b'&' => (1, "&amp;"),
            b'<' => (1, "&lt;"),
            b'>' => (1, "&gt;"),
            b'`' if code => (1, "ˋ"),
            b'\n' | b'\t' => (0, ""),
            0..=0x1f | 0x7f => (1, ""),
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => (2, ""),
            _ => (0, ""),
        };
        if len == 0 {
            i += 1;
            continue;
        }
        // `i` is at an ASCII byte or a lead byte, and `len` covers the whole character.
        out.push_str(&s[run..i]);
        out.push_str(with);
        i += len;
        run = i;
    }
    out.push_str(&s[run..]);
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

/// Splits text into pieces of at most `max` characters, at line ends where it can. Every
/// piece is a slice of `text`: lines joined by their own newlines, or part of a long line.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    // Bytes >= characters. (A piece never starts with a blank line: the loop drops them.)
    if text.len() <= max && !text.starts_with('\n') {
        return vec![text];
    }
    let mut out = Vec::new();
    // The piece being gathered: where it starts in `text`, where it ends, its characters.
    let (mut start, mut end, mut chars) = (0, 0, 0);
    let mut at = 0;
    for line in text.split('\n') {
        let line_start = at;
        at += line.len() + 1;
        let len = width(line);
        if chars > 0 && chars + 1 + len > max {
            out.push(&text[start..end]);
            chars = 0;
        }
        if len > max {
            // Whole pieces of `max` characters; the last one goes on gathering.
            let mut piece_start = line_start;
            let mut n = 0;
            for (i, _) in line.char_indices() {
                if n == max {
                    out.push(&text[piece_start..line_start + i]);
                    piece_start = line_start + i;
                    n = 0;
                }
                n += 1;
            }
            (start, end, chars) = (piece_start, line_start + line.len(), n);
            continue;
        }
        if chars == 0 {
            (start, chars) = (line_start, len);
        } else {
            chars += 1 + len;
        }
        end = line_start + line.len();
    }
    if chars > 0 || out.is_empty() {
        out.push(&text[start..end]);
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
    chunks(text, MAX_SECTION).into_iter().map(section).collect()
}

/// Monospace sections; each keeps its own fence, and `repeat` (a table's header) opens every
/// piece after the first.
fn code_sections(text: &str, repeat: Option<&str>) -> Vec<Value> {
    // A header too wide to repeat is shown once.
    let repeat = repeat.filter(|h| width(h) < MAX_SECTION / 3);
    let room = MAX_SECTION - FENCE - repeat.map_or(0, |h| width(h) + 1);
    chunks(text, room)
        .into_iter()
        .enumerate()
        .map(|(i, piece)| match repeat {
            Some(head) if i > 0 => section(&format!("```\n{head}\n{piece}\n```")),
            _ => section(&format!("```\n{piece}\n```")),
        })
        .collect()
}

/// A table as aligned monospace text: header, rule, rows, in one string, and the length of
/// the header and rule (repeated atop each piece when the table is split). Every table reply
/// passes through here: each cell is cleaned and measured once and written straight into the
/// text.
fn table_text(columns: &[String], rows: &[Vec<Value>]) -> (String, usize) {
    fn measured(c: Cow<'_, str>) -> (Cow<'_, str>, usize) {
        let w = width(&c);
        (c, w)
    }
    let header: Vec<(Cow<'_, str>, usize)> = columns.iter().map(|c| measured(cell_str(c))).collect();
    let body: Vec<Vec<(Cow<'_, str>, usize)>> =
        rows.iter().map(|r| r.iter().map(|v| measured(cell_text(v))).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|(_, w)| *w).collect();
    for r in &body {
        for (i, (_, w)) in r.iter().enumerate() {
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(*w),
                None => widths.push(*w),
            }
        }
    }
    let line_width = widths.iter().sum::<usize>() + 2 * widths.len();
    let mut out = String::with_capacity((body.len() + 2) * (line_width + 1));
    let line = |out: &mut String, cells: &[(Cow<'_, str>, usize)]| {
        let start = out.len();
        for (i, (c, w)) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            push_escaped(out, c, true);
            if i + 1 < cells.len() {
                pad(out, ' ', widths[i].saturating_sub(*w));
            }
        }
        let end = out[start..].trim_end().len() + start;
        out.truncate(end);
    };
    line(&mut out, &header);
    for (i, w) in widths.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { "  " });
        pad(&mut out, '-', *w);
    }
    let head_len = out.len();
    for r in &body {
        out.push('\n');
        line(&mut out, r);
    }
    if out.len() == head_len + 1 {
        out.truncate(head_len); // one row, and it is blank
    }
    (out, head_len)
}

/// Appends `n` copies of `c`.
fn pad(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

fn block(b: &Block) -> Vec<Value> {
    match b {
        Block::Text { text } => sections(&dates(&escape(text))),
        Block::Fields { fields } => fields
            .chunks(MAX_FIELDS)
            .map(|group| {
                let items: Vec<Value> = group
                    .iter()
                    .map(|(k, v)| {
                        let key = escape(&k.replace('*', ""));
                        let room = MAX_FIELD.saturating_sub(key.chars().count() + 3);
                        let value = escape(v);
                        let dated = dates(&value);
                        let value = if width(&dated) <= room { dated } else { cut(&value, room) };
                        json!({"type": "mrkdwn", "text": format!("*{key}*\n{value}")})
                    })
                    .collect();
                json!({"type": "section", "fields": items})
            })
            .collect(),
        Block::Table { columns, rows, note } => {
            let (text, head_len) = table_text(columns, rows);
            let mut out = code_sections(&text, Some(&text[..head_len]));
            // A long result is one code block and a count, not a wall of blocks.
            if out.len() > 1 {
                // The first piece: its fence, header and rule, and the rows that fit.
                let first = out[0]["text"]["text"].as_str().unwrap_or_default();
                let shown = first.lines().count().saturating_sub(4).min(rows.len());
                if shown > 0 {
                    out.truncate(1);
                    out.push(context(&format!(
                        "{} more rows not shown ({shown} of {}); `lazyops run` in a terminal shows them all",
                        rows.len() - shown,
                        rows.len()
                    )));
                }
            }
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
            let text: Vec<String> = items.iter().map(|i| format!("• {}", dates(&escape(i)))).collect();
            sections(&text.join("\n"))
        }
    }
}

/// The buttons and how to answer without them; the headline already names the command.
fn confirm_blocks(c: &PendingConfirm) -> Vec<Value> {
    let text = format!(
        "Press Confirm, or reply `confirm {}` (`cancel {}` drops it). Expires {}.",
        escape(&c.code),
        escape(&c.code),
        dates(&escape(&c.expires_at))
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

/// `<@U0123>` for Slack identities; other identities are not people Slack can notify.
fn slack_mention(identity: &str) -> Option<String> {
    let user = identity.strip_prefix("slack:")?;
    (!user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric())).then(|| format!("<@{user}>"))
}

/// The approvers to notify: Slack identities (roles already expanded) and the rule's user group.
fn approver_mentions(a: &PendingApproval) -> Vec<String> {
    let mut out: Vec<String> = a.mentions.iter().filter_map(|m| slack_mention(m)).collect();
    if let Some(g) = a.slack_group.as_deref().filter(|g| g.chars().all(|c| c.is_ascii_alphanumeric())) {
        out.push(format!("<!subteam^{g}>"));
    }
    out
}

/// The approval card's call to the approvers, and its Approve / Reject buttons. The buttons
/// carry the request's id; who may press them is decided when pressed.
fn approval_blocks(a: &PendingApproval) -> Vec<Value> {
    let mentions = approver_mentions(a);
    let who = if mentions.is_empty() { escape(&a.approvers.join(", ")) } else { mentions.join(" ") };
    let needed = if a.count == 1 { "one approval".to_string() } else { format!("{} approvals", a.count) };
    let text = format!(
        "{who}: this needs {needed} ({}). Press Approve or Reject, or reply `approve {}` / `reject {} \"reason\"`. Expires {}.",
        escape(&a.approvers.join(", ")),
        escape(&a.code),
        escape(&a.code),
        escape(&a.expires_at)
    );
    vec![
        section(&cut(&text, MAX_SECTION)),
        json!({
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": a.id,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": a.id,
                 "text": {"type": "plain_text", "text": "Reject"}},
            ],
        }),
    ]
}

/// A reply's own buttons, 25 to an actions block, at most 100. An id longer than a button's value can
/// hold would come back cut and match nothing, so it gets no button; its text still says
/// what to do.
fn action_blocks(actions: &[Action]) -> Vec<Value> {
    let buttons: Vec<Value> = actions
        .iter()
        .filter(|a| a.id.len() <= MAX_BUTTON_VALUE)
        .enumerate()
        .map(|(i, a)| {
            json!({"type": "button", "action_id": format!("{REPLY_ACTION}_{i}"), "value": a.id,
                   "text": {"type": "plain_text", "text": cut(&a.label, MAX_BUTTON_TEXT)}})
        })
        .collect();
    buttons.chunks(MAX_BUTTONS).take(MAX_ACTION_BLOCKS).map(|b| json!({"type": "actions", "elements": b})).collect()
}

/// A question's choices: buttons when there are a few, else a menu. A choice too long for
/// Slack's value limit is left out (it can still be typed).
fn choice_block(choices: &[String]) -> Option<Value> {
    let fit: Vec<&String> = choices.iter().filter(|c| !c.is_empty() && c.len() <= MAX_OPTION_VALUE).collect();
    if fit.is_empty() {
        return None;
    }
    let element = |i: usize, c: &str| {
        json!({"type": "button", "action_id": format!("{CHOICE_ACTION}_{i}"), "value": c,
               "text": {"type": "plain_text", "text": cut(c, MAX_BUTTON_TEXT)}})
    };
    let elements: Vec<Value> = if fit.len() <= MAX_CHOICE_BUTTONS {
        fit.iter().enumerate().map(|(i, c)| element(i, c)).collect()
    } else {
        let options: Vec<Value> = fit
            .iter()
            .take(MAX_OPTIONS)
            .map(|c| json!({"text": {"type": "plain_text", "text": cut(c, MAX_OPTION_TEXT)}, "value": c}))
            .collect();
        vec![json!({"type": "static_select", "action_id": CHOICE_ACTION,
                    "placeholder": {"type": "plain_text", "text": "Choose…"}, "options": options})]
    };
    Some(json!({"type": "actions", "elements": elements}))
}

/// The notification text: the headline and the plain text blocks, escaped and cut.
fn fallback(reply: &Reply) -> String {
    let mut text = reply.plain();
    if let Some(c) = &reply.confirm {
        text.push_str(&format!("\nreply `confirm {}` to run it", c.code));
    }
    if let Some(a) = &reply.approval {
        text.push_str(&format!("\napprovers: reply `approve {}` or `reject {} \"reason\"`", a.code, a.code));
    }
    let mut text = cut(escape(text.trim()).as_str(), MAX_FALLBACK);
    // Mentions are built from checked identities, after escaping, so they notify.
    let mentions: Vec<String> = match &reply.approval {
        Some(a) => approver_mentions(a),
        None => reply.mention.iter().filter_map(|m| slack_mention(m)).collect(),
    };
    if !mentions.is_empty() {
        text = cut(&format!("{} {text}", mentions.join(" ")), MAX_FALLBACK);
    }
    if text.is_empty() { "lazyops".to_string() } else { text }
}

/// The headline in bold (Slack's `header` block takes no mrkdwn, and headlines hold code),
/// unless it is too long for one section.
fn headline(reply: &Reply) -> Vec<Value> {
    let text = dates(&escape(&super::one_line(&reply.headline).replace('*', "")));
    let mark = reply.status.mark();
    if text.trim().is_empty() || width(&text) + mark.len() + 2 > MAX_SECTION || text.contains('\n') {
        return sections(&format!("{mark}{text}"));
    }
    vec![section(&format!("{mark}*{}*", text.trim()))]
}

/// Times written as `2026-12-03T12:11:16Z` or `2026-12-03 12:11 UTC` as Slack date tokens, so
/// each reader sees their own local time (the text after `|` is the fallback). Takes escaped
/// text, outside code.
fn dates(text: &str) -> String {
    static TIME: std::sync::OnceLock<Option<regex_lite::Regex>> = std::sync::OnceLock::new();
    let Some(re) = TIME
        .get_or_init(|| {
            regex_lite::Regex::new(r"\b(\d{4})-(\d{2})-(\d{2})(?:T| )(\d{2}):(\d{2})(?::(\d{2}))?(?:Z| UTC)").ok()
        })
        .as_ref()
    else {
        return text.to_string();
    };
    re.replace_all(text, |c: &regex_lite::Captures<'_>| {
        let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok()).unwrap_or(0);
        let unix = time::Month::try_from(n(2) as u8)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(n(1) as i32, m, n(3) as u8).ok())
            .and_then(|d| d.with_hms(n(4) as u8, n(5) as u8, n(6) as u8).ok())
            .map(|t| t.assume_utc().unix_timestamp());
        match unix {
            Some(u) => format!("<!date^{u}^{{date_short_pretty}} {{time}}|{}>", &c[0]),
            None => c[0].to_string(),
        }
    })
    .into_owned()
}

pub fn render(reply: &Reply) -> SlackMessage {
    let mut blocks = headline(reply);
    for b in &reply.blocks {
        blocks.extend(block(b));
    }
    let told: Vec<String> = reply.mention.iter().filter_map(|m| slack_mention(m)).collect();
    if !told.is_empty() {
        blocks.push(context(&format!("for {}", told.join(" "))));
    }
    let mut tail = action_blocks(&reply.actions);
    tail.extend(choice_block(&reply.choices));
    tail.extend(reply.confirm.as_ref().map(confirm_blocks).unwrap_or_default());
    tail.extend(reply.approval.as_ref().map(approval_blocks).unwrap_or_default());
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
    pressed(outcome, user_id, if confirmed { "Confirmed" } else { "Cancelled" })
}

/// The private confirmation prompt once confirmed, when the result went to the channel: one
/// line, no buttons.
pub fn confirmed_prompt(command: &str, user_id: &str) -> SlackMessage {
    let user: String = user_id.chars().filter(char::is_ascii_alphanumeric).collect();
    let text = cut(&format!("Confirmed by <@{user}>: `{}`", code_text(command)), MAX_SECTION);
    SlackMessage { text: cut(&text, MAX_FALLBACK), blocks: vec![context(&text)] }
}

/// A question once answered with one of its choices: who chose what, no buttons left.
pub fn chosen_prompt(choice: &str, user_id: &str) -> SlackMessage {
    let user: String = user_id.chars().filter(char::is_ascii_alphanumeric).collect();
    let text = cut(&format!("<@{user}> chose `{}`", code_text(choice)), MAX_SECTION);
    SlackMessage { text: cut(&text, MAX_FALLBACK), blocks: vec![context(&text)] }
}

/// An outcome headed by who pressed the button that led to it ("Ticked by @ana").
pub fn pressed(outcome: &Reply, user_id: &str, verb: &str) -> SlackMessage {
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
