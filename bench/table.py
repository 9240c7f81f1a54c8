#!/usr/bin/env python3
"""The table of bench/run.sh: medians, spreads and ratios of results.tsv
(bench, who, rep, value, peak KB), as Markdown."""
import statistics
import sys
from collections import defaultdict

values = defaultdict(list)
memory = defaultdict(list)
for line in open(sys.argv[1], encoding="utf-8"):
    bench, who, _rep, value, kib = line.rstrip("\n").split("\t")
    values[bench, who].append(float(value))
    if kib:
        memory[bench, who].append(int(kib) / 1024)


def med(series):
    return statistics.median(series)


def spread(series):
    """Range over the repetitions as ± percent of the median."""
    if len(series) < 2:
        return ""
    m = med(series)
    return f" (±{max(abs(max(series) - m), abs(m - min(series))) / m * 100:.0f}%)" if m else ""


def secs(key):
    s = values[key]
    m = med(s)
    shown = f"{m * 1000:.0f} ms" if m < 1 else f"{m:.2f} s"
    return shown + spread(s)


def mb(key):
    return f"{med(memory[key]):.0f} MB" + spread(memory[key]) if memory[key] else "–"


def rate(key, unit):
    return f"{med(values[key]):,.0f} {unit}" + spread(values[key])


def verdict(ok):
    return "**met**" if ok else "**missed**"


rows = []
if values["build", "tidings"] and values["build", "hugo"]:
    t, h = med(values["build", "tidings"]), med(values["build", "hugo"])
    tm, hm = med(memory["build", "tidings"]), med(memory["build", "hugo"])
    rows.append(("1 cold build", f"{secs(('build', 'tidings'))}, {mb(('build', 'tidings'))}",
                 f"Hugo {secs(('build', 'hugo'))}, {mb(('build', 'hugo'))}",
                 f"time {t / h:.2f}×, memory {tm / hm:.2f}×",
                 f"≤ 0.25×, ≤ 0.2×: {verdict(t / h <= 0.25)}, {verdict(tm / hm <= 0.2)}"))
if values["build-big", "tidings"] and values["build-big", "hugo"]:
    t, h = med(values["build-big", "tidings"]), med(values["build-big", "hugo"])
    tm, hm = med(memory["build-big", "tidings"]), med(memory["build-big", "hugo"])
    rows.append(("1b cold build, 100,000 stories", f"{secs(('build-big', 'tidings'))}, {mb(('build-big', 'tidings'))}",
                 f"Hugo {secs(('build-big', 'hugo'))}, {mb(('build-big', 'hugo'))}",
                 f"time {t / h:.2f}×, memory {tm / hm:.2f}×",
                 f"≤ 0.25×, ≤ 0.2×: {verdict(t / h <= 0.25)}, {verdict(tm / hm <= 0.2)}"))
if values["incremental", "tidings"] and values["incremental", "hugo"]:
    t, h = med(values["incremental", "tidings"]), med(values["incremental", "hugo"])
    rows.append(("2 one story added", f"{secs(('incremental', 'tidings'))}, {mb(('incremental', 'tidings'))}",
                 f"Hugo {secs(('incremental', 'hugo'))}",
                 f"{t / h:.3f}×",
                 f"≤ 120 ms and ≤ 0.04×: {verdict(t <= 0.12)}, {verdict(t / h <= 0.04)}"))
if values["unchanged", "tidings"]:
    rows.append(("2b nothing changed", f"{secs(('unchanged', 'tidings'))}, {mb(('unchanged', 'tidings'))}",
                 "–", "–", f"≤ 80 ms: {verdict(med(values['unchanged', 'tidings']) <= 0.08)}"))
for bench, name, count, limit in (("digest", "3 digest delivery, themes in site order", "50,000", 100),
                                   ("digest-own", "3b digest delivery, each in their own order", "50,000", 100),
                                   ("digest-200k", "3c digest delivery, own order", "200,000", 120)):
    if values[f"{bench}-rate", "tidings"] and values[f"{bench}-rate", "smtp-source"]:
        t, s = med(values[f"{bench}-rate", "tidings"]), med(values[f"{bench}-rate", "smtp-source"])
        tm = med(memory[bench, "tidings"])
        rows.append((f"{name} ({count})",
                     f"{rate((f'{bench}-rate', 'tidings'), 'msg/s')} ({secs((bench, 'tidings'))}), {mb((bench, 'tidings'))}",
                     f"smtp-source {rate((f'{bench}-rate', 'smtp-source'), 'msg/s')}",
                     f"{t / s:.2f}×",
                     f"≥ 0.8×, ≤ {limit} MB: {verdict(t / s >= 0.8)}, {verdict(tm <= limit)}"))
for bench, name in (("serve", "4 /feeds/atom.xml, 200"), ("serve-304", "4b /feeds/atom.xml, 304")):
    if values[bench, "tidings"] and values[bench, "nginx"]:
        t, n = med(values[bench, "tidings"]), med(values[bench, "nginx"])
        rows.append((name, rate((bench, "tidings"), "req/s"), f"nginx {rate((bench, 'nginx'), 'req/s')}",
                     f"{t / n:.2f}×", f"≥ 0.8×: {verdict(t / n >= 0.8)}"))
if values["import", "tidings"]:
    tm = med(memory["import", "tidings"])
    rows.append(("5 subscriber import", f"{secs(('import', 'tidings'))}, {mb(('import', 'tidings'))}", "–", "–",
                 f"≤ 100 MB: {verdict(tm <= 100)}"))
if values["import-again", "tidings"]:
    rows.append(("5b same file again", f"{secs(('import-again', 'tidings'))}, {mb(('import-again', 'tidings'))}",
                 "–", "–", "(no target)"))

reps = max((len(v) for v in values.values()), default=0)
print(f"\nMedians of {reps} repetitions; (±n%) is the largest distance of a repetition from the median.\n")
print("| # | tidings | peer, same run | ratio | target |")
print("|---|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
