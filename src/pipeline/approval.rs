//! The approval step of the flow, next to confirmations: a command that passed policy (and,
//! for free text, its requester's confirmation) and that a team's rule covers waits in the
//! state store for `count` distinct approvers. Every `approve` or `reject` is judged against
//! today's config: the place it was asked, the exact command (its hash), the rule, the
//! approver, and the requester's own permission; the vote that completes the count runs the
//! command once, as the requester, in the place they asked, with an audit row that names
//! every approver.

use super::{Bot, Request, rfc3339};
use crate::command::Command;
use crate::decide::approval::{Rule, rule_for};
use crate::decide::policy::{self, Decision};
use crate::message::{Identity, Place};
use crate::render::{PendingApproval, Reply, Status};
use crate::store::approval::{Approval, ApprovalError, NewApproval, Vote, command_hash};
use crate::store::audit::AuditStart;
use crate::store::now_ms;
use crate::understand::{self, Tier};
use crate::workspace::Workspace;

/// Requests expired per sweep; the rest wait for the next one.
const EXPIRE_BATCH: i64 = 100;
/// Decided requests told per look (`approval_news`).
const NEWS_BATCH: i64 = 20;
/// Requests one person may have waiting at once; past it they are told to wait.
const MAX_WAITING: i64 = 20;

/// A request judged against today's config, ready for a vote.
struct Judged<'w> {
    command: Command,
    requester: Identity,
    place: Place,
    rule: Rule<'w>,
}

fn refused(text: impl Into<String>) -> Reply {
    Reply::new(Status::Refused, text)
}

fn tier_of(name: &str) -> Tier {
    match name {
        "local" => Tier::Local,
        "llm" => Tier::Llm,
        _ => Tier::Grammar,
    }
}

impl Bot {
    /// Runs a command that passed policy (and confirmation), unless a rule says colleagues
    /// must approve it first. Ad-hoc SQL never runs without such a rule.
    pub(super) async fn proceed(
        &self,
        command: &Command,
        req: &Request<'_>,
        team: &str,
        decision: &str,
        confirmation: Option<&str>,
    ) -> Reply {
        let ws = self.workspace();
        match rule_for(&ws.config, req.who, req.place, command) {
            Some(rule) => self.ask_approval(&ws, req, command, rule).await,
            None if matches!(command, Command::DbSql { .. }) => {
                let _ = self.audit(req, Some(command), "refused", confirmation).await;
                refused("ad-hoc SQL runs only after review, and no approval rule of your team covers it")
                    .text("An admin can add a `[[teams.<team>.approval]]` rule with `commands = [\"db sql *\"]`.")
                    .command(command.to_string())
            }
            None => self.run(command, req, team, decision, confirmation).await,
        }
    }

    async fn ask_approval(&self, ws: &Workspace, req: &Request<'_>, command: &Command, rule: Rule<'_>) -> Reply {
        let canonical = command.to_string();
        // What people are shown: secret parameter values masked.
        let shown = super::redact_command(command, &ws.catalog);
        match self.store.pending_approvals_of(req.who.as_str(), now_ms()).await {
            Ok(n) if n >= MAX_WAITING => {
                let _ = self.audit(req, Some(command), "refused", None).await;
                return refused(format!(
                    "busy: you have {n} requests waiting for approval; wait for answers or let some expire"
                ))
                .command(shown);
            }
            Ok(_) => {}
            Err(e) => return Reply::failed(e.to_string()).command(shown),
        }
        let mut blocks = Vec::new();
        if let Command::DbSql { database, sql, env } = command {
            match crate::act::sql::review(self.pools(), ws, database, env, sql).await {
                Ok(review) => blocks = review.blocks(database, env, sql),
                Err(reason) => {
                    let _ = self.audit(req, Some(command), "refused", None).await;
                    return refused(reason).command(shown);
                }
            }
        }
        let new = NewApproval {
            requester: req.who.as_str(),
            place: &req.place.key(),
            command: &canonical,
            shown: &shown,
            approvers: &rule.rule.approvers,
            needed: rule.count(),
            tier: req.tier.name(),
            intent: req.intent.as_deref(),
            confidence: f64::from(req.confidence),
            ttl_ms: ws.config.bot.approval_ttl_secs.saturating_mul(1000).min(i64::MAX as u64) as i64,
        };
        let asked = match self.store.create_approval(&new, now_ms()).await {
            Ok(a) => a,
            Err(e) => return Reply::failed(e.to_string()).command(shown),
        };
        let _ = self.audit(req, Some(command), "approval_asked", Some(&asked.id)).await;
        let count = rule.count();
        let people =
            if count == 1 { "1 approval".to_string() } else { format!("{count} approvals from different people") };
        let mut reply = Reply::new(Status::AwaitingApproval, format!("`{shown}` waits for approval"))
            .command(shown.clone())
            .text(format!(
                "It needs {people} ({}), never the requester's own. It runs here, as {}, once approved.",
                rule.rule.approvers.join(", "),
                req.who
            ));
        reply.blocks.extend(blocks);
        reply.approval = Some(PendingApproval {
            code: asked.code,
            command: shown,
            approvers: rule.rule.approvers.clone(),
            count,
            expires_at: rfc3339(asked.expires_at),
            mentions: rule.mentions(),
            slack_group: rule.rule.slack_group.clone(),
            id: asked.id,
        });
        reply.public = true;
        reply
    }

