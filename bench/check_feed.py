#!/usr/bin/env python3
"""Sanity check of one tool's output: the feed exists, holds exactly `feed_limit`
items, and those items link to (and are titled as) the newest posts of the generated archive.

    python3 bench/check_feed.py TOOL OUT_DIR CORPUS_DIR

TOOL is newsdesk (rss.xml + feed.xml + feed.json), hugo (index.xml) or jekyll
(feed.xml). Expected posts come from CORPUS_DIR/bench-expected.json, written by
gen_corpus.py. Exits non-zero with a message on any problem.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ATOM = "{http://www.w3.org/2005/Atom}"

FEEDS = {
    "newsdesk": [("rss.xml", "rss"), ("feed.xml", "atom"), ("feed.json", "json")],
    "hugo": [("index.xml", "rss")],
    "jekyll": [("feed.xml", "atom")],
}


def links_rss(path: Path) -> list[tuple[str, str]]:
    root = ET.parse(path).getroot()
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ValueError(f"{path}: not an RSS 2.0 document (root <{root.tag}>)")
    return [((item.findtext("link") or "").strip(), (item.findtext("title") or "").strip())
            for item in channel.findall("item")]


def links_atom(path: Path) -> list[tuple[str, str]]:
    root = ET.parse(path).getroot()
    if root.tag != ATOM + "feed":
        raise ValueError(f"{path}: not an Atom document (root <{root.tag}>)")
    out = []
    for entry in root.findall(ATOM + "entry"):
        href = ""
        for link in entry.findall(ATOM + "link"):
            if link.get("rel", "alternate") == "alternate":
                href = link.get("href", "")
                break
        out.append((href.strip(), (entry.findtext(ATOM + "title") or "").strip()))
    return out


def links_json(path: Path) -> list[tuple[str, str]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "items" not in doc:
        raise ValueError(f"{path}: not a JSON Feed document (no 'items')")
    return [(str(item.get("url", "")).strip(), str(item.get("title", "")).strip())
            for item in doc["items"]]


READERS = {"rss": links_rss, "atom": links_atom, "json": links_json}


def normalise(url: str) -> str:
    """Treat `/x`, `/x/`, `/x.html` and `/x/index.html` as the same page."""
    url = re.sub(r"/index\.html$", "/", url)
    url = re.sub(r"\.html$", "", url)
    return url.rstrip("/")


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in FEEDS:
        print(__doc__, file=sys.stderr)
        return 2
    tool, out, corpus = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    expected_doc = json.loads((corpus / "bench-expected.json").read_text(encoding="utf-8"))
    limit = expected_doc["feed_limit"]
    base = expected_doc["base_url"].rstrip("/")
    expected = [normalise(base + p["path"]) for p in expected_doc["newest"]]
    titles = {p["title"] for p in expected_doc["newest"]}

    problems = []
    for name, kind in FEEDS[tool]:
        path = out / name
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{tool}: {path} missing or empty")
            continue
        try:
            items = READERS[kind](path)
        except (ET.ParseError, ValueError, json.JSONDecodeError) as e:
            problems.append(f"{tool}: {path}: cannot parse: {e}")
            continue
        if len(items) != limit:
            problems.append(f"{tool}: {path}: {len(items)} items, expected exactly {limit}")
            continue
        got = [normalise(u) for u, _ in items]
        if set(got) != set(expected):
            missing = [u for u in expected if u not in set(got)]
            extra = [u for u in got if u not in set(expected)]
            problems.append(
                f"{tool}: {path}: item links are not the {limit} newest posts;"
                f" missing e.g. {missing[:3]}, unexpected e.g. {extra[:3]}"
            )
            continue
        bad_titles = [t for _, t in items if t not in titles]
        if bad_titles:
            problems.append(f"{tool}: {path}: unexpected item titles, e.g. {bad_titles[:3]}")
            continue
        if got != expected:
            print(f"check_feed: warning: {tool}: {path}: items not in newest-first order",
                  file=sys.stderr)
        print(f"check_feed: {tool}: {path.name}: {len(items)} items, links and titles OK"
              f" (newest: {items[0][0]})")
    if problems:
        for p in problems:
            print(f"check_feed: FAIL: {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
