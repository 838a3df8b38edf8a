"""Writes tests/data/ct_golden.safetensors + ct_golden.json: small weights compressed by the PyPI
package compressed-tensors' own compressors, each beside the float32 values its own decompressor
gives back (`<module>.expected`), so tests/ct_import_test.cpp checks lowbit's reader against
compressed-tensors without torch. Layouts: pack-quantized int2 / int3 / int4 / int8 (symmetric
and asymmetric; groups, channels, tensor: odd widths cross int32 words), int-quantized int8,
naive FP8 per channel and in blocks, MXFP8, MXFP4, NVFP4 (its expected values from compressed-
tensors' own unpack and dequantize in float32: its decompressor returns bfloat16 for NVFP4).

usage (where torch and compressed-tensors are installed): python make_ct_golden.py OUT_DIR
"""

import json
import os
import sys

import torch
from compressed_tensors.compressors import BaseCompressor
from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from compressed_tensors.quantization.lifecycle.forward import dequantize
from compressed_tensors.quantization.utils import calculate_qparams
from safetensors.torch import save_file

out_dir = sys.argv[1]
torch.manual_seed(7)

# module -> (format, weights args, shape)
CASES = {
    "int4_group_asym": ("pack-quantized", dict(num_bits=4, type="int", symmetric=False, strategy="group", group_size=32), (12, 64)),
    "int4_group_sym": ("pack-quantized", dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=16), (8, 48)),
    "int3_channel_asym": ("pack-quantized", dict(num_bits=3, type="int", symmetric=False, strategy="channel"), (10, 40)),
    "int2_tensor_sym": ("pack-quantized", dict(num_bits=2, type="int", symmetric=True, strategy="tensor"), (4, 36)),
    "int8_group_sym": ("pack-quantized", dict(num_bits=8, type="int", symmetric=True, strategy="group", group_size=32), (6, 64)),
    "int8_channel_naive": ("int-quantized", dict(num_bits=8, type="int", symmetric=True, strategy="channel"), (6, 32)),
    "fp8_channel": ("naive-quantized", dict(num_bits=8, type="float", symmetric=True, strategy="channel"), (8, 32)),
    "fp8_block": ("naive-quantized", dict(num_bits=8, type="float", symmetric=True, strategy="block", block_structure=[4, 16]), (10, 40)),
    "mxfp8": ("mxfp8-quantized", dict(num_bits=8, type="float", symmetric=True, strategy="group", group_size=32, scale_dtype=torch.uint8), (4, 64)),
    "mxfp4": ("mxfp4-pack-quantized", dict(num_bits=4, type="float", symmetric=True, strategy="group", group_size=32, scale_dtype=torch.uint8), (6, 64)),
    "nvfp4": ("nvfp4-pack-quantized", dict(num_bits=4, type="float", symmetric=True, strategy="tensor_group", group_size=16, scale_dtype=torch.float8_e4m3fn), (8, 64)),
}


def observe(w, args):
    """Scales (and zero points) by min / max, shaped as compressed-tensors initializes them."""
    rows, cols = w.shape
    if args.strategy == "tensor":
        lo, hi = w.min().reshape(1), w.max().reshape(1)
    elif args.strategy == "channel":
        lo, hi = w.min(dim=1, keepdim=True).values, w.max(dim=1, keepdim=True).values
    elif args.strategy == "block":
        br, bc = args.block_structure
        nr, nc = -(-rows // br), -(-cols // bc)
        lo, hi = torch.empty(nr, nc), torch.empty(nr, nc)
        for i in range(nr):
            for j in range(nc):
                blk = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
                lo[i, j], hi[i, j] = blk.min(), blk.max()
    else:
        g = w.reshape(rows, cols // args.group_size, args.group_size)
        lo, hi = g.min(dim=-1).values, g.max(dim=-1).values
    global_scale = None
    if args.strategy == "tensor_group":  # NVFP4: 448 * 6 / amax, as llm-compressor computes it
        global_scale = (448.0 * 6.0 / w.abs().max()).reshape(1).to(torch.float32)
    scale, zp = calculate_qparams(lo, hi, args, global_scale=global_scale)
    return scale, zp, global_scale


tensors, groups = {}, {}
for i, (module, (fmt, arg_kw, shape)) in enumerate(CASES.items()):
    args = QuantizationArgs(**arg_kw)
    scheme = QuantizationScheme(targets=[module], weights=args, format=fmt)
    w = torch.randn(shape) * torch.linspace(0.2, 3.0, shape[1])
    scale, zp, gs = observe(w, args)
    sd = {"weight": w, "weight_scale": scale, "weight_zero_point": zp}
    if gs is not None:
        sd["weight_global_scale"] = gs
    compressor = BaseCompressor.get_value_from_registry(fmt)
    compressed = compressor.compress(sd, scheme)
    expected = compressor.decompress(dict(compressed), scheme)["weight"].to(torch.float32)
    if fmt == "nvfp4-pack-quantized":  # its decompressor rounds to bf16: its arithmetic in f32
        packed = compressed["weight_packed"]
        codes = unpack_fp4_from_uint8(packed, packed.shape[0], packed.shape[1] * 2, dtype=torch.float32)
        expected = dequantize(codes, compressed["weight_scale"].to(torch.float32), args=args,
                              dtype=torch.float32, global_scale=compressed["weight_global_scale"])
    for name, t in compressed.items():
        tensors[f"{module}.{name}"] = t.contiguous()
    tensors[f"{module}.expected"] = expected.contiguous()
    groups[f"group_{i}"] = {"targets": [module], "weights": json.loads(args.model_dump_json()),
                            "format": fmt}

os.makedirs(out_dir, exist_ok=True)
save_file(tensors, os.path.join(out_dir, "ct_golden.safetensors"))
config = {"quant_method": "compressed-tensors", "format": "mixed-precision",
          "quantization_status": "compressed", "config_groups": groups, "ignore": []}
json.dump(config, open(os.path.join(out_dir, "ct_golden.json"), "w"), indent=1)
print(len(tensors), "tensors", {k: tuple(v.shape) for k, v in tensors.items() if "expected" not in k})
