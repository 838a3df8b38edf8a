#!/usr/bin/env python3
"""`lowbit export` checked against llama.cpp (llama-cpp-python) and gguf-py, on one model and text:

1. exactness: every tensor of each export, dequantized by gguf-py (llama.cpp's own Python package),
   equals the weights lowbit's emulation computes with (`lowbit export --emulated-f32`) as numbers
   (GGML's E2M1 code for -0 reads as +0; NVFP4 with a tensor scale: within one float32 rounding,
   the order in which the two scale levels are multiplied);
2. the same arithmetic: llama.cpp loads each export and its perplexity agrees with lowbit's
   emulation of the recipe on the source within --tolerance (llama.cpp quantizes activations to
   8 bits inside its dot products, so the two are not equal);
3. with --llama-quantize: llama.cpp's own quantizer (`llama_model_quantize`, pure, no importance
   matrix) on the model's float32 weights gives the same tensor bytes as lowbit's RTN export with
   the matching ggml_* scheme, for each type given;
4. a table (Markdown, --table) of bits per Linear weight, file size, both perplexities, and KL divergence
   and top-1 agreement against the float32 model, computed by llama.cpp for every export.

  bench/compare_llama_cpp_export.py LOWBIT MODEL.gguf TEXT [--recipe 'w=...;embed=...;method=...' ...]
      [--calib TEXT] [--llama-quantize Q4_0,Q4_K,MXFP4] [--max-tokens 4096] [--table out.md]

Exits 77 (skipped) when numpy, gguf or llama-cpp-python is missing, 1 when a check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    import llama_cpp
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from llama_cpp_runner import LlamaCpp, perplexity_and_kl
except ImportError as e:
    print(f"SKIPPED: needs numpy, gguf and llama-cpp-python ({e}); pip install llama-cpp-python gguf")
    sys.exit(77)

# Recipes as the lowbit flags they stand for: w= weights, embed= embedding, head= output head,
# method= methods (comma-separated), override= one override.
DEFAULT_RECIPES = ["w=ggml_q8_0", "w=ggml_q4_0;embed=ggml_q8_0", "w=ggml_q4_1", "w=ggml_q5_0",
                   "w=ggml_q5_1", "w=ggml_q4_k", "w=ggml_q6_k", "w=ggml_mxfp4", "w=ggml_nvfp4",
                   "w=mxfp4", "w=nvfp4", "w=int4:g32:scale=fp16", "w=int8:g32:scale=fp16;embed=ggml_q8_0",
                   "w=mxfp4;method=hadamard:no_online"]
FLAG = {"w": "--w", "embed": "--embed", "head": "--head", "method": "--method", "override": "--override"}
LLAMA_FTYPE = {"Q4_0": ("MOSTLY_Q4_0", "ggml_q4_0"), "Q4_K": ("MOSTLY_Q4_K_M", "ggml_q4_k"),
               "MXFP4": ("MOSTLY_MXFP4_MOE", "ggml_mxfp4"), "Q8_0": ("MOSTLY_Q8_0", "ggml_q8_0"),
               "Q5_0": ("MOSTLY_Q5_0", "ggml_q5_0"), "Q6_K": ("MOSTLY_Q6_K", "ggml_q6_k"),
               "NVFP4": ("MOSTLY_NVFP4", "ggml_nvfp4")}


def recipe_flags(recipe):
    flags = []
    for part in filter(None, recipe.split(";")):
        key, value = part.split("=", 1)
        flags += [FLAG[key], value]
    return flags


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


def tensors_of(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def exactness(typed, emulated):
    """Tensors of `typed` whose gguf-py dequantization differs from the emulated F32 export."""
    a, b = tensors_of(typed), tensors_of(emulated)
    bad = []
    for name, t in a.items():
        if name.endswith(".scale"):
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float32)
        scale_name = name[: -len(".weight")] + ".scale"
        want = np.asarray(b[name].data, dtype=np.float32).reshape(-1)
        if scale_name in a:
            values = values * np.float32(a[scale_name].data[0])
            ok = np.allclose(values, want, rtol=2 ** -23, atol=0)
        else:  # as numbers: GGML's E2M1 code for -0 reads as +0
            ok = np.array_equal(values, want)
        if not ok:
            bad.append(name)
    return bad, sorted({t.tensor_type.name for t in a.values()})


def llama_quantize(src, dst, ftype_name):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_" + ftype_name)
    params.nthread = 2
    params.pure = True
    params.allow_requantize = True
    return llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params) == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lowbit")
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--recipe", action="append",
                    help="e.g. 'w=mxfp4;method=hadamard:no_online' (repeatable; 'none': no recipes)")
    ap.add_argument("--calib", help="calibration text for recipes with methods that need it")
    ap.add_argument("--llama-quantize", default="", help="llama.cpp types to compare byte for byte")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--table")
    ap.add_argument("--keep", help="keep the exported files in this folder")
    a = ap.parse_args()
    for path in (a.model, a.text):
        if not os.path.exists(path):
            print(f"SKIPPED: {path} not found (scripts/install-models.sh, ../shared/corpora)")
            sys.exit(77)
    recipes = [r for r in (a.recipe or DEFAULT_RECIPES) if r != "none"]
    text = open(a.text, encoding="utf-8").read()
    failed = False
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or tmp
        os.makedirs(folder, exist_ok=True)
        f32 = os.path.join(folder, "fp32.gguf")
        run(a.lowbit, "export", "--model", a.model, "--w", "fp", "--out", f32)
        reference = LlamaCpp(f32, a.ctx, a.threads)
        tokens = reference.tokenize(text)
        base = perplexity_and_kl(reference, tokens, a.ctx, a.max_tokens)
        print(f"float32: llama.cpp PPL {base['ppl']:.4f} over {base['scored']} scored tokens")

        def evaluate(label, path, lowbit_ppl=None, bits=None, note=""):
            runner = LlamaCpp(path, a.ctx, a.threads)
            r = perplexity_and_kl(runner, tokens, a.ctx, a.max_tokens, reference)
            runner.close()
            size = os.path.getsize(path) / 2 ** 20
            rows.append((label, bits, size, lowbit_ppl, r["ppl"], r["ppl"] - base["ppl"], r["kl"], r["top1"], note))
            return r

        for recipe in recipes:
            flags = recipe_flags(recipe)
            if "method=" in recipe and a.calib:
                flags += ["--calib", a.calib, "--calib-seqs", "16"]
            stem = recipe.replace(";", "_").replace("=", "-").replace(":", "-").replace(",", "-")
            typed = os.path.join(folder, stem + ".gguf")
            emulated = os.path.join(folder, stem + ".emulated.gguf")
            out = run(a.lowbit, "export", "--model", a.model, "--out", typed, *flags)
            run(a.lowbit, "export", "--model", a.model, "--out", emulated, "--emulated-f32", *flags)
            bits = float(out.split(" per Linear weight")[0].rsplit(",", 1)[1])
            bad, types = exactness(typed, emulated)
            if bad:
                print(f"FAIL {recipe}: {len(bad)} tensors differ from lowbit's weights ({bad[:3]})")
                failed = True
            ours = json.loads(run(a.lowbit, "eval", "--model", a.model, "--text", a.text, "--ctx", str(a.ctx),
                                  "--max-tokens", str(a.max_tokens), "--threads", str(a.threads), "--json",
                                  *flags))["result"]["ppl"]
            r = evaluate(recipe, typed, ours, bits, "/".join(t for t in types if t != "F32") or "F32")
            ratio = r["ppl"] / ours
            ok = abs(ratio - 1) <= a.tolerance
            failed |= not ok
            print(f"{'ok  ' if ok and not bad else 'FAIL'} {recipe}: {'/'.join(types)}, {bits:.3f} bits; "
                  f"exact: {not bad}; PPL lowbit {ours:.4f}, llama.cpp {r['ppl']:.4f} (ratio {ratio:.5f})")
            if not a.keep:
                os.remove(emulated)

        for name in filter(None, a.llama_quantize.split(",")):
            ftype, scheme = LLAMA_FTYPE[name]
            theirs = os.path.join(folder, f"llama-quantize-{name}.gguf")
            if not llama_quantize(f32, theirs, ftype):  # a limit of llama.cpp's, reported, not ours
                print(f"n/a  llama_model_quantize refuses to write {name} from float32 weights")
                rows.append((f"llama.cpp {name} (llama_model_quantize, pure)", None, 0, None,
                             float("nan"), float("nan"), float("nan"), float("nan"), "refused"))
                continue
            ours_path = os.path.join(folder, f"lowbit-{scheme}.gguf")
            # llama.cpp's pure mode quantizes the embedding too; lowbit's recipe says so with --embed.
            run(a.lowbit, "export", "--model", a.model, "--out", ours_path, "--w", scheme, "--embed", scheme)
            t_theirs, t_ours = tensors_of(theirs), tensors_of(ours_path)
            differ = [n for n, t in t_theirs.items()
                      if n not in t_ours or t_ours[n].tensor_type != t.tensor_type
                      or not np.array_equal(np.asarray(t_ours[n].data).view(np.uint8), np.asarray(t.data).view(np.uint8))]
            ok = not differ
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} llama_model_quantize {name} (pure) vs lowbit --w {scheme} --embed {scheme}: "
                  f"{len(t_theirs) - len(differ)} of {len(t_theirs)} tensors byte-identical"
                  + (f"; differ: {differ[:4]}" if differ else ""))
            evaluate(f"llama.cpp {name} (llama_model_quantize, pure)", theirs, None, None, name)
        reference.close()

    header = ("| recipe | GGML types | bits/Linear weight | file MiB | PPL lowbit (emulated) | PPL llama.cpp | "
              "ΔPPL llama.cpp | KL (llama.cpp) | top-1 |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {l} | {note} | {'' if b is None else f'{b:.3f}'} | {s:.1f} | "
             f"{'' if p is None else f'{p:.4f}'} | {q:.4f} | {d:+.4f} | {k:.5f} | {t:.4f} |"
             for l, b, s, p, q, d, k, t, note in rows]
    table = (f"float32 PPL (llama.cpp) {base['ppl']:.4f}; {os.path.basename(a.text)}, "
             f"{base['scored']} scored tokens, windows of {a.ctx}\n\n" + header + "\n".join(lines) + "\n")
    print(table)
    if a.table:
        with open(a.table, "w") as f:
            f.write(table)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
