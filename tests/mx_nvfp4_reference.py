#!/usr/bin/env python3
"""An independent reference of OCP MX and NVFP4 quantization, in numpy + ml_dtypes, against lowbit.

Written from the OCP Microscaling v1.0 rules and docs/quantization.md, sharing no code with lowbit:
  MX:    blocks of 32 along the last axis; shared exponent = floor(log2(amax)) - emax(element)
         (an all-zero block counts as amax = 2^-126), clamped to [-127, 127]; scale 2^e stored as
         E8M0 (e + 127); elements = round-to-nearest-even(clip(x / scale, +-max)); value = q * scale.
  NVFP4: g = amax(tensor) / (6 * 448) in float32 (1 for an all-zero tensor); per block of 16:
         s = E4M3(min((amax / 6) / g, 448)) rounded to nearest even, the smallest subnormal if that
         is 0; total = g * s; q = E2M1(clip(x / total, +-6)); value = q * total.
Runs `lowbit quantize-tensor --out --dequant` on random and heavy-tailed tensors (ragged last
blocks included), reads the .lbq container, and requires codes, scales and dequantized values
to agree bit for bit. Exits 77 (ctest: skipped) with the reason when numpy or ml_dtypes is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import ml_dtypes
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED: the MX/NVFP4 reference needs numpy and ml_dtypes ({e}); pip install ml_dtypes")
    sys.exit(77)

LOWBIT = sys.argv[1]
F32 = np.float32

# element dtype, emax, largest magnitude
MX = {
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 448.0),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 15, 57344.0),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 2, 7.5),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 4, 28.0),
    "mxfp4": (ml_dtypes.float4_e2m1fn, 2, 6.0),
    "mxint8": (np.int8, 6, 127.0),
}


def blocks(x, size):
    """Yield (row, start, stop) for blocks of `size` along the last axis (last one short)."""
    rows, n = x.shape
    for r in range(rows):
        for start in range(0, n, size):
            yield r, start, min(n, start + size)


def element_codes(v, dt):
    if dt is np.int8:
        return np.rint(v).astype(np.int8).view(np.uint8)
    return v.astype(dt).view(np.uint8)


def element_values(codes, dt):
    if dt is np.int8:
        return codes.view(np.int8).astype(F32)
    return codes.view(dt).astype(F32)


def reference_mx(x, dt, emax, top):
    codes = np.zeros(x.shape, np.uint8)
    deq = np.zeros(x.shape, F32)
    scales = []
    for r, a, b in blocks(x, 32):
        blk = x[r, a:b]
        amax = float(np.max(np.abs(blk)))
        if amax == 0:
            amax = 2.0 ** -126
        _, e = np.frexp(np.float64(amax))  # amax = m * 2^e, m in [0.5, 1): floor(log2) = e - 1
        shared = int(e) - 1 - emax
        shared = max(-127, min(127, shared))
        scale = F32(np.ldexp(F32(1), shared))
        scales.append(shared + 127)
        v = np.clip(blk / scale, -top, top).astype(F32)
        c = element_codes(v, dt)
        codes[r, a:b] = c
        deq[r, a:b] = element_values(c, dt) * scale
    return codes, np.array(scales, np.uint32), deq


def reference_nvfp4(x):
    amax_t = F32(np.max(np.abs(x)))
    g = F32(1) if amax_t == 0 else F32(amax_t / F32(6.0 * 448.0))
    codes = np.zeros(x.shape, np.uint8)
    deq = np.zeros(x.shape, F32)
    scales = []
    for r, a, b in blocks(x, 16):
        blk = x[r, a:b]
        amax = F32(np.max(np.abs(blk)))
        s = F32(F32(amax / F32(6)) / g)
        s8 = np.array([min(s, F32(448))], F32).astype(ml_dtypes.float8_e4m3fn)
        if s8.astype(F32)[0] == 0:
            s8 = np.array([2.0 ** -9], F32).astype(ml_dtypes.float8_e4m3fn)
        scales.append(int(s8.view(np.uint8)[0]))
        total = F32(g * s8.astype(F32)[0])
        v = np.clip(blk / total, -6, 6).astype(F32)
        c = v.astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
        codes[r, a:b] = c
        deq[r, a:b] = c.view(ml_dtypes.float4_e2m1fn).astype(F32) * total
    return codes, np.array(scales, np.uint32), deq, g


def read_lbq(path):
    raw = open(path, "rb").read()
    assert raw[:8] == b"LOWBITQ\0", "magic"
    version, header_len = np.frombuffer(raw[8:16], "<u4")
    assert version == 1
    header = json.loads(raw[16:16 + header_len].decode())
    planes = {}
    for name, p in header["planes"].items():
        planes[name] = (np.frombuffer(raw[p["offset"]:p["offset"] + p["bytes"]], np.uint8), p["bits"])
    return header, planes


def unpack(packed, n, bits):
    """LSB-first bit stream -> n codes."""
    stream = np.unpackbits(packed, bitorder="little")[: n * bits].reshape(n, bits)
    return (stream.astype(np.uint32) << np.arange(bits, dtype=np.uint32)).sum(axis=1).astype(np.uint32)


def run_lowbit(scheme, x, work):
    np.save(f"{work}/x.npy", x)
    out = subprocess.run([LOWBIT, "quantize-tensor", "--scheme", scheme, f"{work}/x.npy", "--out", f"{work}/q.lbq",
                          "--dequant", f"{work}/d.npy"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"lowbit failed: {out.stderr}")
    header, planes = read_lbq(f"{work}/q.lbq")
    codes = unpack(planes["codes"][0], x.size, planes["codes"][1]).reshape(x.shape)
    scales = unpack(planes["scales"][0], planes["scales"][0].size * 8 // planes["scales"][1], planes["scales"][1])
    return header, codes, scales, np.load(f"{work}/d.npy")


def tensors():
    rng = np.random.default_rng(2024)
    yield "normal 8x96", rng.normal(0, 1, (8, 96)).astype(F32)
    yield "heavy-tailed 8x96", (rng.standard_t(2, (8, 96)) * 0.05).astype(F32)
    yield "ragged 5x70", rng.normal(0, 3, (5, 70)).astype(F32)
    t = rng.standard_t(3, (3, 40)).astype(F32)
    t[1, 5] = 1e4  # an outlier far above the rest
    t[2, :16] = 0  # an all-zero block
    t[0, 16:32] *= 1e-30  # a block of tiny values
    yield "outliers 3x40", t


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for label, x in tensors():
            for scheme, (dt, emax, top) in MX.items():
                _, codes, scales, deq = run_lowbit(scheme, x, work)
                rc, rs, rd = reference_mx(x, dt, emax, top)
                ok = (np.array_equal(codes, rc.astype(np.uint32) & ((1 << dt_bits(dt)) - 1))
                      and np.array_equal(scales[: rs.size], rs) and np.array_equal(deq.view(np.uint32), rd.view(np.uint32)))
                failures += not ok
                print(f"{scheme:12s} {label:18s} {'agrees' if ok else 'DIFFERS'}")
                if not ok:
                    report(codes, rc, scales, rs, deq, rd)
            header, codes, scales, deq = run_lowbit("nvfp4", x, work)
            rc, rs, rd, g = reference_nvfp4(x)
            ok = (np.array_equal(codes, rc.astype(np.uint32) & 0xF) and np.array_equal(scales[: rs.size], rs)
                  and np.array_equal(deq.view(np.uint32), rd.view(np.uint32))
                  and np.uint32(header["global_scale_bits"]) == np.array([g], F32).view(np.uint32)[0])
            failures += not ok
            print(f"{'nvfp4':12s} {label:18s} {'agrees' if ok else 'DIFFERS'}")
            if not ok:
                report(codes, rc, scales, rs, deq, rd)
    print(f"MX and NVFP4 reference (numpy {np.__version__}, ml_dtypes {ml_dtypes.__version__}): "
          f"{failures} disagreement(s)")
    return 1 if failures else 0


def dt_bits(dt):
    return {ml_dtypes.float6_e2m3fn: 6, ml_dtypes.float6_e3m2fn: 6, ml_dtypes.float4_e2m1fn: 4}.get(dt, 8)


def report(codes, rc, scales, rs, deq, rd):
    for name, a, b in (("codes", codes, rc), ("scales", scales[: rs.size], rs), ("values", deq, rd)):
        a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
        if a.dtype == np.float32:
            a, b = a.view(np.uint32), b.view(np.uint32)
        a, b = a.astype(np.int64), b.astype(np.int64)
        bad = np.flatnonzero(a != b)
        if bad.size:
            print(f"    {name}: {bad.size} differ, first at {bad[0]}: lowbit {a[bad[0]]:#x} reference {b[bad[0]]:#x}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
