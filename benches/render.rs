//! Rendering a whole real archive: the 386 LWKD issues in `../shared/corpus/lwkd/_posts`.
//!
//! `cargo bench --bench render`
//!
//! - `corpus/markdown`: every post's body, markdown → HTML ([`newsdesk::render::render_markdown`]:
//!   heading ids, absolute URLs, raw HTML rewritten, summary, sanitiser).
//! - `corpus/text`: every post's plain-text part ([`newsdesk::render::text::render_text`]).
//! - `raw_html/markdown`, `raw_html/text`: the same for a body made of raw HTML (200
//!   blocks with relative `href`/`src`, 50 KB), where every block is rewritten: LWKD's
//!   issues have next to no raw HTML, so the corpus shows the common case and this the
//!   worst.
//!
//! The bodies are read from disk once, before measuring. Skipped, with a note, in a
//! checkout without the corpus beside it.

use criterion::{Criterion, criterion_group, criterion_main};
use newsdesk::model::Post;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use url::Url;

fn corpus() -> Option<Vec<(Post, String)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../shared/corpus/lwkd/_posts");
    if !dir.is_dir() {
        eprintln!("note: render benchmarks skipped: no LWKD corpus at {}", dir.display());
        return None;
    }
    let mut config = newsdesk::config::load(&root.join("config.toml")).unwrap_or_else(|d| panic!("config.toml: {d:?}"));
    config.posts_dir = dir;
    let loaded = newsdesk::load::load(&config);
    let posts: Vec<(Post, String)> = loaded
        .archive
        .posts
        .into_iter()
        .map(|p| {
            let md = newsdesk::load::read_body(&p).expect("the post's body");
            (p, md)
        })
        .collect();
    eprintln!("{} posts, {} bytes of markdown", posts.len(), posts.iter().map(|(_, m)| m.len()).sum::<usize>());
    Some(posts)
}

fn render(c: &mut Criterion) {
    let Some(posts) = corpus() else { return };
    let mut g = c.benchmark_group("corpus");
    g.bench_function("markdown", |b| {
        b.iter(|| {
            for (post, md) in &posts {
                black_box(newsdesk::render::render_markdown(post, md.clone()));
            }
        })
    });
    let bases: Vec<Option<Url>> = posts.iter().map(|(p, _)| Url::parse(&p.url).ok()).collect();
    g.bench_function("text", |b| {
        b.iter(|| {
            for ((_, md), base) in posts.iter().zip(&bases) {
                black_box(newsdesk::render::text::render_text(md, base.as_ref()));
            }
        })
    });
    g.finish();

    // The first corpus post's front matter with a raw-HTML body.
    let post = &posts[0].0;
    let base = Url::parse(&post.url).ok();
    let body: String = (0..200)
        .map(|i| {
            format!(
                "<p class=\"x\">See <a href=\"/2020/p{i}\" title=\"post {i}\">post {i}</a> &amp; <img src='img/{i}.png' alt=\"\" srcset=\"img/{i}.png 1x, img/{i}@2x.png 2x\">\n<!-- note {i} --> the end.</p>\n\n"
            )
        })
        .collect();
    let mut g = c.benchmark_group("raw_html");
    g.bench_function("markdown", |b| b.iter(|| black_box(newsdesk::render::render_markdown(post, body.clone()))));
    g.bench_function("text", |b| b.iter(|| black_box(newsdesk::render::text::render_text(&body, base.as_ref()))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(10));
    targets = render
}
criterion_main!(benches);
