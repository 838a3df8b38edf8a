#!/usr/bin/env python3
"""Markdown tables of lowbit training runs for docs/training.md: one row per run folder (a
`lowbit train` out folder with summary.json and log.jsonl), the validation loss against a
reference run, the training loss, and the validation loss at every validation step.

    python3 bench/training_tables.py REFERENCE_RUN RUN [RUN ...]
"""
import json
import os
import sys


def load(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        s = json.load(f)
    val = []
    with open(os.path.join(folder, "log.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "val_loss" in r:
                val.append((r["step"], r["val_loss"]))
    return s, val


def main():
    ref_summary, ref_val = load(sys.argv[1])
    runs = [sys.argv[1]] + [r for r in sys.argv[2:] if r != sys.argv[1]]
    steps = [s for s, _ in ref_val]
    print("| recipe | validation loss | Δ vs " + ref_summary["recipe"] + " | final training loss | "
          + " | ".join(f"val @{s}" for s in steps) + " | diverged |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in steps) + " | --- |")
    for folder in runs:
        try:
            s, val = load(folder)
        except FileNotFoundError:
            print(f"| {os.path.basename(folder)} | (not run) |")
            continue
        by_step = dict(val)
        cells = " | ".join(f"{by_step[st]:.4f}" if st in by_step else "—" for st in steps)
        delta = s["validation_loss"] - ref_summary["validation_loss"]
        print(f"| `{s['recipe']}` | {s['validation_loss']:.4f} | {delta:+.4f} | "
              f"{s['final_train_loss']:.4f} | {cells} | {s['diverged'] or '—'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
