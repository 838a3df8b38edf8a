"""llama.cpp as a reference runtime, through llama-cpp-python's C API (never a dependency of
lowbit): load a GGUF, tokenize, and get the logits of every position of a window, so the bench/
scripts and labelled tests compute perplexity and KL divergence the way llama.cpp's perplexity tool
does (windows of ctx tokens, BOS first when the model adds one, the second half of each scored).

The extra CPU buffer types (AMX / repacked Q4_0 and Q8_0 weights) are turned off: in
llama-cpp-python 0.3.36 they die with SIGSEGV on this VM's Xeon, for llama.cpp's own Q4_0 files
as much as for lowbit's; the plain CPU kernels run every type.
"""
import ctypes
import math

import numpy as np
import llama_cpp


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):  # llama.cpp's load and graph logs would drown the results
    pass


class LlamaCpp:
    def __init__(self, path, n_ctx=512, threads=2):
        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        mp = llama_cpp.llama_model_default_params()
        mp.use_extra_bufts = False
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = cp.n_batch = cp.n_ubatch = n_ctx
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, cp)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = n_ctx
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)
        self.adds_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))

    def close(self):
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)

    def tokenize(self, text):
        data = text.encode("utf-8")
        buf = (llama_cpp.llama_token * (len(data) + 16))()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, False)
        if n < 0:
            raise RuntimeError("llama_tokenize: buffer too small")
        return list(buf[:n])

    def logits(self, tokens):
        """Logits [len(tokens), vocab] of one window (the KV cache cleared first)."""
        n = len(tokens)
        batch = llama_cpp.llama_batch_init(n, 0, 1)
        try:
            for i, t in enumerate(tokens):
                batch.token[i] = t
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            batch.n_tokens = n
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
            if llama_cpp.llama_decode(self.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            ptr = llama_cpp.llama_get_logits(self.ctx)
            return np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab)).astype(np.float64)
        finally:
            llama_cpp.llama_batch_free(batch)

    def window_log_probs(self, tokens, ctx, max_tokens):
        """Per window, the log-softmax rows of the scored positions (the second half) and the
        tokens they predict: what perplexity and KL are computed from."""
        windows = min(len(tokens), max_tokens) // ctx
        for w in range(windows):
            win = tokens[w * ctx:(w + 1) * ctx]
            batch = list(win)
            if self.adds_bos:
                batch[0] = self.bos
            z = self.logits(batch)[ctx // 2:ctx - 1]
            z = z - z.max(axis=1, keepdims=True)
            yield z - np.log(np.exp(z).sum(axis=1, keepdims=True)), np.asarray(win[ctx // 2 + 1:ctx])


def perplexity_and_kl(runner, tokens, ctx, max_tokens, reference=None):
    """llama.cpp's perplexity of `tokens`, and with `reference` (another LlamaCpp on the same
    tokenizer) the mean KL(reference || runner) over the scored positions and its top-1 agreement."""
    nll, count, kl, top1 = 0.0, 0, 0.0, 0
    ref_windows = reference.window_log_probs(tokens, ctx, max_tokens) if reference else None
    for logp, targets in runner.window_log_probs(tokens, ctx, max_tokens):
        nll -= logp[np.arange(len(targets)), targets].sum()
        count += len(targets)
        if ref_windows is not None:
            ref, _ = next(ref_windows)
            kl += (np.exp(ref) * (ref - logp)).sum()
            top1 += int((ref.argmax(axis=1) == logp.argmax(axis=1)).sum())
    out = {"ppl": math.exp(nll / count), "scored": count}
    if reference:
        out["kl"] = kl / count
        out["top1"] = top1 / count
    return out
