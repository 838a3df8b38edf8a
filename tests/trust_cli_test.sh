#!/usr/bin/env bash
# The CLI under bad input and bad numbers (issue: trust), on a tiny random model: every failure
# is a non-zero exit with a message naming the problem, no output left behind by a failed
# command, bounded threads, NaN never reported as a result, shards sharing a folder.
set -u
LOWBIT="$1"
WRITE_TINY="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_checks.sh"

"$WRITE_TINY" "$work/tiny.gguf"
"$WRITE_TINY" "$work/nan.gguf" --nan
for i in $(seq 1 400); do echo "the cat sat on the mat; then the dog ran $i times."; done > "$work/text.txt"

# Threads and numeric flags.
expect_error "threads absurd" "not in range 0 to" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --threads 100000
expect_error "threads negative" "not in range" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --threads -2
expect_error "max-tokens negative" "max-tokens" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --max-tokens -5
expect_error "ctx zero" "ctx" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 0
expect_error "seed negative" "seed" "$LOWBIT" convert --format e4m3fn --round stochastic --seed -1 0.3
expect_error "sweep threads" "not in range" "$LOWBIT" sweep --model "$work/tiny.gguf" --text "$work/text.txt" --threads 99999
expect_ok "threads 0 means all" "PPL: " "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --threads 0 --ctx 64

# NaN is an error exit, never "PPL: nan".
expect_error "nan result" "not a number" "$LOWBIT" eval --model "$work/nan.gguf" --text "$work/text.txt" --ctx 64

# Contexts beyond training are announced (the memory estimate is tests/trust_test.cpp's).
expect_ok "ctx warning" "exceeds the trained context .*\\(256 positions\\)" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 512

# generate says why it stopped early.
expect_ok "generate stop reason" "stopped after [0-9]+ of 100000 tokens: (the model produced its end-of-sequence|the model's trained context)" \
  "$LOWBIT" generate --model "$work/tiny.gguf" --prompt "the cat" -n 100000

# Real execution and lowbit bench (docs/kernels.md).
expect_ok "generate real" "real: [0-9]+ Linears packed" "$LOWBIT" generate --model "$work/tiny.gguf" --prompt "the cat" -n 4 --w mxfp4 --exec real
expect_error "real names the site" "real execution: layers.0.q_proj: its activations" "$LOWBIT" generate --model "$work/tiny.gguf" --prompt "the cat" -n 4 --w int8:channel --a mxint8 --exec real
expect_ok "auto says what is emulated" "emulated layers.0.q_proj" "$LOWBIT" generate --model "$work/tiny.gguf" --prompt "the cat" -n 4 --w int8:channel --a mxint8
"$WRITE_TINY" "$work/tiny-bf16.gguf" --bf16
expect_ok "bf16 file runs at 2 bytes" "bf16 \(file\) +\| +real" "$LOWBIT" bench --model "$work/tiny-bf16.gguf" -p 8 -n 4 -t 1 -r 1
expect_ok "bench prefill" "\\| +pp16 \\|" "$LOWBIT" bench --model "$work/tiny.gguf" -p 16 -n 8 -t 1 -r 1 --w mxfp4
expect_ok "bench decode bandwidth" "\\| +tg8 \\| .*%\\)" "$LOWBIT" bench --model "$work/tiny.gguf" -p 16 -n 8 -t 1 -r 1 --w nvfp4
expect_error "bench thread list" "not a thread count" "$LOWBIT" bench --model "$work/tiny.gguf" -p 16 -n 8 -t 1,x
expect_ok "eval real" "execution: real" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --w int4_g128 --exec real

# Text that is not UTF-8.
printf 'caf\xe9 au lait\n' > "$work/latin1.txt"
expect_error "latin-1 text" "latin1.txt: not valid UTF-8 at byte offset 3" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/latin1.txt"
printf '\xff\xfeh\x00i\x00' > "$work/utf16.txt"
# The library's errors name what is wrong; the CLI adds the flag that changes it.
expect_error "repair flag named" "on the command line: UTF-8 repair: --repair-utf8" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/latin1.txt"
expect_error "calib flag named" "calibration data: --calib TEXT" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --w mxfp4 --method gptq
expect_ok "dyadic integer-only" "PPL: " "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --w int8:channel --a int8:tensor --method dyadic:out=16 --calib "$work/text.txt" --calib-seqs 2 --calib-len 32
expect_error "dyadic names the site" "layers.0.q_proj cannot run integer-only" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --w int4:g16 --a int8:tensor --method dyadic --calib "$work/text.txt" --calib-seqs 2 --calib-len 32
expect_error "ctx flag named" "context length: --ctx" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 1000000
expect_error "utf-16 text" "UTF-16" "$LOWBIT" tokenize --model "$work/tiny.gguf" --lines "$work/utf16.txt"
expect_ok "repair" "EF BF BD|65533|\\[" "$LOWBIT" tokenize --model "$work/tiny.gguf" --lines "$work/latin1.txt" --repair-utf8
expect_error "prompt not utf-8" "prompt: not valid UTF-8" "$LOWBIT" generate --model "$work/tiny.gguf" --prompt $'caf\xe9'

