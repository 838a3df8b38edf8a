#!/usr/bin/env python3
"""Single-threaded lowbit vs ml_dtypes `astype`, on the same array, on this machine.

Generates one float32 array (normal, sigma = max/8 of the format), times ml_dtypes' astype to the
format and back (best of 7 runs), runs build/bench/bench_convert on the very same array
(LOWBIT_BENCH_INPUT), and prints elements/s (lowbit: median of 5 repetitions) and the ratio for encode, decode and fake-quant
(ml_dtypes' fake-quant is astype there and back).

  python3 bench/compare_ml_dtypes.py [--n 1048576] [--bench build/bench/bench_convert]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import ml_dtypes
import numpy as np

FORMATS = [("e4m3fn", 0, ml_dtypes.float8_e4m3fn, 448.0), ("e5m2", 1, ml_dtypes.float8_e5m2, 57344.0),
           ("e2m3fn", 2, ml_dtypes.float6_e2m3fn, 7.5), ("e2m1fn", 3, ml_dtypes.float4_e2m1fn, 6.0)]


def best_time(fn, repeats=7):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def lowbit_rates(bench, fmt_index, x, work):
    path = os.path.join(work, "x.npy")
    np.save(path, x)
    env = dict(os.environ, LOWBIT_BENCH_INPUT=path, OMP_NUM_THREADS="1")
    pattern = f"BM_(Encode|Decode|FakeQuant)/fmt:{fmt_index}/n:65536/backend:-1$"
    out = subprocess.run([bench, f"--benchmark_filter={pattern}", "--benchmark_format=json",
                          "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true",
                          "--benchmark_min_time=0.2"], env=env, capture_output=True, text=True, check=True)
    return {b["name"].split("/")[0].replace("BM_", ""): b["items_per_second"]
            for b in json.loads(out.stdout)["benchmarks"] if b.get("aggregate_name") == "median"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--bench", default="build/bench/bench_convert")
    args = ap.parse_args()
    print(f"{args.n} float32 elements, one thread; lowbit: best SIMD target, ml_dtypes {ml_dtypes.__version__}")
    print(f"{'format':8s} {'op':10s} {'lowbit Melem/s':>15s} {'ml_dtypes Melem/s':>18s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as work:
        for name, idx, dt, top in FORMATS:
            x = np.random.default_rng(123).normal(0, top / 8, args.n).astype(np.float32)
            codes = x.astype(dt)
            theirs = {"Encode": args.n / best_time(lambda: x.astype(dt)),
                      "Decode": args.n / best_time(lambda: codes.astype(np.float32)),
                      "FakeQuant": args.n / best_time(lambda: x.astype(dt).astype(np.float32))}
            ours = lowbit_rates(args.bench, idx, x, work)
            for op in ("Encode", "Decode", "FakeQuant"):
                print(f"{name:8s} {op:10s} {ours[op] / 1e6:15.0f} {theirs[op] / 1e6:18.0f} {ours[op] / theirs[op]:6.1f}x")


if __name__ == "__main__":
    main()
