#!/usr/bin/env python3
"""Prints docs/ptq.md's W4A16 / W4A8 / W4A4 methods table from a sweep of
docs/ptq-methods-grid.json (bench/make_ptq_methods_grid.py):

  python3 bench/ptq_methods_table.py SWEEP_DIR/results.json

Each cell: ΔPPL % ± its standard error / mean KL divergence; rows in the grid's order; the
linear-weight bits and the method time (of the W4A16 run, where the methods are computed; W4A8 and
W4A4 reuse GPTQ's result from the sweep's method cache) beside them.
"""
import json
import sys


def main(path):
    results = json.load(open(path))
    base = results["setup"]["base_ppl"] if "setup" in results else results["base_ppl"]
    by_name = {r["name"]: r for r in results["results"]}
    rows = []
    for r in results["results"]:
        fmt, label = r["name"].split(" ", 2)[1:3]
        if (fmt, label) not in rows:
            rows.append((fmt, label))
    print("| format | method | lin b/w | W4A16 ΔPPL % / KLD | W4A8 ΔPPL % / KLD "
          "| W4A4 ΔPPL % / KLD | method time (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for fmt, label in rows:
        cells = []
        first = None
        for acts in ("A16", "A8", "A4"):
            r = by_name.get(f"W4{acts} {fmt} {label}")
            if r is None:
                cells.append("—")
                continue
            first = first or r
            pct = 100 * r["delta_ppl"] / base
            se = 100 * r["delta_ppl_stderr"] / base
            k = r["kld"]
            cells.append(f"{pct:+.1f} ± {se:.1f} / {k['mean']:.3f} ± {k['stderr']:.3f}")
        seconds = sum(s for _, s in first.get("method_seconds", [])) if first else 0
        print(f"| {fmt} | {label} | {first['bits_per_linear_weight']:.3f} | "
              + " | ".join(cells) + f" | {seconds:.0f} |")
    # The hardware cost model's MAC cost of each format at each activation width.
    print()
    print("| format | W4A16 MAC FA | W4A8 MAC FA | W4A4 MAC FA |")
    print("| --- | ---: | ---: | ---: |")
    for fmt in dict.fromkeys(f for f, _ in rows):
        costs = [by_name.get(f"W4{a} {fmt} RTN", {}).get("mac_cost") for a in ("A16", "A8", "A4")]
        print(f"| {fmt} | " + " | ".join("—" if c is None else f"{c:.0f}" for c in costs) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
