//! Sending an issue to every subscriber, exactly once per (issue, subscriber), across
//! crashes and server faults. [`ledger`] is the record of who got what.

pub mod ledger;
pub mod lock;
pub mod rate;
pub mod smtp;
pub mod status;
