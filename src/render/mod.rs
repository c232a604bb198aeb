//! Replies and their renderers: the `Reply` model, and one renderer per kind of output.

pub mod markdown;
pub mod reply;
pub mod slack;
pub mod terminal;

pub use reply::{Action, Block, PendingApproval, PendingConfirm, Reply, Status, TestRun, Understood};

/// A command as a confirmation line shows it: on one line, with control characters and line
/// separators written out (`\r`, `\n`, `\u{2028}`), so a typed value cannot end the line or
/// the code span it is shown in and carry what follows (mentions, HTML, links) out of it.
pub(crate) fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    let breaks = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !s.chars().any(breaks) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if breaks(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_command_shown_for_confirmation_stays_on_one_line() {
        let check = |s: &str, want: &str| assert_eq!(super::one_line(s), want);
        check("todo add \"plain\"", "todo add \"plain\"");
        check("todo add \"a\r\r@octocat\"", "todo add \"a\\r\\r@octocat\"");
        check("x\ny\tz\u{1b}[31m\u{85}\u{2028}", "x\\ny\\tz\\u{1b}[31m\\u{85}\\u{2028}");
    }
}
