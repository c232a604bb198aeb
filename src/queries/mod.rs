//! Predefined read-only queries: the file format, the static safety check, and running them.

pub mod file;
pub mod safety;
