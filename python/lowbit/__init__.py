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
import numpy as _np

from . import _lowbit

__all__ = ["formats", "format_info", "schemes", "encode", "decode", "fake_quant", "quantize",
           "dequantize", "fake_quant_scheme", "scheme_bits", "set_num_threads", "simd_target"]

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
    """x as something the module reads in place: float32 / float16 / bfloat16, C-contiguous."""
    if isinstance(x, _np.ndarray):
        if x.dtype.name == "bfloat16":  # ml_dtypes: passed as its bits, decoded by lowbit
            return _np.ascontiguousarray(x).view(_np.uint16), "bf16"
        if x.dtype not in (_np.float32, _np.float16):
            x = x.astype(_np.float32)
        return _np.ascontiguousarray(x), None
    return x, None  # a DLPack / buffer-protocol object: the module checks dtype and layout


def _ml_dtype(format):
    import ml_dtypes
    name = format_info(format)["name"]
    if name not in _ML_DTYPES or not hasattr(ml_dtypes, _ML_DTYPES[name]):
        raise ValueError(f"ml_dtypes has no type for the format {name}")
    return _np.dtype(getattr(ml_dtypes, _ML_DTYPES[name]))


def _widened(x):
    """bfloat16 bits (from _float_input) widened exactly to float32."""
    return (x.astype(_np.uint32) << 16).view(_np.float32)


def encode(x, format, rounding="nearest-even", saturate=False, seed=0, first_index=0,
           as_ml_dtypes=False):
    """Rounds x onto `format` and returns one code per element (uint8 up to 8 bits, uint16 up to 16,
    uint32 above), bit-identical to lowbit's scalar reference on every SIMD path.

    rounding: "nearest-even", "nearest-away", "toward-zero", "up", "down" or "stochastic" (with
    `seed`; element i draws the stream at first_index + i, so results do not depend on threads or
    chunking). saturate: overflow to the largest finite value (CUDA's satfinite) instead of the
    format's inf / NaN. as_ml_dtypes: return the codes viewed as the ml_dtypes type of the format.
    """
    data, kind = _float_input(x)
    if kind == "bf16":
        data = _widened(data)
    codes = _lowbit.encode(data, format, rounding, saturate, seed, first_index)
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
    data, kind = _float_input(x)
    if kind == "bf16":
        data = _widened(data)
    return _lowbit.fake_quant(data, format, rounding, saturate, seed, first_index)


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
