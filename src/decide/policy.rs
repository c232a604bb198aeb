//! Who may run what, where. Default deny: a command runs only when one of the requester's
//! teams applies in this place, enables the command's plugin and has a rule that allows the
//! command's canonical text. Refusals name the missing rule, never another team's config.

use serde::Serialize;

use crate::command::Command;
use crate::config::{Config, TeamConfig};
use crate::message::{Identity, Place};
use crate::spec::{ConfirmPolicy, SPECS};

/// A command pattern from config: words of the canonical text, `*` for any one word, and a
/// trailing `*` for any rest (`db query *`, `test run * staging`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern(Vec<String>);

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
        let Some(first) = words.first() else {
            return Err("an empty command pattern; use `*` to allow everything".into());
        };
        if first != "*" && !SPECS.iter().any(|s| s.words[0] == first) {
            return Err(format!("pattern `{text}` does not start with a command word or `*`"));
        }
        if words.iter().any(|w| w.contains('*') && w != "*") {
            return Err(format!("pattern `{text}`: `*` must be a whole word"));
        }
        Ok(Pattern(words))
    }

    pub fn matches(&self, command: &Command) -> bool {
        let text = command.to_string();
        let words = canonical_words(&text);
        let n = self.0.len();
        for (i, p) in self.0.iter().enumerate() {
            if p == "*" && i == n - 1 {
                return true;
            }
            match words.get(i) {
                Some(w) if p == "*" || p == &w.to_ascii_lowercase() => {}
                _ => return false,
            }
        }
        words.len() == n
    }

    /// Whether some command with these keywords could match: `deploy version *` and `*` can
    /// match a `deploy version` command, `db list` cannot. The LLM tier offers only such tools.
    pub fn may_match(&self, keywords: &[&str]) -> bool {
        let n = self.0.len();
        for (i, w) in keywords.iter().enumerate() {
            match self.0.get(i) {
                Some(p) if p == "*" && i == n - 1 => return true,
                Some(p) if p == "*" || p == w => {}
                _ => return false,
            }
        }
        true
    }
}

/// Splits canonical text into words, a quoted value being one word.
fn canonical_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Decision {
    /// Allowed by `team`; `confirm` says whether the requester must confirm first.
    Allowed {
        team: String,
        confirm: bool,
    },
    Refused {
        reason: String,
    },
}

/// A team the requester belongs to, and their roles in it.
pub struct Membership<'a> {
    pub name: &'a str,
    pub team: &'a TeamConfig,
    pub roles: Vec<&'a str>,
}

impl Membership<'_> {
    /// The patterns this member may run: the team's plus their roles'.
    pub fn allowed(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.team.allow.iter().map(String::as_str).collect();
        for r in &self.roles {
            if let Some(role) = self.team.roles.get(*r) {
                out.extend(role.allow.iter().map(String::as_str));
            }
        }
        out
    }
}

pub fn memberships<'a>(config: &'a Config, who: &Identity) -> Vec<Membership<'a>> {
    config
        .teams
        .iter()
        .filter_map(|(name, team)| {
            let roles: Vec<&str> = team
                .roles
                .iter()
                .filter(|(_, r)| r.members.iter().any(|m| who.matches(m)))
                .map(|(n, _)| n.as_str())
                .collect();
            let member = team.members.iter().any(|m| who.matches(m)) || !roles.is_empty();
            member.then_some(Membership { name, team, roles })
        })
        .collect()
}

fn any_matches(patterns: &[&str], cmd: &Command) -> bool {
    patterns.iter().any(|p| Pattern::parse(p).is_ok_and(|p| p.matches(cmd)))
}

/// Whether a query name is in a team's `queries` patterns (`*`, `user-*`, `user-by-id`).
pub fn query_allowed(team: &TeamConfig, query: &str) -> bool {
    team.queries.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => query.starts_with(prefix),
        None => p == query,
    })
}

