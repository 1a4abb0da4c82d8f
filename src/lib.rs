//! newsdesk: a publisher for weekly newsletters.
//!
//! Data flows one way: `posts/` → [`load`] → [`model`] → {[`feeds`], [`digest`]} →
//! [`transport`], with [`store`] (subscribers, the ledger) beside [`delivery`]:
//!
//! - [`cli`] parses arguments, prints, prompts and owns the exit code; one file per
//!   command, each calling one [`ops`] function.
//! - [`ops`] runs one command and returns its outcome as data.
//! - The stages ([`load`], [`render`], [`feeds`], [`digest`], [`social`]) read only the model and
//!   never reach into [`transport`], [`store`] or [`delivery`].
//! - [`delivery`] is the exactly-once engine over [`store`] and [`transport`]; it gets
//!   each message from a render callback.
//! - [`web`] (`newsdesk serve`) sits beside [`cli`]: HTTP routes calling [`ops`].
//!
//! `tests/layering.rs` checks these rules on the source.

// Diagnostics are the error type of loading by design: one per post, built once.
#![allow(clippy::result_large_err)]

pub mod bounces;
pub mod chars;
pub mod cli;
pub mod config;
pub mod deliverability;
pub mod delivery;
pub mod diag;
pub mod digest;
pub mod feeds;
pub mod load;
pub mod model;
pub mod ops;
pub mod output;
pub mod permalink;
pub mod render;
pub mod social;
pub mod store;
pub mod transport;
pub mod web;
