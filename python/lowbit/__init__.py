"""lowbit: low-precision number formats and quantization, from Python.

Formats are named as everywhere in lowbit ("e4m3fn", "e5m2", "e2m1fn", "int4", "nf4", any
"eXmY[:bias=B][:specials=...]"); schemes too ("mxfp4", "nvfp4", "int4_g128", "ggml_q4_k",
"e4m3fn:channel", ...). Arrays are NumPy arrays, or anything that speaks DLPack or the buffer
protocol (PyTorch and JAX CPU tensors) without lowbit depending on them: C-contiguous float32,
float16 and bfloat16 inputs are read in place. ml_dtypes arrays work both ways: `encode(...,
as_ml_dtypes=True)` returns codes viewed as the ml_dtypes type of the same format, and `decode`
takes such arrays directly. Errors are ValueError with lowbit's message.

    >>> import numpy as np, lowbit
    >>> x = np.array([0.3, 1.3, 500.0], dtype=np.float32)
    >>> lowbit.encode(x, "e4m3fn")
    array([ 42,  58, 127], dtype=uint8)
    >>> lowbit.fake_quant(x, "e4m3fn", saturate=True).tolist()
    [0.3125, 1.25, 448.0]
"""
import json as _json
import tempfile as _tempfile

import numpy as _np

from . import _lowbit
from ._lowbit import Model

__all__ = ["formats", "format_info", "schemes", "encode", "decode", "fake_quant", "quantize",
           "dequantize", "fake_quant_scheme", "scheme_bits", "set_num_threads", "simd_target",
           "Model", "load_model", "recipe", "evaluate", "sweep", "export_gguf",
           "export_compressed_tensors"]

# lowbit format name -> ml_dtypes type name, for the formats ml_dtypes has.
_ML_DTYPES = {"e4m3fn": "float8_e4m3fn", "e5m2": "float8_e5m2", "e4m3": "float8_e4m3",
              "e4m3fnuz": "float8_e4m3fnuz", "e5m2fnuz": "float8_e5m2fnuz",
              "e4m3b11fnuz": "float8_e4m3b11fnuz", "e3m4": "float8_e3m4", "e8m0fnu": "float8_e8m0fnu",
              "e2m3fn": "float6_e2m3fn", "e3m2fn": "float6_e3m2fn", "e2m1fn": "float4_e2m1fn",
              "bf16": "bfloat16", "fp16": "float16", "int4": "int4", "uint4": "uint4",
              "int2": "int2"}


def formats():
    """The named formats (their canonical names)."""
    return _lowbit.formats()


def format_info(format):
    """Name, bits, largest and lowest finite value, and bytes per code of a format."""
    return _lowbit.format_info(format)


def schemes():
    """The named quantization schemes (presets)."""
    return _lowbit.schemes()


def _float_input(x):
    """x as something the module reads in place (float32 / float16 / bfloat16, C-contiguous) and
    whether it is ml_dtypes bfloat16 passed as its 16-bit patterns (the buffer protocol has no
    name for that type)."""
    if isinstance(x, _np.ndarray):
        if x.dtype.name == "bfloat16":
            return _np.ascontiguousarray(x).view(_np.uint16), True
        if x.dtype not in (_np.float32, _np.float16):
            x = x.astype(_np.float32)
        return _np.ascontiguousarray(x), False
    return x, False  # a DLPack / buffer-protocol object: the module checks dtype and layout


def _ml_dtype(format):
    import ml_dtypes
    name = format_info(format)["name"]
    if name not in _ML_DTYPES or not hasattr(ml_dtypes, _ML_DTYPES[name]):
        raise ValueError(f"ml_dtypes has no type for the format {name}")
    return _np.dtype(getattr(ml_dtypes, _ML_DTYPES[name]))


def encode(x, format, rounding="nearest-even", saturate=False, seed=0, first_index=0,
           as_ml_dtypes=False):
    """Rounds x onto `format` and returns one code per element (uint8 up to 8 bits, uint16 up to 16,
    uint32 above), bit-identical to lowbit's scalar reference on every SIMD path.

    rounding: "nearest-even", "nearest-away", "toward-zero", "up", "down" or "stochastic" (with
    `seed`; element i draws the stream at first_index + i, so results do not depend on threads or
    chunking). saturate: overflow to the largest finite value (CUDA's satfinite) instead of the
    format's inf / NaN. as_ml_dtypes: return the codes viewed as the ml_dtypes type of the format.
    """
    data, bf16_bits = _float_input(x)
    codes = _lowbit.encode(data, format, rounding, saturate, seed, first_index, bf16_bits)
    return codes.view(_ml_dtype(format)) if as_ml_dtypes else codes


def decode(codes, format=None):
    """Codes -> float32 values. An ml_dtypes array (float8_e4m3fn, float4_e2m1fn, ...) decodes
    without a format name; bits above the format's width are ignored."""
    if isinstance(codes, _np.ndarray) and codes.dtype.name in _ML_DTYPES.values():
        name = next(k for k, v in _ML_DTYPES.items() if v == codes.dtype.name)
        if format is None:
            format = name
        width = codes.dtype.itemsize
        codes = _np.ascontiguousarray(codes).view({1: _np.uint8, 2: _np.uint16}[width])
    if format is None:
        raise ValueError("decode: give the format of the codes")
    return _lowbit.decode(codes, format)


