//! The command specs: the one table that says which commands exist, what arguments they take,
//! how they are confirmed and which plugin runs them.
//!
//! The grammar's argument binding, `help`, the intent templates and the LLM tools are all derived
//! from [`SPECS`]; nothing else lists commands. A unit test in `understand::grammar` keeps the
//! pest grammar's keywords and this table in step.

/// Every command lazyops knows, without its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandKind {
    Help,
    Whoami,
    Explain,
    Confirm,
    Cancel,
    Approve,
    Reject,
    Approvals,
    Audit,
    DbList,
    DbDescribe,
    DbQuery,
    DbSchemaCheck,
    DbSql,
    DeployVersion,
    ReleaseCheck,
    TestRun,
    TestStatus,
    TestList,
    TestCancel,
    Meme,
    TodoAdd,
    TodoList,
    TodoDone,
    TodoUndo,
    TodoAssign,
    Manifest,
}

impl CommandKind {
    /// Answered by lazyops from what it already holds, changing nothing anywhere: there is
    /// nothing in flight to record before such a command runs, so its audit row is written
    /// once, complete, before the answer goes out (one write instead of two).
    pub fn changes_nothing(self) -> bool {
        use CommandKind as K;
        matches!(self, K::Help | K::Whoami | K::Explain | K::DbList | K::DbDescribe | K::Approvals)
    }
}

/// What kind of value an argument holds; decides how it is checked and how it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A service from config, by name or alias.
    Service,
    /// An environment from config, by name or alias; the default environment when absent.
    Env,
    /// A predefined query name.
    Query,
    /// A test suite name.
    Suite,
    /// A manifest template name.
    Template,
    /// A subreddit name (`[A-Za-z0-9_]{2,21}`); which ones are allowed is decided when it runs.
    Subreddit,
    /// A command name, for `help`.
    Topic,
    /// A positive integer id (a job, a TODO item).
    Id,
    /// A test run: its id, `last` (the latest run) or a suite name (that suite's latest run).
    Run,
    /// A confirmation code.
    Code,
    /// A target database from config's `[databases]`.
    Database,
    /// One SQL statement, one quoted value; always printed quoted.
    Sql,
    /// An identity such as `local:alice` or `slack:U123`, or a bare name.
    Who,
    /// An ISO date (`2026-11-25`).
    Date,
    /// Where a listing starts: `today`, `yesterday`, `2h`, `7d` or an ISO date.
    Since,
    /// How many rows to list.
    Count,
    /// Free text: the rest of the line or one quoted string; always printed quoted.
    Text,
    /// The typed parameters of a query or manifest template, declared in its file.
    Params,
}

/// When a command needs the requester to confirm before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmPolicy {
    /// Runs at once (read-only and cheap).
    Never,
    /// Confirmed when a team's config lists it under `confirm`, else runs at once.
    Configurable,
    /// Always confirmed: it triggers work or prepares a write.
    Always,
}

#[derive(Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub help: &'static str,
}

#[derive(Debug)]
pub struct CommandSpec {
    pub kind: CommandKind,
    /// The keywords, e.g. `["db", "query"]`.
    pub words: &'static [&'static str],
    pub args: &'static [ArgSpec],
    pub summary: &'static str,
    pub examples: &'static [&'static str],
    pub confirm: ConfirmPolicy,
    /// The plugin that runs it; `core` is always enabled.
    pub plugin: &'static str,
}

impl CommandSpec {
    /// The command's name as typed: `db query`.
    pub fn name(&self) -> String {
        self.words.join(" ")
    }

    /// `db query <query> [params]`: the usage line shown by `help` and in parse errors.
    pub fn usage(&self) -> String {
        let mut out = self.name();
        for arg in self.args {
            let shown = match arg.kind {
                ArgKind::Params => "name=value ...".to_string(),
                ArgKind::Env if matches!(self.kind, CommandKind::DbQuery | CommandKind::DbSql) => {
                    "--env env".to_string()
                }
                // Filters are written as flags, as the examples and `lazyops audit` write them.
                ArgKind::Since => format!("--{} today|yesterday|2h|7d|YYYY-MM-DD", arg.name),
                ArgKind::Who if self.kind == CommandKind::Audit => format!("--{} identity", arg.name),
                ArgKind::Count => format!("--{} N", arg.name),
                ArgKind::Text | ArgKind::Sql => format!("\"{}\"", arg.name),
                _ => arg.name.to_string(),
            };
            if arg.required {
                out.push_str(&format!(" <{shown}>"));
            } else {
                out.push_str(&format!(" [{shown}]"));
            }
        }
        out
    }

    pub fn arg(&self, name: &str) -> Option<&ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }
}

const fn req(name: &'static str, kind: ArgKind, help: &'static str) -> ArgSpec {
    ArgSpec { name, kind, required: true, help }
}

