//! Background jobs: test runs started from chat, run by the process that accepted them while
//! the bot's database keeps their state (queued → running → passed / failed / timed out /
//! cancelled, or interrupted when the process running them went away).
//!
//! The requester is told when a run ends through [`Jobs::subscribe`]: every transport that
//! can answer later (terminal, Slack thread, GitHub comment) listens, picks the outcomes whose
//! `place` is its own, and posts [`notification`] there.

pub mod suite;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};

use crate::config::SuiteConfig;
use crate::render::{Reply, Status, TestRun};
use crate::store::jobs::{Cancel, Finished, Job, JobState, NewJob};
use crate::store::{Store, StoreError, now_ms};

/// The job kind of test runs in the `jobs` table.
pub const TEST_KIND: &str = "test";
/// How often an owner proves it is alive, and looks for a cancel request from elsewhere.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// An owner silent this long is gone (another host, or a process that was killed).
const STALE_MS: i64 = 30_000;

/// A finished run, as a transport needs it to tell the requester.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobOutcome {
    pub id: i64,
    pub suite: String,
    pub env: String,
    pub state: JobState,
    pub requester: String,
    /// `Place::key()` of where the run was asked for: answer there.
    pub place: String,
    pub detail: String,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
}

impl JobOutcome {
    pub fn of(job: &Job) -> JobOutcome {
        JobOutcome {
            id: job.id,
            suite: job.name.clone(),
            env: job.env.clone(),
            state: job.state,
            requester: job.requester.clone(),
            place: job.place.clone(),
            detail: job.detail.clone().unwrap_or_default(),
            exit_code: job.exit_code,
            duration_ms: match (job.started_at, job.finished_at) {
                (Some(s), Some(f)) => Some(f - s),
                _ => None,
            },
        }
    }
}

pub fn state_icon(s: JobState) -> &'static str {
    match s {
        JobState::Passed => "✅",
        JobState::Failed | JobState::TimedOut => "❌",
        JobState::Queued | JobState::Running => "⏳",
        JobState::Cancelled | JobState::Interrupted => "⚠️",
    }
}

pub fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// The message that tells the requester a run ended; the hook every transport calls.
pub fn notification(o: &JobOutcome) -> Reply {
    let took = o.duration_ms.map(|d| format!(" after {}", duration(d))).unwrap_or_default();
    // Only a pass is done: scripts read a failed, timed-out or cut-short run as failed (exit 1).
    // The renderers mark a failure themselves (`error:`, :x:), so only a pass gets an icon here.
    let (status, icon) = if o.state == JobState::Passed { (Status::Done, "✅ ") } else { (Status::Failed, "") };
    let mut reply =
        Reply::new(status, format!("{icon}test run #{} ({} on {}) {}{took}", o.id, o.suite, o.env, o.state.words()));
    // Said where the run was asked for, like its start, whatever the outcome.
    reply.public = true;
    reply.test_run = Some(TestRun {
        id: o.id,
        suite: o.suite.clone(),
        env: o.env.clone(),
        state: o.state.name(),
        exit_code: o.exit_code,
        duration_ms: o.duration_ms,
    });
    if !o.detail.is_empty() {
        reply = reply.text(o.detail.clone());
    }
    reply.text(format!("Requested by {}. `test status {}` shows the output.", o.requester, o.id))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("suite `{0}` has neither a `command` nor an `http` trigger in [suites.{0}]")]
    NotRunnable(String),
    #[error(
        "suite `{suite}`: the program `{program}` was not found (on PATH or in the workspace); nothing was started"
    )]
    NoProgram { suite: String, program: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Who asked for a run, and where to tell them.
pub struct Requester<'a> {
    pub who: &'a str,
    pub place: &'a str,
}

