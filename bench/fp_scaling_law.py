#!/usr/bin/env python3
"""The floating-point quantization-training scaling law on lowbit's training lab.

Runs a grid of small `lowbit train` runs on the Austen corpora — model size N (non-embedding
parameters), training tokens D, exponent bits E, mantissa bits M and scale block size B, every
operand of every Linear product in the ExMy format (no special values, one float32 absmax scale
per block of B along each product's reduction) — then fits

    L(N, D, E, M, B) = n / N^a + d / D^b + eps + (D^b / N^a) * log2(B) / (g * (E+1)^de * (M+1)^nu)

(the form of Sun et al. 2025, "Scaling Laws for Floating-Point Quantization Training", as we
read it; float32 runs have no quantization term) by nonlinear least squares (scipy), reports every
constant with its standard error (from the fit's covariance) and a bootstrap interval, the
predicted best E/M split at 4, 6 and 8 bits, and the critical data size of the law.

Each run's folder is kept: rerunning skips finished runs (a killed grid resumes). Usage:

    python3 bench/fp_scaling_law.py build/tools/lowbit/lowbit OUT_DIR [--workers 2] [--fit-only]

Writes OUT_DIR/points.json (one row per run) and OUT_DIR/fit.json, and prints a Markdown summary.
"""
import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPORA = os.path.join(ROOT, "data", "corpora")
TRAIN = ["austen_emma.txt", "austen_mansfieldpark.txt", "austen_northangerabbey.txt",
         "austen_persuasion.txt", "austen_sensesensibility.txt"]
VALIDATION = "austen_prideprejudice.txt"

# (dim, layers, heads, kv heads, hidden): head size 16, SwiGLU 3 x dim.
SIZES = {"S": (32, 2, 2, 1, 96), "M": (64, 2, 4, 2, 192), "L": (96, 3, 6, 3, 288)}
STEPS = [150, 300, 600]  # x 8 sequences x 64 tokens
FORMATS = [(2, 1), (3, 0), (1, 2), (2, 2), (3, 1), (2, 3), (3, 2), (4, 1), (3, 3), (4, 2), (4, 3), (5, 2)]
BLOCKS = [32, 256]


def non_embedding_params(size):
    d, layers, heads, kv, hidden = size
    hd = d // heads
    return layers * (d * d * 2 + 2 * d * kv * hd + 3 * d * hidden + 2 * d) + d


def grid():
    runs = []
    for s in SIZES:  # float32 at every size and token count: the law without its quantization term
        for steps in STEPS:
            runs.append((s, steps, None, None, None))
    for steps in (STEPS[0], STEPS[2]):  # the formats and blocks at the middle size
        for e, m in FORMATS:
            for b in BLOCKS:
                runs.append(("M", steps, e, m, b))
    for s in ("S", "L"):  # the formats at the other sizes
        for e, m in FORMATS:
            runs.append((s, STEPS[1], e, m, BLOCKS[0]))
    return runs


def label(run):
    s, steps, e, m, b = run
    return f"{s}_steps{steps}_" + ("f32" if e is None else f"e{e}m{m}_g{b}")


def run_one(lowbit, out, run, tokenizer):
    s, steps, e, m, b = run
    folder = os.path.join(out, "runs", label(run))
    summary = os.path.join(folder, "summary.json")
    if not os.path.exists(summary):
        d, layers, heads, kv, hidden = SIZES[s]
        fmt = None if e is None else f"e{e}m{m}:specials=none:g{b}"
        cfg = {
            "model": {"dim": d, "layers": layers, "heads": heads, "kv_heads": kv, "hidden": hidden,
                      "context": 64},
            "tokenizer": tokenizer,
            "data": {"train": [os.path.join(CORPORA, f) for f in TRAIN],
                     "validation": os.path.join(CORPORA, VALIDATION), "seq_len": 64},
            "batch": 8, "steps": steps, "eval_every": steps, "eval_batches": 32,
            "checkpoint_every": steps,
            "optimizer": {"lr": 0.004, "warmup": steps // 10},
            "seed": 1, "threads": 1, "out": folder,
            "recipe": "f32" if fmt is None else f"fwd={fmt};grad={fmt}",
        }
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "run.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        r = subprocess.run([lowbit, "train", "--config", os.path.join(folder, "run.json")],
                           capture_output=True, text=True)
        if r.returncode != 0 and not os.path.exists(summary):
            return {"run": label(run), "error": r.stderr.strip()[-300:]}
    with open(summary) as f:
        sm = json.load(f)
    return {"run": label(run), "size": s, "N": non_embedding_params(SIZES[s]),
            "D": steps * 8 * 64, "E": e, "M": m, "B": b,
            "loss": sm["validation_loss"], "diverged": sm["diverged"]}


def law(x, n, a, d, b, eps, g, de, nu):
    N, D, E, M, B, q = x
    quant = q * (D ** b / N ** a) * np.log2(B) / (g * (E + 1) ** de * (M + 1) ** nu)
    return n / N ** a + d / D ** b + eps + quant


NAMES = ["n", "alpha", "d", "beta", "epsilon", "gamma", "delta", "nu"]


