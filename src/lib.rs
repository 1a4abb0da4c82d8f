//! newsdesk: a publisher for weekly newsletters.
//!
//! Data flows one way: `posts/` → [`load`] → [`model`] → {[`feeds`], `email`} → files
//! and mail. Feed writers and the email renderer read only the model and the
//! [`render`]ed bodies of the posts they publish.

// Diagnostics are the error type of loading by design: one per post, built once.
#![allow(clippy::result_large_err)]

pub mod build;
pub mod chars;
pub mod check;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod diag;
pub mod email;
pub mod feeds;
pub mod ledger;
pub mod load;
pub mod model;
pub mod output;
pub mod permalink;
pub mod render;
pub mod subscribers;
pub mod transport;

/// Until every caller names `transport::dkim`.
pub use transport::dkim;
