//! Running one suite: a local command (argv, no shell, its own process group, a clean
//! environment, a timeout, output kept up to a cap) or a run on a CI service over HTTP
//! (POST a trigger, then poll a status URL).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::config::{HttpSuiteConfig, SuiteConfig};
use crate::http_body::BodyError;
use crate::store::jobs::JobState;

pub const DEFAULT_TIMEOUT_SECS: u64 = 600;
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
/// Variables passed through from lazyops' own environment; everything else stays behind, so
/// tokens lazyops holds never reach a test process unless config passes them on.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];
/// How long a process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: JobState,
    pub exit_code: Option<i64>,
    pub detail: String,
    /// The end of the output when it was longer than the cap.
    pub output: String,
    pub output_bytes: u64,
}

impl Outcome {
    /// A run that failed before it ended by itself. The detail quotes configured URLs and
    /// CI answers, and is shown to the channel: credentials are masked here.
    fn failed(detail: impl Into<String>) -> Outcome {
        Outcome {
            state: JobState::Failed,
            exit_code: None,
            detail: crate::redact::redact(&detail.into()),
            output: String::new(),
            output_bytes: 0,
        }
    }
}

/// What a run needs to know besides the suite's config.
pub struct Run<'a> {
    pub suite: &'a str,
    pub env: &'a str,
    pub id: i64,
    /// The workspace root: relative programs and the working directory start here.
    pub root: &'a Path,
}

impl Run<'_> {
    fn fill(&self, s: &str) -> String {
        s.replace("{env}", self.env).replace("{suite}", self.suite).replace("{run}", &self.id.to_string())
    }
}

