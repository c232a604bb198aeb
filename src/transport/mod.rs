//! Transports: where messages come from and replies go. Each one turns its own wire format
//! into a `Message`, calls the pipeline, and renders the `Reply`; no transport type goes
//! further in.

pub mod github;
pub mod http;
pub mod metrics;
pub mod slack;
pub mod terminal;
