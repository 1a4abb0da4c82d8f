#!/usr/bin/env python3
"""Builds the bundled site (config.toml + posts/) with newsdesk and checks the feeds
with clients newsdesk does not share code with:

- RSS 2.0 and Atom 1.0 through feedparser: well-formed (bozo == 0), one entry per
  bundled post, and each entry's id, link and title equal to what the post implies
  (jekyll-feed ids: https://lwkd.info/YEAR/FILE-STEM, links from the permalink
  pattern /:year/:year:month:day on the post's date);
- JSON Feed 1.1 against the spec's rules (https://www.jsonfeed.org/version/1.1/).

Usage: check_feeds.py [--bin PATH]   (default: target/release/newsdesk, else cargo run)
Exits 1 with one line per problem.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

try:
    import feedparser
except ImportError:
    sys.exit("check_feeds.py: feedparser is missing: run `python3 -m pip install feedparser`")
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
problems = []


def problem(msg):
    problems.append(msg)
    print(f"  MISMATCH: {msg}")


def expect(what, got, want):
    if got != want:
        problem(f"{what}: got {got!r}, expected {want!r}")


def front_matter(path):
    """The `key: value` lines between the fences (the bundled posts use nothing fancier)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].strip() == "---", f"{path}: no front matter"
    fm = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep:
            fm[key.strip()] = value.strip().strip('"')
    return fm


def expected_posts(base_url, posts_dir):
    """(id, link, title, date) per post, newest first, derived from the files alone."""
    out = []
    for path in sorted(posts_dir.glob("*.md")):
        fm = front_matter(path)
        if fm.get("published") == "false":
            continue
        stem = path.stem
        if "date" in fm:
            date = datetime.strptime(fm["date"], "%Y-%m-%d %H:%M:%S %z")
        else:
            date = datetime.strptime(stem[:10], "%Y-%m-%d").replace(tzinfo=timezone.utc)
        slug = fm.get("slug", stem)
        link = f"{base_url}/{date:%Y}/{date:%Y%m%d}"
        out.append({"id": f"{base_url}/{date:%Y}/{slug}", "link": link, "title": fm["title"], "date": date})
    out.sort(key=lambda p: p["date"], reverse=True)
    return out


def newsdesk(args_bin):
    if args_bin:
        return [args_bin]
    release = REPO / "target" / "release" / "newsdesk"
    if release.exists():
        return [str(release)]
    return ["cargo", "run", "--quiet", "--release", "--manifest-path", str(REPO / "Cargo.toml"), "--"]


def check_xml_feed(kind, path, want_version, posts, self_url):
    print(f"{kind}: {path.name}")
    d = feedparser.parse(str(path))
    if d.bozo:
        problem(f"{kind}: feedparser reports a malformed feed: {d.get('bozo_exception')!r}")
    expect(f"{kind} version", d.version, want_version)
    self_links = [l.href for l in d.feed.get("links", []) if l.get("rel") == "self"]
    expect(f"{kind} self link", self_links, [self_url])
    expect(f"{kind} entry count", len(d.entries), len(posts))
    for e, p in zip(d.entries, posts):
        expect(f"{kind} entry id", e.get("id"), p["id"])
        expect(f"{kind} entry link ({p['id']})", e.get("link"), p["link"])
        expect(f"{kind} entry title ({p['id']})", e.get("title"), p["title"])
        published = e.get("published_parsed")
        got = datetime(*published[:6], tzinfo=timezone.utc) if published else None
        expect(f"{kind} entry date ({p['id']})", got, p["date"].astimezone(timezone.utc))
        body = e.get("content", [{}])[0].get("value", "")
        if "<h2" not in body:
            problem(f"{kind} entry {p['id']}: no full HTML content")
    print(f"  {len(d.entries)} entries checked")


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def absolute(url):
    u = urlparse(url or "")
    return u.scheme in ("http", "https") and bool(u.netloc)


