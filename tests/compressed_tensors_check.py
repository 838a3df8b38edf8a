"""compressed-tensors' own decompressor against lowbit's values, on real exports.

For each recipe: `lowbit export --to compressed-tensors` writes the checkpoint and
`--emulated-f32` the same model with lowbit's fake-quantized weights in float32. The PyPI package
`compressed-tensors` (its CompressedTensorsDequantizer: config.json validated by its pydantic
models, every module's compressor inferred as it infers them, decompressed in float32) must give
back lowbit's weights bit for bit. Its NVFP4 decompressor returns bfloat16 (it unpacks to bf16),
so those weights are also checked in float32 through its own unpack and dequantize functions.
The tokenizer.json lowbit writes from the GGUF must tokenize like lowbit (HF `tokenizers`), and
transformers must load the folder as a LlamaForCausalLM whose perplexity is lowbit's.

usage: python compressed_tensors_check.py LOWBIT MODEL CALIB_TEXT EVAL_TEXT WORK_DIR
Prints one line per recipe and exits non-zero on the first mismatch.
"""

import json
import os
import subprocess
import sys

import torch
from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import (
    CompressedTensorsDequantizer,
)
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import dequantize
from safetensors.torch import load_file

LOWBIT, MODEL, CALIB, TEXT, WORK = sys.argv[1:6]

# (label, lowbit flags): every layout the export writes, GPTQ and rotations included.
RECIPES = [
    ("int4 g64 asym (W4A16)", ["--w", "int4:g64:asym"]),
    ("int4 g32 sym + GPTQ", ["--w", "int4:g32", "--method", "gptq"]),
    ("int8 per channel", ["--w", "int8:channel"]),
    ("int4 per channel asym", ["--w", "int4:channel:asym"]),
    ("FP8 per channel, dynamic per-token FP8 activations", ["--w", "fp8_channel", "--a", "e4m3fn:token"]),
    ("FP8 per tensor", ["--w", "fp8_tensor"]),
    ("FP8 128x128 blocks", ["--w", "fp8_block128"]),
    ("MXFP8", ["--w", "mxfp8_e4m3"]),
    ("MXFP4, MXFP4 activations", ["--w", "mxfp4", "--a", "mxfp4"]),
    ("NVFP4 (nvfp4_ct)", ["--w", "nvfp4_ct"]),
    ("NVFP4 + GPTQ", ["--w", "nvfp4_ct", "--method", "gptq"]),
    ("Hadamard (offline) + GPTQ MXFP4", ["--w", "mxfp4", "--method", "hadamard:no_online,gptq"]),
    ("mixed: nvfp4_ct, int8 down_proj, fp o_proj",
     ["--w", "nvfp4_ct", "--override", "*.down_proj:w=int8:channel", "--override", "*.o_proj:w=fp"]),
]
CALIB_FLAGS = ["--calib", CALIB, "--calib-seqs", "4", "--calib-len", "256"]


def export(flags, out, emulated):
    cmd = [LOWBIT, "export", "--to", "compressed-tensors", "--model", MODEL, "--out", out] + flags
    if "--method" in flags:
        cmd += CALIB_FLAGS
    if emulated:
        cmd.append("--emulated-f32")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def bits(t):
    return t.contiguous().view(torch.int32)


def nvfp4_f32(tensors, module, args):
    """ct's own NVFP4 arithmetic, kept in float32 (its decompressor rounds to bf16)."""
    packed = tensors[module + ".weight_packed"]
    m, n = packed.shape
    codes = unpack_fp4_from_uint8(packed, m, n * 2, dtype=torch.float32)
    scale = tensors[module + ".weight_scale"].to(torch.float32)
    return dequantize(codes, scale, args=args, dtype=torch.float32,
                      global_scale=tensors[module + ".weight_global_scale"])