    /// `approve <code>`, typed.
    pub(super) async fn approve_code(&self, req: &Request<'_>, code: &str) -> Reply {
        match self.store.approval_by_code(code).await {
            Ok(Some(a)) => self.approve(req, a).await,
            Ok(None) => refused(ApprovalError::NotFound(code.to_ascii_uppercase()).to_string()),
            Err(e) => Reply::failed(e.to_string()),
        }
    }

    /// `reject <code> [reason]`, typed.
    pub(super) async fn reject_code(&self, req: &Request<'_>, code: &str, reason: Option<&str>) -> Reply {
        match self.store.approval_by_code(code).await {
            Ok(Some(a)) => self.reject(req, a, reason).await,
            Ok(None) => refused(ApprovalError::NotFound(code.to_ascii_uppercase()).to_string()),
            Err(e) => Reply::failed(e.to_string()),
        }
    }

    /// An Approve (`approve`) or Reject button on an approval card: the request's full id,
    /// pressed by `who` in `place`.
    pub async fn answer_approval(&self, id: &str, who: &Identity, place: &Place, approve: bool) -> Reply {
        let text = if approve { "(approve button)" } else { "(reject button)" };
        let req = Request {
            who,
            place,
            text,
            tier: Tier::Grammar,
            intent: None,
            confidence: 1.0,
            llm: None,
            approved_by: None,
        };
        match self.store.approval(id).await {
            Ok(Some(a)) if approve => self.approve(&req, a).await,
            Ok(Some(a)) => self.reject(&req, a, None).await,
            Ok(None) => refused("no such approval request; `approvals` lists the ones waiting for you"),
            Err(e) => Reply::failed(e.to_string()),
        }
    }

    /// Checks an `approve` or `reject` of `a` by `req.who` against today's config.
    fn judge<'w>(&self, ws: &'w Workspace, req: &Request<'_>, a: &Approval) -> Result<Judged<'w>, Box<Reply>> {
        let (Some(requester), Some(place)) = (Identity::parse(&a.requester), Place::from_key(&a.place)) else {
            return Err(Box::new(Reply::failed(format!(
                "approval request {} is damaged in the state database",
                a.code
            ))));
        };
        if place.transport != req.place.transport || place.channel != req.place.channel {
            return Err(Box::new(refused(format!(
                "approval {} was asked in {}; answer it there (approvals are bound to the place they were asked)",
                a.code,
                place.key()
            ))));
        }
        if &requester == req.who {
            return Err(Box::new(refused(ApprovalError::OwnRequest.to_string())));
        }
        let command = understand::grammar::parse(&a.command, &ws.catalog).map_err(|e| {
            Box::new(refused(format!("`{}` no longer parses with the current config: {}", a.shown, e.message())))
        })?;
        if command_hash(&command.to_string()) != a.command_hash {
            return Err(Box::new(refused(format!(
                "`{}` reads differently under the current config; it will not run, ask again",
                a.shown
            ))));
        }
        let Some(rule) = rule_for(&ws.config, &requester, &place, &command) else {
            return Err(Box::new(
                refused(format!(
                    "no approval rule covers `{}` any more (the config changed); it will not run, ask again",
                    a.shown
                ))
                .command(a.shown.clone()),
            ));
        };
        if !rule.may_approve(req.who) {
            return Err(Box::new(
                refused(format!(
                    "you are not an approver of `{}`; it needs {}",
                    a.shown,
                    rule.rule.approvers.join(", ")
                ))
                .command(a.shown.clone()),
            ));
        }
        Ok(Judged { command, requester, place, rule })
    }

