//! Deciding whether an understood command may run, and whether it must be confirmed first.
//! The confirmations themselves live in the state store (`store::confirm`).

pub mod policy;