def check(label, flags):
    ct_dir = os.path.join(WORK, "ct")
    ref_dir = os.path.join(WORK, "ref")
    export(flags, ct_dir, False)
    export(flags, ref_dir, True)
    config = json.load(open(os.path.join(ct_dir, "config.json")))["quantization_config"]
    compressed = load_file(os.path.join(ct_dir, "model.safetensors"))
    reference = load_file(os.path.join(ref_dir, "model.safetensors"))
    dense = CompressedTensorsDequantizer(ct_dir, dtype=torch.float32).process(dict(compressed))
    nvfp4_args = None
    for group in config["config_groups"].values():
        if group["format"] == "nvfp4-pack-quantized":
            nvfp4_args = QuantizationArgs.model_validate(group["weights"])
    exact = rounded = 0
    for name, want in reference.items():
        got = dense.get(name)
        if got is None or got.shape != want.shape:
            raise SystemExit(f"{label}: {name} missing or misshapen after decompression")
        module = name[: -len(".weight")]
        if module + ".weight_global_scale" in compressed:  # NVFP4: bf16 out of the decompressor
            if not torch.equal(got, want.to(torch.bfloat16).to(torch.float32)):
                raise SystemExit(f"{label}: {name}: ct's NVFP4 output is not bf16(lowbit's values)")
            f32 = nvfp4_f32(compressed, module, nvfp4_args)
            if not torch.equal(bits(f32), bits(want)):
                bad = (bits(f32) != bits(want)).sum().item()
                raise SystemExit(f"{label}: {name}: {bad} values differ from lowbit's in float32")
            rounded += 1
        elif not torch.equal(bits(got), bits(want)):
            bad = (bits(got) != bits(want)).sum().item()
            raise SystemExit(f"{label}: {name}: {bad} of {want.numel()} values differ from lowbit's")
        exact += 1
    formats = sorted({g["format"] for g in config["config_groups"].values()})
    print(f"ok  {label:<52} {exact} tensors equal ({rounded} NVFP4 also via bf16), "
          f"{len(config['config_groups'])} group(s): {', '.join(formats)}", flush=True)


def check_tokenizer():
    from tokenizers import Tokenizer

    folder = os.path.join(WORK, "ct")
    lines = [l for l in open(TEXT, encoding="utf-8").read().splitlines() if l.strip()][:400]
    lines_file = os.path.join(WORK, "lines.jsonl")
    with open(lines_file, "w", encoding="utf-8") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")
    ours = subprocess.run([LOWBIT, "tokenize", "--model", MODEL, "--lines", lines_file, "--jsonl"],
                          check=True, capture_output=True, text=True).stdout.splitlines()
    hf = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    for line, ids in zip(lines, ours):
        if hf.encode(line, add_special_tokens=False).ids != json.loads(ids):
            raise SystemExit(f"tokenizer.json: HF tokenizers splits {line[:60]!r} differently")
    print(f"ok  tokenizer.json: {len(lines)} lines tokenized by HF tokenizers as lowbit does")


def check_transformers(label, flags, tolerance):
    """transformers loads the export as a LlamaForCausalLM (its compressed-tensors integration
    decompresses it) and its perplexity on a window is lowbit's on the same folder."""
    import math

    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    folder = os.path.join(WORK, "ct")
    export(flags, folder, False)
    text = open(TEXT, encoding="utf-8").read()[:20000]
    window = os.path.join(WORK, "window.txt")
    open(window, "w", encoding="utf-8").write(text)
    result = json.loads(subprocess.run(
        [LOWBIT, "eval", "--model", folder, "--text", window, "--ctx", "512", "--max-tokens", "512",
         "--json"], check=True, capture_output=True, text=True).stdout)["result"]
    ids = json.loads(subprocess.run([LOWBIT, "tokenize", "--model", folder, text], check=True,
                                    capture_output=True, text=True).stdout)[:512]
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, quantization_config=CompressedTensorsConfig(run_compressed=False))
    for p in model.parameters():  # NVFP4 decompresses to bfloat16: compute in float32 anyway
        p.data = p.data.float()
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    # lowbit scores the second half of the window: the predictions of tokens 257 .. 511
    nll = [-logp[i, ids[i + 1]].item() for i in range(256, 511)]
    hf = math.exp(sum(nll) / len(nll))
    rel = abs(hf / result["ppl"] - 1)
    if rel > tolerance:
        raise SystemExit(f"{label}: transformers PPL {hf:.4f}, lowbit {result['ppl']:.4f}")
    print(f"ok  transformers runs {label:<38} PPL {hf:.4f} vs lowbit {result['ppl']:.4f} "
          f"({rel * 100:.4f} % apart)")


for label, flags in RECIPES:
    check(label, flags)
check_tokenizer()
# Exact weights: only float32 summation order differs. NVFP4: transformers' weights are bf16.
check_transformers("int4 g64 (W4A16)", ["--w", "int4:g64"], 1e-4)
check_transformers("NVFP4 (nvfp4_ct)", ["--w", "nvfp4_ct"], 5e-3)
print("compressed-tensors decompresses every export to lowbit's values")
