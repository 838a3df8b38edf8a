#!/usr/bin/env bash
# End-to-end checks of the lowbit CLI: output of formats/convert, .npy round trips, and clear
# errors (non-zero exit, a message naming the problem) for bad input.
set -u
LOWBIT="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_checks.sh"

expect_ok "formats table" "e4m3fn +8 +4 +3 +7 +448 " "$LOWBIT" formats
expect_ok "formats table fp4" "e2m1fn +4 +2 +1 +1 +6 " "$LOWBIT" formats
expect_ok "formats json" '"max_finite": 57344' "$LOWBIT" formats --json
expect_ok "convert values" "500 +nan +0x7F +0\|1111\|111 +overflow to NaN" "$LOWBIT" convert --format e4m3fn 1.3 448 500
expect_ok "convert rounds 1.3" "1.29999995 +1.25 +0x3A +0\|0111\|010 +rounded" "$LOWBIT" convert --format e4m3fn 1.3
expect_ok "saturate" "500 +448 +0x7E" "$LOWBIT" convert --format e4m3fn --saturate 500
expect_ok "decode values" "0x7E +0\|1111\|110 +448" "$LOWBIT" convert --format e4m3fn --decode 0x7e
expect_ok "negative after --" "-inf +-inf +0xFC" "$LOWBIT" convert --format e5m2 -- -inf
expect_ok "generic format" "0x1F +0\|11\|111 +saturated" "$LOWBIT" convert --format e2m3:specials=none:bias=1 100
expect_error "unknown format" "Named formats: .*e4m3fn" "$LOWBIT" convert --format fp9 1
expect_error "unknown format syntax" "Generic floats: eXmY" "$LOWBIT" convert --format fp9 1
expect_error "bad round mode" "unknown rounding mode" "$LOWBIT" convert --format e4m3fn --round banker 1
expect_error "not a number" "'abc' is not a number" "$LOWBIT" convert --format e4m3fn abc
expect_error "code too wide" "does not fit" "$LOWBIT" convert --format e2m1fn --decode 0x10
expect_error "nothing to do" "nothing to convert" "$LOWBIT" convert --format e4m3fn
expect_error "in without out" "go together" "$LOWBIT" convert --format e4m3fn --in "$work/x.npy"

if command -v python3 >/dev/null && python3 -c "import numpy" 2>/dev/null; then
  python3 - "$work" <<'PY'