# A failed command leaves no output that looks finished.
if python3 -c "import numpy" 2>/dev/null; then
  python3 -c "import numpy as np; np.save('$work/w.npy', np.random.default_rng(1).standard_normal((16, 64)).astype(np.float32))"
  expect_error "unwritable --out" "--out .*cannot write there" "$LOWBIT" quantize-tensor "$work/w.npy" --scheme mxfp4 \
    --dequant "$work/dq.npy" --out "$work/no/such/folder/q.lbq"
  [ -e "$work/dq.npy" ] && fail "quantize-tensor left --dequant behind after --out failed"
  ls "$work" | grep -q tmp-lowbit && fail "a temporary file was left behind"
else
  echo "SKIP part: numpy not installed, quantize-tensor outputs not checked"
fi
expect_error "unwritable baseline" "save-baseline .*cannot write there" "$LOWBIT" eval --model "$work/tiny.gguf" \
  --text "$work/text.txt" --save-baseline "$work/no/such/base.bin"

# Shards writing into one folder at once: the last to finish writes the whole report.
printf '[{"weights":"mxfp4"},{"weights":"nvfp4"},{"weights":"int4_g128"},{"weights":"mxfp8_e4m3"},{"weights":"fp8_channel"},{"weights":"mxfp6_e2m3"}]' > "$work/grid.json"
for i in 1 2 3; do
  "$LOWBIT" sweep --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --max-tokens 0 --grid "$work/grid.json" \
    --shard "$i/3" --out "$work/shared" > "$work/shard$i.log" 2>&1 &
done
wait
python3 - "$work/shared/results.json" <<'PY' || fail "concurrent shards: results.json is not complete"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["results"]) == 6 and not r["pending"], (len(r["results"]), r["pending"])
PY

