#!/usr/bin/env bash
# The main job from a fresh machine: install what is needed (apt, pip, the default model), build,
# and evaluate the default model, SmolLM2-135M-Instruct, on Jane Austen: perplexity over the first
# 32768 tokens of Pride and Prejudice in windows of 512 (about 2 minutes on 2 cores), then a
# greedy continuation to see it talk. (The format sweep of a later issue will take this place.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-models.sh
scripts/build.sh
text=../shared/corpora/austen_prideprejudice.txt
if [ ! -f "$text" ]; then
  echo "lowbit: $text is missing: the corpora live in ../shared beside this checkout" >&2
  exit 1
fi
build/tools/lowbit/lowbit eval --model smollm2 --text "$text" --ctx 512 --max-tokens 32768
build/tools/lowbit/lowbit generate --model smollm2 -n 48 \
  --prompt "It is a truth universally acknowledged, that a single man in possession of a good fortune,"