/// Finds the program before anything is queued, so a typo fails at `test run`, not later.
pub fn find_program(program: &str, root: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = root.join(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The suite's variables: `env:NAME` values read from lazyops' environment now.
fn variables(cfg: &SuiteConfig, run: &Run<'_>) -> Result<Vec<(String, String)>, String> {
    let mut vars: Vec<(String, String)> =
        PASSED_THROUGH.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
    vars.push(("LAZYOPS_ENV".into(), run.env.into()));
    vars.push(("LAZYOPS_SUITE".into(), run.suite.into()));
    vars.push(("LAZYOPS_RUN".into(), run.id.to_string()));
    for (k, v) in &cfg.env {
        let value = match v.strip_prefix("env:") {
            Some(var) => {
                std::env::var(var).map_err(|_| format!("environment variable `{var}` (for {k}) is not set"))?
            }
            None => run.fill(v),
        };
        vars.push((k.clone(), value));
    }
    Ok(vars)
}

/// The last `cap` bytes of what the process printed, and how much it printed in all.
struct Tail {
    buf: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let bytes = if bytes.len() > self.cap { &bytes[bytes.len() - self.cap..] } else { bytes };
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(bytes);
    }

    fn text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut v = Vec::with_capacity(self.buf.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

async fn drain(mut r: impl tokio::io::AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => match tail.lock() {
                Ok(mut t) => t.push(&chunk[..n]),
                Err(poisoned) => poisoned.into_inner().push(&chunk[..n]),
            },
        }
    }
}

/// Signals the whole process group, so a suite's own children stop with it.
fn signal_group(pid: Option<u32>, signal: libc::c_int) {
    let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) else { return };
    // SAFETY: kill(2) with a negative pid signals the process group the child leads (it was
    // spawned with process_group(0)); it touches no memory of ours.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Why a run stopped before its process ended by itself.
enum Stop {
    Timeout,
    Cancel,
}

pub async fn run_command(cfg: &SuiteConfig, run: &Run<'_>, mut cancel: watch::Receiver<bool>) -> Outcome {
    let Some((program, args)) = cfg.command.split_first() else {
        return Outcome::failed(format!("suite `{}` has no command", run.suite));
    };
    let vars = match variables(cfg, run) {
        Ok(v) => v,
        Err(e) => return Outcome::failed(e),
    };
    let timeout = Duration::from_secs(cfg.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS));
    let program_path = if program.contains('/') { run.root.join(program) } else { PathBuf::from(program) };
    let mut child = match tokio::process::Command::new(&program_path)
        .args(args.iter().map(|a| run.fill(a)))
        .current_dir(run.root)
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::failed(format!("cannot start `{program}`: no such program"));
        }
        Err(e) => return Outcome::failed(format!("cannot start `{program}`: {e}")),
    };
    let pid = child.id();
    let tail = Arc::new(Mutex::new(Tail {
        buf: VecDeque::new(),
        cap: cfg.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT).max(1),
        total: 0,
    }));
    let mut readers = tokio::task::JoinSet::new();
    if let Some(out) = child.stdout.take() {
        readers.spawn(drain(out, tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.spawn(drain(err, tail.clone()));
    }
    let stop = tokio::select! {
        status = child.wait() => Ok(status),
        _ = tokio::time::sleep(timeout) => Err(Stop::Timeout),
        _ = cancelled(&mut cancel) => Err(Stop::Cancel),
    };
    if stop.is_err() {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    // Children of the suite may still hold the pipes: give them a moment, then stop them.
    if tokio::time::timeout(GRACE, async { while readers.join_next().await.is_some() {} }).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        readers.abort_all();
    }
    let (output, total) = match tail.lock() {
        Ok(t) => (t.text(), t.total),
        Err(p) => (p.get_ref().text(), p.get_ref().total),
    };
    let cap_note = |detail: String| {
        if total > output.len() as u64 {
            format!("{detail}; output was {total} bytes, the last {} kept", output.len())
        } else {
            detail
        }
    };
    let secs = timeout.as_secs();
    let (state, exit_code, detail) = match stop {
        Ok(Ok(status)) => match status.code() {
            Some(0) => (JobState::Passed, Some(0), "exit code 0".to_string()),
            Some(c) => (JobState::Failed, Some(i64::from(c)), format!("exit code {c}")),
            None => (JobState::Failed, None, "killed by a signal".to_string()),
        },
        Ok(Err(e)) => (JobState::Failed, None, format!("lost the process: {e}")),
        Err(Stop::Timeout) => (JobState::TimedOut, None, format!("stopped after the {secs} s timeout")),
        Err(Stop::Cancel) => (JobState::Cancelled, None, "cancelled while running".to_string()),
    };
    Outcome { state, exit_code, detail: cap_note(detail), output, output_bytes: total }
}

/// Resolves when the flag turns true; never when the sender is gone without cancelling.
async fn cancelled(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub async fn run_http(
    cfg: &SuiteConfig,
    http: &HttpSuiteConfig,
    run: &Run<'_>,
    mut cancel: watch::Receiver<bool>,
) -> Outcome {
    let timeout = Duration::from_secs(cfg.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS));
    let work = poll_http(http, run);
    tokio::select! {
        o = work => o,
        _ = tokio::time::sleep(timeout) => Outcome {
            state: JobState::TimedOut,
            exit_code: None,
            detail: format!("the CI run did not finish within {} s", timeout.as_secs()),
            output: String::new(),
            output_bytes: 0,
        },
        _ = cancelled(&mut cancel) => Outcome {
            state: JobState::Cancelled,
            exit_code: None,
            detail: "cancelled; the CI run itself may go on".into(),
            output: String::new(),
            output_bytes: 0,
        },
    }
}

/// A CI service's JSON answer, read with the cap; anything but JSON is `Broken`.
async fn json_body(resp: reqwest::Response) -> Result<Value, BodyError> {
    let body = crate::http_body::read(resp).await?;
    serde_json::from_slice(&body).map_err(|e| BodyError::Broken(e.to_string()))
}

async fn poll_http(http: &HttpSuiteConfig, run: &Run<'_>) -> Outcome {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("lazyops/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("cannot build an HTTP client: {e}")),
    };
    let token = match &http.token {
        Some(t) => match t.strip_prefix("env:") {
            Some(var) => match std::env::var(var) {
                Ok(v) => Some(v),
                Err(_) => return Outcome::failed(format!("environment variable `{var}` (the CI token) is not set")),
            },
            None => Some(t.clone()),
        },
        None => None,
    };
    let auth = |r: reqwest::RequestBuilder| match &token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let body = serde_json::json!({"suite": run.suite, "env": run.env, "run": run.id});
    let trigger = run.fill(&http.trigger);
    // reqwest's errors quote the URL whole; the messages name the request themselves.
    let answer = match auth(client.post(&trigger).json(&body)).send().await {
        Ok(r) if r.status().is_success() => match json_body(r).await {
            Ok(v) => Some(v),
            Err(BodyError::TooLarge) => {
                return Outcome::failed(format!("POST {trigger}: {}", BodyError::TooLarge));
            }
            Err(_) => None,
        },
        Ok(r) => return Outcome::failed(format!("POST {trigger} answered {}", r.status())),
        Err(e) => return Outcome::failed(format!("POST {trigger} failed: {}", e.without_url())),
    };
    let id_pointer = http.id_pointer.as_deref().unwrap_or("/id");
    let Some(remote) = answer.as_ref().and_then(|v| text_at(v, id_pointer)) else {
        return Outcome::failed(format!("the answer of {trigger} has no run id at `{id_pointer}`"));
    };
    let poll = run.fill(&http.poll).replace("{id}", &remote);
    let state_pointer = http.state_pointer.as_deref().unwrap_or("/status");
    let passed = if http.passed.is_empty() {
        vec!["passed".into(), "success".into(), "succeeded".into()]
    } else {
        http.passed.clone()
    };
    let failed = if http.failed.is_empty() {
        vec!["failed".into(), "failure".into(), "error".into(), "cancelled".into()]
    } else {
        http.failed.clone()
    };
    let every = Duration::from_secs(http.poll_secs.unwrap_or(5).max(1));
    loop {
        tokio::time::sleep(every).await;
        let v: Value = match auth(client.get(&poll)).send().await {
            Ok(r) if r.status().is_success() => match json_body(r).await {
                Ok(v) => v,
                Err(BodyError::TooLarge) => return Outcome::failed(format!("GET {poll}: {}", BodyError::TooLarge)),
                Err(_) => return Outcome::failed(format!("GET {poll} did not answer with JSON")),
            },
            Ok(r) => return Outcome::failed(format!("GET {poll} answered {}", r.status())),
            Err(e) => return Outcome::failed(format!("GET {poll} failed: {}", e.without_url())),
        };
        let Some(state) = text_at(&v, state_pointer) else { continue };
        let output = http.output_pointer.as_deref().and_then(|p| text_at(&v, p)).unwrap_or_default();
        let done = |s: JobState| Outcome {
            state: s,
            exit_code: None,
            detail: crate::redact::redact(&format!("CI run {remote}: {state}")),
            output_bytes: output.len() as u64,
            output: output.clone(),
        };
        if passed.iter().any(|p| p.eq_ignore_ascii_case(&state)) {
            return done(JobState::Passed);
        }
        if failed.iter().any(|p| p.eq_ignore_ascii_case(&state)) {
            return done(JobState::Failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_counts_all() {
        let mut t = Tail { buf: VecDeque::new(), cap: 5, total: 0 };
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.text(), "cdefg");
        t.push(b"0123456789");
        assert_eq!(t.text(), "56789");
        assert_eq!(t.total, 17);
    }
}