# A cache entry patched by hand is not used.
entry=$(ls "$work/shared/cache/"*/*.json | head -1)
sed -i 's/"ppl": \([0-9]\)/"ppl": 1\1/' "$entry"
expect_ok "patched entry recomputed" "is unusable .*checksum" "$LOWBIT" sweep --model "$work/tiny.gguf" --text "$work/text.txt" \
  --ctx 64 --max-tokens 0 --grid "$work/grid.json" --out "$work/shared"

# Real execution in a sweep: cached apart from the emulated results, and recorded in them.
"$LOWBIT" sweep --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --max-tokens 0 --grid "$work/grid.json" \
  --out "$work/shared" --exec real > "$work/real.log" 2>&1 || fail "sweep --exec real: $(cat "$work/real.log")"
python3 - "$work/shared/results.json" <<'PY' || fail "sweep --exec real: results lack the execution"
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert len(r) == 6 and all(x["execution"].startswith("real:") for x in r), [x.get("execution") for x in r]
PY
grep -v "^baseline:" "$work/real.log" | grep -q ": cached" && fail "sweep --exec real reused emulated cache entries"

# Training: bad configurations are errors naming the setting; a run writes a model folder that
# eval loads; a diverging run is an error exit that leaves no model; train-sweep reports.
cat > "$work/train.json" <<EOF
{"model": {"dim": 32, "layers": 1, "heads": 2, "kv_heads": 1, "hidden": 32, "context": 64},
 "tokenizer": "$work/tiny.gguf", "data": {"train": "$work/text.txt", "seq_len": 32},
 "batch": 2, "steps": 4, "eval_every": 2, "eval_batches": 1, "out": "$work/run"}
EOF
sed 's/"batch"/"bacth"/' "$work/train.json" > "$work/typo.json"
sed "s|$work/text.txt|$work/missing.txt|" "$work/train.json" > "$work/missing.json"
expect_error "train config typo" 'unknown setting "bacth"' "$LOWBIT" train --config "$work/typo.json"
expect_error "train recipe unknown" "unknown training recipe" "$LOWBIT" train --config "$work/train.json" --recipe fp7
expect_error "train missing text" "missing.txt" "$LOWBIT" train --config "$work/missing.json"
expect_ok "train runs" "model: .*run/model" "$LOWBIT" train --config "$work/train.json" --recipe fp8 --fresh
expect_ok "trained model loads" "PPL: " "$LOWBIT" eval --model "$work/run/model" --text "$work/text.txt" --ctx 32
expect_error "train diverges" "diverged" "$LOWBIT" train --config "$work/train.json" --lr 300 --steps 30 --out "$work/div" --fresh
[ -e "$work/div/model" ] && fail "a diverged run left a model folder"
expect_ok "train-sweep" "4 of 4 runs finished" "$LOWBIT" train-sweep --config "$work/train.json" --out "$work/ts" \
  --recipes f32,mxfp4 --lrs 0.01 --seeds 1,2 --no-sharpness
[ -s "$work/ts/report.html" ] || fail "train-sweep wrote no report"
expect_error "train-sweep shard" "shard" "$LOWBIT" train-sweep --config "$work/train.json" --out "$work/ts" --shard 3/2

# Mixed precision: allocate writes a recipe that eval takes at the predicted bits; bad budgets,
# candidates and rules are errors naming the flag; the sweep adds allocated recipes.
alloc=("$LOWBIT" allocate --model "$work/tiny.gguf" --calib "$work/text.txt" --calib-seqs 2 --calib-len 32
       --sensitivity-tokens 128 --sensitivity-ctx 64 --candidates int4:g16,e4m3fn:channel,fp)
expect_ok "allocate" "predicted 7\.[0-9]+ bits per Linear weight" "${alloc[@]}" --score kl --budget 8 \
  --sensitivity "$work/sens.json" --out "$work/alloc.json" --compare
expect_ok "allocate reuses the table" "sensitivity: read" "${alloc[@]}" --budget 7 --sensitivity "$work/sens.json" --out "$work/alloc7.json"
bits=$(python3 -c "import sys,re; print('%.3f' % float(re.search(r'predicted ([0-9.]+) bits', open(sys.argv[1]).read()).group(1)))" <("${alloc[@]}" --budget 7 --sensitivity "$work/sens.json" --out "$work/alloc7.json" 2>&1))
expect_ok "allocated recipe evaluates at its bits" "${bits} per Linear weight" "$LOWBIT" eval --model "$work/tiny.gguf" --text "$work/text.txt" --ctx 64 --recipe "$work/alloc7.json"
expect_ok "allocate latency" "ms of Linears" "${alloc[@]}" --max-latency-ms 1000 --sensitivity "$work/sens.json" --out "$work/alloc-l.json"
expect_ok "latencies saved" "sensitivity: read" "${alloc[@]}" --max-latency-ms 1000 --sensitivity "$work/sens.json" --out "$work/alloc-l.json"
expect_error "allocate budget too small" "smallest the candidates and rules allow" "${alloc[@]}" --budget 2 --sensitivity "$work/sens.json" --out "$work/x.json"
expect_error "allocate other candidates" "measured for the candidates" "$LOWBIT" allocate --model "$work/tiny.gguf" --calib "$work/text.txt" --candidates int4:g16,fp --budget 8 --sensitivity "$work/sens.json" --out "$work/x.json"
expect_error "allocate other settings" "measured with other data or settings" "$LOWBIT" allocate --model "$work/tiny.gguf" --calib "$work/text.txt" --calib-seqs 3 --calib-len 32 --sensitivity-ctx 64 --candidates int4:g16,e4m3fn:channel,fp --budget 8 --sensitivity "$work/sens.json" --out "$work/x.json"
expect_error "allocate bad candidate" "--candidates" "$LOWBIT" allocate --model "$work/tiny.gguf" --calib "$work/text.txt" --candidates int4:g16,fp9 --budget 8 --out "$work/x.json"
expect_error "allocate keep typo" "matches no site" "${alloc[@]}" --budget 8 --keep 'layer.0.*' --sensitivity "$work/sens.json" --out "$work/x.json"
expect_error "allocate needs calib" "--calib TEXT is required" "$LOWBIT" allocate --model "$work/tiny.gguf" --budget 8 --out "$work/x.json"
[ -e "$work/x.json" ] && fail "a failed allocate left a recipe"
expect_ok "sweep --allocate" "allocated: [1-9][0-9]* recipes for 3 budgets" "$LOWBIT" sweep --model "$work/tiny.gguf" --text "$work/text.txt" \
  --ctx 64 --max-tokens 0 --grid "$work/grid.json" --calib "$work/text.txt" --calib-seqs 2 --calib-len 32 --allocate 6:1:8 \
  --sensitivity-tokens 128 --sensitivity-ctx 64 --candidates int4:g16,e4m3fn:channel,fp --sensitivity "$work/sens.json" --solver ilp,greedy --out "$work/asweep" --no-layers
grep -q 'class="front mixed-front"' "$work/asweep/report.html" || fail "sweep --allocate: the report draws no mixed front"

if [ "$failures" -ne 0 ]; then echo "$failures trust CLI check(s) failed"; exit 1; fi
echo "all trust CLI checks passed"
