#!/usr/bin/env python3
"""Cross-check of the whole real-model path against an independent numpy implementation:
SmolLM2's GGUF is read and dequantized with gguf-py (llama.cpp's own Python package), wq / wk
are un-permuted back to the Hugging Face layout, and a plain numpy LLaMA forward in the Hugging
Face convention (rotate-half RoPE) computes the logits of a prompt; `lowbit generate
--logits-out` must agree to float32 accuracy. This checks lowbit's reading of the GGUF metadata
(theta, eps, heads, tied head), its RoPE pairing, and its forward, end to end.

Then the recipe path: every Linear weight is rounded to FP8 E4M3 per output channel with
ml_dtypes (scale = absmax / 448), the numpy forward runs again, and `lowbit generate --w
fp8_channel` must agree with it the same way. The KL divergence between the two numpy runs is
printed: it is what FP8 weights cost this model, measured without any lowbit code.

Exits 77 (ctest: skipped) with the reason when numpy / gguf / the model are missing.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOWBIT = sys.argv[1]
MODELS = os.environ.get("LOWBIT_MODELS", os.path.join(HERE, "..", "models"))
SMOL = os.path.join(MODELS, "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."

try:
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
except ImportError as e:
    print(f"SKIPPED: needs numpy and gguf ({e}); pip install gguf")
    sys.exit(77)
if not os.path.exists(SMOL):
    print(f"SKIPPED: SmolLM2 not installed at {SMOL}; run scripts/install-models.sh")
    sys.exit(77)


def main():
    r = GGUFReader(SMOL)
    meta = {k: f for k, f in r.fields.items()}

    def scalar(key):
        f = meta[key]
        return f.parts[f.data[0]][0]

    n_layers = int(scalar("llama.block_count"))
    n_heads = int(scalar("llama.attention.head_count"))
    n_kv = int(scalar("llama.attention.head_count_kv"))
    eps = float(scalar("llama.attention.layer_norm_rms_epsilon"))
    theta = float(scalar("llama.rope.freq_base"))
    W = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))  # row-major
        W[t.name] = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
    dim = W["token_embd.weight"].shape[1]
    hd = dim // n_heads

    def unpermute(w, heads):  # inverse of llama.cpp's convert permute
        return w.reshape(heads, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)

    ids = json.loads(subprocess.run([LOWBIT, "tokenize", "--model", SMOL, PROMPT], check=True,
                                    capture_output=True, text=True).stdout)
    n = len(ids)
    def rmsnorm(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    inv = theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v, heads):
        v = v.reshape(n, heads, hd)
        a, b = v[..., : hd // 2], v[..., hd // 2:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([a * c - b * s, b * c + a * s], -1)

    mask = np.triu(np.full((n, n), -np.inf), 1)

    def forward(W):
        x = W["token_embd.weight"][ids].astype(np.float64)
        for l in range(n_layers):
            p = f"blk.{l}."
            h = rmsnorm(x, W[p + "attn_norm.weight"])
            q = rope(h @ unpermute(W[p + "attn_q.weight"], n_heads).T, n_heads)
            k = rope(h @ unpermute(W[p + "attn_k.weight"], n_kv).T, n_kv)
            v = (h @ W[p + "attn_v.weight"].T).reshape(n, n_kv, hd)
            rep = n_heads // n_kv
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            s = np.einsum("ihd,jhd->hij", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            att = np.einsum("hij,jhd->ihd", s, v).reshape(n, dim)
            x = x + att @ W[p + "attn_output.weight"].T
            h = rmsnorm(x, W[p + "ffn_norm.weight"])
            g = h @ W[p + "ffn_gate.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        head = W.get("output.weight", W["token_embd.weight"])
        return rmsnorm(x, W["output_norm.weight"]) @ head.T

    def lowbit_logits(*recipe):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "logits.npy")
            subprocess.run([LOWBIT, "generate", "--model", SMOL, "-n", "1", "--prompt", PROMPT, "--logits-out", out,
                            *recipe], check=True, capture_output=True)
            return np.load(out).astype(np.float64)

    def compare(what, got, want):
        if got.shape != want.shape:
            print(f"{what}: shape mismatch: lowbit {got.shape}, numpy {want.shape}")
            sys.exit(1)
        rel = np.abs(got - want).max() / np.abs(want).max()
        same_top1 = (got.argmax(-1) == want.argmax(-1)).mean()
        print(f"{what}, {n} tokens: max |lowbit - numpy| / max |logit| = {rel:.2e}; top-1 agreement {same_top1:.3f}")
        if rel > 1e-4 or same_top1 < 1.0:
            print(f"{what}: lowbit's SmolLM2 forward differs from the numpy reference")
            sys.exit(1)

    want = forward(W)
    compare("full precision", lowbit_logits(), want)
    try:
        import ml_dtypes
    except ImportError as e:
        print(f"SKIPPED the FP8 recipe check: needs ml_dtypes ({e})")
        print("lowbit matches the independent numpy forward of SmolLM2")
        return
    linear = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    Q = dict(W)
    for name, w in W.items():
        if name.split(".")[-2] in linear:
            scale = (np.abs(w).max(axis=1, keepdims=True) / np.float32(448)).astype(np.float32)
            Q[name] = ((w / scale).astype(ml_dtypes.float8_e4m3fn).astype(np.float32) * scale).astype(np.float32)
    want_q = forward(Q)
    compare("FP8 E4M3 weights per channel", lowbit_logits("--w", "fp8_channel"), want_q)

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))
    p, q = log_softmax(want), log_softmax(want_q)
    kl = (np.exp(p) * (p - q)).sum(-1).mean()
    print(f"numpy alone: mean KL(full precision || FP8 E4M3 channel weights) = {kl:.5f} nats over {n} positions")
    print("lowbit matches the independent numpy forward of SmolLM2, in full precision and with FP8 weights")


if __name__ == "__main__":
    main()
