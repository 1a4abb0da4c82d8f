//! Sending an issue to every subscriber, exactly once per (issue, subscriber), across
//! crashes and server faults, over [`crate::store`] (the ledger, the sent journal) and
//! [`crate::transport`] (the SMTP connection). Messages come from the caller's render
//! callback, so this module knows nothing of posts or templates.

pub mod engine;
pub mod pace;
pub mod rate;
pub mod writer;
