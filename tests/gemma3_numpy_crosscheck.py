#!/usr/bin/env python3
"""Cross-check of lowbit's Gemma 3 against an independent numpy forward: the 270M GGUF is read
and dequantized with gguf-py (llama.cpp's own Python package: Q8_0, Q5_0, Q4_K, Q6_K), and a
plain float64 numpy Gemma 3 written from the architecture's definition (embeddings scaled by
sqrt(dim); per layer RMSNorm, q/k/v, QK-norm per head, rotate-half RoPE, attention — every sixth
layer global with the file's theta, the others local through a 512-position sliding window with
theta 10000 —, the output projection and its post-norm, the residual; RMSNorm, GeGLU with GELU's
tanh form, the down projection and its post-norm, the residual; the final norm and the tied head)
computes the logits of a prompt longer than the window. `lowbit generate --logits-out` must agree
to float32 accuracy at every position, so the sliding window, both RoPE thetas, the norms and
the activation are each checked.

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
GEMMA = os.path.join(MODELS, "gemma3-270m", "gemma-3-270m-q4_k_m.gguf")
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpora", "austen_prideprejudice.txt")

try:
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
except ImportError as e:
    print(f"SKIPPED: needs numpy and gguf ({e}); pip install gguf")
    sys.exit(77)
for path, what in ((GEMMA, "Gemma 3 270M (scripts/install-models.sh)"), (CORPUS, "../shared/corpora")):
    if not os.path.exists(path):
        print(f"SKIPPED: {what} not found at {path}")
        sys.exit(77)


def main():
    r = GGUFReader(GEMMA)

    def scalar(key):
        f = r.fields[key]
        return f.parts[f.data[0]][0]

    n_layers = int(scalar("gemma3.block_count"))
    n_heads = int(scalar("gemma3.attention.head_count"))
    n_kv = int(scalar("gemma3.attention.head_count_kv"))
    hd = int(scalar("gemma3.attention.key_length"))
    eps = float(scalar("gemma3.attention.layer_norm_rms_epsilon"))
    theta_global = float(scalar("gemma3.rope.freq_base"))
    window = int(scalar("gemma3.attention.sliding_window"))
    theta_local, pattern = 10000.0, 6
    W = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))  # row-major
        W[t.name] = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
    dim = W["token_embd.weight"].shape[1]

    # A prompt of more than one window (the first ~2600 characters of the novel, one line).
    prompt = " ".join(open(CORPUS, encoding="utf-8").read()[3000:5600].split())
    ids = json.loads(subprocess.run([LOWBIT, "tokenize", "--model", GEMMA, prompt], check=True,
                                    capture_output=True, text=True).stdout)
    n = len(ids)
    if n <= window:
        print(f"the prompt has {n} tokens, not more than the window of {window}")
        sys.exit(1)

    def rmsnorm(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    def rope(v, theta):  # v [n, heads, hd], rotate-half pairing
        inv = theta ** (-np.arange(0, hd, 2) / hd)
        ang = np.arange(n)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = v[..., : hd // 2], v[..., hd // 2:]
        return np.concatenate([a * c - b * s, b * c + a * s], -1)

    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    causal = np.where(j > i, -np.inf, 0.0)
    local = np.where((j > i) | (i - j >= window), -np.inf, 0.0)

    def gelu_tanh(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

    x = W["token_embd.weight"][ids].astype(np.float64) * np.sqrt(dim)
    for l in range(n_layers):
        p = f"blk.{l}."
        is_local = l % pattern < pattern - 1
        theta = theta_local if is_local else theta_global
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = rmsnorm((h @ W[p + "attn_q.weight"].T).reshape(n, n_heads, hd), W[p + "attn_q_norm.weight"])
        k = rmsnorm((h @ W[p + "attn_k.weight"].T).reshape(n, n_kv, hd), W[p + "attn_k_norm.weight"])
        v = (h @ W[p + "attn_v.weight"].T).reshape(n, n_kv, hd)
        q, k = rope(q, theta), rope(k, theta)
        rep = n_heads // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("ihd,jhd->hij", q, k) / np.sqrt(hd) + (local if is_local else causal)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        att = np.einsum("hij,jhd->ihd", s, v).reshape(n, n_heads * hd)
        x = x + rmsnorm(att @ W[p + "attn_output.weight"].T, W[p + "post_attention_norm.weight"])
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        m = gelu_tanh(h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)
        x = x + rmsnorm(m @ W[p + "ffn_down.weight"].T, W[p + "post_ffw_norm.weight"])
    want = rmsnorm(x, W["output_norm.weight"]) @ W["token_embd.weight"].T.astype(np.float64)

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.npy")
        subprocess.run([LOWBIT, "generate", "--model", GEMMA, "-n", "1", "--prompt", prompt, "--logits-out", out],
                       check=True, capture_output=True)
        got = np.load(out).astype(np.float64)
    if got.shape != want.shape:
        print(f"shape mismatch: lowbit {got.shape}, numpy {want.shape}")
        sys.exit(1)
    rel = np.abs(got - want).max() / np.abs(want).max()
    beyond = np.abs(got[window:] - want[window:]).max() / np.abs(want).max()
    same_top1 = (got.argmax(-1) == want.argmax(-1)).mean()
    print(f"Gemma 3 270M, {n} tokens (window {window}): max |lowbit - numpy| / max |logit| = {rel:.2e} "
          f"({beyond:.2e} past the window); top-1 agreement {same_top1:.4f}")
    if rel > 1e-4 or same_top1 < 0.999:
        print("lowbit's Gemma 3 forward differs from the numpy reference")
        sys.exit(1)
    print("lowbit matches the independent numpy forward of Gemma 3")


if __name__ == "__main__":
    main()
