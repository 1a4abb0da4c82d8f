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
    let recipient = recipient_for(&digest, &rows[7], UNSUBSCRIBE).unwrap();
    let mut g = c.benchmark_group("per_recipient");
    g.bench_function("recipient_for", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(recipient_for(&digest, &rows[i], UNSUBSCRIBE))
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
            let r = recipient_for(&digest, &rows[i], UNSUBSCRIBE).unwrap();
            let id = digest.message_id_for(&r);
            let m = digest.message_for(&r).unwrap();
            black_box((m.envelope().clone(), m.formatted(), id))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = render, per_recipient
}
criterion_main!(benches);
