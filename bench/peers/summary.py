#!/usr/bin/env python3
"""Tables and issue-15 target ratios from a peers results.json:

    python3 bench/peers/summary.py /tmp/kai-bench/results/results.json

kai creates no `incoming/` folder in the app home (it stages through `downloads/`,
emptied after each deploy), so `peers.py verify w4` reports
"incoming/ not empty: ['<no dir>']" on every host. A kai run whose only objections
are those lines is counted here, marked with * (bench.py's own results.md shows it
as FAILED). Any other objection still fails the run.
"""
import json
import re
import statistics
import sys

KNOWN = re.compile(r"^h\d+: incoming/ not empty: \['<no dir>'\]$")
# (workload, measure, peer, limit): kai's median over the peer's, in the same run.
TARGETS = [
    ("w1", "wall_s", "openssh", 1.0),
    ("w2", "wall_s", "openssh", 1.0),
    ("w3", "wall_s", "openssh", 1.0),
    ("w4", "wall_s", "openssh", 0.8),
    ("w4", "wall_s", "fabric", 0.6),
    ("w4", "host_cpu_s", "openssh", 0.8),
    ("w4", "wall_s", "ansible", 0.1),
]


def main(path):
    doc = json.load(open(path))
    meta, runs = doc["meta"], [r for r in doc["runs"] if r["run"] >= 0]
    waived = set()
    for r in runs:
        if not r["ok"] and r["errors"] and all(KNOWN.match(e) for e in r["errors"]):
            r["ok"] = True
            waived.add((r["tool"], r["wl"]))
    wls, tools = meta["workloads"], meta["tools_seen"]
    cell = {}
    for t in tools:
        for w in wls:
            rs = [r for r in runs if r["tool"] == t and r["wl"] == w]
            good = [r for r in rs if r["ok"]]
            if rs:
                cell[t, w] = {"n": len(rs), "failed": len(rs) - len(good),
                              **{m: [r[m] for r in good] for m in ("wall_s", "ctl_cpu_s", "host_cpu_s", "bg_frac")}}
    med = lambda t, w, m: statistics.median(cell[t, w][m]) if (t, w) in cell and cell[t, w][m] else None
    print(f"results of {meta['date']}: {meta['runs']} measured runs per cell, medians; "
          "wall as median (min-max); * = kai's incoming/ objection waived (see above)\n")
    head = "| tool | " + " | ".join(f"{w.upper()} wall s | {w.upper()} ctl CPU s | {w.upper()} host CPU s | {w.upper()} bg" for w in wls) + " |"
    print(head)
    print("|---|" + "---|" * (4 * len(wls)))
    for t in tools:
        row = []
        for w in wls:
            c = cell.get((t, w))
            if c is None:
                row += ["–"] * 4
            elif not c["wall_s"]:
                row += ["FAILED", "–", "–", "–"]
            else:
                star = "*" if (t, w) in waived else ""
                fail = f" ⚠{c['failed']} failed" if c["failed"] else ""
                row += [f"**{med(t, w, 'wall_s'):.2f}**{star} ({min(c['wall_s']):.2f}–{max(c['wall_s']):.2f}){fail}",
                        f"{med(t, w, 'ctl_cpu_s'):.2f}", f"{med(t, w, 'host_cpu_s'):.2f}",
                        f"{med(t, w, 'bg_frac'):.0%}"]
        print(f"| {t} | " + " | ".join(row) + " |")
    print("\n| target | kai | peer | ratio | met |\n|---|---|---|---|---|")
    for w, measure, peer, limit in TARGETS:
        k, p = med("kai", w, measure), med(peer, w, measure)
        what = {"wall_s": "wall", "host_cpu_s": "host CPU"}[measure]
        if k is None or p is None:
            print(f"| {w.upper()} {what} ≤ {limit}× {peer} | – | – | – | not measured |")
            continue
        print(f"| {w.upper()} {what} ≤ {limit}× {peer} | {k:.2f} s | {p:.2f} s | {k / p:.2f}× | {'yes' if k / p <= limit else 'NO'} |")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/results.json")