const fn opt(name: &'static str, kind: ArgKind, help: &'static str) -> ArgSpec {
    ArgSpec { name, kind, required: false, help }
}

use ArgKind as A;
use CommandKind as K;
use ConfirmPolicy as C;

/// The command table. Order is the order of `help`.
pub static SPECS: &[CommandSpec] = &[
    CommandSpec {
        kind: K::Help,
        words: &["help"],
        args: &[opt("command", A::Topic, "a command to show in detail")],
        summary: "list the commands, or show one command's usage and examples",
        examples: &["help", "help deploy", "help db query"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Whoami,
        words: &["whoami"],
        args: &[],
        summary: "your identity, teams and roles, and what you may run",
        examples: &["whoami"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Explain,
        words: &["explain"],
        args: &[req("text", A::Text, "the sentence to explain")],
        summary: "how a sentence is understood: tier, top intents, slots, resulting command",
        examples: &["explain \"which version of payments is live?\""],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Confirm,
        words: &["confirm"],
        args: &[req("code", A::Code, "the code shown with the pending command")],
        summary: "run a command that is waiting for your confirmation",
        examples: &["confirm 7F3K"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Cancel,
        words: &["cancel"],
        args: &[req("code", A::Code, "the code shown with the pending command")],
        summary: "drop a command that is waiting for your confirmation",
        examples: &["cancel 7F3K"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Approve,
        words: &["approve"],
        args: &[req("code", A::Code, "the code shown with the approval request")],
        summary: "approve a command a colleague asked for (the rule's approvers only, never the requester)",
        examples: &["approve 7F3K9Q"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Reject,
        words: &["reject"],
        args: &[
            req("code", A::Code, "the code shown with the approval request"),
            opt("reason", A::Text, "why, for the requester"),
        ],
        summary: "turn down a command waiting for your approval",
        examples: &["reject 7F3K9Q \"use the user-by-email query instead\""],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Approvals,
        words: &["approvals"],
        args: &[],
        summary: "what waits for your approval, and what you asked others to approve",
        examples: &["approvals"],
        confirm: C::Never,
        plugin: "core",
    },
    CommandSpec {
        kind: K::Audit,
        words: &["audit"],
        args: &[
            opt("since", A::Since, "only entries from this day or this far back (days in UTC)"),
            opt("who", A::Who, "only entries of this identity"),
            opt("limit", A::Count, "at most this many entries (default 50, at most 1000)"),
        ],
        summary: "the latest audit entries (admins)",
        examples: &["audit", "audit --since 2h", "audit --since yesterday --who local:alice --limit 20"],
        confirm: C::Never,
        plugin: "audit",
    },
    CommandSpec {
        kind: K::DbList,
        words: &["db", "list"],
        args: &[],
        summary: "the predefined queries you may run",
        examples: &["db list"],
        confirm: C::Never,
        plugin: "db",
    },
    CommandSpec {
        kind: K::DbDescribe,
        words: &["db", "describe"],
        args: &[req("query", A::Query, "a query name")],
        summary: "a query's description, parameters, database and examples",
        examples: &["db describe user-by-id"],
        confirm: C::Never,
        plugin: "db",
    },
    CommandSpec {
        kind: K::DbQuery,
        words: &["db", "query"],
        args: &[
            req("query", A::Query, "a query name (see `db list`)"),
            opt("params", A::Params, "the query's parameters, positional or name=value"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "run a predefined read-only query with typed, bound parameters",
        examples: &[
            "db query user-by-id user_id=42",
            "db query user-by-id 42",
            "db query recent-signups days=30 --env staging",
        ],
        confirm: C::Configurable,
        plugin: "db",
    },
    CommandSpec {
        kind: K::DbSchemaCheck,
        words: &["db", "schema", "check"],
        args: &[
            req("service", A::Service, "a service"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "compare the live schema with the one the service's migrations expect",
        examples: &["db schema check payments prod"],
        confirm: C::Never,
        plugin: "db",
    },
    CommandSpec {
        kind: K::DbSql,
        words: &["db", "sql"],
        args: &[
            req("database", A::Database, "a database from the config's [databases]"),
            req("sql", A::Sql, "one read-only statement, as one quoted value"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "ad-hoc read-only SQL, run once a colleague approves it (needs an approval rule)",
        examples: &["db sql users \"SELECT count(*) FROM users\" --env staging"],
        confirm: C::Never,
        plugin: "db",
    },
    CommandSpec {
        kind: K::DeployVersion,
        words: &["deploy", "version"],
        args: &[
            req("service", A::Service, "a service"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "which version of a service is deployed",
        examples: &["deploy version payments prod", "deploy version users staging"],
        confirm: C::Never,
        plugin: "deploy",
    },
    CommandSpec {
        kind: K::ReleaseCheck,
        words: &["release", "check"],
        args: &[
            req("service", A::Service, "a service"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "run the team's release checklist for a service",
        examples: &["release check payments prod"],
        confirm: C::Never,
        plugin: "release",
    },
    CommandSpec {
        kind: K::TestRun,
        words: &["test", "run"],
        args: &[
            req("suite", A::Suite, "a test suite"),
            opt("env", A::Env, "the environment; the default one when absent"),
        ],
        summary: "start a test suite as a background job",
        examples: &["test run smoke staging"],
        confirm: C::Always,
        plugin: "test",
    },
    CommandSpec {
        kind: K::TestStatus,
        words: &["test", "status"],
        args: &[req("id", A::Run, "the run's id, `last`, or a suite (its latest run)")],
        summary: "the state of a test run",
        examples: &["test status 12", "test status last", "test status smoke"],
        confirm: C::Never,
        plugin: "test",
    },
    CommandSpec {
        kind: K::TestList,
        words: &["test", "list"],
        args: &[],
        summary: "the configured suites and recent runs",
        examples: &["test list"],
        confirm: C::Never,
        plugin: "test",
    },
    CommandSpec {
        kind: K::TestCancel,
        words: &["test", "cancel"],
        args: &[req("id", A::Id, "the run's id")],
        summary: "cancel a queued or running test run",
        examples: &["test cancel 12"],
        confirm: C::Always,
        plugin: "test",
    },
    CommandSpec {
        kind: K::Meme,
        words: &["meme"],
        args: &[opt("subreddit", A::Subreddit, "a subreddit your team allows")],
        summary: "a safe-for-work image post from Reddit",
        examples: &["meme", "meme ProgrammerHumor"],
        confirm: C::Never,
        plugin: "meme",
    },
    CommandSpec {
        kind: K::TodoAdd,
        words: &["todo", "add"],
        args: &[req("text", A::Text, "what needs doing")],
        summary: "add an item to your team's TODO list",
        examples: &["todo add \"rotate the staging db password\""],
        confirm: C::Configurable,
        plugin: "todo",
    },
    CommandSpec {
        kind: K::TodoList,
        words: &["todo", "list"],
        args: &[],
        summary: "your team's open TODO items, oldest first",
        examples: &["todo list"],
        confirm: C::Never,
        plugin: "todo",
    },
    CommandSpec {
        kind: K::TodoDone,
        words: &["todo", "done"],
        args: &[req("id", A::Id, "the item's number")],
        summary: "mark a TODO item done",
        examples: &["todo done 3"],
        confirm: C::Configurable,
        plugin: "todo",
    },
    CommandSpec {
        kind: K::TodoUndo,
        words: &["todo", "undo"],
        args: &[req("id", A::Id, "the item's number")],
        summary: "reopen a TODO item marked done",
        examples: &["todo undo 3"],
        confirm: C::Configurable,
        plugin: "todo",
    },
    CommandSpec {
        kind: K::TodoAssign,
        words: &["todo", "assign"],
        args: &[
            req("id", A::Id, "the item's number"),
            req("who", A::Who, "who takes it, e.g. local:alice or slack:U0123"),
        ],
        summary: "assign a TODO item to someone",
        examples: &["todo assign 3 local:alice"],
        confirm: C::Configurable,
        plugin: "todo",
    },
    CommandSpec {
        kind: K::Manifest,
        words: &["manifest"],
        args: &[
            req("template", A::Template, "a manifest template"),
            opt("params", A::Params, "the template's parameters, positional or name=value"),
        ],
        summary: "render a Kubernetes Job for a write; lazyops never applies it",
        examples: &["manifest update-user-email user_id=42 email=new@example.com"],
        confirm: C::Always,
        plugin: "manifest",
    },
];

/// The spec of a command kind. Every kind has exactly one (checked by a test).
pub fn spec(kind: CommandKind) -> &'static CommandSpec {
    SPECS.iter().find(|s| s.kind == kind).expect("every CommandKind has a spec in SPECS")
}

/// The plugin names a team may enable in config.
pub fn plugin_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = SPECS.iter().map(|s| s.plugin).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_spec() {
        for s in SPECS {
            assert_eq!(SPECS.iter().filter(|o| o.kind == s.kind).count(), 1, "{:?}", s.kind);
        }
        assert_eq!(SPECS.len(), 27);
    }

    #[test]
    fn usage_lines_show_required_and_optional_args() {
        assert_eq!(spec(CommandKind::DeployVersion).usage(), "deploy version <service> [env]");
        assert_eq!(spec(CommandKind::DbQuery).usage(), "db query <query> [name=value ...] [--env env]");
        assert_eq!(spec(CommandKind::TodoAdd).usage(), "todo add <\"text\">");
        assert_eq!(
            spec(CommandKind::Audit).usage(),
            "audit [--since today|yesterday|2h|7d|YYYY-MM-DD] [--who identity] [--limit N]"
        );
    }
}
