#!/usr/bin/env python3
"""Deterministic synthetic Jekyll archive for the newsdesk / Hugo / Jekyll benchmark.

Builds N posts in DIR/_posts/ from the bodies of a real archive (by default the
LWKD posts in <repo>/../shared/corpus/lwkd/_posts, CC BY 4.0), so the synthetic
archive keeps the real size distribution and markdown mix (headings, link lists,
inline code, raw HTML). Bodies are used in seeded random permutations of the
whole source set (every source body is used equally often, so the size
distribution matches the source exactly at N = k * len(source)).

Dates go back from 2025-12-31 (never in the future relative to 2026-01-01, never
before 1970-01-01, always valid). When N fits one post per day the real archive's
permalink `/:year/:year:month:day` is used; otherwise several posts share a day
(at distinct times) and the permalink becomes `/:year/:month/:day/:slug` for all
three tools so every post keeps a distinct URL.

Also written into DIR: newsdesk.toml, Jekyll _config.yml + _layouts/, Hugo
hugo.toml, and bench-expected.json (the 20 newest posts, newest first, with the
permalink path each tool should link to) for the feed sanity check.

Same --seed and --posts (and same source) => byte-identical output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
from pathlib import Path

END_DATE = dt.date(2025, 12, 31)  # newest post day; all posts are < 2026-01-01
FLOOR_DATE = dt.date(1970, 1, 1)  # keep away from pre-epoch edge cases
FEED_LIMIT = 20
PERMALINK_DAY = "/:year/:year:month:day"
PERMALINK_SLUG = "/:year/:month/:day/:slug"
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]


def default_source() -> Path:
    repo = Path(__file__).resolve().parent.parent
    return repo.parent / "shared" / "corpus" / "lwkd" / "_posts"


def split_front_matter(text: str) -> tuple[str, str]:
    """Return (front matter, body) of a Jekyll post; body is kept verbatim."""
    text = text.replace("\r\n", "\n")
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[4:end], text[end + 5:]
        if text.rstrip("\n").endswith("\n---"):
            return text[4:text.rstrip("\n").rfind("\n---")], ""
    return "", text


def load_bodies(source: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix in (".md", ".markdown"))
    if not files:
        sys.exit(f"gen_corpus: no posts found in {source}")
    bodies = []
    for p in files:
        _, body = split_front_matter(p.read_text(encoding="utf-8"))
        body = body.strip("\n")
        # Liquid tags would make Jekyll (and Hugo shortcodes would make Hugo) do
        # extra work the other tools do not; the LWKD archive has none.
        if "{%" in body or "{{" in body:
            print(f"gen_corpus: warning: {p.name} contains template syntax", file=sys.stderr)
        bodies.append((p.name, body))
    return bodies


def human_date(d: dt.date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"


def permalink_path(pattern: str, when: dt.datetime, slug: str) -> str:
    return (
        pattern.replace(":year", f"{when.year:04d}")
        .replace(":month", f"{when.month:02d}")
        .replace(":day", f"{when.day:02d}")
        .replace(":slug", slug)
    )


def plan_posts(n: int, per_day: int, rng: random.Random) -> list[dict]:
    """Posts newest first: index 0 is the newest. Distinct dates, distinct slugs."""
    posts = []
    slot_len = 86400 // per_day
    for i in range(n):
        day = END_DATE - dt.timedelta(days=i // per_day)
        slot = per_day - 1 - (i % per_day)  # later slot = newer post
        # random second inside this post's own slot: distinct, ordered, valid
        sec = slot * slot_len + rng.randrange(slot_len)
        when = dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=sec)
        number = n - i  # issue numbers grow with time
        slug = f"issue-{number}"
        posts.append({"when": when, "number": number, "slug": slug})
    return posts


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def newsdesk_toml(permalink: str) -> str:
    return f"""[site]
title = "Bench"
description = "Synthetic archive"
base_url = "https://bench.example.org"
language = "en"
timezone = "UTC"
posts = "_posts"
permalink = "{permalink}"
author = {{ name = "Bench", email = "bench@example.org" }}

[feeds]
limit = {FEED_LIMIT}
rss = "rss.xml"
atom = "feed.xml"
json = "feed.json"
id = "jekyll"
"""


def jekyll_config(permalink: str) -> str:
    return f"""# Jekyll config for the benchmark (no theme gem, no network).
title: Bench
description: Synthetic archive
url: https://bench.example.org
baseurl: ""
lang: en
timezone: UTC
permalink: {permalink}
plugins:
  - jekyll-feed
feed:
  posts_limit: {FEED_LIMIT}
markdown: kramdown
exclude:
  - newsdesk.toml
  - hugo.toml
  - bench-expected.json
  - public
  - resources
"""


JEKYLL_DEFAULT_LAYOUT = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ page.title }} | {{ site.title }}</title>{% feed_meta %}</head>
<body>
{{ content }}
</body>
</html>
"""

