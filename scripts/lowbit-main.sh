#!/usr/bin/env bash
# The main job from a fresh machine: install what is needed (apt, pip, the default model), build,
# and run the format sweep on the default model, SmolLM2-135M-Instruct: the full-precision
# baseline and 19 recipes (FP8, INT8, MXFP8/6/4, NVFP4, FP4, INT4, NF4; W8A8, W4A16, W4A8, W4A4,
# FP8 KV cache) on the first 4096 tokens of Pride and Prejudice in windows of 512 — about 5
# minutes on 2 cores once built. The report is lowbit-sweep/report.html; a second run reuses the
# cached results (delete lowbit-sweep/ to recompute).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-models.sh
scripts/install-data.sh
scripts/build.sh
text="${LOWBIT_DATA:-data}/corpora/austen_prideprejudice.txt"
build/tools/lowbit/lowbit sweep --model smollm2 --text "$text" --ctx 512 --max-tokens 4096 --out lowbit-sweep
