#!/usr/bin/env python3
"""Generates the benchmark data of bench/run.sh. Deterministic (seeded).

    gen.py corpus DIR STORIES THEMES   a tidings site (config.toml, content/stories/*.md)
                                       and a Hugo site (DIR/hugo) over the same Markdown files
    gen.py story DIR N                 one more story, number N, in DIR/content/stories
    gen.py digest DIR STORIES THEMES   a tidings site whose stories are all new this month
    gen.py people FILE ROWS THEMES [site|own]
                                       a subscriber CSV (email,themes,language,digest),
                                       themes in the site's order or each person's own
"""
import os
import random
import sys
from datetime import datetime, timedelta, timezone

WORDS = (
    "kommun partnerskap demokrati medborgare dialog förtroende samverkan utveckling "
    "hållbarhet klimat vatten avfall skola unga barn jämställdhet inkludering hälsa "
    "vård planering bostäder trafik ledarskap politiker tjänstepersoner erfarenheter "
    "lärande projekt resultat budget beslut fullmäktige nämnd förvaltning invånare "
    "förening näringsliv forskning universitet region stad landsbygd framtid arbete "
    "möte workshop rapport uppföljning kunskap metod verktyg öppenhet insyn ansvar"
).split()
NAMES = "Anna Lund|Jonas Berg|Grace Wanjiru|Achieng Otieno|Maria Ek|Oleh Kovalenko|Sara Nilsson".split("|")


def sentence(rng, low=8, high=20):
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.15:
        i = rng.randrange(len(words))
        words[i] = f"[{words[i]}](https://example.org/{words[i]}/)"
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = f"**{words[i]}**"
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))


def body(rng):
    """About 2.5 KB of Markdown: paragraphs, a heading, a quote, a list."""
    parts = [paragraph(rng), paragraph(rng)]
    parts.append("## " + sentence(rng, 3, 6).rstrip("."))
    parts.append("> – " + sentence(rng) + " säger " + rng.choice(NAMES) + ".")
    parts.append(paragraph(rng))
    parts.append("\n".join("- " + sentence(rng, 4, 9) for _ in range(3)))
    parts.append(paragraph(rng))
    return "\n\n".join(parts) + "\n"


def theme_slugs(count):
    return [f"tema-{i:02}" for i in range(count)]


def story(rng, n, slugs, date):
    title = sentence(rng, 4, 9).rstrip(".").replace("**", "").replace('"', "")
    title = title.split("](")[0].replace("[", "")
    chosen = rng.sample(slugs, rng.randint(1, 3))
    return (
        "+++\n"
        f'title = "{title} ({n})"\n'
        f"date = {date.isoformat(timespec='seconds')}\n"
        f"themes = [{', '.join(repr(s).replace(chr(39), chr(34)) for s in chosen)}]\n"
        f'summary = "{sentence(rng).replace("**", "")}"\n'
        f'language = "{rng.choice(["sv", "sv", "en"])}"\n'
        f'authors = ["{rng.choice(NAMES)}"]\n'
        "+++\n\n" + body(rng)
    )


def config(themes, digest):
    out = [
        "[site]",
        'title = "Benchmark"',
        'base_url = "https://bench.example.org"',
        'language = "sv"',
        'timezone = "Europe/Stockholm"',
        'author = "Benchmark"',
        "",
    ]
    for slug in theme_slugs(themes):
        out += ["[[themes]]", f'slug = "{slug}"', f'title = {{ sv = "Tema {slug}", en = "Theme {slug}" }}', ""]
    out += [
        "[[sources]]",
        'kind = "directory"',
        'path = "content/stories"',
        'url = "/stories/{slug}/"',
        "",
        "[feeds]",
        'dir = "feeds"',
        "items = 50",
        "full_content = true",
        "",
        "[storage]",
        'url = "sqlite://tidings.db"',
        "",
        "[mail]",
        'from = "Benchmark <news@bench.example.org>"',
        'transport = "file:outbox"',
        "concurrency = 8",
        "rate_limit = 0",
        'organization = "Benchmark, Box 1, 111 22 Stockholm"',
        "",
    ]
    if digest:
        out += [
            "[[digests]]",
            'id = "monthly"',
            'title = { sv = "Månadsbrev", en = "Monthly digest" }',
            'schedule = "0 8 1 * *"',
            'subject = { sv = "Nytt {{ period }}", en = "News {{ period }}" }',
            "skip_if_empty = true",
            "max_stories_per_theme = 10",
            "",
        ]
    out += ["[http]", 'listen = "127.0.0.1:18080"', ""]
    return "\n".join(out)


