//! lazyops: a ChatOps bot. Plain sentences and exact commands become one typed `Command`,
//! which is checked against permissions, confirmed, run by a plugin and answered in Slack, a
//! GitHub comment or a terminal. Data moves one way: transport → understand → decide → act →
//! render; see ARCHITECTURE.md.

// pest is used without its `std` feature (which probes the native stack on every rule: a fifth
// of parse time, and this grammar does not recurse); its generated parser names `::alloc`.
extern crate alloc;

pub mod act;
pub mod catalog;
pub mod command;
pub mod config;
pub mod decide;
pub mod demo;
pub mod deploy;
pub mod http_body;
pub mod jobs;
pub mod lazy_client;
pub mod manifests;
pub mod message;
pub mod param;
pub mod pipeline;
pub mod queries;
pub mod redact;
pub mod reload;
pub mod render;
pub mod schema;
pub mod spec;
pub mod store;
pub mod transport;
pub mod understand;
pub mod workspace;
