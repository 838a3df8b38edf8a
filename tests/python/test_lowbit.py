"""The Python module against independent oracles (ml_dtypes) and its own contracts; run by ctest
(python_test) on the module in build/python, and by bench/python_wheel_check.sh on a pip-built
wheel. The README's Python quick-start is executed here too."""
import os
import re

import numpy as np
import pytest

import lowbit

ml_dtypes = pytest.importorskip("ml_dtypes")
README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")

FLOAT_FORMATS = {"e4m3fn": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
                 "e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
                 "e3m2fn": ml_dtypes.float6_e3m2fn, "e2m3fn": ml_dtypes.float6_e2m3fn,
                 "e2m1fn": ml_dtypes.float4_e2m1fn}


@pytest.mark.parametrize("fmt", sorted(FLOAT_FORMATS))
def test_every_code_decodes_as_ml_dtypes(fmt):
    dt = np.dtype(FLOAT_FORMATS[fmt])
    bits = lowbit.format_info(fmt)["bits"]
    codes = np.arange(2 ** bits, dtype=np.uint8)
    ours = lowbit.decode(codes, fmt)
    theirs = codes.view(dt).astype(np.float32)
    assert np.array_equal(ours, theirs, equal_nan=True)
    assert np.array_equal(lowbit.decode(codes.view(dt)), theirs, equal_nan=True)  # by dtype alone


@pytest.mark.parametrize("fmt", sorted(FLOAT_FORMATS))
def test_encode_equals_ml_dtypes_astype(fmt):
    rng = np.random.default_rng(5)
    top = lowbit.format_info(fmt)["max"]
    x = (rng.standard_normal(100_000) * top / 4).astype(np.float32)
    x[:4] = [0.0, -0.0, top, -top]
    ours = lowbit.encode(x, fmt, as_ml_dtypes=True)
    theirs = x.astype(FLOAT_FORMATS[fmt])
    assert ours.dtype == theirs.dtype
    assert np.array_equal(ours.astype(np.float32), theirs.astype(np.float32), equal_nan=True)


def test_rounding_modes_and_saturation():
    x = np.array([1.3, 500.0, -500.0], dtype=np.float32)
    assert np.isnan(lowbit.fake_quant(x, "e4m3fn")[1])  # e4m3fn has no inf: overflow is NaN
    assert list(lowbit.fake_quant(x, "e4m3fn", saturate=True)) == [1.25, 448.0, -448.0]
    assert lowbit.fake_quant(x, "e4m3fn", rounding="up")[0] == 1.375
    assert lowbit.fake_quant(x, "e4m3fn", rounding="toward-zero")[0] == 1.25
    with pytest.raises(ValueError, match="round"):
        lowbit.fake_quant(x, "e4m3fn", rounding="sideways")


def test_stochastic_rounding_is_reproducible_in_pieces():
    x = np.full(10_000, 0.3, dtype=np.float32)
    whole = lowbit.encode(x, "e2m1fn", rounding="stochastic", seed=9)
    parts = np.concatenate([lowbit.encode(x[:3000], "e2m1fn", rounding="stochastic", seed=9),
                            lowbit.encode(x[3000:], "e2m1fn", rounding="stochastic", seed=9,
                                          first_index=3000)])
    assert np.array_equal(whole, parts)
    mean = lowbit.decode(whole, "e2m1fn").mean()
    assert abs(mean - 0.3) < 0.01  # unbiased
    assert not np.array_equal(whole, lowbit.encode(x, "e2m1fn", rounding="stochastic", seed=10))


def test_half_inputs_read_in_place():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1000).astype(np.float32)
    b = x.astype(ml_dtypes.bfloat16)
    h = x.astype(np.float16)
    assert np.array_equal(lowbit.encode(b, "e4m3fn"), lowbit.encode(b.astype(np.float32), "e4m3fn"))
    assert np.array_equal(lowbit.encode(h, "e4m3fn"), lowbit.encode(h.astype(np.float32), "e4m3fn"))


