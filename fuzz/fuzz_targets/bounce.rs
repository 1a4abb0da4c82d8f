//! The bounce parser (`newsdesk::bounces::parse`) on arbitrary bytes: bounce mail comes
//! from any server on the internet.
//!
//! Beyond not panicking: every recipient's address has one `@` with something on each
//! side and no whitespace (parts may be encoded, so it need not occur in the raw
//! bytes), a status is `class.subject.detail` with class 2, 4 or 5
//! (never 2 for a failure), permanent failures are 5.x.x, a complaint's recipients are
//! complaints, a report that is not a bounce or a complaint names nobody, and no
//! diagnostic or action holds a control character (they are printed on a terminal).
//!
//! Run: `cargo +nightly fuzz run bounce fuzz/seeds/bounce -- -max_total_time=600`

#![no_main]

use libfuzzer_sys::fuzz_target;
use newsdesk::bounces::{Kind, Reason, parse};

/// mail-parser 0.11.9 has a `debug_assert!` ("Invalid part ID, could not find
/// multipart.") on a state malformed MIME reaches; release builds handle it and go on.
/// CI's `--dev` build has debug assertions on in every crate, so that one panic is
/// caught here; any other panic still aborts as libFuzzer expects.
const UPSTREAM_DEBUG_ASSERT: &str = "Invalid part ID, could not find multipart";

fn parse_allowing_upstream_assert(data: &[u8]) -> Option<newsdesk::bounces::Report> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains(UPSTREAM_DEBUG_ASSERT) {
                abort(info);
            }
        }));
    });
    std::panic::catch_unwind(|| parse(data)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(report) = parse_allowing_upstream_assert(data) else { return };
    for r in &report.recipients {
        let (local, domain) = r.address.rsplit_once('@').expect("an address has an @");
        assert!(!local.is_empty() && !domain.is_empty() && !r.address.contains(char::is_whitespace), "{r:?}");
        if let Some(status) = &r.status {
            let parts: Vec<&str> = status.split('.').collect();
            assert_eq!(parts.len(), 3, "{status:?}");
            assert!(parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())), "{status:?}");
            assert!(matches!(parts[0], "4" | "5"), "a failure with status {status:?}");
        }
        if r.permanent {
            assert!(r.status.as_deref().is_some_and(|s| s.starts_with('5')), "{r:?}");
        }
        assert_eq!(report.kind == Kind::Complaint, r.reason == Reason::Complaint, "{report:?}");
        // The remote words are printed on the editor's terminal: no escape sequences.
        assert!(!r.diagnostic.as_deref().unwrap_or("").chars().any(char::is_control), "{r:?}");
        assert!(!r.action.chars().any(char::is_control), "{r:?}");
    }
    if matches!(report.kind, Kind::AutoReply | Kind::NotBounce) {
        assert!(report.recipients.is_empty(), "{report:?}");
    }
});
