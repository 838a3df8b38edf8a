#!/usr/bin/env python3
"""lowbit against llama.cpp (through llama-cpp-python, never a dependency of lowbit), side by side
on the same weights and text:

1. the GGUF is requantized to F32 by llama.cpp's own quantizer (llama_model_quantize), so both
   programs run exactly the same float32 weights;
2. tokenization: every line of the text, and the whole text, tokenized by both (ids must agree);
3. perplexity the way llama.cpp's perplexity tool computes it (windows of --ctx tokens, BOS first
   when the model adds one, the second half of each window scored), llama.cpp's from its logits
   over lowbit's token ids, lowbit's from `lowbit eval --json`; they must agree within --tolerance.

  bench/compare_llama_cpp.py LOWBIT MODEL.gguf TEXT [--ctx 512] [--max-tokens 4096] [--tolerance 0.005]

Exits 77 (skipped) when llama_cpp or numpy is not installed, 1 when a check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import llama_cpp
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from llama_cpp_runner import LlamaCpp, perplexity_and_kl
except ImportError as e:
    print(f"SKIPPED: needs numpy and llama-cpp-python ({e}); pip install llama-cpp-python")
    sys.exit(77)


def lowbit_json(lowbit, *args):
    out = subprocess.run([lowbit, *args], check=True, capture_output=True, text=True).stdout
    return out


def requantize_f32(src, dst):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    params.nthread = 2
    params.allow_requantize = True  # the source is itself quantized (Q4_K_M): dequantize it to F32
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params) != 0:
        raise SystemExit(f"llama_model_quantize failed on {src}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lowbit")
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for path in (a.model, a.text):
        if not os.path.exists(path):
            print(f"SKIPPED: {path} not found (scripts/install-models.sh, ../shared/corpora)")
            sys.exit(77)
    text = open(a.text, encoding="utf-8").read()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "model-f32.gguf")
        requantize_f32(a.model, f32)
        llm = LlamaCpp(f32, a.ctx, a.threads)
        # Tokenization, line by line and whole.
        lines = [l for l in text.split("\n") if l.strip()][:2000]
        path = os.path.join(tmp, "lines.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        ours = [json.loads(l) for l in lowbit_json(a.lowbit, "tokenize", "--model", f32, "--lines", path).splitlines()]
        differ = 0
        for line, ids in zip(lines, ours):
            ids = [t for t in ids if t != llm.bos]
            if llm.tokenize(line) != ids:
                differ += 1
        print(f"tokenizer: {len(lines) - differ} of {len(lines)} lines give the same ids as llama.cpp's")
        failed |= differ > 0
        # Perplexity over the same windows.
        r = json.loads(lowbit_json(a.lowbit, "eval", "--model", f32, "--text", a.text, "--ctx", str(a.ctx),
                                   "--max-tokens", str(a.max_tokens), "--threads", str(a.threads), "--json"))
        whole = llm.tokenize(text)
        theirs = perplexity_and_kl(llm, whole, a.ctx, a.max_tokens)
        windows, count = min(len(whole), a.max_tokens) // a.ctx, theirs["scored"]
        ppl_llama = theirs["ppl"]
        ppl_lowbit = r["result"]["ppl"]
        rel = abs(ppl_lowbit / ppl_llama - 1)
        print(f"perplexity, {os.path.basename(a.text)}, {windows} windows of {a.ctx} ({count} scored): "
              f"lowbit {ppl_lowbit:.4f}, llama.cpp {ppl_llama:.4f} (same F32 weights), ratio {ppl_lowbit / ppl_llama:.5f}")
        if rel > a.tolerance:
            print(f"FAIL: perplexities differ by {100 * rel:.3f} %, more than {100 * a.tolerance:.2f} %")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
