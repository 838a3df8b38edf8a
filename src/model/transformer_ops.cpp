#include "model/transformer_ops.h"

#include <algorithm>
#include <cmath>

namespace lowbit::model {

void rms_norm(const float* x, const float* weight, int n, int dim, float eps, float* out) {
#pragma omp parallel for schedule(static) if (n > 1)
  for (int r = 0; r < n; ++r) {
    const float* xr = x + size_t(r) * size_t(dim);
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / dim + double(eps)));
    float* o = out + size_t(r) * size_t(dim);
    for (int i = 0; i < dim; ++i) o[i] = xr[i] * inv * weight[i];
  }
}

void layer_norm(const float* x, const float* weight, const float* bias, int n, int dim, float eps,
                float* out) {
#pragma omp parallel for schedule(static) if (n > 1)
  for (int r = 0; r < n; ++r) {
    const float* xr = x + size_t(r) * size_t(dim);
    double sum = 0;
    for (int i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / dim;
    double var = 0;
    for (int i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const double inv = 1.0 / std::sqrt(var / dim + double(eps));
    float* o = out + size_t(r) * size_t(dim);
    for (int i = 0; i < dim; ++i) o[i] = float((xr[i] - mean) * inv) * weight[i] + bias[i];
  }
}

void add_in_place(float* x, const float* y, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void swiglu_in_place(float* gate, const float* up, size_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_in_place(float* x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * float(M_SQRT1_2)));
}

void geglu_in_place(float* gate, const float* up, size_t n) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch's gelu(approximate="tanh").
  const float k = 0.7978845608028654f;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; ++i) {
    const float x = gate[i];
    gate[i] = 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x))) * up[i];
  }
}

void softmax_prefix(float* row, int valid, int total) {
  softmax_window(row, 0, valid, total);
}

void softmax_window(float* row, int first, int valid, int total) {
  std::fill(row, row + first, 0.0f);
  float max = row[first];
  for (int j = first + 1; j < valid; ++j) max = std::max(max, row[j]);
  float sum = 0;
  for (int j = first; j < valid; ++j) {
    row[j] = std::exp(row[j] - max);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (int j = first; j < valid; ++j) row[j] *= inv;
  std::fill(row + valid, row + total, 0.0f);
}

RopeTable::RopeTable(const std::vector<float>& inv_freq, int pos0, int n)
    : half_(int(inv_freq.size())) {
  cos_.resize(size_t(n) * size_t(half_));
  sin_.resize(cos_.size());
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < half_; ++i) {
      const double angle = double(pos0 + r) * double(inv_freq[size_t(i)]);
      cos_[size_t(r) * size_t(half_) + size_t(i)] = float(std::cos(angle));
      sin_[size_t(r) * size_t(half_) + size_t(i)] = float(std::sin(angle));
    }
}

void RopeTable::apply(float* x, int n, int heads, int head_dim, RopeStyle style) const {
  // Pair i of a head is (2i, 2i+1) for adjacent pairs, (i, i + head_dim/2) for the half split.
  const int stride = style == RopeStyle::AdjacentPairs ? 2 : 1;
  const int partner = style == RopeStyle::AdjacentPairs ? 1 : head_dim / 2;
#pragma omp parallel for schedule(static) if (n > 1)
  for (int r = 0; r < n; ++r) {
    const float* c = cos_.data() + size_t(r) * size_t(half_);
    const float* s = sin_.data() + size_t(r) * size_t(half_);
    for (int h = 0; h < heads; ++h) {
      float* v = x + (size_t(r) * size_t(heads) + size_t(h)) * size_t(head_dim);
      for (int i = 0; i < half_; ++i) {
        const float a = v[i * stride], b = v[i * stride + partner];
        v[i * stride] = a * c[i] - b * s[i];
        v[i * stride + partner] = a * s[i] + b * c[i];
      }
    }
  }
}

}  // namespace lowbit::model