def fake_quant(x, format, rounding="nearest-even", saturate=False, seed=0, first_index=0):
    """Rounds x onto `format` and returns the rounded values as float32 (quantize-dequantize in one
    pass); same options as encode."""
    data, bf16_bits = _float_input(x)
    return _lowbit.fake_quant(data, format, rounding, saturate, seed, first_index, bf16_bits)


def quantize(x, scheme):
    """Quantizes a float32 array with a scheme and returns a dict: scheme, shape, scale_shape,
    codes (packed LSB-first, uint8), scales (per group: the scale format's code, or float32 bits,
    uint32), zero_points (asymmetric schemes), global_scale (two-level schemes) and
    bits_per_element. docs/quantization.md defines every step."""
    return _lowbit.quantize(_np.ascontiguousarray(x, dtype=_np.float32), scheme)


def dequantize(q):
    """The float32 values of a dict from quantize()."""
    return _lowbit.dequantize(q)


def fake_quant_scheme(x, scheme):
    """quantize then dequantize with a scheme in one pass (bit-identical to doing both)."""
    return _lowbit.fake_quant_scheme(_np.ascontiguousarray(x, dtype=_np.float32), scheme)


def scheme_bits(scheme, shape):
    """Bits per element a scheme stores on a tensor of this shape (scales included)."""
    return _lowbit.scheme_bits(scheme, list(shape))


def set_num_threads(threads):
    """Threads for the bulk conversions and the models (0: all cores)."""
    _lowbit.set_num_threads(threads)


def simd_target():
    """The SIMD target the conversions run on ("hwy:AVX3", "hwy:AVX2", ...)."""
    return _lowbit.simd_target()


# ---- models ------------------------------------------------------------------------------------

def load_model(path=""):
    """Loads a model (a .gguf file, a Hugging Face folder, or an installed model's name such as
    "smollm2"; empty: the default model) as lowbit.Model: .path, .summary, .parameters, .sites
    (the names recipes match), .tokenize(text)."""
    return _lowbit.load_model(path)


def recipe(spec=None, **fields):
    """A recipe as its canonical JSON text, from a dict, a JSON text, or keyword fields:
    weights, activations, kv, embedding, output (scheme names or "fp"), methods (a list such as
    ["hadamard", "gptq:damp=0.01"]), overrides, accumulate, name (docs/recipes.md)."""
    if spec is None:
        spec = fields
    elif fields:
        raise ValueError("recipe: give a spec or keyword fields, not both")
    text = spec if isinstance(spec, str) else _json.dumps(spec)
    return _lowbit.recipe_canonical(text)


def _recipe_text(r):
    return r if isinstance(r, str) else _json.dumps(r)


def sweep(model, text, recipes, out, ctx=512, max_tokens=4096, layers=False, calib="",
          calib_seqs=32, calib_len=512, threads=0):
    """Evaluates every recipe (dicts or JSON texts) on the text file against the full-precision
    baseline, as `lowbit sweep` does: cached in `out` (results.json, report.md, report.html,
    cache/), so a second call is instant. Returns {"base_ppl", "results": [one dict per recipe
    in the versioned result format of docs/results.md]}."""
    r = _lowbit.sweep(model, text, [_recipe_text(x) for x in recipes], out, ctx, max_tokens, layers,
                      calib, calib_seqs, calib_len, threads)
    r["results"] = [_json.loads(x) for x in r["results"]]
    return r


def evaluate(model, text, recipe, out=None, **options):
    """One recipe's result dict (perplexity, KL divergence, top-1, ΔPPL, bits per weight) on the
    text file; `out` keeps the cache (default: a temporary folder). Options as for sweep."""
    if out is None:
        with _tempfile.TemporaryDirectory() as tmp:
            return sweep(model, text, [recipe], tmp, **options)["results"][0]
    return sweep(model, text, [recipe], out, **options)["results"][0]


def export_gguf(model, recipe, out, calib="", calib_seqs=32, calib_len=512, keep="f32",
                emulated_f32=False):
    """Writes the model quantized by the recipe as a GGUF file llama.cpp runs (docs/export.md) and
    returns what was written: path, file_bytes, bits per (Linear) weight, and every tensor's GGUF
    name, GGML type, shape and origin."""
    return _lowbit.export_gguf(model, _recipe_text(recipe), out, calib, calib_seqs, calib_len, keep,
                               emulated_f32)


def export_compressed_tensors(model, recipe, out, calib="", calib_seqs=32, calib_len=512,
                              keep="f32", emulated_f32=False):
    """Writes the model quantized by the recipe as a Hugging Face folder in compressed-tensors'
    layout (what vLLM loads; docs/export.md) and returns what was written: path, format, folder
    bytes, bits per (Linear) weight, and every tensor's name, dtype, shape and origin.
    load_model(out) reads it back."""
    return _lowbit.export_compressed_tensors(model, _recipe_text(recipe), out, calib, calib_seqs,
                                             calib_len, keep, emulated_f32)
