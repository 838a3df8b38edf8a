#!/usr/bin/env python3
"""Writes docs/ptq-methods-grid.json: the W4A16 / W4A8 / W4A4 grid of docs/ptq.md's methods
table (MXFP4, NVFP4, INT4 with RTN, GPTQ, H+GPTQ and the newer methods alone and combined).

  python3 bench/make_ptq_methods_grid.py > docs/ptq-methods-grid.json
  lowbit sweep --grid docs/ptq-methods-grid.json --text data/corpora/austen_prideprejudice.txt \
      --max-tokens 4096 --calib data/corpora/austen_emma.txt --calib-seqs 8 --no-layers
"""
import json

# format: (weights, weights with the searched block scale, block of the block-wise rotation,
#          activations at 8 bits, at 4 bits, at 4 bits with the searched scale)
FORMATS = {
    "mxfp4": ("mxfp4", "e2m1fn:g32:scale=e8m0fnu:sweep", 32,
              "mxfp8_e4m3", "mxfp4", "e2m1fn:g32:scale=e8m0fnu:sweep"),
    "nvfp4": ("nvfp4", "nvfp4_sweep", 16, "fp8_token", "nvfp4", "nvfp4_sweep"),
    "int4": ("int4_g128", "int4:g128:mse:asym", None, "int8_token", "int4:token", "int4:token"),
}


def recipes():
    out = []
    for fmt, (w, w_sweep, block, a8, a4, a4_sweep) in FORMATS.items():
        rows = [("RTN", w, []), ("GPTQ", w, ["gptq"]), ("H+GPTQ", w, ["hadamard", "gptq"])]
        if block:
            rows.append((f"H{block}+GPTQ", w, [f"hadamard:block={block}", "gptq"]))
        scale = "sweep" if block else "mse"
        if block:  # the block-scale choice and its combinations (FP4 formats)
            rows += [(scale, w_sweep, []), (f"{scale}+GPTQ", w_sweep, ["gptq"]),
                     (f"{scale}+H{block}+GPTQ", w_sweep, [f"hadamard:block={block}", "gptq"]),
                     (f"{scale}+GPTQ+biascorrect", w_sweep, ["gptq", "biascorrect"]),
                     (f"{scale}+GPTQ+lorc16", w_sweep, ["gptq", "lorc:rank=16"])]
        rows.append(("learnround", w, ["learnround"]))
        rotation = [f"hadamard:block={block}"] if block else ["hadamard"]
        best = (f"{scale}+H{block}+GPTQ+lorc16", w_sweep) if block else ("H+GPTQ+lorc16", w)
        rows.append((best[0], best[1], rotation + ["gptq", "lorc:rank=16"]))
        if block:  # the W4A4 candidate for the best combination
            rows.append((f"{scale}+H{block}+learnround+lorc16", w_sweep,
                         rotation + ["learnround", "lorc:rank=16"]))
        # W4A8 only for the baselines and the best combination (the weights are W4A16's).
        a8_rows = {"RTN", "GPTQ", "H+GPTQ", best[0]} if block else {"RTN", "GPTQ", "H+GPTQ"}
        for acts, a, a_sweep in (("A16", "fp", "fp"), ("A8", a8, a8), ("A4", a4, a4_sweep)):
            for label, weights, methods in rows:
                if acts == "A8" and label not in a8_rows:
                    continue
                r = {"name": f"W4{acts} {fmt} {label}", "weights": weights,
                     "activations": a_sweep if weights == w_sweep else a}
                if methods:
                    r["methods"] = methods
                out.append(r)
    return out


if __name__ == "__main__":
    print(json.dumps(recipes(), indent=1))
