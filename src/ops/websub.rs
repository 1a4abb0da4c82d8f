//! The WebSub ping after the feeds are written (`build --ping`, and `publish`): each
//! enabled feed's URL is announced to `[feeds] hub`, so subscribed readers get the new
//! issue at once instead of at their next poll.

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::transport::websub::{self, PingError};
use serde::Serialize;
use std::time::Duration;

/// Tries per feed; the waits between them double from [`FIRST_WAIT`].
pub const ATTEMPTS: u32 = 3;
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(15);

/// One feed announced.
#[derive(Debug, Clone, Serialize)]
pub struct Pinged {
    pub feed: String,
    /// The hub's HTTP status (2xx).
    pub status: u16,
    pub attempts: u32,
}

/// The feeds' public URLs, Atom first.
pub fn feed_urls(config: &Config) -> Vec<String> {
    let f = &config.feeds;
    [f.atom(), f.rss(), f.json()].into_iter().flatten().map(|name| config.site.absolute(&name)).collect()
}

/// Pings the hub for every feed; `None` when no hub is configured. Stops at the first
/// feed the hub would not take, with an error that names the hub, the feed and why.
pub fn ping(config: &Config) -> Option<Result<Vec<Pinged>, Diagnostic>> {
    let hub = config.feeds.hub.as_deref()?;
    let mut done = Vec::new();
    for feed in feed_urls(config) {
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        loop {
            match websub::publish(hub, &feed, TIMEOUT) {
                Ok(status) => {
                    done.push(Pinged { feed: feed.clone(), status, attempts: attempt });
                    break;
                }
                Err(e) if e.is_temporary() && attempt < ATTEMPTS => {
                    std::thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    let help = match &e {
                        PingError::Refused { .. } => {
                            "check `[feeds] hub` (the hub's publish URL) and that the hub accepts this site's feeds; the feeds themselves were written"
                        }
                        PingError::Unavailable(_) => {
                            "the feeds were written; ping again later with `newsdesk build --ping`, or readers' hubs will pick the issue up at their next poll"
                        }
                    };
                    return Some(Err(crate::config::config_diagnostic(
                        config,
                        "feeds",
                        "hub",
                        Diagnostic::error(
                            "websub-ping",
                            format!(
                                "the WebSub hub {hub} was not told about {feed} ({} attempt{}): {e}",
                                attempt,
                                if attempt == 1 { "" } else { "s" }
                            ),
                        )
                        .help(help),
                    )));
                }
            }
        }
    }
    Some(Ok(done))
}
