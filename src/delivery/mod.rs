//! Sending an issue to every subscriber, exactly once per (issue, subscriber), across
//! crashes and server faults. [`ledger`] is the record of who got what.

pub mod engine;
pub mod ledger;
pub mod lock;
pub mod rate;
pub mod send;
pub mod status;
pub mod writer;
