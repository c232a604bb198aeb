//! Predefined read-only queries: the file format, the static safety check, the pools to the
//! target databases, running them, and showing their cells.

pub mod cell;
pub mod doctor;
pub mod file;
pub mod pools;
pub mod run;
pub mod safety;