pub fn decide(config: &Config, who: &Identity, place: &Place, cmd: &Command) -> Decision {
    let spec = cmd.spec();
    if spec.plugin == "core" {
        return Decision::Allowed { team: String::new(), confirm: false };
    }
    let teams = memberships(config, who);
    if teams.is_empty() {
        return Decision::Refused {
            reason: format!(
                "you ({who}) are not in any team; an admin can add you to a team's `members` in lazyops.toml"
            ),
        };
    }
    let here: Vec<&Membership> = teams.iter().filter(|m| m.team.channels.iter().any(|c| place.matches(c))).collect();
    if here.is_empty() {
        return Decision::Refused { reason: format!("none of your teams may use lazyops in {}", place.key()) };
    }
    let names = |ms: &[&Membership]| ms.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let with_plugin: Vec<&Membership> =
        here.iter().copied().filter(|m| m.team.plugins.iter().any(|p| p == spec.plugin)).collect();
    if with_plugin.is_empty() {
        return Decision::Refused {
            reason: format!(
                "the `{}` plugin is not enabled for your team ({}); add it to the team's `plugins`",
                spec.plugin,
                names(&here)
            ),
        };
    }
    let allowing: Vec<&Membership> = with_plugin.iter().copied().filter(|m| any_matches(&m.allowed(), cmd)).collect();
    let Some(first) = allowing.first() else {
        return Decision::Refused {
            reason: format!(
                "no rule of your team ({}) allows `{cmd}`; a rule like `{} *` in the team's `allow` would",
                names(&with_plugin),
                spec.name()
            ),
        };
    };
    if let Command::DbQuery { query, .. } | Command::DbDescribe { query } = cmd
        && !allowing.iter().any(|m| query_allowed(m.team, query))
    {
        return Decision::Refused {
            reason: format!("your team ({}) may not run the query `{query}`", names(&allowing)),
        };
    }
    let confirm = match spec.confirm {
        ConfirmPolicy::Never => false,
        ConfirmPolicy::Always => true,
        ConfirmPolicy::Configurable => allowing.iter().any(|m| {
            let patterns: Vec<&str> = m.team.confirm.iter().map(String::as_str).collect();
            any_matches(&patterns, cmd)
        }),
    };
    Decision::Allowed { team: first.name.to_string(), confirm }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Transport;
    use crate::param::ParamValue;
    use std::path::Path;

    const CONFIG: &str = r#"
[envs.prod]
[envs.staging]
[teams.dev]
members = ["local:*", "slack:U1"]
channels = ["local", "slack:C1"]
plugins = ["db", "deploy", "test"]
allow = ["deploy version *", "test run * staging", "db *"]
queries = ["user-*"]
confirm = ["db query *"]
[teams.dev.roles.admin]
members = ["local:root"]
allow = ["audit *"]
[teams.secret]
members = ["slack:U9"]
plugins = ["manifest"]
"#;

    fn check(who: &str, place: Place, cmd: Command) -> Decision {
        let config = Config::parse(CONFIG, Path::new("t.toml")).unwrap();
        let (t, n) = who.split_once(':').unwrap();
        let transport = if t == "slack" { Transport::Slack } else { Transport::Local };
        decide(&config, &Identity::new(transport, n), &place, &cmd)
    }

    fn slack(channel: &str) -> Place {
        Place { transport: Transport::Slack, channel: channel.into(), thread: None }
    }

    fn test_run(env: &str) -> Command {
        Command::TestRun { suite: "smoke".into(), env: env.into() }
    }

    #[test]
    fn patterns_match_words_and_trailing_rest() {
        let p = Pattern::parse("test run * staging").unwrap();
        assert!(p.matches(&test_run("staging")));
        assert!(!p.matches(&test_run("prod")));
        assert!(Pattern::parse("*").unwrap().matches(&Command::Whoami));
        assert!(Pattern::parse("todo *").unwrap().matches(&Command::TodoAdd { text: "a b * c".into() }));
        assert!(Pattern::parse("frobnicate *").is_err());
        assert!(Pattern::parse("db qu*").is_err());
    }

    #[test]
    fn members_run_what_their_rules_allow_here() {
        assert_eq!(
            check("local:alice", Place::terminal(), test_run("staging")),
            Decision::Allowed { team: "dev".into(), confirm: true }
        );
        let q = Command::DbQuery {
            query: "user-by-id".into(),
            params: vec![("user_id".into(), ParamValue::Int(1))],
            env: None,
        };
        assert_eq!(check("slack:U1", slack("C1"), q), Decision::Allowed { team: "dev".into(), confirm: true });
    }

    #[test]
    fn refusals_say_which_rule_is_missing() {
        let reason = |d: Decision| match d {
            Decision::Refused { reason } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            reason(check("local:alice", Place::terminal(), test_run("prod")))
                .contains("no rule of your team (dev) allows `test run smoke prod`")
        );
        assert!(reason(check("slack:U2", slack("C1"), Command::DbList)).contains("not in any team"));
        assert!(
            reason(check("slack:U1", slack("C2"), Command::DbList))
                .contains("none of your teams may use lazyops in slack:C2")
        );
        let meme = reason(check("local:alice", Place::terminal(), Command::Meme { subreddit: None }));
        assert!(meme.contains("`meme` plugin is not enabled for your team (dev)"), "{meme}");
        assert!(!meme.contains("secret"), "refusals never name other teams: {meme}");
        let q = Command::DbQuery { query: "payment-by-id".into(), params: vec![], env: None };
        assert!(reason(check("local:alice", Place::terminal(), q)).contains("may not run the query `payment-by-id`"));
    }

    #[test]
    fn roles_add_rules() {
        let audit = Command::Audit { since: None, who: None, limit: None };
        assert!(
            matches!(check("local:root", Place::terminal(), audit.clone()), Decision::Refused { .. }),
            "audit plugin is not enabled"
        );
        let d =
            check("local:root", Place::terminal(), Command::DeployVersion { service: "x".into(), env: "prod".into() });
        assert_eq!(d, Decision::Allowed { team: "dev".into(), confirm: false });
    }

    #[test]
    fn core_commands_are_always_allowed() {
        assert_eq!(
            check("slack:U77", slack("C9"), Command::Whoami),
            Decision::Allowed { team: String::new(), confirm: false }
        );
    }
}