    async fn approve(&self, req: &Request<'_>, a: Approval) -> Reply {
        let ws = self.workspace();
        let j = match self.judge(&ws, req, &a) {
            Ok(j) => j,
            Err(r) => {
                let _ = self.audit(req, None, "refused", Some(&a.id)).await;
                return *r;
            }
        };
        // The requester's own permission, checked again with today's config.
        let team = match policy::decide(&ws.config, &j.requester, &j.place, &j.command) {
            Decision::Refused { reason } => {
                let _ = self.audit(req, Some(&j.command), "refused", Some(&a.id)).await;
                return refused(format!("`{}` may no longer run for {}: {reason}", a.shown, j.requester))
                    .command(a.shown);
            }
            Decision::Allowed { team, .. } => team,
        };
        match self.store.approve(&a.id, req.who.as_str(), j.rule.count(), now_ms()).await {
            Err(e) => {
                let status = if matches!(e, ApprovalError::Store(_)) { Status::Failed } else { Status::Refused };
                Reply::new(status, e.to_string()).command(a.shown)
            }
            Ok(Vote::Counted { have, need }) => {
                let _ = self.audit(req, Some(&j.command), "approve_vote", Some(&a.id)).await;
                let mut reply = Reply::done(format!("approved `{}` ({have} of {need})", a.shown))
                    .text(format!(
                        "It waits for {} more approver{} ({}).",
                        need.saturating_sub(have),
                        if need.saturating_sub(have) == 1 { "" } else { "s" },
                        a.approvers.join(", ")
                    ))
                    .command(a.shown);
                reply.mention = vec![j.requester.to_string()];
                reply
            }
            Ok(Vote::Approved { approval, approvers }) => self.run_approved(req, j, &team, approval, approvers).await,
        }
    }

    /// The vote that completed the count: every approval must still come from an approver
    /// under today's rule, then the command runs once, as its requester, where they asked.
    async fn run_approved(
        &self,
        req: &Request<'_>,
        j: Judged<'_>,
        team: &str,
        approval: Box<Approval>,
        approvers: Vec<String>,
    ) -> Reply {
        let valid = approvers
            .iter()
            .filter_map(|p| Identity::parse(p))
            .filter(|p| p != &j.requester && j.rule.may_approve(p))
            .count();
        if valid < j.rule.count() as usize {
            let reason = format!(
                "only {valid} of the {} approvals come from approvers under today's config; it needs {}",
                approvers.len(),
                j.rule.count()
            );
            let _ = self.store.refuse_approved(&approval.id, &reason).await;
            let _ = self.audit(req, Some(&j.command), "refused", Some(&approval.id)).await;
            return refused(format!("`{}` will not run: {reason}", approval.shown)).command(approval.shown);
        }
        let approved_by = approvers.join("\n");
        let text = approval.command.clone();
        let run_as = Request {
            who: &j.requester,
            place: &j.place,
            text: &text,
            tier: tier_of(&approval.tier),
            intent: approval.intent.clone(),
            confidence: approval.confidence as f32,
            llm: None,
            approved_by: Some(&approved_by),
        };
        let mut reply = self.run(&j.command, &run_as, team, "approved", Some(&approval.id)).await;
        if let Err(e) = self.store.approval_outcome(&approval.id, &reply.headline).await {
            tracing::warn!(error = %e, "approval outcome not kept");
        }
        reply = reply.text(format!("Asked by {}, approved by {}.", j.requester, approvers.join(", ")));
        reply.mention = vec![j.requester.to_string()];
        reply.public = reply.status == Status::Done;
        reply
    }

