#!/usr/bin/env python3
"""Cross-check of lowbit's GGUF reader and GGML dequantization against gguf-py (the reference
Python package of llama.cpp): random blocks of every type lowbit dequantizes (F32, F16, BF16,
Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, MXFP4, NVFP4) are written with gguf-py's own GGUFWriter, read
back with `lowbit inspect --dump`, and must equal gguf.quants.dequantize bit for bit.
Exits 77 (ctest: skipped) with the reason when numpy or gguf is not installed.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as T
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED: needs numpy and gguf ({e}); pip install gguf")
    sys.exit(77)

LOWBIT = sys.argv[1]
rng = np.random.default_rng(1234)

# Offsets of the fp16 scale fields inside each block: random bytes there could be inf/NaN, so
# they get finite values of a sensible size instead.
HALF_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
               T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.MXFP4: [], T.NVFP4: []}


def random_blocks(qtype, rows, cols):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block_elems
    if qtype in (T.F16,):
        return rng.normal(size=(rows, cols)).astype(np.float16).view(np.uint8).reshape(rows, -1)
    if qtype == T.BF16:
        f = rng.normal(size=(rows, cols)).astype(np.float32).view(np.uint32) >> 16
        return f.astype(np.uint16).view(np.uint8).reshape(rows, -1)
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        d = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, -1)


def main():
    types = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K, T.MXFP4, T.NVFP4]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "blocks.gguf")
        writer = gguf.GGUFWriter(path, "test")
        tensors = {}
        for qtype in types:
            rows, cols = 3, 512
            raw = random_blocks(qtype, rows, cols)
            name = f"t_{qtype.name}"
            writer.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)
            tensors[name] = (qtype, raw, (rows, cols))
        f32 = rng.normal(size=(2, 7)).astype(np.float32)
        writer.add_tensor("t_F32", f32)
        tensors["t_F32"] = (T.F32, f32, f32.shape)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

        for name, (qtype, raw, shape) in tensors.items():
            out = os.path.join(tmp, name + ".npy")
            subprocess.run([LOWBIT, "inspect", path, "--dump", name, "--out", out], check=True,
                           stdout=subprocess.DEVNULL)
            got = np.load(out)
            want = raw if qtype == T.F32 else gguf.quants.dequantize(raw, qtype).astype(np.float32)
            want = want.reshape(shape)
            same = got.shape == want.shape and np.array_equal(got.view(np.uint32), want.view(np.uint32))
            print(f"{qtype.name:6} {str(got.shape):12} {'bit-exact' if same else 'MISMATCH'}")
            if not same:
                failures += 1
                if got.shape == want.shape:
                    bad = np.argwhere(got != want)[:5]
                    for idx in bad:
                        print(f"   at {tuple(idx)}: lowbit {got[tuple(idx)]!r}, gguf-py {want[tuple(idx)]!r}")
    if failures:
        print(f"{failures} type(s) differ from gguf-py")
        sys.exit(1)
    print("all GGML types match gguf-py bit for bit")


if __name__ == "__main__":
    main()