class OnlyDlpack:
    """An array that offers nothing but DLPack, as a torch or JAX CPU tensor does."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_dlpack_objects_are_taken_without_numpy():
    x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(8, 8)
    assert np.array_equal(lowbit.fake_quant(OnlyDlpack(x), "e2m1fn"), lowbit.fake_quant(x, "e2m1fn"))
    assert lowbit.fake_quant(OnlyDlpack(x), "e2m1fn").shape == (8, 8)


def test_schemes_quantize_dequantize():
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((16, 256)) * 0.02).astype(np.float32)
    for scheme in ("mxfp4", "nvfp4", "int4_g128", "e4m3fn:channel", "ggml_q4_k", "nf4_g64"):
        q = lowbit.quantize(w, scheme)
        assert q["shape"] == [16, 256]
        back = lowbit.dequantize(q)
        assert np.array_equal(back, lowbit.fake_quant_scheme(w, scheme)), scheme
        assert q["bits_per_element"] == lowbit.scheme_bits(scheme, w.shape)
        assert np.mean((back - w) ** 2) < np.mean(w ** 2) / 10, scheme
    assert lowbit.quantize(w, "ggml_q4_0")["codes"].size == 16 * 256 // 32 * 18  # Q4_0 blocks
    assert lowbit.scheme_bits("mxfp4", (4096, 4096)) == 4.25
    assert "ggml_q4_k" in lowbit.schemes() and "e4m3fn" in lowbit.formats()
    with pytest.raises(ValueError, match="invalid scheme"):
        lowbit.quantize(w, "mxfp5")


def test_readme_quick_start_runs():
    text = open(README, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no Python quick-start"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "models", "smollm2-135m-instruct",
                     "SmolLM2-135M-Instruct.Q4_1.gguf")
TEXTS = [os.path.join(os.path.dirname(__file__), "..", "..", *p, "austen_emma.txt")
         for p in (("..", "shared", "corpora"), ("data", "corpora"))]


@pytest.fixture(scope="module")
def smollm2():
    text = next((t for t in TEXTS if os.path.exists(t)), None)
    if not os.path.exists(MODEL) or text is None:
        pytest.skip("needs SmolLM2 (scripts/install-models.sh) and the texts (scripts/install-data.sh)")
    return lowbit.load_model(MODEL), text


def test_models_load_evaluate_export(smollm2, tmp_path):
    m, text = smollm2
    assert m.parameters == 134515008 and "layers.0.q_proj" in m.sites
    assert m.tokenize("It is a truth")[:1] == lowbit.load_model(MODEL).tokenize("It is a truth")[:1]
    r = lowbit.evaluate(m, text, {"weights": "ggml_q8_0"}, max_tokens=1024, out=str(tmp_path / "s"))
    assert r["recipe"]["weights"] == "ggml_q8_0" and r["bits_per_linear_weight"] == 8.5
    assert 0 < r["kld"]["mean"] < 0.05 and r["ppl"] > 1  # Q8_0 is nearly lossless
    again = lowbit.sweep(m, text, [{"weights": "ggml_q8_0"}], str(tmp_path / "s"), max_tokens=1024)
    assert again["results"][0]["ppl"] == r["ppl"]  # from the cache
    e = lowbit.export_gguf(m, lowbit.recipe(weights="ggml_q4_0"), str(tmp_path / "q.gguf"))
    assert e["bits_per_linear_weight"] == 4.5
    assert {t["type"] for t in e["tensors"]} == {"F32", "Q4_0"}
    back = lowbit.load_model(str(tmp_path / "q.gguf"))
    assert back.parameters == m.parameters
    with pytest.raises(ValueError, match="no GGML type"):
        lowbit.export_gguf(m, {"weights": "e4m3fn:channel"}, str(tmp_path / "bad.gguf"))
    ct = lowbit.export_compressed_tensors(m, {"weights": "int4:g64:asym"}, str(tmp_path / "ct"))
    assert ct["format"] == "pack-quantized" and 4.5 < ct["bits_per_linear_weight"] < 4.6
    assert {t["dtype"] for t in ct["tensors"]} == {"F32", "I32", "I64"}
    w4 = lowbit.evaluate(m, text, {"weights": "int4:g64:asym"}, max_tokens=512)
    back_ct = lowbit.evaluate(lowbit.load_model(str(tmp_path / "ct")), text, {}, max_tokens=512)
    # the same weights; Hugging Face's RoPE pairing sums q·k in another order than the GGUF's
    assert back_ct["ppl"] == pytest.approx(w4["ppl"], rel=1e-5)
    with pytest.raises(ValueError, match="nvfp4_ct"):
        lowbit.export_compressed_tensors(m, {"weights": "nvfp4"}, str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="calibration"):
        lowbit.evaluate(m, text, {"weights": "mxfp4", "methods": ["gptq"]}, max_tokens=512)
