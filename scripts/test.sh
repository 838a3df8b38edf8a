#!/usr/bin/env bash
# From a fresh machine: install what is needed, build, and run the test suite with ctest.
# The default suite takes a few minutes on 2 cores. LOWBIT_LONG_TESTS=1 also runs the tests
# labelled "long" (exhaustive sweeps over all 2^32 float32 inputs, several minutes more).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-models.sh --optional  # the real-model tests skip when a model cannot be had
scripts/install-data.sh --optional    # likewise the texts (../shared/corpora serves where present)
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" -LE long
if [ "${LOWBIT_LONG_TESTS:-0}" = "1" ]; then
  ctest --test-dir build --output-on-failure -L long
fi