def fit(points):
    from scipy.optimize import curve_fit

    rows = [p for p in points if "loss" in p and not p["diverged"] and math.isfinite(p["loss"])]
    x = np.array([[p["N"], p["D"], p["E"] or 0, p["M"] or 0, p["B"] or 2, 0 if p["E"] is None else 1]
                  for p in rows], dtype=float).T
    y = np.array([p["loss"] for p in rows])
    p0 = [20.0, 0.3, 200.0, 0.4, 2.0, 50.0, 3.0, 3.0]
    lower = [0, 0.01, 0, 0.01, 0, 1e-6, 0, 0]
    upper = [1e6, 2, 1e9, 2, 10, 1e9, 20, 20]
    popt, pcov = curve_fit(law, x, y, p0=p0, bounds=(lower, upper), maxfev=200000)
    stderr = np.sqrt(np.maximum(np.diag(pcov), 0))
    resid = y - law(x, *popt)
    # Bootstrap over runs: the spread of the refitted constants.
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(200):
        idx = rng.integers(0, len(y), len(y))
        try:
            pb, _ = curve_fit(law, x[:, idx], y[idx], p0=popt, bounds=(lower, upper), maxfev=20000)
            boots.append(pb)
        except Exception:
            pass
    boots = np.array(boots)
    lo, hi = (np.percentile(boots, [5, 95], axis=0) if len(boots) else (popt * np.nan, popt * np.nan))
    return rows, popt, stderr, lo, hi, resid, len(boots)


def best_split(popt, bits):
    de, nu = popt[6], popt[7]
    options = [(e, bits - 1 - e) for e in range(1, bits - 1 + 1) if bits - 1 - e >= 0]
    return max(options, key=lambda em: (em[0] + 1) ** de * (em[1] + 1) ** nu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lowbit")
    ap.add_argument("out")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fit-only", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # One BPE for the whole grid, trained once (by a one-step run) and shared by every run.
    tok_dir = os.path.join(args.out, "tokenizer-run")
    tokenizer = os.path.join(tok_dir, "tokenizer")
    if not os.path.exists(os.path.join(tokenizer, "tokenizer.json")):
        cfg = {"model": {"dim": 16, "layers": 1, "heads": 1, "kv_heads": 1, "hidden": 16, "context": 64},
               "tokenizer": "bpe:1024",
               "data": {"train": [os.path.join(CORPORA, f) for f in TRAIN], "seq_len": 64},
               "steps": 1, "out": tok_dir}
        os.makedirs(tok_dir, exist_ok=True)
        with open(os.path.join(tok_dir, "run.json"), "w") as f:
            json.dump(cfg, f)
        subprocess.run([args.lowbit, "train", "--config", os.path.join(tok_dir, "run.json")],
                       check=True, capture_output=True)
    runs = grid()
    if args.fit_only:
        points = [run_one(args.lowbit, args.out, r, tokenizer) for r in runs
                  if os.path.exists(os.path.join(args.out, "runs", label(r), "summary.json"))]
    else:
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            points = list(pool.map(lambda r: run_one(args.lowbit, args.out, r, tokenizer), runs))
    with open(os.path.join(args.out, "points.json"), "w") as f:
        json.dump(points, f, indent=1)
    errors = [p for p in points if "error" in p]
    for p in errors:
        print(f"run {p['run']} failed: {p['error']}", file=sys.stderr)
    rows, popt, stderr, lo, hi, resid, nboot = fit(points)
    result = {"form": "n/N^alpha + d/D^beta + epsilon + (D^beta/N^alpha) log2(B) / (gamma (E+1)^delta (M+1)^nu)",
              "runs_fitted": len(rows), "diverged": sum(1 for p in points if p.get("diverged")),
              "rms_residual": float(np.sqrt(np.mean(resid ** 2))),
              "constants": {k: {"value": float(v), "stderr": float(s), "bootstrap_5": float(a), "bootstrap_95": float(b)}
                            for k, v, s, a, b in zip(NAMES, popt, stderr, lo, hi)},
              "bootstrap_fits": nboot,
              "best_split": {str(bits): "E%dM%d" % best_split(popt, bits) for bits in (4, 6, 8)}}
    a, b, d = popt[1], popt[3], popt[2]
    # Critical data size at the middle model, MXFP-like E2M1, B = 32: where more data stops helping.
    N = non_embedding_params(SIZES["M"])
    K = math.log2(32) / (popt[5] * 3 ** popt[6] * 2 ** popt[7]) / N ** a
    result["critical_tokens_M_e2m1_g32"] = float((d / K) ** (1 / (2 * b))) if K > 0 else None
    with open(os.path.join(args.out, "fit.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(rows)} runs fitted ({result['diverged']} diverged left out), rms residual "
          f"{result['rms_residual']:.4f} nats\n")
    print("| constant | value | std. error | bootstrap 5-95 % |\n| --- | ---: | ---: | ---: |")
    for k, c in result["constants"].items():
        print(f"| {k} | {c['value']:.4g} | {c['stderr']:.3g} | {c['bootstrap_5']:.3g} – {c['bootstrap_95']:.3g} |")
    print("\nbest split:", result["best_split"], "; critical tokens (M, E2M1, B=32):",
          result["critical_tokens_M_e2m1_g32"])
    return 0


if __name__ == "__main__":
    try:
        import numpy as np
    except ImportError:
        print("SKIPPED: needs numpy and scipy")
        sys.exit(77)
    sys.exit(main())
