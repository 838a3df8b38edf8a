// lowbit/train/ops.h — the LLaMA runtime's operations with their backward beside each forward, in
// float32 (training) and float64 (the gradient checks), for a batch of B sequences of S tokens
// laid out as N = B·S rows. Every backward takes what its forward saved and the gradient of the
// forward's output; "dw +=" accumulates (gradient accumulation, tied weights), "dx =" overwrites.
// Row-parallel loops use OpenMP with static schedules and every reduction has a fixed order, so
// results depend on the thread count only through OpenBLAS.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/model/llama.h"

namespace lowbit::train {

// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major (cblas_sgemm / cblas_dgemm).
template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc);

// y = x / rms(x) · w per row of width d; inv_rms[r] = 1 / sqrt(mean(x[r]²) + eps) is saved.
template <typename T>
void rms_norm_forward(const T* x, const T* w, int n, int d, T eps, T* y, T* inv_rms);
// dx = inv · (dy·w − x · inv² · mean(dy·w·x)), dw += Σ_r dy · x · inv.
template <typename T>
void rms_norm_backward(const T* x, const T* w, const T* inv_rms, const T* dy, int n, int d, T* dx,
                       T* dw);

// RoPE for positions 0 .. seq − 1 of every sequence: row r is at position r mod seq.
template <typename T>
class Rope {
 public:
  Rope(const std::vector<float>& inv_freq, int seq, model::RopeStyle style);
  // Rotates n rows of `heads` heads of head_dim in place; backward rotates by the negative angle
  // (the transpose of a rotation is its inverse).
  void forward(T* x, int n, int heads, int head_dim) const { rotate(x, n, heads, head_dim, 1); }
  void backward(T* dx, int n, int heads, int head_dim) const { rotate(dx, n, heads, head_dim, -1); }

 private:
  void rotate(T* x, int n, int heads, int head_dim, int sign) const;
  int seq_, half_;
  model::RopeStyle style_;
  std::vector<T> cos_, sin_;  // [seq, half]
};

// Shapes of causal grouped-query attention over B sequences of S tokens.
struct AttentionShape {
  int batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
  double scale = 0;  // multiplies q·k
  int q_dim() const { return heads * head_dim; }
  int kv_dim() const { return kv_heads * head_dim; }
  size_t probs_size() const { return size_t(batch) * heads * seq * seq; }
};

// out[N, q_dim] = softmax(scale · q kᵀ, causal) v per sequence and head; query head h reads key
// head h / (heads / kv_heads). probs [B, heads, S, S] is saved (zeros above the diagonal).
template <typename T>
void attention_forward(const AttentionShape& a, const T* q, const T* k, const T* v, T* probs,
                       T* out);
// dq, dk, dv = (overwritten) from dout and what the forward saved.
template <typename T>
void attention_backward(const AttentionShape& a, const T* q, const T* k, const T* v, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv);

// h = silu(g) · u, element-wise over n values.
template <typename T>
void swiglu_forward(const T* g, const T* u, size_t n, T* h);
template <typename T>
void swiglu_backward(const T* g, const T* u, const T* dh, size_t n, T* dg, T* du);

// Cross-entropy of rows of logits [n, vocab] against targets (a target < 0 is not scored).
// Returns the sum of −log softmax(logits)[target] over scored rows; dlogits (may alias logits)
// = (softmax − onehot) · grad_scale for scored rows, 0 for the rest. Sums in double.
template <typename T>
double cross_entropy(const T* logits, const int32_t* targets, int n, int vocab, T grad_scale,
                     T* dlogits);

}  // namespace lowbit::train
