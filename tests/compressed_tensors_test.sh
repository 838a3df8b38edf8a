#!/usr/bin/env bash
# lowbit's compressed-tensors exports under the PyPI package compressed-tensors itself (its
# decompressor gives back lowbit's values bit for bit) and under transformers (perplexity equal to
# lowbit's): tests/compressed_tensors_check.py. Those need torch: a virtual environment with
# torch, compressed-tensors and transformers is made once under the build folder (about 6 GB,
# a minute to install where PyPI is near). Labelled "long". Skips (77) when the packages cannot be
# had or the model is not installed.
set -uo pipefail
lowbit=$1 model=$2 calib=$3 text=$4 venv=$5
[ -f "$model" ] || { echo "SKIPPED: $model is not installed (scripts/install-models.sh)"; exit 77; }
py="$venv/bin/python"
if ! "$py" -c "import compressed_tensors, transformers, torch" 2> /dev/null; then
  python3 -m venv "$venv" || { echo "SKIPPED: python3 -m venv is not available"; exit 77; }
  "$py" -m pip install --quiet torch compressed-tensors transformers safetensors tokenizers \
    > "$venv.log" 2>&1 ||
    { echo "SKIPPED: pip cannot install torch / compressed-tensors / transformers"; tail -5 "$venv.log"; exit 77; }
fi
"$py" -c "import compressed_tensors, transformers, torch; print('compressed-tensors', compressed_tensors.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" "$(dirname "$0")/compressed_tensors_check.py" "$lowbit" "$model" "$calib" "$text" "$work"
