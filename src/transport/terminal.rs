//! The terminal: `lazyops chat` (interactive, with history and inline confirmations) and
//! `lazyops run` (one message, scriptable, with exit codes).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use rustyline::error::ReadlineError;

use crate::message::{Identity, Message, Place, Transport};
use crate::pipeline::{Bot, Options};
use crate::render::{Reply, Status, terminal};
use crate::store::confirm::Answer;

/// The terminal user's identity: `--as NAME`, else the OS user.
pub fn identity(name: Option<&str>) -> Identity {
    let os = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "user".into());
    Identity::new(Transport::Local, name.unwrap_or(&os))
}

fn message(who: &Identity, text: &str) -> Message {
    Message { who: who.clone(), place: Place::terminal(), text: text.to_string() }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("standard input is not UTF-8 text")]
    NotUtf8,
    #[error("cannot read standard input: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the message for `lazyops run -`.
pub fn read_stdin() -> Result<String, InputError> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| InputError::NotUtf8)
}

/// One message through the pipeline; prints the reply and returns the exit code.
pub async fn run(bot: &Bot, who: &Identity, text: &str, opts: Options, json: bool) -> i32 {
    let reply = bot.handle(&message(who, text), opts).await;
    print_reply(&reply, json);
    reply.exit_code()
}

pub fn print_reply(reply: &Reply, json: bool) {
    let out = if json {
        serde_json::to_string_pretty(reply).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
    } else {
        terminal::render(reply, std::io::stdout().is_terminal())
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// The interactive session. Ctrl-C drops the line, Ctrl-D ends the session.
pub async fn chat(bot: &Bot, who: &Identity, history: &Path) -> Result<(), ReadlineError> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let _ = rl.load_history(history);
    let color = std::io::stdout().is_terminal();
    println!("lazyops — you are {who}. Type `help`, or ask in a sentence. Ctrl-D to leave.");
    loop {
        let line = match rl.readline("lazyops> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line.as_str());
        let reply = bot.handle(&message(who, &line), Options::default()).await;
        print!("{}", terminal::render(&reply, color));
        if reply.status == Status::Confirm
            && let Some(pending) = &reply.confirm
        {
            let answer = match rl.readline("run it? [y/N] ") {
                Ok(a) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => Answer::Confirm,
                Ok(_) => Answer::Cancel,
                Err(ReadlineError::Interrupted) => Answer::Cancel,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e),
            };
            let outcome = bot.answer(&pending.id, who, &Place::terminal(), answer).await;
            print!("{}", terminal::render(&outcome, color));
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = rl.save_history(history);
    Ok(())
}
