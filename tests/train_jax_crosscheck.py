#!/usr/bin/env python3
"""The training backward against an independent autodiff: JAX differentiates a plain jax.numpy
LLaMA (written here from the definitions, nothing shared with lowbit) in float64, and every
gradient `lowbit train --gradients-out` writes must agree with it to 1e-9 relative to the
tensor's largest gradient (both are float64; the finite-difference test checks the same
backward to 1e-6 in C++).

Two models: a random initialisation (untied head, Hugging Face's half-split RoPE) and a
fine-tuning start from the tests' tiny GGUF (tied head, GGUF's adjacent-pair RoPE).

Exits 77 (ctest: skipped) with the reason when numpy or jax is missing.
"""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

LOWBIT, WRITE_TINY = sys.argv[1], sys.argv[2]
try:
    import numpy as np
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError as e:
    print(f"SKIPPED: needs numpy and jax ({e}); pip install jax")
    sys.exit(77)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    types = {"F64": np.float64, "I32": np.int32}
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=types[t["dtype"]]).reshape(t["shape"])
    return out, meta


def loss_fn(params, cfg, tokens, targets):
    d, H, KV, hd = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    eps = cfg["norm_eps"]
    B, S = tokens.shape
    inv = np.asarray(cfg["rope_inv_freq"], dtype=np.float64)
    angle = np.arange(S, dtype=np.float64)[:, None] * inv[None, :]
    # lowbit rounds cos / sin to float32 in both precisions (to match its inference runtime)
    cos = jnp.asarray(np.cos(angle).astype(np.float32).astype(np.float64))
    sin = jnp.asarray(np.sin(angle).astype(np.float32).astype(np.float64))

    def rms(x, w):
        return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope(x):  # x [B, S, heads, hd]
        if cfg["rope_style"] == "half_split":
            a, b = x[..., : hd // 2], x[..., hd // 2 :]
        else:
            a, b = x[..., 0::2], x[..., 1::2]
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        ra, rb = a * c - b * s, a * s + b * c
        if cfg["rope_style"] == "half_split":
            return jnp.concatenate([ra, rb], axis=-1)
        return jnp.stack([ra, rb], axis=-1).reshape(x.shape)

    x = params["model.embed_tokens.weight"][tokens]
    causal = np.tril(np.ones((S, S), dtype=bool))
    for l in range(cfg["layers"]):
        p = lambda n: params[f"model.layers.{l}.{n}.weight"]
        h = rms(x, p("input_layernorm"))
        q = rope((h @ p("self_attn.q_proj").T).reshape(B, S, H, hd))
        k = rope((h @ p("self_attn.k_proj").T).reshape(B, S, KV, hd))
        v = (h @ p("self_attn.v_proj").T).reshape(B, S, KV, hd)
        k = jnp.repeat(k, H // KV, axis=2)  # query head h reads key head h // (H / KV)
        v = jnp.repeat(v, H // KV, axis=2)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(float(hd))
        scores = jnp.where(causal[None, None], scores, -jnp.inf)
        att = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
        x = x + att.reshape(B, S, H * hd) @ p("self_attn.o_proj").T
        h = rms(x, p("post_attention_layernorm"))
        g, u = h @ p("mlp.gate_proj").T, h @ p("mlp.up_proj").T
        x = x + (jax.nn.silu(g) * u) @ p("mlp.down_proj").T
    x = rms(x, params["model.norm.weight"])
    head = params["model.embed_tokens.weight"] if cfg["tied"] else params["lm_head.weight"]
    logits = x @ head.T
    lse = jax.scipy.special.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, jnp.maximum(targets, 0)[..., None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(targets >= 0, lse - picked, 0.0))


def check(name, path):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["lowbit.gradient_check"])
    tokens, targets = tensors.pop("tokens"), tensors.pop("targets")
    params = {k: jnp.asarray(v) for k, v in tensors.items() if not k.startswith("grad.")}
    loss, grads = jax.value_and_grad(loss_fn)(params, cfg, tokens, targets)
    rel = abs(float(loss) - cfg["loss_sum"]) / abs(cfg["loss_sum"])
    print(f"{name}: loss sum lowbit {cfg['loss_sum']:.12f}, JAX {float(loss):.12f} (rel {rel:.1e})")
    ok = rel < 1e-12
    worst = 0.0
    for k, g in grads.items():
        ours = tensors["grad." + k]
        err = float(np.max(np.abs(np.asarray(g) - ours)) / max(np.max(np.abs(np.asarray(g))), 1e-300))
        worst = max(worst, err)
        if not err < 1e-9:
            print(f"  FAIL {k}: max |lowbit - JAX| / max |JAX| = {err:.2e}")
            ok = False
    print(f"  {len(grads)} tensors; largest error relative to a tensor's largest gradient {worst:.1e}")
    return ok


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny.gguf")
        subprocess.run([WRITE_TINY, tiny], check=True)
        rng = random.Random(3)
        words = "the cat sat on a mat and dog ran to house garden in she said".split()
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w") as f:
            f.write("".join(" ".join(rng.choice(words) for _ in range(6)) + ".\n" for _ in range(400)))
        base = {"tokenizer": tiny, "data": {"train": corpus, "seq_len": 16}, "batch": 3, "out": tmp}
        runs = {
            "random init, untied, half-split RoPE": dict(
                base,
                model={"dim": 32, "layers": 2, "heads": 4, "kv_heads": 2, "hidden": 48,
                       "context": 32, "tied": False, "init_std": 0.3},
            ),
            # fine-tuning uses the model's own tokenizer (naming one besides is refused)
            "tiny GGUF, tied, adjacent-pair RoPE": dict(
                {k: v for k, v in base.items() if k != "tokenizer"}, model={"init": tiny}),
        }
        ok = True
        for i, (name, cfg) in enumerate(runs.items()):
            cfg_path, out = os.path.join(tmp, f"run{i}.json"), os.path.join(tmp, f"grads{i}.safetensors")
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            subprocess.run([LOWBIT, "train", "--config", cfg_path, "--gradients-out", out],
                           check=True, stdout=subprocess.DEVNULL)
            ok = check(name, out) and ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
