"""Parse feed files with Python's feedparser and print what it saw as JSON.

Used by the integration tests as an independent reader of RSS and Atom:
`bozo` must be 0 for every feed. (feedparser 6 has no JSON Feed parser; the
tests check JSON Feed with feed-rs and against the spec's required fields.)
OPML files are parsed with the standard XML parser.

    python3 tests/feedcheck.py FILE...
"""

import json
import sys
import xml.etree.ElementTree as ET

import feedparser


def opml(path):
    root = ET.parse(path).getroot()
    outlines = [
        {k: o.get(k) for k in ("text", "type", "xmlUrl", "htmlUrl")}
        for o in root.iter("outline")
    ]
    return {"kind": "opml", "version": root.get("version"), "outlines": outlines}


def feed(path):
    with open(path, "rb") as f:
        d = feedparser.parse(f.read())
    return {
        "kind": "feed",
        "bozo": int(bool(d.bozo)),
        "bozo_exception": str(d.get("bozo_exception", "")),
        "version": d.version,
        "title": d.feed.get("title"),
        "link": d.feed.get("link"),
        "language": d.feed.get("language"),
        "updated": d.feed.get("updated"),
        "self": [l.get("href") for l in d.feed.get("links", []) if l.get("rel") == "self"],
        "hubs": [l.get("href") for l in d.feed.get("links", []) if l.get("rel") == "hub"],
        "entries": [
            {
                "id": e.get("id"),
                "link": e.get("link"),
                "title": e.get("title"),
                "published": e.get("published"),
                "updated": e.get("updated"),
                "summary": e.get("summary"),
                "content": [c.get("value") for c in e.get("content", [])],
                "tags": [t.get("term") for t in e.get("tags", [])],
                "authors": [a.get("name") for a in e.get("authors", [])],
            }
            for e in d.entries
        ],
    }


def main():
    out = {}
    for path in sys.argv[1:]:
        out[path] = opml(path) if path.endswith(".opml") else feed(path)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
