#!/usr/bin/env python3
"""Cross-check of lowbit against ml_dtypes (and numpy's float16) on every format both have.

Runs the lowbit CLI on .npy files, so the file path, dtype handling and bulk kernels are all on
the line. For each format: every code decodes to the same value; and encoding a stride through
all float32 bit patterns, every value, every midpoint between neighbours and one float32 ulp
either side gives the same codes, with these documented exceptions (docs/formats.md):
  * NaN into a format without NaN (FP6, FP4): ml_dtypes gives -0/+0, lowbit gives +max (as CUDA).
  * NaN payloads: a NaN result is compared by NaN-ness and sign, not payload bits.
  * integers: ml_dtypes casts like C (truncate, wrap on overflow); compared with lowbit's
    toward-zero rounding on in-range inputs.
  * e8m0fnu, float32-subnormal inputs in (2^-127, 2^-126): ml_dtypes 0.6 rounds every one of
    them up to 2^-126, even those nearer 2^-127 (e.g. 0x00400001); lowbit rounds to nearest.
Exits 77 (ctest: skipped) with the reason when numpy or ml_dtypes is not installed.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import ml_dtypes
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED: ml_dtypes cross-check needs numpy and ml_dtypes ({e}); pip install ml_dtypes")
    sys.exit(77)

LOWBIT = sys.argv[1]

FLOATS = {
    "e4m3fn": ml_dtypes.float8_e4m3fn,
    "e4m3": ml_dtypes.float8_e4m3,
    "e5m2": ml_dtypes.float8_e5m2,
    "e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz,
    "e3m4": ml_dtypes.float8_e3m4,
    "e8m0fnu": ml_dtypes.float8_e8m0fnu,
    "e2m3fn": ml_dtypes.float6_e2m3fn,
    "e3m2fn": ml_dtypes.float6_e3m2fn,
    "e2m1fn": ml_dtypes.float4_e2m1fn,
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
}
INTS = {"int8": np.int8, "uint8": np.uint8, "int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4,
        "int2": ml_dtypes.int2, "uint2": ml_dtypes.uint2}
NO_NAN = {"e2m3fn", "e3m2fn", "e2m1fn"}


def bits_dtype(dt):
    return np.uint16 if np.dtype(dt).itemsize == 2 else np.uint8


def run(*args):
    out = subprocess.run([LOWBIT, "convert", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"lowbit convert {' '.join(args)} failed: {out.stderr}")


def all_codes(dt):
    n = 1 << (16 if np.dtype(dt).itemsize == 2 else 8)
    codes = np.arange(n, dtype=np.uint32)
    if dt in (ml_dtypes.float6_e2m3fn, ml_dtypes.float6_e3m2fn):
        codes = codes[:64]
    if dt is ml_dtypes.float4_e2m1fn:
        codes = codes[:16]
    return codes.astype(bits_dtype(dt))


def inputs_for(values):
    """A stride through all float32 patterns, each value, midpoints, +-1 ulp, specials."""
    stride = np.arange(0, 1 << 32, 65521, dtype=np.uint64).astype(np.uint32).view(np.float32)
    v = np.unique(values[np.isfinite(values)].astype(np.float64))
    mids = ((v[1:] + v[:-1]) / 2).astype(np.float32)
    vf = v.astype(np.float32)
    pts = np.concatenate([vf, mids])
    near = np.concatenate([pts, np.nextafter(pts, np.float32(np.inf)), np.nextafter(pts, np.float32(-np.inf))])
    top = np.float32(v.max())
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, top * 1.03125, top * 2, -top * 2, 1e30, -1e30,
                         1e-45, -1e-45], np.float32)
    return np.concatenate([stride, near, specials]).astype(np.float32)


def same(a_codes, b_codes, dt):
    """Elementwise agreement of two code arrays, NaNs by NaN-ness and sign only."""
    a = a_codes.view(dt).astype(np.float32)
    b = b_codes.view(dt).astype(np.float32)
    both_nan = np.isnan(a) & np.isnan(b) & (np.signbit(a) == np.signbit(b))
    return (a_codes == b_codes) | both_nan


def check_format(name, dt, work):
    bd = bits_dtype(dt)
    problems = []
    # Decode: every code.
    codes = all_codes(dt)
    np.save(f"{work}/codes.npy", codes)
    run("-f", name, "--decode", "--in", f"{work}/codes.npy", "--out", f"{work}/dec.npy")
    ours = np.load(f"{work}/dec.npy")
    theirs = codes.view(dt).astype(np.float32) if bd == np.uint8 or dt is not np.float16 else codes.view(np.float16).astype(np.float32)
    ok = (ours.view(np.uint32) == theirs.view(np.uint32)) | (np.isnan(ours) & np.isnan(theirs))
    if not ok.all():
        i = np.flatnonzero(~ok)[0]
        problems.append(f"decode code {int(codes[i]):#x}: lowbit {ours[i]} ml_dtypes {theirs[i]}")
    # Encode.
    x = inputs_for(theirs)
    np.save(f"{work}/x.npy", x)
    run("-f", name, "--in", f"{work}/x.npy", "--out", f"{work}/enc.npy")
    run("-f", name, "--fake-quant", "--in", f"{work}/x.npy", "--out", f"{work}/fq.npy")
    ours_codes = np.load(f"{work}/enc.npy").astype(bd)
    theirs_codes = x.astype(dt).view(bd)
    considered = np.ones(x.shape, bool)
    if name in NO_NAN:
        considered &= ~np.isnan(x)
    if name == "e8m0fnu":
        bits = x.view(np.uint32) & 0x7FFFFFFF
        considered &= ~((bits > 0x00400000) & (bits < 0x00800000))
    ok = same(ours_codes, theirs_codes, dt) | ~considered
    if not ok.all():
        i = np.flatnonzero(~ok)[0]
        problems.append(f"encode {x[i]!r} ({x.view(np.uint32)[i]:#010x}): lowbit {int(ours_codes[i]):#x} "
                        f"ml_dtypes {int(theirs_codes[i]):#x}  ({(~ok).sum()} of {x.size} differ)")
    fq = np.load(f"{work}/fq.npy")
    dec = ours_codes.view(dt).astype(np.float32)
    if not ((fq.view(np.uint32) == dec.view(np.uint32)) | (np.isnan(fq) & np.isnan(dec))).all():
        problems.append("fake-quant differs from decode(encode)")
    return problems, int(considered.sum()), codes.size


def check_int(name, dt, work):
    info = np.iinfo(np.int8 if dt in (ml_dtypes.int4, ml_dtypes.int2) else np.uint8) if dt not in (np.int8, np.uint8) else np.iinfo(dt)
    lo = {"int4": -8, "uint4": 0, "int2": -2, "uint2": 0}.get(name, info.min)
    hi = {"int4": 7, "uint4": 15, "int2": 1, "uint2": 3}.get(name, info.max)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lo - 0.999, hi + 0.999, 200000), np.arange(lo, hi + 1) + 0.5,
                        np.arange(lo, hi + 1) - 0.5]).astype(np.float32)
    x = x[(x > lo - 1) & (x < hi + 1)]
    np.save(f"{work}/x.npy", x)
    run("-f", name, "--round", "toward-zero", "--in", f"{work}/x.npy", "--out", f"{work}/enc.npy")
    run("-f", name, "--decode", "--in", f"{work}/enc.npy", "--out", f"{work}/dec.npy")
    ours = np.load(f"{work}/dec.npy")
    theirs = x.astype(dt).astype(np.float32)
    bad = np.flatnonzero(ours != theirs)
    return ([f"{x[bad[0]]}: lowbit {ours[bad[0]]} ml_dtypes {theirs[bad[0]]}"] if bad.size else []), x.size


def main():
    np.seterr(all="ignore")  # the inputs overflow and hold NaNs on purpose
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for name, dt in FLOATS.items():
            problems, n, ncodes = check_format(name, dt, work)
            status = "ok" if not problems else "MISMATCH"
            print(f"{name:12s} vs {np.dtype(dt).name:20s} {ncodes:6d} codes decoded, {n:8d} inputs encoded: {status}")
            for p in problems:
                print("   ", p)
            failures += bool(problems)
        for name, dt in INTS.items():
            problems, n = check_int(name, dt, work)
            print(f"{name:12s} vs {np.dtype(dt).name:20s} {n:8d} in-range inputs, toward-zero: {'ok' if not problems else 'MISMATCH'}")
            for p in problems:
                print("   ", p)
            failures += bool(problems)
    print(f"ml_dtypes {ml_dtypes.__version__}, numpy {np.__version__}: {failures} format(s) disagree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