import sys, numpy as np
w = sys.argv[1]
np.save(f"{w}/x.npy", np.array([[1.3, 448.0, 500.0], [-0.0, 1e-9, 2.0]], np.float32))
np.save(f"{w}/h.npy", np.array([1.3, 500.0], np.float16))
np.save(f"{w}/i.npy", np.array([1, 2], np.int32))
np.save(f"{w}/f.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
PY
  expect_ok "encode npy" "encoded 6 values" "$LOWBIT" convert -f e4m3fn --in "$work/x.npy" --out "$work/c.npy"
  expect_ok "decode npy" "decoded 6" "$LOWBIT" convert -f e4m3fn --decode --in "$work/c.npy" --out "$work/d.npy"
  expect_ok "fake-quant npy" "fake-quantized 6" "$LOWBIT" convert -f e4m3fn --fake-quant --in "$work/x.npy" --out "$work/q.npy"
  expect_ok "fp16 input" "encoded 2" "$LOWBIT" convert -f e5m2 --in "$work/h.npy" --out "$work/hc.npy"
  expect_ok "bf16 codes" "<u2" "$LOWBIT" convert -f bf16 --in "$work/x.npy" --out "$work/b.npy"
  python3 - "$work" <<'PY' || { echo "FAIL: npy contents"; exit 1; }
import sys, numpy as np
w = sys.argv[1]
c, d, q = np.load(f"{w}/c.npy"), np.load(f"{w}/d.npy"), np.load(f"{w}/q.npy")
assert c.dtype == np.uint8 and c.shape == (2, 3), (c.dtype, c.shape)
assert list(c.ravel()) == [0x3A, 0x7E, 0x7F, 0x80, 0x00, 0x40], list(c.ravel())
assert d.dtype == np.float32 and q.dtype == np.float32
assert np.array_equal(d, q, equal_nan=True), (d, q)
assert d[0, 0] == 1.25 and d[0, 1] == 448 and np.isnan(d[0, 2]) and np.signbit(d[1, 0])
assert list(np.load(f"{w}/hc.npy")) == [0x3D, 0x60]
assert np.load(f"{w}/b.npy").dtype == np.uint16
PY
  expect_error "wrong dtype" "i.npy: expected float32" "$LOWBIT" convert -f e4m3fn --in "$work/i.npy" --out "$work/o.npy"
  expect_error "fortran order" "Fortran" "$LOWBIT" convert -f e4m3fn --in "$work/f.npy" --out "$work/o.npy"
  expect_error "codes too narrow" "cannot hold" "$LOWBIT" convert -f bf16 --decode --in "$work/c.npy" --out "$work/o.npy"
  head -c 100 "$work/x.npy" > "$work/t.npy"
  expect_error "truncated npy" "t.npy: not a usable .npy file" "$LOWBIT" convert -f e4m3fn --in "$work/t.npy" --out "$work/o.npy"
  [ -e "$work/o.npy" ] && fail "a failed conversion left an output file"
  # quantize-tensor
  python3 -c "import numpy as np; np.save('$work/w.npy', (np.random.default_rng(1).standard_t(3, (64, 96)) * 0.02).astype(np.float32))"
  expect_ok "schemes list" "^mxfp4 +e2m1fn:g32:scale=e8m0fnu +4.250" "$LOWBIT" schemes
  expect_ok "quantize-tensor" "^mxfp4 +4.2500 " "$LOWBIT" quantize-tensor "$work/w.npy" --scheme mxfp4 --out "$work/q.lbq" --dequant "$work/dq.npy"
  [ -s "$work/q.lbq" ] && [ -s "$work/dq.npy" ] || fail "quantize-tensor did not write its outputs"
  out=$("$LOWBIT" quantize-tensor "$work/w.npy" --compare nvfp4,int4_g128,mxfp4,fp8_tensor 2>&1)
  order=$(grep -Eo "^(mxfp4|nvfp4|int4_g128|fp8_tensor) " <<<"$out" | tr -d ' ' | tr '\n' ' ')
  [ "$order" = "mxfp4 int4_g128 nvfp4 fp8_tensor " ] || fail "compare rows not sorted by bits per element: $order"
  expect_ok "quantize-tensor json" '"sqnr_db"' "$LOWBIT" quantize-tensor "$work/w.npy" --scheme nvfp4 --json --groups
  "$LOWBIT" quantize-tensor "$work/w.npy" --scheme e4m3fn:channel --json | python3 -c "import json,sys; r=json.load(sys.stdin)[0]; assert r['groups']==64 and r['scheme']=='e4m3fn:channel', r" || fail "json content"
  expect_error "unknown scheme" "Presets: mxfp8_e4m3" "$LOWBIT" quantize-tensor "$work/w.npy" --scheme mxfp5
  expect_error "compare with out" "single --scheme" "$LOWBIT" quantize-tensor "$work/w.npy" --compare mxfp4,nvfp4 --out "$work/x.lbq"
  expect_error "no scheme" "give --scheme" "$LOWBIT" quantize-tensor "$work/w.npy"
  expect_error "int input" "i.npy: expected float32" "$LOWBIT" quantize-tensor "$work/i.npy" --scheme mxfp4
  expect_error "bad axis" "axis 3 is out of range" "$LOWBIT" quantize-tensor "$work/w.npy" --scheme e4m3fn:channel:axis=3
else
  echo "SKIP part: numpy not installed, .npy round trips not checked"
fi

# Model commands: bad input is a clear error naming the file (no model needed for these).
printf 'GGUF\x03\x00\x00\x00' > "$work/short.gguf"
printf 'not a model' > "$work/junk.gguf"
printf 'some text\n' > "$work/text.txt"
expect_error "missing model" "nope.gguf: no such file or folder" "$LOWBIT" inspect "$work/nope.gguf"
expect_error "truncated gguf" "short.gguf: not a usable GGUF file: truncated" "$LOWBIT" inspect "$work/short.gguf"
expect_error "bad magic" "junk.gguf: not a usable GGUF file: bad magic" "$LOWBIT" eval --model "$work/junk.gguf" --text "$work/text.txt"
expect_error "missing text" "missing.txt: cannot open" "$LOWBIT" eval --model "$work/junk.gguf" --text "$work/missing.txt"
expect_error "both baselines" "not both" "$LOWBIT" eval --model "$work/junk.gguf" --text "$work/text.txt" --baseline a --save-baseline b
expect_error "folder without config" "config.json" "$LOWBIT" inspect "$work"
expect_error "unknown name" "not an installed model name" "$LOWBIT" generate --model llama-70b --prompt hi

# Recipes and the sweep: canonical form, errors before any model is loaded, shard syntax.
expect_ok "recipe canonical" '^canonical: \{"weights":"mxfp4","activations":"mxfp8_e4m3","kv":"fp8_token"' \
  "$LOWBIT" recipe --w e2m1fn:g32:scale=e8m0fnu --a mxfp8_e4m3 --kv e4m3fn:token
expect_ok "recipe override" 'short: +w=int4_g128 a=fp kv=fp \[\*\.down_proj:w=fp\]' "$LOWBIT" recipe --w int4_g128 --override '*.down_proj:w=fp'
printf '{"weights": "mxfp4", "activation": "fp8_token"}' > "$work/typo.json"
expect_error "recipe unknown field" 'typo.json: unknown recipe field "activation"' "$LOWBIT" recipe --recipe "$work/typo.json"
expect_error "recipe bad scheme" "\-\-w: invalid scheme 'mxfp5'" "$LOWBIT" eval --model "$work/junk.gguf" --text "$work/text.txt" --w mxfp5
expect_error "recipe bad override" "expected <pattern>:w=" "$LOWBIT" recipe --override 'layers.0.*'
expect_error "recipe bad accumulator" "accumulator" "$LOWBIT" recipe --accum int8/4
expect_ok "recipe methods" 'canonical: \{"methods":\["hadamard:seed=3","gptq:act_order:damp=0.02"\]' \
  "$LOWBIT" recipe --method hadamard:seed=3 --method gptq:damp=0.020:act_order --w mxfp4
expect_error "unknown method" 'unknown method "awq"' "$LOWBIT" recipe --method awq --w int4_g128
expect_error "bad method parameter" 'unknown parameter "alpah=0.5"' "$LOWBIT" recipe --method smoothquant:alpah=0.5
n=$("$LOWBIT" sweep --list | wc -l)
[ "$n" -eq 19 ] || fail "the default grid lists $n recipes, expected 19"
printf '[{"weights": "mxfp4"}, {"weights": "nvfp4", "kv": "e4m3fn:token"}]' > "$work/grid.json"
expect_ok "grid file" "w=nvfp4 a=fp kv=fp8_token" "$LOWBIT" sweep --grid "$work/grid.json" --list
printf '{"recipes": []}' > "$work/empty_grid.json"
expect_error "empty grid" "non-empty JSON array" "$LOWBIT" sweep --grid "$work/empty_grid.json" --list
expect_error "bad shard" "need 1 <= i <= n" "$LOWBIT" sweep --model "$work/junk.gguf" --text "$work/text.txt" --shard 3/2
expect_error "shard syntax" "expected i/n" "$LOWBIT" sweep --model "$work/junk.gguf" --text "$work/text.txt" --shard two
expect_error "slurm array shard" "shard 4/4 from Slurm's job array" env SLURM_ARRAY_TASK_ID=3 \
  SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=0 "$LOWBIT" sweep --model "$work/junk.gguf" --text "$work/text.txt"
expect_error "slurm outside an array" "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set" \
  env -u SLURM_ARRAY_TASK_ID "$LOWBIT" sweep --model "$work/junk.gguf" --text "$work/text.txt" --shard slurm
expect_error "merge missing" "nowhere/results.json: cannot open" "$LOWBIT" sweep-merge "$work/nowhere" --out "$work/merged"

if [ "$failures" -ne 0 ]; then echo "$failures CLI check(s) failed"; exit 1; fi
echo "all CLI checks passed"
