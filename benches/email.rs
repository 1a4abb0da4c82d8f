//! Email rendering: the once-per-send step against the per-recipient step.
//!
//! `cargo bench --bench email`
//!
//! - `render/digest`: [`Digest::render`] for the bundled newest issue (templates loaded
//!   from `email-templates/`, minijinja, the text part from the markdown, CSS inlined
//!   with css-inline). Done once per send.
//! - `per_recipient/*`: what `send --subscribers` does for every subscriber, from an
//!   already-rendered digest: the recipient for a ledger row, its parts (markers
//!   filled in), the lettre message and its wire bytes.
//!
//! - `dkim/*`: signing one subscriber message (canonicalization, body hash, signature)
//!   with RSA-2048 and Ed25519 keys, and the RSA signature alone over the same signed
//!   header block with ring (what `transport::dkim` uses) and with RustCrypto `rsa`
//!   (what lettre's signer used before), for the before/after in one run.
//!
//! The markdown body (`render/markdown`) is rendered once per send too; it is shown for
//! scale. Everything reads the real config, posts and templates of the repository.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use newsdesk::config::Config;
use newsdesk::digest::{Digest, settings};
use newsdesk::model::{Post, Selection};
use newsdesk::ops::send_subscribers::recipient_for;
use newsdesk::store::ledger::{Row, State};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// What delivery puts in `[subscribers] unsubscribe_url`: every subscriber gets a link.
const UNSUBSCRIBE: &str = "https://lwkd.example.org/unsubscribe/{token}";

/// Each subscriber's link; no VERP (the envelope sender is `From`).
fn personal() -> newsdesk::ops::send_subscribers::Personal {
    newsdesk::ops::send_subscribers::Personal { url_template: UNSUBSCRIBE.to_string(), return_path: None }
}

fn config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    newsdesk::config::load(&path).unwrap_or_else(|d| panic!("{path:?}: {d:?}"))
}

fn newest(config: &Config) -> Post {
    let loaded = newsdesk::load::load(config);
    let sel = Selection { drafts: false, future: false, now: chrono::Utc::now().fixed_offset() };
    newsdesk::ops::issue::pick(config, &loaded.archive, sel, None).expect("a newest post").clone()
}

fn date() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_589_313_600, 0).expect("a valid time")
}

/// A digest as `send --subscribers` renders it (per-subscriber unsubscribe links).
fn subscriber_digest(config: &Config, post: &Post) -> Digest {
    let rendered = newsdesk::render::render(post).expect("the post's body");
    let mut s = settings::settings(config).expect("[email] settings");
    s.unsubscribe_url = Some(UNSUBSCRIBE.to_string());
    Digest::render(config, s, &rendered, date()).expect("the digest renders")
}

fn row(i: i64) -> Row {
    Row {
        id: i,
        subscriber_id: i,
        email: format!("s{i:06}@example.org"),
        name: Some(format!("Subscriber {i}")),
        token: format!("{i:032x}"),
        state: State::Pending,
        attempts: 0,
        active: true,
    }
}

fn render(c: &mut Criterion) {
    let config = config();
    let post = newest(&config);
    let settings = settings::settings(&config).expect("[email] settings");
    let mut g = c.benchmark_group("render");
    g.bench_function("markdown", |b| b.iter(|| black_box(newsdesk::render::render(black_box(&post)).unwrap())));
    let rendered = newsdesk::render::render(&post).expect("the post's body");
    g.bench_function("digest", |b| {
        b.iter_batched(
            || settings.clone(),
            |s| black_box(Digest::render(&config, s, black_box(&rendered), date()).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn per_recipient(c: &mut Criterion) {
    let config = config();
    let post = newest(&config);
    let digest = subscriber_digest(&config, &post);
    let rows: Vec<Row> = (0..1024).map(row).collect();
    let personal = personal();
    let recipient = recipient_for(&digest, &rows[7], &personal).unwrap();
    let mut g = c.benchmark_group("per_recipient");
    g.bench_function("recipient_for", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(recipient_for(&digest, &rows[i], &personal))
        })
    });
    g.bench_function("parts_for", |b| b.iter(|| black_box(digest.parts_for(black_box(&recipient)))));
    g.bench_function("message_for", |b| b.iter(|| black_box(digest.message_for(black_box(&recipient)).unwrap())));
    let message = digest.message_for(&recipient).unwrap();
    g.bench_function("formatted_only", |b| b.iter(|| black_box(black_box(&message).formatted())));
    // The whole step, as delivery's render closure does it (without DKIM).
    g.bench_function("subscriber_message", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % rows.len();
            let r = recipient_for(&digest, &rows[i], &personal).unwrap();
            let id = digest.message_id_for(&r);
            let m = digest.message_for(&r).unwrap();
            black_box((m.envelope().clone(), m.formatted(), id))
        })
    });
    g.finish();
}

fn dkim(c: &mut Criterion) {
    use newsdesk::transport::dkim::Signer;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let config = config();
    let post = newest(&config);
    let digest = subscriber_digest(&config, &post);
    let recipient = recipient_for(&digest, &row(7), &personal()).unwrap();
    let message = digest.message_for(&recipient).unwrap().formatted();
    let dir = tempfile::tempdir().unwrap();
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let load = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        let settings = newsdesk::config::DkimConfig {
            domain: "example.org".into(),
            selector: "s1".into(),
            key_file: path.clone(),
        };
        Signer::load(&settings, path).unwrap()
    };
    let rsa_signer = load("rsa.pem", &rsa_key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap());
    let ed_signer = load("ed.pem", &{
        use base64ct::Encoding;
        base64ct::Base64::encode_string(&[7u8; 32])
    });
    // The data an RSA signature covers: the signed headers and the DKIM-Signature
    // header, canonicalized (about 1 KB for this message).
    let header = rsa_signer.signature_header(&message, 0);
    let head_len = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let signed: Vec<u8> = [&message[..head_len], header.as_bytes()].concat();
    let mut g = c.benchmark_group("dkim");
    g.bench_function("sign_message_rsa2048", |b| b.iter(|| black_box(rsa_signer.sign(black_box(&message)))));
    g.bench_function("sign_message_ed25519", |b| b.iter(|| black_box(ed_signer.sign(black_box(&message)))));
    let der = rsa_key.to_pkcs1_der().unwrap();
    let ring_key = ring::signature::RsaKeyPair::from_der(der.as_bytes()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    g.bench_function("rsa2048_signature_ring", |b| {
        b.iter(|| {
            let mut out = vec![0u8; ring_key.public().modulus_len()];
            ring_key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, black_box(&signed), &mut out).unwrap();
            black_box(out)
        })
    });
    g.bench_function("rsa2048_signature_rustcrypto_rsa", |b| {
        use sha2::Digest as _;
        b.iter(|| {
            let hash = sha2::Sha256::digest(black_box(&signed));
            black_box(rsa_key.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = render, per_recipient, dkim
}
criterion_main!(benches);
