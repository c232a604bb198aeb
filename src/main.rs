//! The `lazyops` command line. Only this file uses `anyhow`; everything below returns typed
//! errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use lazyops::message::Place;
use lazyops::pipeline::{Bot, Options};
use lazyops::store::Store;
use lazyops::transport::terminal;
use lazyops::workspace::{self, Workspace, WorkspaceError};

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
    /// One message through the pipeline, then exit (0 done, 1 refused/failed, 2 not understood, 3 waiting for confirmation)
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
    Check,
    /// Write the demo workspace into DIR (default: the current directory)
    Init { dir: Option<PathBuf> },
    /// Apply the state database's migrations
    Migrate,
    /// The latest audit entries
    Audit {
        /// Only entries on or after this date (YYYY-MM-DD)
        #[arg(long)]
        since: Option<String>,
        /// Only entries of this identity
        #[arg(long)]
        who: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LAZYOPS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn load(config: Option<&Path>) -> anyhow::Result<Workspace> {
    let path =
        workspace::locate(config).await.context("finding the config (--config, LAZYOPS_CONFIG, ./lazyops.toml)")?;
    Ok(Workspace::load(&path)?)
}

async fn open_bot(config: Option<&Path>) -> anyhow::Result<Bot> {
    let ws = load(config).await?;
    let url = ws.state_url().context("resolving the state database URL (LAZYOPS_STATE_URL or bot.state_url)")?;
    let store = Store::open(&url).await?;
    let retention = i64::from(ws.config.bot.audit_retention_days) * 86_400_000;
    if let Err(e) = store.audit_prune(lazyops::store::now_ms() - retention).await {
        tracing::warn!(error = %e, "audit retention cleanup failed");
    }
    Ok(Bot::new(ws, store))
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let config = cli.config.as_deref();
    let who = terminal::identity(cli.as_name.as_deref());
    match cli.command {
        Cmd::Chat => {
            let bot = open_bot(config).await?;
            let history = bot.workspace().root.join("history");
            terminal::chat(&bot, &who, &history).await.context("reading the terminal")?;
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
            let code = terminal::run(&bot, &who, &text, Options { assume_yes: yes }, json).await;
            Ok(u8::try_from(code).unwrap_or(1))
        }
        Cmd::Explain { text, json } => {
            let bot = open_bot(config).await?;
            let e = bot.explain(&text, &who, &Place::terminal()).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                let reply = bot
                    .handle(
                        &lazyops::message::Message {
                            who,
                            place: Place::terminal(),
                            text: format!("explain {}", lazyops::command::always_quote(&text)),
                        },
                        Options::default(),
                    )
                    .await;
                terminal::print_reply(&reply, false);
            }
            Ok(if e.command.is_some() || e.question.is_some() { 0 } else { 2 })
        }
        Cmd::Check => {
            let path = workspace::locate(config).await?;
            match Workspace::load(&path) {
                Ok(ws) => {
                    println!(
                        "{}: ok ({} environments, {} services, {} queries)",
                        path.display(),
                        ws.catalog.envs.len(),
                        ws.catalog.services.len(),
                        ws.catalog.queries.len()
                    );
                    Ok(0)
                }
                Err(WorkspaceError::Problems(problems)) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    println!("{} problem(s)", problems.len());
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Init { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let written = workspace::write_demo(&dir, false).await?;
            for f in &written {
                println!("wrote {}", f.display());
            }
            println!(
                "{} files; existing files were kept. Try: lazyops --config {} chat",
                written.len(),
                dir.join("lazyops.toml").display()
            );
            Ok(0)
        }
        Cmd::Migrate => {
            let ws = load(config).await?;
            Store::open(&ws.state_url()?).await?;
            println!("state database is up to date");
            Ok(0)
        }
        Cmd::Audit { since, who: filter, json } => {
            let mut text = String::from("audit");
            if let Some(s) = since {
                text.push_str(&format!(" --since {}", lazyops::command::quote(&s)));
            }
            if let Some(w) = filter {
                text.push_str(&format!(" --who {}", lazyops::command::quote(&w)));
            }
            let bot = open_bot(config).await?;
            let code = terminal::run(&bot, &who, &text, Options::default(), json).await;
            Ok(u8::try_from(code).unwrap_or(1))
        }
    }
}
