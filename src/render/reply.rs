//! The reply model: one type rich enough for every transport. Plugins build a `Reply`; only
//! the renderers in `render/` turn it into terminal text, Block Kit or Markdown.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// What the reply is, which decides the look of a reply, `"status"` in `lazyops run --json` (its
/// serialized name) and the exit code of `lazyops run` ([`Status::exit_code`]): both pinned in
/// DESIGN.md, and mapped here only. A new status gets its name and its code here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    /// The command ran and failed, or could not run.
    Failed,
    /// Policy said no.
    Refused,
    /// Waiting for the requester to confirm.
    Confirm,
    /// A required value is missing; the next message in the thread answers.
    Question,
    /// Not a command, or a command with a usage error: `"error"` in JSON.
    #[serde(rename = "error")]
    NotUnderstood,
    /// Waiting for colleagues to approve it (`approval` says who and how many).
    AwaitingApproval,
}

impl Status {
    /// The exit code of `lazyops run`: 0 done, 1 refused or failed, 2 not understood or a
    /// usage error, 3 waiting (for confirmation or approval), 4 a clarifying question was asked.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::Failed | Status::Refused => 1,
            Status::NotUnderstood => 2,
            Status::Confirm | Status::AwaitingApproval => 3,
            Status::Question => 4,
        }
    }

    /// The headline's mark as an emoji shortcode, which Slack and GitHub both show.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Done => "",
            Status::Failed => ":x: ",
            Status::Refused => ":no_entry: ",
            Status::Confirm => ":raised_hand: ",
            Status::Question => ":thinking_face: ",
            Status::NotUnderstood => ":grey_question: ",
            Status::AwaitingApproval => ":hourglass_flowing_sand: ",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    /// Key/value pairs, in order.
    Fields {
        fields: Vec<(String, String)>,
    },
    Table {
        columns: Vec<String>,
        /// Shared, so a table that never changes (the command list) is not copied per reply.
        rows: Arc<[Vec<Value>]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Code {
        #[serde(skip_serializing_if = "Option::is_none")]
        lang: Option<String>,
        text: String,
    },
    Image {
        url: String,
        alt: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    List {
        items: Vec<String>,
    },
}

/// A command waiting for confirmation, as every transport shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingConfirm {
    /// What the user types: `confirm 7F3K`.
    pub code: String,
    pub command: String,
    /// RFC 3339.
    pub expires_at: String,
    /// The full unguessable id, for buttons; never shown as text.
    #[serde(skip)]
    pub id: String,
}

/// A command waiting for approval, as every transport shows it (`run --json`: `"approval"`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PendingApproval {
    /// What an approver types: `approve 7F3K9Q`.
    pub code: String,
    pub command: String,
    /// The rule's approvers as configured: identities or `role:NAME`.
    pub approvers: Vec<String>,
    /// Distinct approvers needed.
    pub count: u32,
    /// RFC 3339.
    pub expires_at: String,
    /// The people to mention (roles expanded, wildcards left out).
    #[serde(skip)]
    pub mentions: Vec<String>,
    /// A Slack user group to mention too.
    #[serde(skip)]
    pub slack_group: Option<String>,
    /// The full id, for buttons; never shown as text.
    #[serde(skip)]
    pub id: String,
}

/// How the text was understood, for `--json` and the audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Understood {
    pub tier: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    pub confidence: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reply {
    pub status: Status,
    pub headline: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// The canonical command this reply is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<PendingConfirm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<PendingApproval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub understood: Option<Understood>,
    /// Buttons besides Confirm/Cancel (a manual release-checklist item to tick). Transports
    /// with buttons show them and hand a press to `act::release::tick`; others show the text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// The values a question offers (`Status::Question`), in order: Slack shows buttons or a
    /// menu, the terminal and GitHub number them; the choice answers as if typed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The test run this reply reports the end of, for scripts (`run --json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_run: Option<TestRun>,
    /// Slow commands say so, so chat transports acknowledge first and answer later.
    #[serde(skip)]
    pub public: bool,
    /// Identities this reply is for besides the person who sent the message (the requester
    /// of an approved command): chat renderers mention them.
    #[serde(skip)]
    pub mention: Vec<String>,
}

/// A test run's id and outcome, as `run --json` reports the end of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestRun {
    pub id: i64,
    pub suite: String,
    pub env: String,
    /// `passed`, `failed`, `timed_out`, `cancelled` or `interrupted`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// A button a reply offers: `id` comes back when it is pressed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action {
    pub id: String,
    pub label: String,
}

impl Reply {
    pub fn new(status: Status, headline: impl Into<String>) -> Reply {
        Reply {
            status,
            headline: headline.into(),
            blocks: Vec::new(),
            command: None,
            confirm: None,
            approval: None,
            understood: None,
            actions: Vec::new(),
            choices: Vec::new(),
            test_run: None,
            public: status == Status::Done,
            mention: Vec::new(),
        }
    }

    pub fn done(headline: impl Into<String>) -> Reply {
        Reply::new(Status::Done, headline)
    }

    pub fn failed(headline: impl Into<String>) -> Reply {
        Reply::new(Status::Failed, headline)
    }

    pub fn with(mut self, block: Block) -> Reply {
        self.blocks.push(block);
        self
    }

    pub fn text(self, text: impl Into<String>) -> Reply {
        self.with(Block::Text { text: text.into() })
    }

    pub fn command(mut self, canonical: impl Into<String>) -> Reply {
        self.command = Some(canonical.into());
        self
    }

    /// The exit code of `lazyops run` for this reply ([`Status::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.status.exit_code()
    }

    /// Plain text of the whole reply, for notifications and fallbacks.
    pub fn plain(&self) -> String {
        let mut out = self.headline.clone();
        for b in &self.blocks {
            if let Block::Text { text } = b {
                out.push('\n');
                out.push_str(text);
            }
        }
        out
    }
}
