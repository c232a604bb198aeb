//! The one integration test crate: drives the real `lazyops` binary and the real server over
//! loopback, against real SQLite files, PostgreSQL and MariaDB.

mod support;

mod chores;
mod cli;
mod llm;
mod queries;
mod trust;
mod understanding;
mod github;
mod loopback;
mod slack;
mod release;
