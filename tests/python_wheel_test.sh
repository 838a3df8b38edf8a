#!/usr/bin/env bash
# `pip install .` from a copy of the source into a fresh virtual environment, then the pytest suite
# and the README quick-start against the installed package (not the build tree's). Builds every
# layer again (several minutes on 2 cores): labelled "long". Skips (77) when pip cannot reach the
# package index for the build requirements.
set -uo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv" || { echo "SKIPPED: python3 -m venv is not available"; exit 77; }
py="$work/venv/bin/python"
"$py" -m pip install --quiet numpy ml_dtypes pytest > "$work/deps.log" 2>&1 ||
  { echo "SKIPPED: pip cannot install numpy / ml_dtypes / pytest"; cat "$work/deps.log"; exit 77; }
# A copy without build folders, as a fresh clone would be.
mkdir -p "$work/src"
tar -C "$src" --exclude='./build*' --exclude=./models --exclude=./data --exclude=./lowbit-sweep \
  --exclude=./.git -cf - . | tar -C "$work/src" -xf -
if ! "$py" -m pip install --quiet "$work/src" > "$work/pip.log" 2>&1; then
  echo "FAIL: pip install . failed"; tail -40 "$work/pip.log"; exit 1
fi
cd "$work" && "$py" -c "import lowbit, sys; print('installed', lowbit.__file__, lowbit.simd_target())"
cp "$src/README.md" "$work/README.md"
mkdir -p "$work/tests/python" && cp "$src/tests/python/test_lowbit.py" "$work/tests/python/"
"$py" -m pytest -q "$work/tests/python"
