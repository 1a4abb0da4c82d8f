//! The database: one SQLite file (`.newsdesk/newsdesk.db`, WAL mode) with the
//! subscriber list and the one delivery ledger, and the two files beside it that a
//! send needs (the sent journal and the send lock).
//!
//! - [`db`]: opening, migrations, private files, errors that name the database.
//! - [`clock`]: the one timestamp format.
//! - [`subscribers`]: the list: import, export, add, unsubscribe.
//! - [`confirmations`]: double opt-in: pending requests from the web form and the
//!   ledger of their confirmation mails.
//! - [`ledger`]: who got which issue: subscriber deliveries and (in [`ledger::list`])
//!   list sends, in one table and one state vocabulary.
//! - [`bounces`]: bounces and complaints recorded once each, and what they do to a
//!   subscriber (`bounced`, suppressed).
//! - [`journal`]: the sent journal replayed after a crash.
//! - [`lock`]: one send at a time per database.
//!
//! Nothing here knows about posts, mail or SMTP: callers hand in ids and addresses.

pub mod bounces;
pub mod clock;
pub mod confirmations;
pub mod db;
pub mod journal;
pub mod ledger;
pub mod lock;
pub mod subscribers;
