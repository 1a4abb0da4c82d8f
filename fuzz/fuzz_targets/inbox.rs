//! `newsdesk inbox`'s reading of a message (`ops::inbox::find`) on arbitrary bytes: the
//! mail that reaches the unsubscribe address comes from anyone.
//!
//! Beyond not panicking: every token found is 32 lowercase hexadecimal digits that occur
//! in the input (in any case), none twice, and the sender, when found, has an `@`.
//!
//! Run: `cargo +nightly fuzz run inbox -- -max_total_time=180`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let found = newsdesk::ops::inbox::find(data);
    let lower = data.to_ascii_lowercase();
    for (i, token) in found.tokens.iter().enumerate() {
        assert_eq!(token.len(), 32, "{token:?}");
        assert!(token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{token:?}");
        assert!(lower.windows(32).any(|w| w == token.as_bytes()), "{token:?} is not in the input");
        assert!(!found.tokens[..i].contains(token), "{token:?} twice");
    }
    if let Some(sender) = &found.sender {
        assert!(sender.contains('@'), "{sender:?}");
    }
});
