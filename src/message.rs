//! A message as every transport hands it to the pipeline: who said what, where.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `lazyops chat` and `lazyops run`; identities `local:<name>`.
    Local,
    Slack,
    Github,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Slack => "slack",
            Transport::Github => "github",
        }
    }
}

/// `local:alice`, `slack:U0123ABC`, `github:octocat`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Identity(String);

impl Identity {
    pub fn new(transport: Transport, name: &str) -> Identity {
        // Odd characters are kept out of identities: they end up in audit rows and replies.
        let clean: String =
            name.chars().filter(|c| c.is_ascii_alphanumeric() || "._-@+".contains(*c)).take(64).collect();
        let clean = if clean.is_empty() { "unknown".to_string() } else { clean };
        Identity(format!("{}:{clean}", transport.name()))
    }

    /// An identity as stored (`local:alice`), for acting on behalf of someone later.
    pub fn parse(stored: &str) -> Option<Identity> {
        let (transport, name) = stored.split_once(':')?;
        let transport = match transport {
            "local" => Transport::Local,
            "slack" => Transport::Slack,
            "github" => Transport::Github,
            _ => return None,
        };
        let id = Identity::new(transport, name);
        (id.as_str() == stored).then_some(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity an `as_str()` stored earlier names (a job's requester), if it names one.
    pub fn from_key(key: &str) -> Option<Identity> {
        let (transport, name) = key.split_once(':')?;
        let transport =
            [Transport::Local, Transport::Slack, Transport::Github].into_iter().find(|t| t.name() == transport)?;
        Some(Identity::new(transport, name))
    }

    /// Whether a config pattern (`local:*`, `slack:U0123`) names this identity.
    pub fn matches(&self, pattern: &str) -> bool {
        match pattern.strip_suffix(":*") {
            Some(transport) => self.0.split(':').next() == Some(transport),
            None => pattern == self.0,
        }
    }

    /// Checks a member entry from config.
    pub fn parse_pattern(s: &str) -> Result<(), String> {
        let (transport, name) = s
            .split_once(':')
            .ok_or_else(|| format!("member `{s}` must look like local:alice, slack:U0123 or github:octocat"))?;
        if !["local", "slack", "github"].contains(&transport) {
            return Err(format!("member `{s}`: transport must be local, slack or github"));
        }
        let ok =
            name == "*" || (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c)));
        if ok { Ok(()) } else { Err(format!("member `{s}`: the name may use letters, digits and . _ - @ +, or be *")) }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a message was said, so replies, confirmations and conversations stay there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    pub transport: Transport,
    /// Slack channel id, `owner/repo#number` on GitHub, `terminal` locally.
    pub channel: String,
    /// Slack thread ts, or none.
    pub thread: Option<String>,
}

impl Place {
    pub fn terminal() -> Place {
        Place { transport: Transport::Local, channel: "terminal".into(), thread: None }
    }

    /// One string naming the place, as stored with confirmations and conversations.
    pub fn key(&self) -> String {
        match &self.thread {
            Some(t) => format!("{}:{}/{t}", self.transport.name(), self.channel),
            None => format!("{}:{}", self.transport.name(), self.channel),
        }
    }

    /// The place a `key()` names, for answering later (a test run that ends): Slack channel ids
    /// have no `/`, GitHub channels are `owner/repo#number`.
    pub fn from_key(key: &str) -> Option<Place> {
        let (transport, rest) = key.split_once(':')?;
        let split = |rest: &str, at: usize| match rest[at..].split_once('/') {
            Some((head, thread)) => (format!("{}{head}", &rest[..at]), Some(thread.to_string())),
            None => (rest.to_string(), None),
        };
        let (transport, (channel, thread)) = match transport {
            "slack" => (Transport::Slack, split(rest, 0)),
            "github" => (Transport::Github, split(rest, rest.rfind('#')?)),
            "local" => (Transport::Local, split(rest, 0)),
            _ => return None,
        };
        Some(Place { transport, channel, thread })
    }

    /// Whether a team's `channels` entry covers this place: `*`, `slack`, `slack:C0123`.
    pub fn matches(&self, pattern: &str) -> bool {
        pattern == "*"
            || pattern == self.transport.name()
            || pattern
                .split_once(':')
                .is_some_and(|(t, c)| t == self.transport.name() && (c == self.channel || c == "*"))
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub who: Identity,
    pub place: Place,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_identities_parse_back_and_odd_ones_do_not() {
        assert_eq!(Identity::parse("slack:U1"), Some(Identity::new(Transport::Slack, "U1")));
        assert_eq!(Identity::parse("local:alice"), Some(Identity::new(Transport::Local, "alice")));
        assert_eq!(Identity::parse("irc:alice"), None);
        assert_eq!(Identity::parse("local:al ice"), None, "not what Identity::new would make");
        assert_eq!(Identity::parse("alice"), None);
    }

    #[test]
    fn identities_drop_odd_characters() {
        assert_eq!(Identity::new(Transport::Local, "al ice\u{1b}[31m;").as_str(), "local:alice31m");
        assert_eq!(Identity::new(Transport::Slack, "").as_str(), "slack:unknown");
    }

    #[test]
    fn member_patterns_match_by_transport_or_exactly() {
        let alice = Identity::new(Transport::Local, "alice");
        assert!(alice.matches("local:*"));
        assert!(alice.matches("local:alice"));
        assert!(!alice.matches("slack:*"));
        assert!(!alice.matches("local:alic"));
    }

    #[test]
    fn place_patterns() {
        let p = Place { transport: Transport::Slack, channel: "C1".into(), thread: Some("1.2".into()) };
        assert!(p.matches("*") && p.matches("slack") && p.matches("slack:C1"));
        assert!(!p.matches("slack:C2") && !p.matches("local"));
        assert_eq!(p.key(), "slack:C1/1.2");
    }

    #[test]
    fn places_come_back_from_their_keys() {
        for p in [
            Place { transport: Transport::Slack, channel: "C1".into(), thread: Some("1712.0001".into()) },
            Place { transport: Transport::Slack, channel: "D9".into(), thread: None },
            Place { transport: Transport::Github, channel: "octo/repo#12".into(), thread: Some("998".into()) },
            Place { transport: Transport::Github, channel: "octo/repo#12".into(), thread: None },
            Place::terminal(),
        ] {
            assert_eq!(Place::from_key(&p.key()), Some(p.clone()));
        }
        assert_eq!(Place::from_key("irc:x"), None);
        assert_eq!(Place::from_key("github:no-number"), None);
    }
}
