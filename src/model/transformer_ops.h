// The element-wise and row-wise pieces of the transformer runtimes (everything that is not a
// matrix product), parallel over rows with OpenMP.
#pragma once

#include <cstddef>
#include <vector>

#include "lowbit/model/llama.h"

namespace lowbit::model {

// out[r] = x[r] / sqrt(mean(x[r]²) + eps) * weight, for n rows of width dim (sums in double).
void rms_norm(const float* x, const float* weight, int n, int dim, float eps, float* out);
// out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias (population variance, sums in double).
void layer_norm(const float* x, const float* weight, const float* bias, int n, int dim, float eps,
                float* out);
void add_in_place(float* x, const float* y, size_t n);
// gate[i] = silu(gate[i]) * up[i]
void swiglu_in_place(float* gate, const float* up, size_t n);
// gate[i] = gelu_tanh(gate[i]) * up[i], GELU in its tanh approximation (Gemma's GeGLU)
void geglu_in_place(float* gate, const float* up, size_t n);
// x = x * Φ(x), the exact (erf) GELU that BERT uses.
void gelu_in_place(float* x, size_t n);
// Softmax over row[0, valid), zeros in row[valid, total): the causal mask (valid = position + 1)
// and the padding mask (valid = sequence length) alike.
void softmax_prefix(float* row, int valid, int total);
// The same over row[first, valid), zeros elsewhere: causal attention through a sliding window.
void softmax_window(float* row, int first, int valid, int total);

// cos / sin of position x frequency for n positions from pos0, computed once per forward.
class RopeTable {
 public:
  RopeTable(const std::vector<float>& inv_freq, int pos0, int n);
  // Rotates n rows of `heads` heads of head_dim, row r at position pos0 + r.
  void apply(float* x, int n, int heads, int head_dim, RopeStyle style) const;

 private:
  int half_;
  std::vector<float> cos_, sin_;  // [n, half]
};

}  // namespace lowbit::model
