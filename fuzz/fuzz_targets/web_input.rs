//! What `newsdesk serve` reads from a browser or a proxy, on arbitrary bytes: an
//! `X-Forwarded-For` value, a request path, and a form body with the address to
//! subscribe (the input split at 0xff bytes).
//!
//! Beyond not panicking: the client address is the peer or one named in the header; no
//! segment after `unsubscribe/` or `confirm/` survives into the access log's path; and
//! an address the form accepts normalises to itself (one person, one row).
//!
//! Run: `cargo +nightly fuzz run web_input -- -max_total_time=180`

#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use newsdesk::web::client::{forwarded_client, masked_path};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let (forwarded, path, body) =
        (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));

    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let trusted = vec![ipnet::IpNet::from(proxy), "192.168.0.0/16".parse().unwrap()];
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(forwarded) {
        headers.insert("x-forwarded-for", v);
    }
    let client = forwarded_client(proxy, &headers, &trusted);
    if client != proxy {
        let named = std::str::from_utf8(forwarded)
            .map(|t| t.split(',').any(|hop| hop.trim().parse::<IpAddr>() == Ok(client)))
            .unwrap_or(false);
        assert!(named, "{client} is neither the peer nor in {forwarded:?}");
    }

    let path = String::from_utf8_lossy(path);
    let masked = masked_path(&path);
    let segments: Vec<&str> = masked.split('/').collect();
    for pair in segments.windows(2) {
        if matches!(pair[0], "unsubscribe" | "confirm") {
            assert!(pair[1].is_empty() || pair[1] == "…", "{masked:?} shows a secret of {path:?}");
        }
    }

    let mut form = HeaderMap::new();
    form.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let fields = newsdesk::web::form_fields(&form, body);
    if let Some((_, email)) = fields.iter().find(|(k, _)| k == "email")
        && let Ok((address, _)) = newsdesk::store::subscribers::normalise(email)
    {
        let again = newsdesk::store::subscribers::normalise(&address).map(|(a, _)| a);
        assert_eq!(again.as_deref(), Ok(address.as_str()), "{email:?} does not normalise to a fixed point");
    }
});
