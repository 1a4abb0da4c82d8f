#!/usr/bin/env python3
"""The "moving from Jekyll" promise, checked against Jekyll itself.

Builds a copy of the LWKD archive (../shared/corpus/lwkd beside the repository) twice:
with real Jekyll + jekyll-feed, and with newsdesk (`id = "jekyll"`, `atom = "feed.xml"`),
then compares the two Atom feeds entry by entry:

- the same set of entries;
- each entry's id and alternate link (what feed readers and links in the wild use);
- each entry's published instant;
- each entry's heading ids (the #anchors readers and other sites link to).

Two dates in the archive do not exist (2022-02-29, 14:4g5:00); Jekyll read them as
2022-03-01 07:10:00 and 14:04:00, and newsdesk refuses them, so both builds get the
copy with those two dates written as Jekyll read them. The theme is left out (no
network) and two one-line layouts stand in for it: neither affects the feed.

Usage: jekyll_ids.py [--bin PATH] [--corpus DIR] [--keep DIR]
Exits 0 with a summary when everything matches, 1 on any mismatch; exits 0 with a
note when there is no corpus.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ATOM = "{http://www.w3.org/2005/Atom}"
BASE_URL = "https://lwkd.info"

DATE_FIXES = [
    ("2022-02-27-update.md", "date: 2022-02-29 07:10:00 -0000", "date: 2022-03-01 07:10:00 -0000"),
    ("2024-04-14-update.md", "date: 2024-04-17 14:4g5:00 -0000", "date: 2024-04-17 14:04:00 -0000"),
]


def run(cmd, cwd):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        sys.exit(f"jekyll_ids.py: `{cmd[0]}` failed with exit code {r.returncode}")
    return r


def jekyll_config(corpus_config, limit):
    """The corpus's _config.yml without its theme, with the site's URL (GitHub Pages
    sets it from the CNAME) and a feed long enough for every post."""
    kept = [l for l in corpus_config.splitlines() if not re.match(r"^(theme|remote_theme|url|feed)\s*:", l)]
    return "\n".join(kept + [f"url: {BASE_URL}", "feed:", f"  posts_limit: {limit}", ""])


def newsdesk_config(limit):
    return f"""[site]
title = "Last Week in Kubernetes Development"
description = "Stay up-to-date on Kubernetes development in 15 minutes a week."
base_url = "{BASE_URL}"
posts = "site/_posts"
permalink = "/:year/:year:month:day"

[feeds]
limit = {limit}
atom = "feed.xml"
id = "jekyll"
"""


def entries(path):
    """id -> (alternate links, published instant, heading ids) of an Atom feed."""
    out = {}
    for e in ET.parse(path).getroot().iter(ATOM + "entry"):
        entry_id = e.findtext(ATOM + "id")
        links = [l.get("href") for l in e.findall(ATOM + "link") if l.get("rel", "alternate") == "alternate"]
        published = datetime.fromisoformat(e.findtext(ATOM + "published").replace("Z", "+00:00"))
        headings = re.findall(r'<h[1-6][^>]*\sid="([^"]*)"', e.findtext(ATOM + "content") or "")
        if entry_id in out:
            print(f"  duplicate id {entry_id} in {path}")
        out[entry_id] = {"link": links, "published": published, "headings": headings}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", help="the newsdesk binary (default: target/release/newsdesk)")
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus" / "lwkd"))
    ap.add_argument("--keep", help="build in this folder and keep it, for a closer look")
    args = ap.parse_args()

    corpus = Path(args.corpus)
    if not (corpus / "_posts").is_dir():
        print(f"jekyll_ids.py: SKIPPED: no LWKD corpus at {corpus}")
        return
    if shutil.which("jekyll") is None:
        sys.exit("jekyll_ids.py: `jekyll` is not installed (apt-get install jekyll ruby-jekyll-feed)")
    newsdesk = args.bin or str(REPO / "target" / "release" / "newsdesk")
    if not Path(newsdesk).exists():
        sys.exit(f"jekyll_ids.py: no newsdesk binary at {newsdesk}: run `cargo build --release` first")

    tmp = None
    if args.keep:
        work = Path(args.keep)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="newsdesk-jekyll-")
        work = Path(tmp.name)
    try:
        site = work / "site"
        shutil.copytree(corpus / "_posts", site / "_posts")
        count = len(list((site / "_posts").glob("*.md")))
        for name, bad, good in DATE_FIXES:
            post = site / "_posts" / name
            text = post.read_text(encoding="utf-8")
            if bad in text:
                post.write_text(text.replace(bad, good, 1), encoding="utf-8")
        limit = max(400, count)
        (site / "_config.yml").write_text(jekyll_config((corpus / "_config.yml").read_text(), limit))
        (site / "_layouts").mkdir()
        (site / "_layouts" / "default.html").write_text("<!DOCTYPE html>\n<html><body>{{ content }}</body></html>\n")
        (site / "_layouts" / "post.html").write_text("---\nlayout: default\n---\n{{ content }}\n")
        (work / "config.toml").write_text(newsdesk_config(limit))

        run(["jekyll", "build", "--source", str(site), "--destination", str(work / "jekyll")], work)
        run([newsdesk, "-c", str(work / "config.toml"), "build", "--out", str(work / "newsdesk")], work)

        jekyll = entries(work / "jekyll" / "feed.xml")
        ours = entries(work / "newsdesk" / "feed.xml")
        mismatches = []
        for missing in sorted(set(jekyll) - set(ours)):
            mismatches.append(f"only Jekyll has {missing}")
        for extra in sorted(set(ours) - set(jekyll)):
            mismatches.append(f"only newsdesk has {extra}")
        anchors = 0
        for entry_id in sorted(set(jekyll) & set(ours)):
            j, n = jekyll[entry_id], ours[entry_id]
            anchors += len(j["headings"])
            for field in ("link", "published", "headings"):
                if j[field] != n[field]:
                    mismatches.append(f"{entry_id}: {field}: Jekyll {j[field]!r}, newsdesk {n[field]!r}")
        if len(jekyll) != count:
            mismatches.append(f"Jekyll's feed has {len(jekyll)} entries for {count} posts")

        print(
            f"jekyll-feed vs newsdesk: {len(set(jekyll) | set(ours))} entries compared "
            f"(id, link, published date, {anchors} heading anchors), {len(mismatches)} mismatches"
        )
        for m in mismatches[:50]:
            print(f"  MISMATCH: {m}")
        if mismatches:
            sys.exit(1)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