HUGO_CONFIG = """baseURL = "https://bench.example.org/"
title = "Benchmark"
contentDir = "../content"
# RSS for the home page and each term of the `themes` taxonomy, nothing
# else: the stories are listed and have a permalink, but get no page.
disableKinds = ["section", "taxonomy", "sitemap", "robotsTXT", "404"]
ignoreErrors = ["error-disable-taxonomy"]
[taxonomies]
theme = "themes"
[outputs]
home = ["RSS"]
term = ["RSS"]
[services.rss]
limit = 50
[[cascade]]
[cascade._build]
render = "link"
list = "always"
[cascade._target]
kind = "page"
"""

# Hugo's own RSS template, with the full content (tidings' feeds carry the
# full body too, `full_content = true`).
HUGO_RSS = """{{- printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\" standalone=\\"yes\\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>{{ .Title }} – {{ site.Title }}</title>
    <link>{{ .Permalink }}</link>
    <description>{{ .Title }}</description>
    {{ with .OutputFormats.Get "RSS" }}{{ printf "<atom:link href=%q rel=\\"self\\" type=%q />" .Permalink .MediaType | safeHTML }}{{ end }}
    {{ $pages := .Pages }}{{ if .IsHome }}{{ $pages = site.RegularPages }}{{ end }}
    {{ range first 50 $pages }}
    <item>
      <title>{{ .Title }}</title>
      <link>{{ .Permalink }}</link>
      <pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
      <guid>{{ .Permalink }}</guid>
      <description>{{ .Content | html }}</description>
    </item>
    {{ end }}
  </channel>
</rss>
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def corpus(root, stories, themes, digest=False, recent=False):
    rng = random.Random(7)
    slugs = theme_slugs(themes)
    write(os.path.join(root, "config.toml"), config(themes, digest))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=5) if recent else datetime(2015, 1, 1, 8, tzinfo=timezone.utc)
    step = (now - start) / stories
    for n in range(stories):
        write(os.path.join(root, "content", "stories", f"story-{n:05}.md"), story(rng, n, slugs, start + step * n))
    write(os.path.join(root, "hugo", "config.toml"), HUGO_CONFIG)
    write(os.path.join(root, "hugo", "layouts", "_default", "rss.xml"), HUGO_RSS)


def one_story(root, n, themes):
    rng = random.Random(n)
    text = story(rng, n, theme_slugs(themes), datetime.now(timezone.utc).replace(microsecond=0))
    write(os.path.join(root, "content", "stories", f"story-{n:05}.md"), text)


def people(path, rows, themes, order="site"):
    rng = random.Random(11)
    slugs = theme_slugs(themes)
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,themes,language,digest\n")
        for i in range(rows):
            # "site": in the site's order, as the sign-up form and the
            # preferences page give them. "own": each person's own order,
            # as a list imported from another tool gives them (a
            # subscriber's order is kept: their email's sections follow it).
            chosen = rng.sample(slugs, rng.randint(1, min(4, themes)))
            if order == "site":
                chosen = sorted(chosen)
            chosen = ";".join(chosen)
            f.write(f"person{i}@example{i % 97}.org,{chosen},{rng.choice(['sv', 'en'])},monthly\n")


def main(argv):
    what = argv[1]
    if what == "corpus":
        corpus(argv[2], int(argv[3]), int(argv[4]))
    elif what == "digest":
        corpus(argv[2], int(argv[3]), int(argv[4]), digest=True, recent=True)
    elif what == "story":
        one_story(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 40)
    elif what == "people":
        people(argv[2], int(argv[3]), int(argv[4]), argv[5] if len(argv) > 5 else "site")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