    async fn reject(&self, req: &Request<'_>, a: Approval, reason: Option<&str>) -> Reply {
        let ws = self.workspace();
        let j = match self.judge(&ws, req, &a) {
            Ok(j) => j,
            Err(r) => {
                let _ = self.audit(req, None, "refused", Some(&a.id)).await;
                return *r;
            }
        };
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        match self.store.reject(&a.id, req.who.as_str(), reason.unwrap_or(""), now_ms()).await {
            Err(e) => {
                let status = if matches!(e, ApprovalError::Store(_)) { Status::Failed } else { Status::Refused };
                Reply::new(status, e.to_string()).command(a.shown)
            }
            Ok(_) => {
                let _ = self.audit(req, Some(&j.command), "rejected", Some(&a.id)).await;
                let why = reason.map_or(String::new(), |r| format!(": {r}"));
                let mut reply = Reply::done(format!("rejected `{}`", a.shown))
                    .text(format!("{} turned down {}'s request{why}. It will not run.", req.who, j.requester))
                    .command(a.shown);
                reply.mention = vec![j.requester.to_string()];
                reply
            }
        }
    }

    /// Moves expired requests (only those asked in `only`, when given) out of `pending`, each
    /// once across instances, and says where to tell whom: the requester, where they asked.
    pub async fn expire_approvals(&self, only: Option<&Place>) -> Vec<(Place, Reply)> {
        let only = only.map(Place::key);
        let expired = match self.store.expire_approvals(now_ms(), only.as_deref(), EXPIRE_BATCH).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "approvals not expired");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for a in expired {
            let (Some(who), Some(place)) = (Identity::parse(&a.requester), Place::from_key(&a.place)) else { continue };
            let row = AuditStart {
                command: Some(a.shown.clone()),
                decision: "expired".into(),
                confirmation_id: Some(a.id.clone()),
                ..AuditStart::of(&who, &place, format!("(approval {} expired)", a.code))
            };
            if let Err(e) = self.store.audit_start(row).await {
                tracing::error!(error = %e, "audit write failed");
            }
            out.push((place, news(&a)));
        }
        out
    }

    /// What became of `who`'s requests in `place` decided after `since` (ms): for a terminal,
    /// where the approver may be another process. Returns the replies and the new `since`.
    pub async fn approval_news(&self, who: &Identity, place: &Place, since: i64) -> (Vec<Reply>, i64) {
        match self.store.approvals_decided_since(who.as_str(), &place.key(), since, NEWS_BATCH).await {
            Ok(rows) => {
                let last = rows.iter().filter_map(|a| a.decided_at).max().unwrap_or(since);
                (rows.iter().map(news).collect(), last)
            }
            Err(e) => {
                tracing::warn!(error = %e, "approval news unavailable");
                (Vec::new(), since)
            }
        }
    }
}

/// What the requester is told about a decided request.
fn news(a: &Approval) -> Reply {
    let by = a.decided_by.as_deref().unwrap_or("someone");
    let mut reply = match a.state.as_str() {
        "approved" => Reply::done(format!("your request `{}` was approved by {by}", a.shown))
            .text(a.outcome.as_deref().map_or("It ran.".to_string(), |o| format!("It ran: {o}"))),
        "rejected" => Reply::new(Status::Refused, format!("your request `{}` was rejected by {by}", a.shown))
            .text(a.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("No reason was given.").to_string()),
        "expired" => {
            Reply::new(Status::Failed, format!("your request `{}` expired without approval", a.shown)).text(format!(
                "It needed {} approval(s) from {}; ask again if it is still needed.",
                a.needed,
                a.approvers.join(", ")
            ))
        }
        other => Reply::new(Status::Refused, format!("your request `{}` was {other}", a.shown))
            .text(a.reason.clone().unwrap_or_default()),
    }
    .command(a.shown.clone());
    reply.mention = vec![a.requester.clone()];
    reply.public = true;
    reply
}
