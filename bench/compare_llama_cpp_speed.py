#!/usr/bin/env python3
"""Prefill and decode speed of lowbit against llama.cpp (through llama-cpp-python, never a
dependency of lowbit), side by side in one run, on the same machine and thread counts.

llama.cpp runs the model requantized by its own quantizer (llama_model_quantize) to F32, Q8_0 and
Q4_0; lowbit runs the same starting weights under recipes of equal bits (fp32; int8 / fp8 per
channel against Q8_0, weight-only and with int8 / e4m3 activations (W8A8); int4 g32, mxfp4 and
nvfp4 against Q4_0, weight-only, W4A8 (int8 or e4m3 activations) and W4A4; the head included). Each program's
prefill (-p tokens in one batch) and decode (-n tokens one at a time from an empty context) are
timed the way llama-bench does; llama.cpp through its C API (llama_decode), with its plain CPU
kernels: the extra buffer types (AMX, repacked Q4_0 / Q8_0) crash on this machine (see
measure_llama).

  bench/compare_llama_cpp_speed.py LOWBIT MODEL.gguf [-p 512] [-n 128] [-t 1,2] [-r 3]

Prints a Markdown table; exits 77 (skipped) without llama-cpp-python.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import llama_cpp
except ImportError as e:
    print(f"SKIPPED: needs llama-cpp-python ({e}); pip install llama-cpp-python")
    sys.exit(77)

PAIRS = [  # (llama.cpp type, lowbit recipe flags)
    ("F32", []),
    ("Q8_0", ["--w", "int8:channel", "--head", "int8:channel"]),
    ("Q8_0", ["--w", "int8:channel", "--a", "int8:token", "--head", "int8:channel"]),
    ("Q8_0", ["--w", "e4m3fn:channel", "--head", "e4m3fn:channel"]),
    ("Q8_0", ["--w", "e4m3fn:channel", "--a", "e4m3fn:token", "--head", "e4m3fn:channel"]),
    ("Q4_0", ["--w", "int4:g32", "--head", "int4:g32"]),
    ("Q4_0", ["--w", "mxfp4", "--head", "mxfp4"]),
    ("Q4_0", ["--w", "nvfp4", "--head", "nvfp4"]),
    ("Q4_0", ["--w", "int4:g32", "--a", "int8:token", "--head", "int4:g32"]),
    ("Q4_0", ["--w", "mxfp4", "--a", "int8:token", "--head", "mxfp4"]),
    ("Q4_0", ["--w", "nvfp4", "--a", "int8:token", "--head", "nvfp4"]),
    ("Q4_0", ["--w", "mxfp4", "--a", "e4m3fn:token", "--head", "mxfp4"]),
    ("Q4_0", ["--w", "mxfp4", "--a", "mxfp4", "--head", "mxfp4"]),
    ("Q4_0", ["--w", "nvfp4", "--a", "nvfp4", "--head", "nvfp4"]),
]
FTYPES = {"F32": "LLAMA_FTYPE_ALL_F32", "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0"}


def requantize(src, dst, kind):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[kind])
    params.nthread = 2
    params.allow_requantize = True  # the installed models are themselves quantized
    # The quantizer logs every tensor to the C stderr; keep the table readable.
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed on {src} -> {kind}")


def llama_speed(path, threads, p, n, reps):
    # One process per model: llama-cpp-python 0.3.36 crashes loading a second model after the
    # first was freed.
    out = subprocess.run([sys.executable, __file__, "--measure-llama", path, str(threads), str(p), str(n),
                          str(reps)], check=True, capture_output=True, text=True).stdout
    size, pp, tg = json.loads(out.strip().splitlines()[-1])
    return size, pp, tg


def measure_llama(path, threads, p, n, reps):
    """Times llama.cpp through its C API: one llama_decode of p tokens, then n of one token."""
    llama_cpp.llama_backend_init()
    mp = llama_cpp.llama_model_default_params()
    # llama.cpp's extra CPU buffer types (AMX / repacked Q4_0 and Q8_0) die with SIGSEGV on this
    # VM's Xeon in llama-cpp-python 0.3.36; its plain CPU kernels run.
    mp.use_extra_bufts = False
    model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = max(p, n) + 8
    cp.n_batch = cp.n_ubatch = max(p, 1)
    cp.n_threads = cp.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model, cp)
    vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    tokens = (llama_cpp.llama_token * p)(*[(i * 7919 + 13) % vocab for i in range(p)])
    one = (llama_cpp.llama_token * 1)()
    pp, tg = [], []
    for r in range(reps + 1):  # the first is a warm-up
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        t0 = time.perf_counter()
        if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(tokens, p)) != 0:
            raise SystemExit("llama_decode failed")
        llama_cpp.llama_synchronize(ctx)
        if r:
            pp.append(p / (time.perf_counter() - t0))
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        t0 = time.perf_counter()
        for i in range(n):
            one[0] = tokens[i % p]
            if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(one, 1)) != 0:
                raise SystemExit("llama_decode failed")
        llama_cpp.llama_synchronize(ctx)
        if r:
            tg.append(n / (time.perf_counter() - t0))
    print(json.dumps([llama_cpp.llama_model_size(model) / 2**20, pp, tg]))


def lowbit_speed(lowbit, model, flags, threads, p, n, reps):
    out = subprocess.run([lowbit, "bench", "--model", model, "-p", str(p), "-n", str(n), "-t", str(threads),
                          "-r", str(reps), *flags], check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 8 and re.match(r"(pp|tg)\d+", cells[5]):
            rows[cells[5][:2]] = (float(cells[6].split("±")[0]), cells[3], cells[7])
    return rows


def fmt(values):
    return f"{statistics.mean(values):8.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:5.2f}"


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "--measure-llama":
        measure_llama(sys.argv[2], *map(int, sys.argv[3:]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("lowbit")
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", default="1,2")
    ap.add_argument("-r", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(a.model):
        print(f"SKIPPED: {a.model} not found (scripts/install-models.sh)")
        sys.exit(77)
    threads = [int(t) for t in a.t.split(",")]
    print(f"| program | weights | size MiB | threads | pp{a.p} t/s | tg{a.n} t/s | tg vs llama.cpp |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        llama = {}
        for kind in dict.fromkeys(k for k, _ in PAIRS):
            path = os.path.join(tmp, f"model-{kind}.gguf")
            requantize(a.model, path, kind)
            for t in threads:
                size, pp, tg = llama_speed(path, t, a.p, a.n, a.r)
                llama[kind, t] = statistics.mean(tg)
                print(f"| llama.cpp | {kind} | {size:.1f} | {t} | {fmt(pp)} | {fmt(tg)} | 1.00 |", flush=True)
        for kind, flags in PAIRS:
            for t in threads:
                rows = lowbit_speed(a.lowbit, a.model, flags, t, a.p, a.n, a.r)
                name = " ".join(flags[1:flags.index("--head")]).replace(" --a ", " a=") if flags else "fp32"
                pp, size, _ = rows["pp"]
                tg, _, gbps = rows["tg"]
                print(f"| lowbit | {name} (vs {kind}) | {size.replace(' MiB', '')} | {t} | {pp:8.2f} | {tg:8.2f} "
                      f"({gbps}) | {tg / llama[kind, t]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
