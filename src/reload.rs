//! Hot reload: when the config, a query, an intent, a prompt or a manifest file changes, the
//! workspace is loaded again and swapped in without a restart. A workspace with problems is
//! refused (logged) and the running one stays.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::pipeline::Bot;
use crate::workspace::{Workspace, WorkspaceError};

/// Changes within this window are loaded once.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Starts watching the bot's workspace; keep the returned watcher alive.
pub fn watch(bot: Arc<Bot>) -> notify::Result<notify::RecommendedWatcher> {
    watch_telling(bot, None)
}

/// What a person in `chat` is told about a reload that was refused: one sentence naming the
/// first problem (the log and `lazyops check` have them all).
fn sentence(e: &WorkspaceError) -> String {
    match e {
        WorkspaceError::Problems(p) if p.len() > 1 => format!(
            "Your edit was not loaded: {} (and {} more; `lazyops check` lists them). The running workspace stays.",
            p[0],
            p.len() - 1
        ),
        WorkspaceError::Problems(p) if !p.is_empty() => {
            format!("Your edit was not loaded: {}. The running workspace stays.", p[0])
        }
        other => format!("Your edit was not loaded: {other}. The running workspace stays."),
    }
}

/// [`watch`], also telling `tell` (a bounded channel; a full one drops the sentence) one
/// sentence when an edit is refused, once per distinct refusal, and when a later edit loads.
pub fn watch_telling(
    bot: Arc<Bot>,
    tell: Option<tokio::sync::mpsc::Sender<String>>,
) -> notify::Result<notify::RecommendedWatcher> {
    let ws = bot.workspace();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    let c = &ws.config.bot;
    let dirs: Vec<PathBuf> =
        [&c.queries_dir, &c.intents_dir, &c.prompts_dir, &c.manifests_dir].into_iter().map(|d| ws.path(d)).collect();
    for d in dirs.iter().filter(|d| d.is_dir()) {
        watcher.watch(d, RecursiveMode::Recursive)?;
    }
    watcher.watch(&ws.config_path, RecursiveMode::NonRecursive)?;
    let config_path = ws.config_path.clone();
    tokio::spawn(async move {
        // The sentence last told, so an editor's several writes of one save are told once.
        let mut told: Option<String> = None;
        let say = |text: String| {
            if let Some(tx) = &tell {
                let _ = tx.try_send(text);
            }
        };
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            let path = config_path.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let ws = Workspace::load(&path)?;
                // Train before swapping, so no message waits for it.
                ws.model();
                Ok::<Workspace, WorkspaceError>(ws)
            })
            .await;
            match loaded {
                Ok(Ok(ws)) => {
                    bot.replace_workspace(ws);
                    tracing::info!(config = %config_path.display(), "workspace reloaded");
                    if told.take().is_some() {
                        say("Your edit is loaded now.".to_string());
                    }
                }
                Ok(Err(e)) => {
                    let text = sentence(&e);
                    if told.as_ref() != Some(&text) {
                        tracing::warn!(error = %e, "workspace not reloaded; keeping the running one");
                        say(text.clone());
                        told = Some(text);
                    }
                }
                Err(e) => tracing::error!(error = %e, "workspace reload failed"),
            }
        }
    });
    Ok(watcher)
}
