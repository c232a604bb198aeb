//! The terminal: `lazyops chat` (interactive, with history and inline confirmations) and
//! `lazyops run` (one message, scriptable, with exit codes).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustyline::error::ReadlineError;

use crate::message::{Identity, Message, Place, Transport};
use crate::pipeline::{Bot, Options};
use crate::render::{Reply, Status, terminal};
use crate::store::confirm::Answer;

/// How often `lazyops chat` looks for news of its user's approval requests.
const APPROVAL_NEWS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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

/// One message through the pipeline; prints the reply and returns the exit code. A test run
/// it started is waited for (the process must not exit under it), and its end is the final
/// reply: it decides the exit code, and `--json` prints only it (one document per invocation),
/// with the command that started the run.
pub async fn run(bot: &Bot, who: &Identity, text: &str, opts: Options, json: bool) -> u8 {
    let mut finished = bot.jobs().subscribe();
    let reply = with_progress(bot.handle(&message(who, text), opts)).await;
    if !json {
        print_reply(&reply, false);
    }
    if bot.jobs().active() > 0 {
        eprintln!("waiting for the test run to end (Ctrl-C leaves it interrupted)…");
        bot.jobs().wait_idle().await;
    }
    // A quick run may have ended already while the reply was printed.
    let mut last = None;
    while let Ok(outcome) = finished.try_recv() {
        let end = crate::jobs::notification(&outcome);
        if !json {
            print_reply(&end, false);
        }
        last = Some(end);
    }
    let last = match last {
        Some(end) => Reply { command: reply.command, understood: reply.understood, ..end },
        None => reply,
    };
    if json {
        print_reply(&last, true);
    }
    last.exit_code()
}

/// A progress bar on stderr while a slow command reports steps, when stderr is a terminal.
async fn with_progress<F: std::future::Future>(fut: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    let bar: std::sync::Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>> = Default::default();
    let held = bar.clone();
    let sink: crate::act::progress::Sink = std::sync::Arc::new(move |step: &crate::act::progress::Step| {
        let mut slot = held.lock().unwrap_or_else(|p| p.into_inner());
        let pb = slot.get_or_insert_with(|| {
            let pb = indicatif::ProgressBar::with_draw_target(
                Some(step.total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
                pb.set_style(style);
            }
            pb
        });
        pb.set_position(step.done as u64);
        pb.set_message(clean(&step.label));
    });
    let out = crate::act::progress::with(sink, fut).await;
    if let Some(pb) = bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
        pb.finish_and_clear();
    }
    out
}

fn clean(s: &str) -> String {
    terminal::clean(s)
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

/// Writes to stdout; a closed pipe is not worth a panic.
fn show(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// The interactive session. Ctrl-C drops the line, Ctrl-D ends the session.
/// Where chat lines come from: the line editor on a terminal, plain lines from a pipe (so
/// `lazyops chat < script` works without a terminal).
enum Input {
    Editor(Box<rustyline::DefaultEditor>),
    Plain(std::io::Lines<std::io::StdinLock<'static>>),
}

impl Input {
    /// The next line; `Ok(None)` at the end (Ctrl-D), `Err(Interrupted)` for Ctrl-C.
    fn read(&mut self, prompt: &str) -> Result<Option<String>, ReadlineError> {
        match self {
            Input::Editor(rl) => match rl.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = rl.add_history_entry(line.as_str());
                    }
                    Ok(Some(line))
                }
                Err(ReadlineError::Eof) => Ok(None),
                Err(e) => Err(e),
            },
            Input::Plain(lines) => {
                let line = lines.next().transpose().map_err(ReadlineError::Io)?;
                // Echo what was read, so a piped session reads like a transcript.
                if let Some(l) = &line {
                    show(&format!("{prompt}{l}\n"));
                }
                Ok(line)
            }
        }
    }

    /// A y/N prompt: yes, no (also an empty line or Ctrl-C), or other text, which is the
    /// person's next message; `None` at the end of input.
    fn ask(&mut self, prompt: &str) -> Result<Option<Said>, ReadlineError> {
        match self.read(prompt) {
            Ok(Some(a)) => Ok(Some(Said::of(&a))),
            Ok(None) => Ok(None),
            Err(ReadlineError::Interrupted) => Ok(Some(Said::No)),
            Err(e) => Err(e),
        }
    }
}

/// An answer at a y/N prompt.
#[derive(Debug, PartialEq)]
enum Said {
    Yes,
    No,
    /// Not an answer: a message of its own.
    Other(String),
}

impl Said {
    fn of(line: &str) -> Said {
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Said::Yes,
            "" | "n" | "no" => Said::No,
            _ => Said::Other(line.trim().to_string()),
        }
    }
}

/// What follows a reply at the prompt.
enum Next {
    /// Back to the prompt.
    Prompt,
    /// A line typed at a y/N prompt: the next message.
    Message(String),
    /// End of input.
    End,
}

