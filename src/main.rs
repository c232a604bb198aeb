//! The `lazyops` command line. Only this file uses `anyhow`; everything below returns typed
//! errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use lazyops::message::Place;
use lazyops::pipeline::{Bot, Options};
use lazyops::store::Store;
use lazyops::transport::terminal;
use lazyops::workspace::{self, Workspace, WorkspaceError};

/// `println!` that does not panic when stdout is a closed pipe (`lazyops ... | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "lazyops",
    version,
    about = "ChatOps bot: plain sentences and exact commands become one typed, confirmed, audited command"
)]
struct Cli {
    /// Config file (else LAZYOPS_CONFIG, else ./lazyops.toml, else the built-in demo under ./.lazyops/)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Your name in the terminal (default: the OS user); you are local:<NAME>
    #[arg(long = "as", global = true, value_name = "NAME")]
    as_name: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Interactive terminal session on the full pipeline
    Chat,
    /// One message through the pipeline, then exit (0 done, 1 refused/failed, 2 not understood, 3 waiting for confirmation, 4 a question was asked)
    Run {
        /// The message; `-` reads it from standard input
        text: String,
        /// Confirm what needs confirming
        #[arg(long)]
        yes: bool,
        /// Print the reply as JSON
        #[arg(long)]
        json: bool,
    },
    /// How a text is understood; nothing runs
    Explain {
        text: String,
        #[arg(long)]
        json: bool,
    },
    /// Validate the config, every query file and intent file; exit 1 on any problem
    Check {
        /// Also connect to every configured target database and warn when lazyops' user could write
        #[arg(long)]
        connect: bool,
    },
    /// Write the demo workspace into DIR (default: the current directory)
    Init { dir: Option<PathBuf> },
    /// Apply the state database's migrations
    Migrate,
    /// HTTP server for Slack and GitHub: /slack/commands, /slack/events, /slack/interactions,
    /// /github/webhook, /healthz, /metrics
    Serve {
        /// Port to listen on (else PORT, else 8080); 0 picks a free one and prints it
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on (127.0.0.1 keeps it on this machine)
        #[arg(long, default_value = "0.0.0.0")]
        host: std::net::IpAddr,
        /// Log lines as text or JSON (one object per line, for log collectors)
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Slack Socket Mode: open a WebSocket to Slack (SLACK_APP_TOKEN, xapp-…) instead of
        /// waiting for Slack's HTTP calls; also `[slack] mode = "socket"`
        #[arg(long)]
        socket: bool,
    },
    /// Tune and measure the local intent layer
    #[command(subcommand)]
    Intents(IntentsCmd),
    /// The latest audit entries
    Audit {
        /// Only entries from then on: today, yesterday, 30m, 2h, 7d, 2w or YYYY-MM-DD (UTC days)
        #[arg(long)]
        since: Option<String>,
        /// Only entries of this identity
        #[arg(long)]
        who: Option<String>,
        /// At most this many entries (default 50, at most 1000)
        #[arg(long)]
        limit: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IntentsCmd {
    /// Score understanding on held-out cases: lines {"text", "expect": "<canonical>" or null} or {"text", "expect_question": true}
    Eval {
        #[arg(long)]
        cases: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also ask the LLM tier (configured under [llm], OPENAI_BASE_URL, OPENAI_API_KEY) in this
        /// mode, and compare with the local layer alone on the same cases
        #[arg(long, value_enum, value_name = "MODE")]
        llm: Option<EvalLlmMode>,
        /// Exit 1 when the accuracy (a fraction, 0..1) is below this floor, for CI
        #[arg(long, value_name = "X", value_parser = fraction)]
        min_accuracy: Option<f64>,
    },
    /// Train the classifier on CLINC150-format lines {"text", "intent"} and score it on another file
    Bench {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Sentences that were not understood or understood wrongly (then cancelled), newest first,
    /// to add as examples; typed-command mistakes and requests refused as intended apart
    Unmatched {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

/// A `--min-accuracy` value: a fraction from 0 to 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a fraction between 0 and 1 (0.95 means 95%)")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.command);
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalLlmMode {
    Fallback,
    Always,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The server logs requests (info) to stderr, for its operator. Every other command talks to a
/// person, who sees friendly sentences only: its warnings go to `lazyops.log` in the workspace
/// (once it is known), unless LAZYOPS_LOG asks for them on stderr. Colours only on a terminal.
fn init_logs(cmd: &Cmd) {
    let asked = std::env::var("LAZYOPS_LOG").is_ok_and(|v| !v.trim().is_empty());
    let (format, default) = match cmd {
        Cmd::Serve { log_format, .. } => (*log_format, "info"),
        _ => (LogFormat::Text, "warn"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAZYOPS_LOG").unwrap_or_else(|_| default.into());
    let to_stderr = asked || matches!(cmd, Cmd::Serve { .. });
    let ansi = to_stderr && std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    // Every line is redacted on its way out: errors quote configured URLs with credentials.
    match (format, to_stderr) {
        (LogFormat::Text, true) => logs.with_writer(lazyops::redact::LogWriter).init(),
        (LogFormat::Json, true) => logs.json().flatten_event(true).with_writer(lazyops::redact::LogWriter).init(),
        (_, false) => logs.with_writer(WorkspaceLog).init(),
    }
}

/// The log file of a person's session, set once the workspace is loaded; lines logged before
/// that are dropped.
static LOG_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A log file past this size is moved to `lazyops.log.1` at start, so it stays bounded.
const LOG_FILE_MAX: u64 = 1 << 20;

fn log_to(root: &Path) {
    let path = root.join("lazyops.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_FILE_MAX) {
        let _ = std::fs::rename(&path, root.join("lazyops.log.1"));
    }
    let _ = LOG_FILE.set(path);
}

/// Appends each log line to [`LOG_FILE`] (opened per line: a person's session logs rarely).
struct WorkspaceLog;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for WorkspaceLog {
    type Writer = Box<dyn std::io::Write>;

    fn make_writer(&'a self) -> Self::Writer {
        let file = LOG_FILE.get().and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        match file {
            Some(f) => Box::new(lazyops::redact::Redacting(f)),
            None => Box::new(std::io::sink()),
        }
    }
}

async fn serve(config: Option<&Path>, host: std::net::IpAddr, port: Option<u16>, socket: bool) -> anyhow::Result<u8> {
    let port = match port {
        Some(p) => p,
        None => match std::env::var("PORT") {
            Ok(p) if !p.trim().is_empty() => p.trim().parse().context("PORT must be a port number")?,
            _ => 8080,
        },
    };
    let bot = std::sync::Arc::new(open_bot(config).await?);
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("listening on {host}:{port} (--port, PORT)"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // One line on stdout, so scripts and tests that pass --port 0 learn the port.
    out!("lazyops listening on http://{addr}");
    tracing::info!(%addr, "listening");
    // Edits to queries, intents, prompts and config apply without a restart.
    let _watcher = lazyops::reload::watch(bot.clone()).context("watching the workspace for changes")?;
    // Train the intent model off the request path, so the first sentence does not wait for it.
    let warm = bot.clone();
    tokio::task::spawn_blocking(move || {
        warm.workspace().model();
    });
    let mut settings = lazyops::transport::http::Settings::from_env();
    settings.slack_socket = socket || bot.workspace().config.slack.mode == lazyops::config::SlackMode::Socket;
    if settings.slack_socket {
        match settings.slack_app_token.as_deref() {
            None => {
                anyhow::bail!("Socket Mode needs SLACK_APP_TOKEN: the app-level token (xapp-…) with connections:write")
            }
            Some(t) if !t.starts_with("xapp-") => {
                anyhow::bail!(
                    "SLACK_APP_TOKEN must be an app-level token (it starts with xapp-), not a bot or user token"
                )
            }
            Some(_) => tracing::info!("slack socket mode"),
        }
    }
    lazyops::transport::http::serve(listener, bot, settings, lazyops::transport::http::shutdown_signal())
        .await
        .context("serving HTTP")?;
    Ok(0)
}

async fn load(config: Option<&Path>) -> anyhow::Result<Workspace> {
    let path =
        workspace::locate(config).await.context("finding the config (--config, LAZYOPS_CONFIG, ./lazyops.toml)")?;
    let ws = Workspace::load(&path)?;
    log_to(&ws.root);
    Ok(ws)
}

async fn open_bot(config: Option<&Path>) -> anyhow::Result<Bot> {
    let ws = load(config).await?;
    let url = ws.state_url().context("resolving the state database URL (LAZYOPS_STATE_URL or bot.state_url)")?;
    let store = Store::open(&url).await?;
    let retention = i64::from(ws.config.bot.audit_retention_days) * 86_400_000;
    if let Err(e) = store.audit_prune(lazyops::store::now_ms() - retention).await {
        tracing::warn!(error = %e, "audit retention cleanup failed");
    }
    let bot = Bot::new(ws, store);
    // Test runs of a previous process that died are interrupted, never left "running".
    if let Err(e) = bot.jobs().recover(bot.store()).await {
        tracing::warn!(error = %e, "marking interrupted test runs failed");
    }
    Ok(bot)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let config = cli.config.as_deref();
    let who = terminal::identity(cli.as_name.as_deref());
    match cli.command {
        Cmd::Chat => {
            // The first run without a config writes the demo workspace: say where, once.
            let first_run = config.is_none()
                && std::env::var_os("LAZYOPS_CONFIG").is_none()
                && !Path::new("lazyops.toml").is_file()
                && !Path::new(workspace::DEMO_DIR).exists();
            let bot = std::sync::Arc::new(open_bot(config).await?);
            if first_run {
                out!(
                    "Created ./{}/ with the demo workspace (config, queries, intents, demo databases); later runs reuse it.",
                    workspace::DEMO_DIR
                );
            }
            // Edits to queries, intents and config apply without leaving the session; a refused
            // edit is told in one sentence above the prompt (the log has the details).
            let (tell, notices) = tokio::sync::mpsc::channel(16);
            let _watcher = lazyops::reload::watch_telling(bot.clone(), Some(tell))
                .context("watching the workspace for changes")?;
            let history = bot.workspace().root.join("history");
            terminal::chat(&bot, &who, &history, notices).await.context("reading the terminal")?;
            Ok(0)
        }
        Cmd::Run { text, yes, json } => {
            let text = if text == "-" {
                match terminal::read_stdin() {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return Ok(2);
                    }
                }
            } else {
                text
            };
            let bot = open_bot(config).await?;
            Ok(terminal::run(&bot, &who, &text, Options { assume_yes: yes, ..Options::default() }, json).await)
        }
        Cmd::Explain { text, json } => {
            let bot = open_bot(config).await?;
            let e = bot.explain(&text, &who, &Place::terminal()).await;
            if json {
                out!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                let reply = lazyops::act::core::explanation(&e);
                terminal::print_reply(&reply, false);
            }
            Ok(if e.command.is_some() || e.question.is_some() { 0 } else { 2 })
        }
        Cmd::Check { connect } => {
            let path = workspace::locate(config).await?;
            match Workspace::load(&path) {
                Ok(ws) => {
                    out!(
                        "{}: ok ({} environments, {} services, {} queries)",
                        path.display(),
                        ws.catalog.envs.len(),
                        ws.catalog.services.len(),
                        ws.catalog.queries.len()
                    );
                    // Advice, not problems: a service whose version is read somewhere, but not
                    // on every environment, answers "no known version" there.
                    for (name, svc) in ws.config.services.iter().filter(|(_, s)| !s.version.is_empty()) {
                        for env in ws.config.envs.keys().filter(|e| !svc.version.contains_key(*e)) {
                            out!("note: {}", lazyops::deploy::admin_hint(name, env));
                        }
                    }
                    if !connect {
                        return Ok(0);
                    }
                    let pools = lazyops::queries::pools::Pools::new();
                    let findings = lazyops::queries::doctor::inspect(&ws, &pools).await;
                    pools.close().await;
                    for f in &findings {
                        out!("{f}");
                    }
                    let problems = findings.iter().filter(|f| f.is_problem()).count();
                    if problems > 0 {
                        out!("{problems} database(s) could write or could not be checked");
                    }
                    Ok(if problems > 0 { 1 } else { 0 })
                }
                Err(WorkspaceError::Problems(problems)) => {
                    for p in &problems {
                        out!("{p}");
                    }
                    out!("{} problem(s)", problems.len());
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Init { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let written = workspace::write_demo(&dir, false).await?;
            for f in &written {
                out!("wrote {}", f.display());
            }
            out!(
                "{} files; existing files were kept. Try: lazyops --config {} chat",
                written.len(),
                dir.join("lazyops.toml").display()
            );
            Ok(0)
        }
        Cmd::Migrate => {
            let ws = load(config).await?;
            Store::open(&ws.state_url()?).await?;
            out!("state database is up to date");
            Ok(0)
        }
        Cmd::Intents(cmd) => intents(config, cmd).await,
        Cmd::Serve { port, host, log_format: _, socket } => serve(config, host, port, socket).await,
        Cmd::Audit { since, who: filter, limit, json } => {
            // The flags become the typed command, so the terminal and chat check them alike.
            let mut text = String::from("audit");
            for (flag, value) in [("since", since), ("who", filter), ("limit", limit)] {
                if let Some(v) = value {
                    text.push_str(&format!(" --{flag} {}", lazyops::command::quote(&v)));
                }
            }
            let bot = open_bot(config).await?;
            Ok(terminal::run(&bot, &who, &text, Options::default(), json).await)
        }
    }
}

/// `intents unmatched --json`: the three kinds apart.
#[derive(serde::Serialize)]
struct UnmatchedReport {
    misses: Vec<UnmatchedEntry>,
    typed: Vec<UnmatchedEntry>,
    refused: Vec<UnmatchedEntry>,
}

#[derive(serde::Serialize)]
struct UnmatchedEntry {
    at: String,
    who: String,
    text: String,
    /// For a sentence whose command its author cancelled: that command.
    #[serde(skip_serializing_if = "Option::is_none")]
    understood_as: Option<String>,
}

/// Sorts the audit's unmatched messages: refusals, text that starts with a command's word (a
/// typing mistake in a command), and the rest, which the intent layer should learn.
fn unmatched_report(rows: &[lazyops::store::audit::Unmatched]) -> UnmatchedReport {
    let mut report = UnmatchedReport { misses: Vec::new(), typed: Vec::new(), refused: Vec::new() };
    for r in rows {
        let entry = UnmatchedEntry {
            at: lazyops::pipeline::format_ms(r.at),
            who: r.who.clone(),
            text: r.text.clone(),
            understood_as: r.command.clone().filter(|_| r.decision == "cancelled"),
        };
        let list = match r.decision.as_str() {
            "refused" => &mut report.refused,
            "not_understood" if lazyops::understand::typed_attempt(&r.text) => &mut report.typed,
            _ => &mut report.misses,
        };
        list.push(entry);
    }
    report
}

async fn intents(config: Option<&Path>, cmd: IntentsCmd) -> anyhow::Result<u8> {
    use lazyops::understand::eval;
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    match cmd {
        IntentsCmd::Eval { cases, json, llm, min_accuracy } => {
            let ws = load(config).await?;
            let client = lazyops::understand::llm::Llm::from_env();
            let with_llm = llm.map(|m| eval::EvalLlm {
                llm: &client,
                mode: match m {
                    EvalLlmMode::Fallback => lazyops::config::LlmMode::Fallback,
                    EvalLlmMode::Always => lazyops::config::LlmMode::Always,
                },
            });
            if with_llm.is_some() && ws.config.llm.model.is_none() {
                anyhow::bail!("--llm needs a model: set `model` under [llm] in {}", ws.config_path.display());
            }
            let report = eval::eval(&ws, &read(&cases)?, &cases.display().to_string(), with_llm).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for m in &report.misses {
                    out!("miss: {:?}\n  expected {}\n  got      {}", m.text, m.expected, m.got);
                }
                out!("\n{:<32} {:>9} {:>7} {:>8}", "intent", "precision", "recall", "support");
                for (name, s) in &report.per_intent {
                    out!("{name:<32} {:>9.2} {:>7.2} {:>8}", s.precision, s.recall, s.support);
                }
                for (e, g, n) in report.confusion.iter().take(10) {
                    out!("confused {n}x: {e} -> {g}");
                }
                out!("\n{}/{} correct ({:.1}%)", report.correct, report.total, report.accuracy * 100.0);
                if let Some(l) = &report.llm {
                    for c in &l.changed {
                        out!(
                            "changed: {:?}\n  expected {}\n  local    {}\n  with llm {}",
                            c.text,
                            c.expected,
                            c.local,
                            c.with_llm
                        );
                    }
                    out!(
                        "local alone: {}/{} ({:.1}%); model asked {} times ({} cached), {} + {} tokens, {:.0} ms mean",
                        l.local_correct,
                        report.total,
                        l.local_accuracy * 100.0,
                        l.asked,
                        l.cached,
                        l.prompt_tokens,
                        l.completion_tokens,
                        l.mean_latency_ms
                    );
                }
            }
            match min_accuracy {
                Some(floor) if report.accuracy < floor => {
                    eprintln!("accuracy {:.3} is below the floor {floor:.3} (--min-accuracy)", report.accuracy);
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
        IntentsCmd::Bench { train, test, json } => {
            let r =
                eval::bench(&read(&train)?, &read(&test)?, &train.display().to_string(), &test.display().to_string())?;
            if json {
                out!("{}", serde_json::to_string(&r)?);
            } else {
                out!(
                    "in-scope accuracy {:.3}, out-of-scope recall {:.3}, training {:.0} ms, {:.1} µs per sentence",
                    r.in_scope_accuracy,
                    r.oos_recall,
                    r.train_ms,
                    r.us_per_sentence
                );
            }
            Ok(0)
        }
        IntentsCmd::Unmatched { limit, json } => {
            let ws = load(config).await?;
            let store = Store::open(&ws.state_url()?).await?;
            let rows = store.unmatched(limit).await?;
            let report = unmatched_report(&rows);
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(0);
            }
            let sections = [
                ("misses: not understood, or understood wrongly and cancelled (add them as examples)", &report.misses),
                ("typed commands with a mistake (the grammar's error was the answer)", &report.typed),
                ("refused as intended (writes, restarts)", &report.refused),
            ];
            for (title, entries) in sections {
                out!("{} {title}", entries.len());
                for e in entries {
                    let understood = e.understood_as.as_deref().map(|c| format!("  (was `{c}`)")).unwrap_or_default();
                    out!("  {}  {}  {}{understood}", e.at, e.who, e.text);
                }
            }
            Ok(0)
        }
    }
}
