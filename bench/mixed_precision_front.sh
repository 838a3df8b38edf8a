#!/usr/bin/env bash
# The allocated front against the uniform front on SmolLM2-135M: sensitivity measured on one text
# (Emma), every recipe evaluated on another (Persuasion); allocations by the integer program for
# kl and by greedy at 4.25, 4.5 ... 8 bits per Linear weight, for hessian and proxy at 4.5, 5 ... 8; then the
# bit-switching widths against direct quantization. Writes the sweeps under $OUT and the table
# (bench/mixed_precision_table.py) to $OUT/front.md. Reuses $OUT/sens.json when it exists.
#   [SKIP="proxy bitswitch"] bench/mixed_precision_front.sh [OUT]
# (≈ 1 h 15 min on 2 cores, half of it the kl table; SKIP leaves out sweeps already measured)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-mixed-precision}
lowbit=build/tools/lowbit/lowbit
mkdir -p "$out"
calib=data/corpora/austen_emma.txt
text=data/corpora/austen_persuasion.txt
candidates=mxfp4,nvfp4,int4_g128,e4m3fn:channel,mxfp6_e2m3,fp
common=(--text "$text" --max-tokens 4096 --calib "$calib" --calib-seqs 8 --calib-len 512
        --candidates "$candidates" --sensitivity "$out/sens.json" --all-scores --no-layers)

# The uniform recipes: every candidate everywhere.
python3 - "$candidates" > "$out/uniform.json" <<'PY'
import json, sys
print(json.dumps([{"weights": c} for c in sys.argv[1].split(",") if c != "fp"]))
PY
"$lowbit" sweep "${common[@]}" --grid "$out/uniform.json" --allocate 4.25,4.5,5,5.5,6,6.5,7,7.5,8 \
  --score kl --solver ilp,greedy --out "$out/kl"
# The uniform recipes once (above); beside the other scores' allocations only nvfp4, which the
# table matches by hash.
echo '[{"weights": "nvfp4"}]' > "$out/one-uniform.json"
for score in hessian proxy; do
  [[ " ${SKIP:-} " == *" $score "* ]] && continue
  "$lowbit" sweep "${common[@]}" --grid "$out/one-uniform.json" --allocate 4.5:0.5:8 \
    --score "$score" --solver ilp --out "$out/$score"
done

# Bit switching: 8-bit codes stored once, 6 and 4 bits derived, against direct quantization.
cat > "$out/bitswitch.json" <<'JSON'
[{"name": "int8 direct", "weights": "int8:g128"},
 {"name": "int6 direct", "weights": "int6:g128"},
 {"name": "int4 direct", "weights": "int4:g128"},
 {"name": "int6 from 8", "weights": "int6:g128", "methods": ["bitswitch:from=8"]},
 {"name": "int4 from 8", "weights": "int4:g128", "methods": ["bitswitch:from=8"]},
 {"name": "int6 from 8 anchored at 4", "weights": "int6:g128", "methods": ["bitswitch:anchor=4:from=8"]},
 {"name": "int4 from 8 anchored at 4", "weights": "int4:g128", "methods": ["bitswitch:anchor=4:from=8"]}]
JSON
[[ " ${SKIP:-} " == *" bitswitch "* ]] ||
  "$lowbit" sweep --text "$text" --max-tokens 4096 --grid "$out/bitswitch.json" --no-layers --out "$out/bitswitch"

python3 bench/mixed_precision_table.py "$out" | tee "$out/front.md"