def check_json_feed(path, posts, self_url):
    """The JSON Feed 1.1 rules a reader relies on."""
    print(f"JSON Feed: {path.name}")
    feed = json.loads(path.read_text(encoding="utf-8"))
    expect("JSON version", feed.get("version"), "https://jsonfeed.org/version/1.1")
    if not isinstance(feed.get("title"), str) or not feed["title"]:
        problem("JSON: `title` is required")
    for key in ("home_page_url", "feed_url"):
        if not absolute(feed.get(key)):
            problem(f"JSON: `{key}` must be an absolute URL, got {feed.get(key)!r}")
    expect("JSON feed_url", feed.get("feed_url"), self_url)
    for a in feed.get("authors", []):
        if not any(k in a for k in ("name", "url", "avatar")):
            problem(f"JSON: author {a!r} has none of name, url, avatar")
    for h in feed.get("hubs", []):
        if not (isinstance(h.get("type"), str) and absolute(h.get("url"))):
            problem(f"JSON: hub {h!r} needs `type` and an absolute `url`")
    items = feed.get("items")
    if not isinstance(items, list):
        problem("JSON: `items` is required and must be an array")
        return
    expect("JSON item count", len(items), len(posts))
    ids = [i.get("id") for i in items]
    if len(set(ids)) != len(ids):
        problem("JSON: item ids are not unique")
    for item, p in zip(items, posts):
        if not isinstance(item.get("id"), str):
            problem(f"JSON: item id must be a string, got {item.get('id')!r}")
        expect("JSON item id", item.get("id"), p["id"])
        expect(f"JSON item url ({p['id']})", item.get("url"), p["link"])
        expect(f"JSON item title ({p['id']})", item.get("title"), p["title"])
        if not (item.get("content_html") or item.get("content_text")):
            problem(f"JSON: item {p['id']} has neither content_html nor content_text")
        for key in ("date_published", "date_modified"):
            if key in item:
                value = item[key]
                if not RFC3339.match(value):
                    problem(f"JSON: item {p['id']} `{key}` is not RFC 3339: {value!r}")
                elif datetime.fromisoformat(value.replace("Z", "+00:00")) != p["date"] and key == "date_published":
                    problem(f"JSON: item {p['id']} published {value}, post says {p['date'].isoformat()}")
        if "tags" in item and not all(isinstance(t, str) for t in item["tags"]):
            problem(f"JSON: item {p['id']} tags must be strings")
        for a in item.get("authors", []):
            if not any(k in a for k in ("name", "url", "avatar")):
                problem(f"JSON: item {p['id']} author {a!r} has none of name, url, avatar")
    print(f"  {len(items)} items checked")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", help="the newsdesk binary (default: target/release/newsdesk)")
    args = ap.parse_args()

    config = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    base_url = config["site"]["base_url"].rstrip("/")
    feeds = config.get("feeds", {})
    names = {k: feeds.get(k, default) for k, default in (("rss", "rss.xml"), ("atom", "atom.xml"), ("json", "feed.json"))}
    # The expectations below are jekyll-feed's ids under LWKD's permalink pattern.
    expect("config permalink", config["site"].get("permalink"), "/:year/:year:month:day")
    expect("config feed ids", feeds.get("id"), "jekyll")
    for kind, name in names.items():
        if not isinstance(name, str):
            sys.exit(f"check_feeds.py: config.toml disables the {kind} feed; this check needs all three")
    posts = expected_posts(base_url, REPO / config["site"].get("posts", "posts"))
    print(f"bundled site: {len(posts)} posts, feeds {names}")
    if len(posts) != 4:
        problem(f"expected the 4 bundled posts, found {len(posts)}")

    with tempfile.TemporaryDirectory(prefix="newsdesk-interop-") as tmp:
        out = Path(tmp) / "site"
        cmd = newsdesk(args.bin) + ["-c", str(REPO / "config.toml"), "build", "--out", str(out)]
        print("$ " + " ".join(cmd))
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            sys.exit(f"check_feeds.py: newsdesk build failed with exit code {run.returncode}")
        check_xml_feed("RSS", out / names["rss"], "rss20", posts, f"{base_url}/{names['rss']}")
        check_xml_feed("Atom", out / names["atom"], "atom10", posts, f"{base_url}/{names['atom']}")
        check_json_feed(out / names["json"], posts, f"{base_url}/{names['json']}")

    if problems:
        print(f"check_feeds.py: FAILED: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print("check_feeds.py: RSS, Atom and JSON Feed agree with the posts (0 problems)")


if __name__ == "__main__":
    main()