JEKYLL_POST_LAYOUT = """---
layout: default
---
<article>
<h1>{{ page.title }}</h1>
<time datetime="{{ page.date | date_to_xmlschema }}">{{ page.date | date: "%B %-d, %Y" }}</time>
{{ content }}
</article>
"""


def hugo_toml(permalink: str) -> str:
    hugo_permalink = permalink + "/"  # Hugo wants the trailing slash for pretty URLs
    return f"""# Hugo config for the benchmark: read _posts in place, emit only the home RSS.
baseURL = "https://bench.example.org/"
languageCode = "en"
title = "Bench"
timeZone = "UTC"
disableKinds = ["section", "taxonomy", "term", "sitemap", "robotsTXT", "404"]
enableRobotsTXT = false

[services.rss]
limit = {FEED_LIMIT}

[outputs]
home = ["RSS"]

[permalinks]
posts = "{hugo_permalink}"

[markup.goldmark.renderer]
unsafe = true

[[module.mounts]]
source = "_posts"
target = "content/posts"

[[cascade]]
[cascade._build]
render = "link"
list = "always"
[cascade._target]
path = "/posts/**"
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, required=True, help="number of posts to write")
    ap.add_argument("--out", type=Path, required=True, help="archive directory to (re)create")
    ap.add_argument("--seed", type=int, default=1, help="RNG seed (default 1)")
    ap.add_argument("--source", type=Path, default=None,
                    help="real _posts folder (default <repo>/../shared/corpus/lwkd/_posts)")
    ap.add_argument("--per-day", type=int, default=0,
                    help="posts per day (default: 1 if N fits between 1970 and 2025, else the minimum that fits)")
    args = ap.parse_args()

    n = args.posts
    if n < 1:
        sys.exit("gen_corpus: --posts must be >= 1")
    source = args.source if args.source is not None else default_source()
    if not source.is_dir():
        sys.exit(f"gen_corpus: source folder {source} not found")
    days_available = (END_DATE - FLOOR_DATE).days + 1
    per_day = args.per_day or max(1, math.ceil(n / days_available))
    if per_day < 1 or per_day > 86400:
        sys.exit("gen_corpus: --per-day must be between 1 and 86400")
    if math.ceil(n / per_day) > days_available:
        sys.exit(f"gen_corpus: {n} posts at {per_day}/day would go before {FLOOR_DATE}")
    permalink = PERMALINK_DAY if per_day == 1 else PERMALINK_SLUG

    bodies = load_bodies(source)
    rng = random.Random(args.seed)
    posts = plan_posts(n, per_day, rng)

    out: Path = args.out
    if out.exists():
        # only ever wipe what this script writes
        for name in ("_posts", "_layouts"):
            shutil.rmtree(out / name, ignore_errors=True)
    posts_dir = out / "_posts"
    posts_dir.mkdir(parents=True, exist_ok=True)

    # Oldest first: bodies are drawn from seeded permutations of the whole source set.
    order: list[int] = []
    for post in reversed(posts):
        if not order:
            order = list(range(len(bodies)))
            rng.shuffle(order)
        src_name, body = bodies[order.pop()]
        when = post["when"]
        date_str = when.strftime("%Y-%m-%d")
        title = f"Week Ending {human_date(when.date())} (issue {post['number']})"
        text = (
            "---\n"
            "layout: post\n"
            f"title: {title}\n"
            f"date: {when.strftime('%Y-%m-%d %H:%M:%S')} -0000\n"
            f"slug: {post['slug']}\n"
            "---\n\n"
            f"{body}\n\n"
            f"*Synthetic issue {post['number']}, generated from `{src_name}`.*\n"
        )
        write(posts_dir / f"{date_str}-{post['slug']}.md", text)

    write(out / "newsdesk.toml", newsdesk_toml(permalink))
    write(out / "_config.yml", jekyll_config(permalink))
    write(out / "_layouts" / "default.html", JEKYLL_DEFAULT_LAYOUT)
    write(out / "_layouts" / "post.html", JEKYLL_POST_LAYOUT)
    write(out / "hugo.toml", hugo_toml(permalink))
    expected = {
        "posts": n,
        "seed": args.seed,
        "per_day": per_day,
        "permalink": permalink,
        "base_url": "https://bench.example.org",
        "feed_limit": FEED_LIMIT,
        "newest": [
            {
                "title": f"Week Ending {human_date(p['when'].date())} (issue {p['number']})",
                "date": p["when"].strftime("%Y-%m-%d %H:%M:%S -0000"),
                "slug": p["slug"],
                "path": permalink_path(permalink, p["when"], p["slug"]),
            }
            for p in posts[:FEED_LIMIT]
        ],
    }
    write(out / "bench-expected.json", json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"gen_corpus: wrote {n} posts ({per_day}/day, permalink {permalink}) "
          f"from {len(bodies)} source bodies to {out}")


if __name__ == "__main__":
    main()