/// The runs this process owns.
pub struct Jobs {
    owner: String,
    host: String,
    cancels: Mutex<HashMap<i64, watch::Sender<bool>>>,
    finished: broadcast::Sender<JobOutcome>,
    /// Rung when a run ends here, so queued runs try for a slot at once.
    wake: Notify,
    active: AtomicUsize,
    idle: Notify,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Jobs {
    pub fn new() -> Arc<Jobs> {
        let host = hostname();
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let owner = format!("{host}:{}:{}", std::process::id(), &instance[..8]);
        Arc::new(Jobs {
            owner,
            host,
            cancels: Mutex::new(HashMap::new()),
            finished: broadcast::channel(64).0,
            wake: Notify::new(),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Outcomes of the runs this process finishes, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobOutcome> {
        self.finished.subscribe()
    }

    /// Runs this process has started and not finished.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Waits until no run started here is queued or running (for `lazyops run`, which must
    /// not exit under a run it started).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Whether the owner of an unfinished job is gone: this very process never is; on this
    /// host a dead pid (or our own pid under another instance id: a restart) is; anywhere, an
    /// owner silent for longer than the stale window is.
    fn is_gone(&self, owner: &str, heartbeat: i64, now: i64) -> bool {
        if owner == self.owner {
            return false;
        }
        let mut parts = owner.rsplitn(3, ':');
        let (_, pid, host) = (parts.next(), parts.next(), parts.next());
        if host == Some(self.host.as_str())
            && let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
        {
            if pid == std::process::id() {
                return true;
            }
            if std::path::Path::new("/proc/self").exists() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return true;
            }
        }
        now - heartbeat > STALE_MS
    }

    /// Marks the runs of vanished owners as interrupted. Called at start-up and before every
    /// `test` command, so no run stays "running" forever.
    pub async fn recover(&self, store: &Store) -> Result<Vec<i64>, StoreError> {
        let now = now_ms();
        store.job_interrupt_gone(now, |owner, hb| self.is_gone(owner, hb, now)).await
    }

    /// Queues a run and starts driving it in the background; returns its id.
    pub async fn start(
        self: &Arc<Self>,
        store: &Store,
        root: PathBuf,
        suite: &str,
        cfg: SuiteConfig,
        env: &str,
        by: Requester<'_>,
    ) -> Result<i64, StartError> {
        match (cfg.command.first(), &cfg.http) {
            (Some(program), None) => {
                if suite::find_program(program, &root).is_none() {
                    return Err(StartError::NoProgram { suite: suite.to_string(), program: program.clone() });
                }
            }
            (_, Some(_)) => {}
            (None, None) => return Err(StartError::NotRunnable(suite.to_string())),
        }
        let new = NewJob { kind: TEST_KIND, name: suite, env, requester: by.who, place: by.place, owner: &self.owner };
        let id = store.job_create(&new, now_ms()).await?;
        let (tx, rx) = watch::channel(false);
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        self.active.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        let store = store.clone();
        let (suite, env) = (suite.to_string(), env.to_string());
        tokio::spawn(async move {
            let run = suite::Run { suite: &suite, env: &env, id, root: &root };
            me.drive(&store, run, &cfg, rx).await;
            me.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            me.wake.notify_waiters();
            me.active.fetch_sub(1, Ordering::SeqCst);
            me.idle.notify_waiters();
        });
        Ok(id)
    }

    /// `test cancel`: a queued run ends at once, a running one is stopped by its owner (at
    /// once when that is this process, within a heartbeat otherwise).
    pub async fn cancel(&self, store: &Store, id: i64, who: &str) -> Result<Cancel, StoreError> {
        let res = store.job_cancel(id, who, now_ms()).await?;
        if matches!(res, Cancel::Cancelled | Cancel::Requested)
            && let Ok(map) = self.cancels.lock()
            && let Some(tx) = map.get(&id)
        {
            let _ = tx.send(true);
        }
        Ok(res)
    }

    async fn drive(&self, store: &Store, run: suite::Run<'_>, cfg: &SuiteConfig, mut cancel: watch::Receiver<bool>) {
        let (id, name, env) = (run.id, run.suite, run.env);
        let limit = i64::from(cfg.max_concurrent.unwrap_or(1).max(1));
        // Queued: wait for a slot, keep the claim fresh, notice a cancel.
        loop {
            let woken = self.wake.notified();
            match store.job_claim(id, TEST_KIND, name, limit, &self.owner, now_ms()).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(job = id, error = %e, "claiming a job slot failed"),
            }
            if let Ok(None) = store.job_heartbeat(id, &self.owner, now_ms()).await {
                return self.announce(store, id).await;
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.changed() => {}
            }
        }
        tracing::info!(job = id, suite = name, env, "test run started");
        let (stop_tx, stop_rx) = watch::channel(false);
        let work = async {
            match &cfg.http {
                Some(http) => suite::run_http(cfg, http, &run, stop_rx).await,
                None => suite::run_command(cfg, &run, stop_rx).await,
            }
        };
        tokio::pin!(work);
        let mut beat = tokio::time::interval(HEARTBEAT);
        let outcome = loop {
            tokio::select! {
                o = &mut work => break o,
                _ = beat.tick() => {
                    if let Ok(Some(Some(_))) = store.job_heartbeat(id, &self.owner, now_ms()).await {
                        let _ = stop_tx.send(true);
                    }
                }
                r = cancel.changed() => {
                    if r.is_ok() && *cancel.borrow() {
                        let _ = stop_tx.send(true);
                    }
                }
            }
        };
        let f = Finished {
            state: outcome.state,
            exit_code: outcome.exit_code,
            detail: &outcome.detail,
            output: &outcome.output,
            output_bytes: i64::try_from(outcome.output_bytes).unwrap_or(i64::MAX),
        };
        if let Err(e) = store.job_finish(id, &self.owner, &f, now_ms()).await {
            tracing::error!(job = id, error = %e, "could not record the end of a test run");
        }
        tracing::info!(job = id, state = outcome.state.name(), "test run finished");
        self.announce(store, id).await;
    }

    /// Tells the listeners how a run ended, as the database has it.
    async fn announce(&self, store: &Store, id: i64) {
        match store.job_get(id).await {
            Ok(Some(job)) if job.state.is_final() => {
                let _ = self.finished.send(JobOutcome::of(&job));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(job = id, error = %e, "could not read a finished job"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_gone_when_dead_here_restarted_or_silent() {
        let jobs = Jobs::new();
        let now = 1_000_000;
        let host = jobs.host.clone();
        assert!(!jobs.is_gone(&jobs.owner, 0, now), "this process is never gone");
        let me = std::process::id();
        assert!(jobs.is_gone(&format!("{host}:{me}:0ldinst"), now, now), "our pid under another instance: a restart");
        assert!(jobs.is_gone(&format!("{host}:999999999:x"), now, now), "a dead pid on this host");
        assert!(!jobs.is_gone("elsewhere:1:x", now - 1000, now), "fresh heartbeat elsewhere");
        assert!(jobs.is_gone("elsewhere:1:x", now - STALE_MS - 1, now), "silent elsewhere");
    }

    #[test]
    fn a_notification_names_the_run_its_outcome_and_the_requester() {
        let o = JobOutcome {
            id: 7,
            suite: "smoke".into(),
            env: "staging".into(),
            state: JobState::TimedOut,
            requester: "slack:U1".into(),
            place: "slack:C1".into(),
            detail: "stopped after the 60 s timeout".into(),
            exit_code: None,
            duration_ms: Some(60_400),
        };
        let r = notification(&o);
        assert_eq!(r.headline, "test run #7 (smoke on staging) timed out after 60.4 s");
        assert_eq!(r.status, Status::Failed, "scripts read a run that did not pass as failed");
        assert_eq!(r.test_run.as_ref().map(|t| (t.id, t.state)), Some((7, "timed_out")));
        assert!(r.plain().contains("Requested by slack:U1"));
    }
}
