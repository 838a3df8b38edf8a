#!/usr/bin/env bash
# Installs what lowbit needs on Debian 12 (or a recent Ubuntu): the compiler, CMake and the
# libraries from apt (OpenBLAS for the model runtimes, Eigen for GPTQ's factorisations, PCRE2 and
# utf8proc for the tokenizers,
# xxHash for content hashes, GLPK for mixed-precision allocation), and from pip the Python packages the independent cross-checks use
# (numpy, ml_dtypes, gguf,
# tokenizers). Safe to re-run: it installs only what is missing.
set -euo pipefail

packages=(g++ cmake make libhwy-dev libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev
          libbenchmark-dev python3 python3-pip pkg-config libopenblas-openmp-dev libpcre2-dev
          libutf8proc-dev libeigen3-dev libxxhash-dev libglpk-dev clang-format git)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "lowbit: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# numpy, ml_dtypes, gguf, tokenizers, jax (CPU): the cross-checks' oracles; nanobind: the Python
# module; pytest: its tests.
if ! python3 -c "import numpy, ml_dtypes, gguf, tokenizers, jax, nanobind, pytest" 2>/dev/null; then
  pkgs="numpy ml_dtypes gguf tokenizers jax nanobind pytest"
  echo "lowbit: installing $pkgs with pip (the cross-checks, the Python module and its tests)"
  python3 -m pip install --quiet $pkgs 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages $pkgs ||
    echo "lowbit: warning: could not install them; the checks that need them will report themselves skipped"
fi
