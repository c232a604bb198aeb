//! Slack request signatures: HMAC-SHA256 of `v0:{timestamp}:{raw body}` with the signing
//! secret, in `X-Slack-Signature`, and a timestamp within five minutes of now, so a captured
//! request can be replayed only inside that window.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, either way.
pub const WINDOW_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("SLACK_SIGNING_SECRET is not set, so no request can be verified")]
    NoSecret,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("x-slack-request-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("request timestamp is {0} s away from now; the limit is 300 s (replay or clock skew)")]
    Stale(i64),
    #[error("x-slack-signature is malformed; expected v0= and 64 hex digits")]
    BadFormat,
    #[error("x-slack-signature does not match the body (wrong signing secret or altered body)")]
    Mismatch,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers.get(name).ok_or(VerifyError::MissingHeader(name))?.to_str().map_err(|_| VerifyError::BadFormat)
}

/// Checks a request's signature against `secret` (the signing secret's UTF-8 bytes), with
/// `now` in Unix seconds.
pub fn verify(secret: Option<&str>, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let secret = secret.filter(|s| !s.is_empty()).ok_or(VerifyError::NoSecret)?;
    let ts_text = header(headers, "x-slack-request-timestamp")?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.saturating_sub(ts).saturating_abs();
    if skew > WINDOW_SECS {
        return Err(VerifyError::Stale(skew));
    }
    let given = header(headers, "x-slack-signature")?;
    let hex_sig = given.strip_prefix("v0=").ok_or(VerifyError::BadFormat)?;
    if hex_sig.len() != 64 {
        return Err(VerifyError::BadFormat);
    }
    let given = hex::decode(hex_sig).map_err(|_| VerifyError::BadFormat)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| VerifyError::NoSecret)?;
    mac.update(b"v0:");
    mac.update(ts_text.as_bytes());
    mac.update(b":");
    mac.update(body);
    // Constant time: an early-exit compare tells a forger how many leading bytes were right.
    mac.verify_slice(&given).map_err(|_| VerifyError::Mismatch)
}

/// The header value for a body: what Slack would send. For tests and the bench script.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    // The worked example of docs.slack.dev "Verifying requests from Slack" (PROTOCOLS §0).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1531420618;
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", HeaderValue::from_str(ts).unwrap());
        h.insert("x-slack-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    fn check(secret: &str, h: &HeaderMap, body: &str, now: i64) -> Result<(), VerifyError> {
        verify(Some(secret), h, body.as_bytes(), now)
    }

    #[test]
    fn the_slack_docs_test_vector_verifies() {
        assert_eq!(BODY.len(), 362);
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
        assert_eq!(check(SECRET, &headers("1531420618", SIG), BODY, TS), Ok(()));
        assert_eq!(check(SECRET, &headers("1531420618", SIG), BODY, TS + 300), Ok(()));
    }

    #[test]
    fn a_wrong_secret_or_altered_body_is_a_mismatch() {
        let h = headers("1531420618", SIG);
        assert_eq!(check("another-secret", &h, BODY, TS), Err(VerifyError::Mismatch));
        assert_eq!(check(SECRET, &h, &BODY.replace("text=", "text=x"), TS), Err(VerifyError::Mismatch));
    }

    #[test]
    fn six_minutes_old_or_in_the_future_is_stale() {
        let h = headers("1531420618", SIG);
        assert_eq!(check(SECRET, &h, BODY, TS + 360), Err(VerifyError::Stale(360)));
        assert_eq!(check(SECRET, &h, BODY, TS - 360), Err(VerifyError::Stale(360)));
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        assert_eq!(
            check(SECRET, &HeaderMap::new(), BODY, TS),
            Err(VerifyError::MissingHeader("x-slack-request-timestamp"))
        );
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", HeaderValue::from_static("1531420618"));
        assert_eq!(check(SECRET, &h, BODY, TS), Err(VerifyError::MissingHeader("x-slack-signature")));
        assert_eq!(check(SECRET, &headers("soon", SIG), BODY, TS), Err(VerifyError::BadTimestamp));
        assert_eq!(check(SECRET, &headers("1531420618", &SIG[3..]), BODY, TS), Err(VerifyError::BadFormat));
        assert_eq!(check(SECRET, &headers("1531420618", "v0=zz"), BODY, TS), Err(VerifyError::BadFormat));
        let not_hex = format!("v0={}", "g".repeat(64));
        assert_eq!(check(SECRET, &headers("1531420618", &not_hex), BODY, TS), Err(VerifyError::BadFormat));
        assert_eq!(verify(None, &headers("1531420618", SIG), BODY.as_bytes(), TS), Err(VerifyError::NoSecret));
    }
}
