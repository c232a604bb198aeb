//! Secrets out of every text a person or a log reads. Configured URLs carry credentials
//! (`http://deploy:pw@host/…`, `?access_token=…`) and errors quote them; tokens turn up in
//! error bodies. One function masks them by shape, not by a list of known values: the
//! password of a URL's userinfo, every query-string and fragment value of a URL, and the
//! token shapes of Slack, GitHub, OpenAI-style keys, `Bearer` headers and AWS access keys.
//! It is applied where error and reply texts are built (plugin errors, checklist items,
//! version sources, suite outcomes), to audit rows and to every log line; never to the data
//! cells of a query result, which are the user's own data.

use std::sync::LazyLock;

/// What replaces a secret.
const MASK: &str = "***";

/// Token shapes, each with the prefix that stays visible in group 1 or 2, so a reader still
/// sees which kind of credential was there. `\b` keeps `task-runner` from reading as `sk-…`.
static TOKENS: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(concat!(
        r"\b(xox[abposrce]-|xapp-|gh[pousr]_|github_pat_|sk-)[A-Za-z0-9_\-]+",
        r"|\b(AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\b(Bearer\s+)[A-Za-z0-9._~+/=\-]{8,}",
    ))
    .expect("the token patterns are valid")
});

/// `text` with credentials masked; text without any is returned unchanged.
pub fn redact(text: &str) -> String {
    let urls = if text.contains("://") { urls(text) } else { text.to_string() };
    match TOKENS.is_match(&urls) {
        false => urls,
        true => TOKENS
            .replace_all(&urls, |c: &regex_lite::Captures<'_>| {
                let kept = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)).map_or("", |m| m.as_str());
                format!("{kept}{MASK}")
            })
            .into_owned(),
    }
}

/// Where a URL written in prose ends.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || "\"'<>`".contains(c)
}

/// Every `scheme://…` in `text` with its password and its query and fragment values masked.
fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let mut end = tail.find(ends_url).unwrap_or(tail.len());
        // Prose punctuation right after a URL is not part of it: `(see http://h/x?t=1).`
        end = tail[..end].trim_end_matches([')', ']', ',', '.']).len();
        out.push_str(&url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// One URL after its `scheme://`.
fn url(after_scheme: &str) -> String {
    let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let (authority, path) = after_scheme.split_at(authority_end);
    let mut out = String::with_capacity(after_scheme.len());
    match authority.rsplit_once('@') {
        // `user:password@host`: the user stays, so a reader knows which account it was.
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            out.push_str(&format!("{user}:{MASK}@{host}"));
        }
        _ => out.push_str(authority),
    }
    let value_start = path.find(['?', '#']).unwrap_or(path.len());
    out.push_str(&path[..value_start]);
    let mut values = &path[value_start..];
    // `?a=1&b=2#c=3`: each part keeps its name, loses its value.
    while let Some(sep) = values.chars().next() {
        out.push(sep);
        values = &values[1..];
        let part_end = values.find(['&', ';', '#']).unwrap_or(values.len());
        let part = &values[..part_end];
        match part.split_once('=') {
            Some((name, value)) if !value.is_empty() => out.push_str(&format!("{name}={MASK}")),
            Some(_) => out.push_str(part),
            None if part.is_empty() => {}
            None => out.push_str(MASK),
        }
        values = &values[part_end..];
    }
    out
}

/// Standard error for the log subscriber, with every line redacted: a log line is formatted
/// whole and then written once, so each write here is one complete line.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Any writer (a log file), with every line redacted on its way through, like [`LogWriter`].
pub struct Redacting<W>(pub W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    fn check(input: &str, expected: &str) {
        assert_eq!(redact(input), expected, "{input}");
    }

    #[test]
    fn url_passwords_lose_their_password_but_keep_the_user() {
        check(
            "error connecting to postgres://bob:hunter2@db:5432/x",
            "error connecting to postgres://bob:***@db:5432/x",
        );
        check(
            "GET http://deploy:S3cr3tPassw0rd@10.0.0.5/version answered 500",
            "GET http://deploy:***@10.0.0.5/version answered 500",
        );
        check("http://u:p@ss@host/x", "http://u:***@host/x");
        check("mysql://root@127.0.0.1/test", "mysql://root@127.0.0.1/test");
    }

    #[test]
    fn every_query_and_fragment_value_of_a_url_is_masked() {
        check(
            "GET https://ci.example/v?access_token=abc123&env=prod answered 401",
            "GET https://ci.example/v?access_token=***&env=*** answered 401",
        );
        check("(see http://h/x?token=t0k3n).", "(see http://h/x?token=***).");
        check("http://h/cb#access_token=xyz;state=1", "http://h/cb#access_token=***;state=***");
        check("http://h/x?sekrit and more", "http://h/x?*** and more");
        check("http://h/x?empty=&a", "http://h/x?empty=&***");
        check("\"http://h/p?k=v\"", "\"http://h/p?k=***\"");
    }

    #[test]
    fn known_token_shapes_are_masked_wherever_they_are() {
        check("token xoxb-123-456-abcDEF was refused", "token xoxb-*** was refused");
        check("app token xapp-1-A111-222-abc", "app token xapp-***");
        check("ghp_16C7e42F292c6912E7710c838347Ae178B4a and gho_x and ghs_y", "ghp_*** and gho_*** and ghs_***");
        check("github_pat_11ABCDEFG_0123456789abcdef", "github_pat_***");
        check("OPENAI_API_KEY=sk-proj-abcDEF123456", "OPENAI_API_KEY=sk-***");
        check("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer ***");
        check("key AKIAIOSFODNN7EXAMPLE used", "key AKIA*** used");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "no url here",
            "task-runner and desk-lamp stay",
            "the Bearer token is missing",
            "https://github.com/acme/payments/pull/12",
            "GET http://127.0.0.1:8080/version answered 500 Internal Server Error",
            "email alice@example.com, user 42",
        ] {
            check(text, text);
        }
    }
}
