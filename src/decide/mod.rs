//! Deciding whether an understood command may run, and whether it must be confirmed first.
//! The confirmations and approvals themselves live in the state store (`store::confirm`,
//! `store::approval`); `approval` here says which rule applies and who may approve.

pub mod approval;
pub mod policy;
