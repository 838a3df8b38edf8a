#!/usr/bin/env python3
"""Cross-check of lowbit's ggml_* schemes against ggml itself: the same float32 rows quantized by
`lowbit quantize-tensor --scheme ggml_<type>` and by libggml's `ggml_quantize_chunk` (what
llama.cpp's llama_model_quantize calls, here without an importance matrix) must give the same
bytes, for every type lowbit writes. libggml comes from the PyPI package llama-cpp-python, which
compiles llama.cpp; without it the check exits 77 (ctest: skipped) and says so.

With --golden PATH it also writes the inputs and ggml's bytes as a GGUF file (the fixture
tests/data/ggml_quantize_golden.gguf that tests/ggml_quantize_test.cpp checks on machines without
llama-cpp-python).
"""
import ctypes
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED: needs numpy ({e})")
    sys.exit(77)

LOWBIT = sys.argv[1]
GOLDEN = sys.argv[sys.argv.index("--golden") + 1] if "--golden" in sys.argv else None

# lowbit scheme -> ggml type id (ggml.h)
TYPES = {"ggml_q8_0": 8, "ggml_q4_0": 2, "ggml_q4_1": 3, "ggml_q5_0": 6, "ggml_q5_1": 7,
         "ggml_q4_k": 12, "ggml_q6_k": 14, "ggml_mxfp4": 39, "ggml_nvfp4": 40}
BLOCK = {8: (32, 34), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 12: (256, 144),
         14: (256, 210), 39: (32, 17), 40: (64, 36)}


def find_libggml():
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in ("libggml-base.so", "libggml-base.dylib"):
            path = os.path.join(folder, "lib", name)
            if os.path.exists(path):
                return path
    return None


def test_rows(rng, cols):
    """Rows that exercise every branch: scales from 1e-6 to 1e3, outliers, ties, zeros, constants,
    one-signed rows, and values on a block's exact grid (midpoints included)."""
    rows = []
    for scale in (1e-6, 1e-4, 0.003, 0.02, 0.1, 1.0, 30.0, 1000.0):
        rows.append(rng.normal(0, scale, cols))
    heavy = rng.standard_t(2, cols) * 0.02
    rows.append(heavy)
    outlier = rng.normal(0, 0.01, cols)
    outlier[::37] *= 50
    rows.append(outlier)
    rows.append(np.zeros(cols))
    rows.append(np.full(cols, 0.25))
    rows.append(np.abs(rng.normal(0, 0.05, cols)))
    rows.append(-np.abs(rng.normal(0, 0.05, cols)))
    # Values on a coarse grid with midpoints: ties for every rounding step.
    rows.append(rng.integers(-16, 17, cols) * 0.0625 + rng.integers(0, 2, cols) * 0.03125)
    rows.append(rng.integers(-8, 8, cols) * 0.5)
    mixed = rng.normal(0, 0.02, cols)
    mixed[: cols // 2] = 0
    rows.append(mixed)
    return np.stack(rows).astype(np.float32)


def read_lbq_codes(path):
    data = open(path, "rb").read()
    assert data[:8] == b"LOWBITQ\0", path
    hlen = int.from_bytes(data[12:16], "little")
    header = json.loads(data[16:16 + hlen])
    plane = header["planes"]["codes"]
    return np.frombuffer(data[plane["offset"]:plane["offset"] + plane["bytes"]], dtype=np.uint8)


def main():
    lib_path = find_libggml()
    if lib_path is None and GOLDEN is None:
        print("SKIPPED: needs libggml from llama-cpp-python (pip install llama-cpp-python); "
              "tests/ggml_quantize_test.cpp checks the committed fixture instead")
        return 77
    ggml = ctypes.CDLL(lib_path)
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                         ctypes.c_void_p]
    rng = np.random.default_rng(20261201)
    cols = 512
    x = test_rows(rng, cols)
    if not GOLDEN:  # the live check adds random rows of every size (the fixture stays small)
        extra = rng.normal(0, 1, (48, cols)) * np.logspace(-6, 3, 48)[:, None]
        x = np.concatenate([x, extra.astype(np.float32)])
    failures = 0
    golden = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "x.npy")
        np.save(src, x)
        for scheme, type_id in TYPES.items():
            elems, nbytes = BLOCK[type_id]
            expected = np.zeros(x.size // elems * nbytes, dtype=np.uint8)
            written = ggml.ggml_quantize_chunk(type_id, x.ctypes.data, expected.ctypes.data, 0,
                                               x.shape[0], cols, None)
            assert written == expected.size, (scheme, written)
            out = os.path.join(tmp, scheme + ".lbq")
            subprocess.run([LOWBIT, "quantize-tensor", src, "--scheme", scheme, "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            got = read_lbq_codes(out)
            if got.size != expected.size or not np.array_equal(got, expected):
                bad_blocks = np.nonzero((got.reshape(-1, nbytes) != expected.reshape(-1, nbytes))
                                        .any(axis=1))[0] if got.size == expected.size else []
                print(f"FAIL {scheme}: {len(bad_blocks)} of {expected.size // nbytes} blocks "
                      f"differ (first: {list(bad_blocks[:5])})")
                failures += 1
            else:
                print(f"ok   {scheme}: {expected.size // nbytes} blocks equal ggml's bytes")
            golden[type_id] = expected
    if GOLDEN:
        import gguf
        writer = gguf.GGUFWriter(GOLDEN, "lowbit-golden")
        writer.add_tensor("input", x)
        for type_id, blocks in golden.items():
            qtype = gguf.GGMLQuantizationType(type_id)
            writer.add_tensor(qtype.name, blocks.reshape(x.shape[0], -1), raw_shape=blocks.reshape(x.shape[0], -1).shape,
                              raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        print(f"wrote {GOLDEN}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