/// Asks what a reply asks of the person: a tick per manual checklist item, then its
/// confirmation; a confirmed command's own reply is followed up the same way (a release check
/// asked in a sentence gets its tick prompts too). Text typed at a prompt is not thrown away:
/// a pending command is cancelled (and said so) and the text is the next message.
async fn follow_up(
    bot: &Bot,
    who: &Identity,
    input: &mut Input,
    reply: Reply,
    color: bool,
) -> Result<Next, ReadlineError> {
    let mut reply = reply;
    loop {
        for action in &reply.actions {
            match input.ask(&format!("{}? [y/N] ", action.label))? {
                Some(Said::Yes) => {
                    let done = crate::act::release::tick(bot, who, &Place::terminal(), &action.id).await;
                    show(&terminal::render(&done, color));
                }
                Some(Said::No) => {}
                Some(Said::Other(text)) => return Ok(Next::Message(text)),
                None => return Ok(Next::End),
            }
        }
        let Some(pending) = reply.confirm.as_ref().filter(|_| reply.status == Status::Confirm) else {
            return Ok(Next::Prompt);
        };
        let (answer, then) = match input.ask("run it? [y/N] ")? {
            Some(Said::Yes) => (Answer::Confirm, Next::Prompt),
            Some(Said::No) => (Answer::Cancel, Next::Prompt),
            Some(Said::Other(text)) => (Answer::Cancel, Next::Message(text)),
            None => return Ok(Next::End),
        };
        let outcome = with_progress(bot.answer(&pending.id, who, &Place::terminal(), answer)).await;
        show(&terminal::render(&outcome, color));
        if answer == Answer::Cancel {
            return Ok(then);
        }
        reply = outcome;
    }
}

/// `notices` are sentences for the person from elsewhere (a refused hot reload), printed above
/// the prompt like a finished test run.
pub async fn chat(
    bot: &Arc<Bot>,
    who: &Identity,
    history: &Path,
    mut notices: tokio::sync::mpsc::Receiver<String>,
) -> Result<(), ReadlineError> {
    let interactive = std::io::stdin().is_terminal();
    let color = std::io::stdout().is_terminal();
    let mut input = if interactive {
        let mut rl = rustyline::DefaultEditor::new()?;
        let _ = rl.load_history(history);
        Input::Editor(Box::new(rl))
    } else {
        Input::Plain(std::io::stdin().lines())
    };
    show(&format!("lazyops — you are {who}. Type `help`, or ask in a sentence. Ctrl-D to leave.\n"));
    // Test runs end while the prompt waits: print their outcome above it.
    let mut finished = bot.jobs().subscribe();
    let mut printer = match &mut input {
        Input::Editor(rl) => Some(rl.create_external_printer()?),
        Input::Plain(_) => None,
    };
    // What became of this user's approval requests is told as it happens: the approver is
    // usually another process (`lazyops chat --as bob`), so the state store is asked.
    let (news_bot, news_who) = (bot.clone(), who.clone());
    let notifier = tokio::spawn(async move {
        use rustyline::ExternalPrinter as _;
        let here = Place::terminal();
        let mut print = move |text: String| match printer.as_mut() {
            Some(p) => {
                let _ = p.print(text);
            }
            None => show(&text),
        };
        let mut notices_open = true;
        let mut since = crate::store::now_ms();
        let mut look = tokio::time::interval(APPROVAL_NEWS_EVERY);
        loop {
            tokio::select! {
                got = finished.recv() => match got {
                    Ok(o) if o.place == here.key() => print(terminal::render(&crate::jobs::notification(&o), color)),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                n = notices.recv(), if notices_open => match n {
                    Some(n) => print(format!("{}\n", clean(&n))),
                    None => notices_open = false,
                },
                _ = look.tick() => {
                    let _ = news_bot.expire_approvals(Some(&here)).await;
                    let (news, next) = news_bot.approval_news(&news_who, &here, since).await;
                    since = next;
                    for n in &news {
                        print(terminal::render(n, color));
                    }
                }
            }
        }
    });
    let mut typed_at_a_prompt: Option<String> = None;
    loop {
        let line = match typed_at_a_prompt.take() {
            Some(line) => line,
            None => match input.read("lazyops> ") {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(ReadlineError::Interrupted) => continue,
                Err(e) => return Err(e),
            },
        };
        if line.trim().is_empty() {
            continue;
        }
        let reply = with_progress(bot.handle(&message(who, &line), Options::default())).await;
        show(&terminal::render(&reply, color));
        match follow_up(bot, who, &mut input, reply, color).await? {
            Next::Prompt => {}
            Next::Message(text) => typed_at_a_prompt = Some(text),
            Next::End => break,
        }
    }
    if let Input::Editor(rl) = &mut input {
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.save_history(history);
    }
    // Leaving must not cut a test run short: wait for it, and show how it ended.
    if bot.jobs().active() > 0 {
        show("waiting for the test run to end (Ctrl-C leaves it interrupted)…\n");
        bot.jobs().wait_idle().await;
        // Let the notifier print the outcome that was just sent.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    notifier.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_answer_is_yes_no_or_the_next_message() {
        assert_eq!(Said::of(" Y "), Said::Yes);
        assert_eq!(Said::of("yes"), Said::Yes);
        assert_eq!(Said::of(""), Said::No);
        assert_eq!(Said::of("no"), Said::No);
        assert_eq!(Said::of("todo list"), Said::Other("todo list".into()));
    }
}
