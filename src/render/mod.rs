//! Replies and their renderers: the `Reply` model, and one renderer per kind of output.

pub mod reply;
pub mod slack;
pub mod terminal;

pub use reply::{Block, PendingConfirm, Reply, Status, Understood};
