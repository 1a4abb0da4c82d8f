//! One function per command, each returning its outcome as data: diagnostics, what
//! was written or sent. Nothing here prints, prompts or exits; [`crate::cli`] does,
//! and a web service can call the same functions.

pub mod bounces;
pub mod build;
pub mod buttondown;
pub mod check;
pub mod deliverability;
pub mod inbox;
pub mod issue;
pub mod new;
pub mod preview;
pub mod publish;
pub mod send;
pub mod send_subscribers;
pub mod social;
pub mod status;
pub mod subscribe;
pub mod subscribers;
pub mod websub;
