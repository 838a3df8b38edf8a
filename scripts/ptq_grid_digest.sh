#!/usr/bin/env bash
# The numbers of a PTQ grid on the tests' tiny random LLaMA, as one XXH3-style digest: what a
# refactoring must leave bit-identical. Runs `lowbit sweep` with every PTQ method (hadamard,
# smoothquant, gptq, search, overrides, KV and accumulator emulation) on the tiny model and hashes
# results.json without its timings and paths.
#   scripts/ptq_grid_digest.sh [BUILD_DIR]      prints the digest
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/tests/write_tiny_model" "$work/tiny.gguf"
python3 - "$work" <<'PY'
import random, sys
random.seed(7)
words = "the then there they these those thin think third other mother brother".split()
def text(n): return " ".join(random.choice(words) for _ in range(n)) + "\n"
open(sys.argv[1] + "/eval.txt", "w").write(text(3000))
open(sys.argv[1] + "/calib.txt", "w").write(text(3000))
PY
cat > "$work/grid.json" <<'G'
[
 {"name": "rtn-int4", "weights": "int4:g32"},
 {"name": "w8a8", "weights": "int8:channel", "activations": "int8_token", "kv": "e4m3fn:token"},
 {"name": "had-mxfp4", "methods": ["hadamard"], "weights": "mxfp4", "activations": "mxfp8_e4m3"},
 {"name": "sq", "methods": ["smoothquant:alpha=0.6"], "weights": "int8:channel", "activations": "int8_token"},
 {"name": "gptq", "methods": ["gptq"], "weights": "int4:g32"},
 {"name": "gptq-ao", "methods": ["hadamard", "gptq:act_order:block=16"], "weights": "int4:g32", "kv": "int8:token"},
 {"name": "search", "methods": ["search"], "weights": "int4:g32"},
 {"name": "ovr", "weights": "mxfp4", "embedding": "int8:channel", "output": "int8:channel", "accumulate": "bf16/16",
  "overrides": [{"match": "*.down_proj", "weights": "fp"}, {"match": "layers.1.*", "activations": "fp8_token"}]}
]
G
OMP_WAIT_POLICY=passive "$build/tools/lowbit/lowbit" sweep --model "$work/tiny.gguf" --text "$work/eval.txt" \
  --grid "$work/grid.json" --ctx 64 --calib "$work/calib.txt" --calib-seqs 4 --calib-len 32 --threads 1 \
  --out "$work/out" >"$work/log" 2>&1 || { tail -5 "$work/log" >&2; exit 1; }
python3 - "$work/out/results.json" <<'PY'
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("seconds", "method_seconds", "checksum", "model", "text", "threads", "key", "model_hash", "mac_cost")}
    if isinstance(x, list): return [strip(v) for v in x]
    return x
rows = [strip(e) for e in r["results"]]
print(hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest(), len(rows), "recipes")
PY
