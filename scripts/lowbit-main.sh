#!/usr/bin/env bash
# The main job from a fresh machine: install what is needed, build, and run lowbit.
# (Today the main job lists the number formats; the model sweep replaces it once it lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/tools/lowbit/lowbit formats
