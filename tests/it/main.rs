//! The one integration test crate: drives the real `lazyops` binary and the real server over
//! loopback, against real SQLite files, PostgreSQL and MariaDB.

mod support;

mod approvals;
mod chores;
mod cli;
mod faults;
mod fuzz;
mod github;
mod llm;
mod loopback;
mod proxy;
mod queries;
mod release;
mod replicas;
mod security;
mod slack;
mod socket;
mod trust;
mod understanding;
