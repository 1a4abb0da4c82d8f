//! The bounce parser ([`newsdesk::bounces::parse`]) on real formats and on hostile mail.
//!
//! `cargo bench --bench bounces`
//!
//! - `fixtures/NAME`: each message in `tests/fixtures/bounces` (Postfix, Gmail, Exim,
//!   qmail, Sendmail, Exchange, Outlook, an ARF complaint, a vacation reply).
//! - `hostile/KIND/SIZE`: inputs shaped to find superlinear work, at 256 KiB, 1 MiB and
//!   4 MiB. Time per byte should stay flat as SIZE grows:
//!   - `to_headers`: a message with one `To:` header per distinct address;
//!   - `repeated_addresses`: one header holding 999 distinct addresses, then the same
//!     ones again and again;
//!   - `dsn_groups`: a delivery-status part with one field group per recipient;
//!   - `text_lines`: a text bounce whose explanation is one address per line.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const SIZES: [usize; 3] = [256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

fn fixtures(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let mut g = c.benchmark_group("fixtures");
    for path in names {
        let raw = std::fs::read(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(newsdesk::bounces::parse(black_box(&raw)))));
    }
    g.finish();
}

/// Repeats `unit(i)` until `size` bytes, after `head`, then appends `tail`.
fn fill(head: &str, size: usize, unit: impl Fn(usize) -> String, tail: &str) -> Vec<u8> {
    let mut s = String::from(head);
    let mut i = 0;
    while s.len() < size {
        s.push_str(&unit(i));
        i += 1;
    }
    s.push_str(tail);
    s.into_bytes()
}

fn hostile(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let daemon = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n";
    vec![
        ("to_headers", fill(daemon, size, |i| format!("To: reader{i}@example.org\r\n"), "\r\nThe mail system\r\n")),
        (
            "repeated_addresses",
            fill(
                &format!("{daemon}To: "),
                size,
                |i| format!("reader{}@example.org, ", i % 999),
                "\r\n\r\nThe mail system\r\n",
            ),
        ),
        (
            "dsn_groups",
            fill(
                &format!(
                    "{daemon}MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; \
                     boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
                     --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n"
                ),
                size,
                |i| {
                    format!(
                        "\r\nFinal-Recipient: rfc822; reader{i}@example.org\r\nAction: failed\r\n\
                         Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
                    )
                },
                "\r\n--b--\r\n",
            ),
        ),
        (
            "text_lines",
            fill(
                &format!("{daemon}\r\nThis is the mail system at host mx.example.net.\r\n\r\n"),
                size,
                |i| format!("<reader{}@example.org>: host said: 550 5.1.1 no such user\r\n", i % 1500),
                "",
            ),
        ),
    ]
}

fn hostile_inputs(c: &mut Criterion) {
    let mut g = c.benchmark_group("hostile");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for size in SIZES {
        for (kind, raw) in hostile(size) {
            g.throughput(Throughput::Bytes(raw.len() as u64));
            g.bench_with_input(BenchmarkId::new(kind, size / 1024), &raw, |b, raw| {
                b.iter(|| black_box(newsdesk::bounces::parse(black_box(raw))))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, fixtures, hostile_inputs);
criterion_main!(benches);
