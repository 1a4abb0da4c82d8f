//! One function per command, each returning its outcome as data: diagnostics, what
//! was written or sent. Nothing here prints, prompts or exits; [`crate::cli`] does,
//! and a web service can call the same functions.

pub mod build;
pub mod check;
pub mod inbox;
pub mod issue;
pub mod preview;
pub mod send;
pub mod send_subscribers;
pub mod status;
pub mod subscribe;
pub mod subscribers;
