#!/usr/bin/env python3
"""lowbit's Python encode against ml_dtypes' astype, in the same run: float32 -> e4m3fn (and a few
more formats) on 1 Mi elements, one thread, best of --reps. Both results are checked equal first.

  PYTHONPATH=build/python bench/bench_python_encode.py [--n 1048576] [--reps 20]
"""
import argparse
import time

import ml_dtypes
import numpy as np

import lowbit


def best(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    lowbit.set_num_threads(1)
    x = (np.random.default_rng(0).standard_normal(a.n) * 8).astype(np.float32)
    print(f"{a.n} float32 values, one thread, best of {a.reps}; lowbit on {lowbit.simd_target()}")
    print(f"{'format':<10} {'ml_dtypes ms':>13} {'lowbit ms':>10} {'speed-up':>9}")
    for fmt, dt in (("e4m3fn", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2),
                    ("e2m1fn", ml_dtypes.float4_e2m1fn), ("bf16", ml_dtypes.bfloat16)):
        ours = lowbit.encode(x, fmt, as_ml_dtypes=True)
        assert np.array_equal(ours.astype(np.float32), x.astype(dt).astype(np.float32), equal_nan=True)
        t_ml = best(lambda: x.astype(dt), a.reps)
        t_lb = best(lambda: lowbit.encode(x, fmt), a.reps)
        print(f"{fmt:<10} {t_ml * 1e3:13.3f} {t_lb * 1e3:10.3f} {t_ml / t_lb:8.1f}x")


if __name__ == "__main__":
    main()
