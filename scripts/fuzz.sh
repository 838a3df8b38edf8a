#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer) into
# build-fuzz/ and runs each for SECONDS (default 120) on a corpus seeded with real files.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: gguf safetensors tokenizer_json npy config_json sweep_cache
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gguf safetensors tokenizer_json npy config_json sweep_cache)
for p in clang libomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -g -O1"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_BUILD_FUZZERS=ON \
  -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf '%s_fuzz ' "${targets[@]}")

# Seeds: small valid files of each kind, written by lowbit's own writers and the tests' models.
seeds=build-fuzz/seeds
mkdir -p "$seeds"/{gguf,safetensors,tokenizer_json,npy,config_json,sweep_cache}
python3 - "$seeds" <<'PY'
import json, struct, sys, os
d = sys.argv[1]
def gguf(path):
    def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
    kv = [(s("general.architecture"), 8, s("llama")), (s("tokenizer.ggml.model"), 8, s("gpt2")),
          (s("tokenizer.ggml.tokens"), 9, struct.pack("<IQ", 8, 3) + s("a") + s("b") + s("ab")),
          (s("tokenizer.ggml.merges"), 9, struct.pack("<IQ", 8, 1) + s("a b"))]
    body = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv))
    for k, t, v in kv: body += k + struct.pack("<I", t) + v
    body += s("w") + struct.pack("<IQQIQ", 2, 32, 2, 2, 0)
    body += b"\0" * (-len(body) % 32) + bytes(range(36))
    open(path, "wb").write(body)
gguf(os.path.join(d, "gguf", "seed.gguf"))
h = json.dumps({"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}, "__metadata__": {"a": "b"}}).encode()
open(os.path.join(d, "safetensors", "seed"), "wb").write(struct.pack("<Q", len(h)) + h + b"\0\x3c" * 4)
open(os.path.join(d, "tokenizer_json", "bpe.json"), "w").write(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": 3, "content": "<s>"}]}))
open(os.path.join(d, "tokenizer_json", "wp.json"), "w").write(json.dumps({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1, "##b": 2}}, "normalizer": {"type": "BertNormalizer", "lowercase": True}}))
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
hdr += " " * (-(10 + len(hdr) + 1) % 64) + "\n"
llama = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 48, "vocab_size": 260, "max_position_embeddings": 256,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True}
open(os.path.join(d, "config_json", "llama.json"), "w").write(json.dumps(llama))
open(os.path.join(d, "config_json", "rope5.json"), "w").write(json.dumps(dict(llama, rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}, architectures=["LlamaForCausalLM"])))
open(os.path.join(d, "config_json", "mistral.json"), "w").write(json.dumps(dict(llama, model_type="mistral", sliding_window=4)))
open(os.path.join(d, "sweep_cache", "results.json"), "w").write(json.dumps({"lowbit_sweep": 2, "pending": [], "results": [], "setup": {"key": "0", "model": "m", "model_summary": "s", "model_hash": "h", "text": "t", "parameters": 1, "ctx": 8, "max_tokens": 0, "text_tokens": 8, "windows": 1, "scored_tokens": 3, "tokens_hash": "ff", "layer_tokens": 0, "base_ppl": 2.0, "base_ppl_stderr": 0.1, "threads": 0}}))
open(os.path.join(d, "sweep_cache", "baseline.bin"), "wb").write(b"LOWBITKL" + struct.pack("<IiiiqqQI", 2, 8, 4, 2, 1, 3, 7, 1) + b"m" + struct.pack("<3d", 1, 2, 3) + struct.pack("<6i", 0, 1, 2, 3, 0, 1) + struct.pack("<6f", -0.1, -2, -0.2, -3, -0.5, -1))
open(os.path.join(d, "npy", "seed.npy"), "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 8)
PY
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" build-fuzz/artifacts
  echo "lowbit: fuzzing $t for $seconds s"
  build-fuzz/fuzz/${t}_fuzz -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t-" "build-fuzz/corpus/$t" "$seeds/$t" 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  if ls build-fuzz/artifacts/"$t"-* >/dev/null 2>&1; then
    echo "lowbit: $t found a failure: $(ls build-fuzz/artifacts/"$t"-*)"
    exit 1
  fi
done
echo "lowbit: no crashes"
