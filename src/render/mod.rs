//! Replies and their renderers: the `Reply` model, and one renderer per kind of output.

pub mod markdown;
pub mod reply;
pub mod slack;
pub mod terminal;

pub use reply::{Action, Block, PendingApproval, PendingConfirm, Reply, Status, TestRun, Understood};
