//! Which commands wait for colleagues' approval, and who may give it. A rule
//! (`[[teams.X.approval]]`) of any team the requester belongs to here applies, the first one
//! whose `commands` match in config order; its approvers are identities or `role:NAME` of that
//! team. The requester never approves their own request, whatever the rule says. Everything
//! here reads today's config: the pipeline asks again when the last approval arrives.

use crate::command::Command;
use crate::config::{ApprovalRule, Config, TeamConfig};
use crate::decide::policy::{Pattern, memberships};
use crate::message::{Identity, Place};

/// The rule a command falls under, with the team whose roles its approvers name.
#[derive(Clone, Copy, Debug)]
pub struct Rule<'a> {
    pub team: &'a str,
    config: &'a TeamConfig,
    pub rule: &'a ApprovalRule,
}

/// The rule that makes `requester`'s command wait for approval in `place`, if any.
pub fn rule_for<'a>(config: &'a Config, requester: &Identity, place: &Place, cmd: &Command) -> Option<Rule<'a>> {
    memberships(config, requester).into_iter().filter(|m| m.team.channels.iter().any(|c| place.matches(c))).find_map(
        |m| {
            m.team
                .approval
                .iter()
                .find(|r| r.commands.iter().any(|p| Pattern::parse(p).is_ok_and(|p| p.matches(cmd))))
                .map(|rule| Rule { team: m.name, config: m.team, rule })
        },
    )
}

impl Rule<'_> {
    /// Distinct approvers needed (at least one).
    pub fn count(&self) -> u32 {
        self.rule.count.max(1)
    }

    /// Whether `who` is one of the rule's approvers (the requester is refused elsewhere).
    pub fn may_approve(&self, who: &Identity) -> bool {
        self.rule.approvers.iter().any(|a| match a.strip_prefix("role:") {
            Some(role) => self.config.roles.get(role).is_some_and(|r| r.members.iter().any(|m| who.matches(m))),
            None => who.matches(a),
        })
    }

    /// The approvers as people to mention: roles expanded to their members, wildcards left out.
    pub fn mentions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.rule.approvers {
            let people: Vec<&String> = match a.strip_prefix("role:") {
                Some(role) => self.config.roles.get(role).map(|r| r.members.iter().collect()).unwrap_or_default(),
                None => vec![a],
            };
            for p in people {
                if !p.ends_with('*') && !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }
}

/// Problems with a team's approval rules, for `lazyops check` and loading.
pub fn problems(team: &str, t: &TeamConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in t.approval.iter().enumerate() {
        let at = format!("team `{team}`, approval rule {}", i + 1);
        if r.commands.is_empty() {
            out.push(format!("{at}: `commands` is empty; name the command patterns that need approval"));
        }
        for p in &r.commands {
            if let Err(e) = Pattern::parse(p) {
                out.push(format!("{at}: {e}"));
            }
        }
        if r.approvers.is_empty() {
            out.push(format!("{at}: `approvers` is empty; name identities or role:NAME"));
        }
        for a in &r.approvers {
            match a.strip_prefix("role:") {
                Some(role) if !t.roles.contains_key(role) => {
                    out.push(format!("{at}: approver `{a}` names no role of team `{team}`"));
                }
                Some(_) => {}
                None => {
                    if let Err(e) = Identity::parse_pattern(a) {
                        out.push(format!("{at}: {e}"));
                    }
                }
            }
        }
        if r.count == 0 {
            out.push(format!("{at}: `count` must be at least 1"));
        }
        if let Some(g) = &r.slack_group
            && !(g.len() > 1 && g.starts_with('S') && g.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            out.push(format!("{at}: `slack_group` must be a Slack user group id like S0123ABC"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Transport;
    use std::path::Path;

    const CONFIG: &str = r#"
[teams.oncall]
members = ["local:*"]
plugins = ["db", "todo"]
[teams.oncall.roles.reviewer]
members = ["local:bob", "slack:U0BOB", "local:*"]
[[teams.oncall.approval]]
commands = ["todo add *"]
approvers = ["role:reviewer", "local:carol"]
count = 2
"#;

    fn check(who: &str, cmd: Command) -> Option<(String, u32, bool)> {
        let config = Config::parse(CONFIG, Path::new("t.toml")).unwrap();
        let alice = Identity::new(Transport::Local, "alice");
        rule_for(&config, &alice, &Place::terminal(), &cmd)
            .map(|r| (r.team.to_string(), r.count(), r.may_approve(&Identity::new(Transport::Local, who))))
    }

    #[test]
    fn a_matching_rule_names_its_team_count_and_approvers() {
        assert_eq!(check("bob", Command::TodoAdd { text: "x".into() }), Some(("oncall".into(), 2, true)));
        assert_eq!(check("carol", Command::TodoAdd { text: "x".into() }), Some(("oncall".into(), 2, true)));
        assert_eq!(check("bob", Command::TodoList), None, "no rule matches");
    }

    #[test]
    fn mentions_expand_roles_and_leave_out_wildcards() {
        let config = Config::parse(CONFIG, Path::new("t.toml")).unwrap();
        let alice = Identity::new(Transport::Local, "alice");
        let r = rule_for(&config, &alice, &Place::terminal(), &Command::TodoAdd { text: "x".into() }).unwrap();
        assert_eq!(r.mentions(), ["local:bob", "slack:U0BOB", "local:carol"]);
    }

    #[test]
    fn bad_rules_are_problems() {
        let config = Config::parse(
            "[teams.t]\n[[teams.t.approval]]\ncommands = [\"frob *\"]\napprovers = [\"role:nobody\", \"bob\"]\ncount = 0\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let p = problems("t", &config.teams["t"]).join("\n");
        assert!(p.contains("does not start with a command word"), "{p}");
        assert!(p.contains("approver `role:nobody` names no role"), "{p}");
        assert!(p.contains("member `bob` must look like"), "{p}");
        assert!(p.contains("`count` must be at least 1"), "{p}");
    }
}
