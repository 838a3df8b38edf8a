// The training operations (lowbit/train/ops.h): each forward beside its backward, instantiated for
// float (training) and double (gradient checks). Loops are plain so that one definition serves
// both types; the matrix products of the Linears go through gemm (OpenBLAS).
#include "lowbit/train/ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace lowbit::train {

template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                  const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void rms_norm_forward(const T* x, const T* w, int n, int d, T eps, T* y, T* inv_rms) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    const T* xr = x + size_t(r) * d;
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += double(xr[j]) * double(xr[j]);
    const T inv = T(1.0 / std::sqrt(ss / d + double(eps)));
    inv_rms[r] = inv;
    T* yr = y + size_t(r) * d;
    for (int j = 0; j < d; ++j) yr[j] = xr[j] * inv * w[j];
  }
}

template <typename T>
void rms_norm_backward(const T* x, const T* w, const T* inv_rms, const T* dy, int n, int d, T* dx,
                       T* dw) {
  // y_j = x_j·inv·w_j with inv = (mean x² + eps)^(-1/2), so ∂inv/∂x_k = −inv³·x_k / d and
  // dx_k = inv·g_k − x_k·inv³·(Σ_j g_j x_j) / d for g = dy·w.
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    const T* xr = x + size_t(r) * d;
    const T* dyr = dy + size_t(r) * d;
    const double inv = inv_rms[r];
    double gx = 0;
    for (int j = 0; j < d; ++j) gx += double(dyr[j]) * double(w[j]) * double(xr[j]);
    const T c = T(inv * inv * inv * gx / d);
    T* dxr = dx + size_t(r) * d;
    for (int j = 0; j < d; ++j) dxr[j] = T(inv) * dyr[j] * w[j] - xr[j] * c;
  }
  // The weight's gradient sums over rows: columns split across threads, rows in order.
  constexpr int kCols = 64;
#pragma omp parallel for schedule(static)
  for (int j0 = 0; j0 < d; j0 += kCols) {
    const int j1 = std::min(d, j0 + kCols);
    for (int r = 0; r < n; ++r)
      for (int j = j0; j < j1; ++j)
        dw[j] += dy[size_t(r) * d + j] * x[size_t(r) * d + j] * inv_rms[r];
  }
}

template <typename T>
Rope<T>::Rope(const std::vector<float>& inv_freq, int seq, model::RopeStyle style)
    : seq_(seq), half_(int(inv_freq.size())), style_(style) {
  cos_.resize(size_t(seq) * half_);
  sin_.resize(cos_.size());
  for (int p = 0; p < seq; ++p)
    for (int i = 0; i < half_; ++i) {  // the same angles as the runtime's RopeTable
      const double angle = double(p) * double(inv_freq[size_t(i)]);
      cos_[size_t(p) * half_ + i] = T(float(std::cos(angle)));
      sin_[size_t(p) * half_ + i] = T(float(std::sin(angle)));
    }
}

template <typename T>
void Rope<T>::rotate(T* x, int n, int heads, int head_dim, int sign) const {
  // Pair i of a head is (2i, 2i+1) for adjacent pairs, (i, i + head_dim/2) for the half split.
  const int stride = style_ == model::RopeStyle::AdjacentPairs ? 2 : 1;
  const int partner = style_ == model::RopeStyle::AdjacentPairs ? 1 : head_dim / 2;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    const T* c = cos_.data() + size_t(r % seq_) * half_;
    const T* s = sin_.data() + size_t(r % seq_) * half_;
    for (int h = 0; h < heads; ++h) {
      T* v = x + (size_t(r) * heads + h) * head_dim;
      for (int i = 0; i < half_; ++i) {
        const T a = v[i * stride], b = v[i * stride + partner], si = sign * s[i];
        v[i * stride] = a * c[i] - b * si;
        v[i * stride + partner] = a * si + b * c[i];
      }
    }
  }
}

// Attention runs per sequence and head as matrix products (OpenBLAS runs single-threaded inside
// the OpenMP loop): the causal mask is applied to the square of scores, whose upper half is
// computed and discarded — at these lengths cheaper than a loop over the lower half.
template <typename T>
void attention_forward(const AttentionShape& a, const T* q, const T* k, const T* v, T* probs,
                       T* out) {
  const int S = a.seq, hd = a.head_dim, qd = a.q_dim(), kvd = a.kv_dim();
  const int group = a.heads / a.kv_heads;
#pragma omp parallel for schedule(static)
  for (int task = 0; task < a.batch * a.heads; ++task) {
    const int b = task / a.heads, h = task % a.heads, g = h / group;
    T* P = probs + size_t(task) * S * S;
    const T* qh = q + size_t(b) * S * qd + size_t(h) * hd;
    const T* kg = k + size_t(b) * S * kvd + size_t(g) * hd;
    const T* vg = v + size_t(b) * S * kvd + size_t(g) * hd;
    gemm<T>(false, true, S, S, hd, T(a.scale), qh, qd, kg, kvd, T(0), P, S);  // scale · q kᵀ
    for (int i = 0; i < S; ++i) {
      T* p = P + size_t(i) * S;
      const T top = *std::max_element(p, p + i + 1);
      double sum = 0;
      for (int j = 0; j <= i; ++j) {
        p[j] = T(std::exp(double(p[j] - top)));
        sum += double(p[j]);
      }
      const T inv = T(1.0 / sum);
      for (int j = 0; j <= i; ++j) p[j] *= inv;
      std::fill(p + i + 1, p + S, T(0));
    }
    gemm<T>(false, false, S, hd, S, T(1), P, S, vg, kvd, T(0),
            out + size_t(b) * S * qd + size_t(h) * hd, qd);
  }
}

template <typename T>
void attention_backward(const AttentionShape& a, const T* q, const T* k, const T* v, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv) {
  const int S = a.seq, hd = a.head_dim, qd = a.q_dim(), kvd = a.kv_dim();
  const int group = a.heads / a.kv_heads;
  // One task per sequence and key head: the query heads that share a key head add into the same
  // dk, dv rows, so they run in one task, in order.
#pragma omp parallel for schedule(static)
  for (int task = 0; task < a.batch * a.kv_heads; ++task) {
    const int b = task / a.kv_heads, g = task % a.kv_heads;
    const T* kg = k + size_t(b) * S * kvd + size_t(g) * hd;
    const T* vg = v + size_t(b) * S * kvd + size_t(g) * hd;
    T* dkg = dk + size_t(b) * S * kvd + size_t(g) * hd;
    T* dvg = dv + size_t(b) * S * kvd + size_t(g) * hd;
    std::vector<T> ds(size_t(S) * size_t(S));
    for (int h = g * group; h < (g + 1) * group; ++h) {
      const T* P = probs + (size_t(b) * a.heads + h) * S * S;
      const T* qh = q + size_t(b) * S * qd + size_t(h) * hd;
      const T* doh = dout + size_t(b) * S * qd + size_t(h) * hd;
      const T beta = h == g * group ? T(0) : T(1);  // the group's first head overwrites dk, dv
      gemm<T>(true, false, S, hd, S, T(1), P, S, doh, qd, beta, dvg, kvd);  // dv += Pᵀ dout
      gemm<T>(false, true, S, S, hd, T(1), doh, qd, vg, kvd, T(0), ds.data(), S);  // dP
      // Softmax backward: dS_ij = P_ij (dP_ij − Σ_l P_il dP_il), zero above the diagonal.
      for (int i = 0; i < S; ++i) {
        const T* p = P + size_t(i) * S;
        T* d = ds.data() + size_t(i) * S;
        double row = 0;
        for (int j = 0; j <= i; ++j) row += double(p[j]) * double(d[j]);
        for (int j = 0; j <= i; ++j) d[j] = p[j] * (d[j] - T(row));
        std::fill(d + i + 1, d + S, T(0));
      }
      gemm<T>(false, false, S, hd, S, T(a.scale), ds.data(), S, kg, kvd, T(0),
              dq + size_t(b) * S * qd + size_t(h) * hd, qd);  // dq = scale · dS k
      gemm<T>(true, false, S, hd, S, T(a.scale), ds.data(), S, qh, qd, beta, dkg, kvd);  // dk
    }
  }
}

template <typename T>
void swiglu_forward(const T* g, const T* u, size_t n, T* h) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T sig = T(1) / (T(1) + std::exp(-g[i]));
    h[i] = g[i] * sig * u[i];
  }
}

template <typename T>
void swiglu_backward(const T* g, const T* u, const T* dh, size_t n, T* dg, T* du) {
  // silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T sig = T(1) / (T(1) + std::exp(-g[i]));
    const T silu = g[i] * sig;
    dg[i] = dh[i] * u[i] * sig * (T(1) + g[i] * (T(1) - sig));
    du[i] = dh[i] * silu;
  }
}

template <typename T>
double cross_entropy(const T* logits, const int32_t* targets, int n, int vocab, T grad_scale,
                     T* dlogits) {
  std::vector<double> row_loss(size_t(n), 0.0);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    const T* l = logits + size_t(r) * vocab;
    T* dl = dlogits + size_t(r) * vocab;
    const int32_t t = targets[r];
    if (t < 0) {
      std::fill(dl, dl + vocab, T(0));
      continue;
    }
    const T top = *std::max_element(l, l + vocab);
    double sum = 0;
    for (int j = 0; j < vocab; ++j) sum += std::exp(double(l[j] - top));
    row_loss[size_t(r)] = std::log(sum) + double(top) - double(l[t]);
    const double inv = 1.0 / sum;
    for (int j = 0; j < vocab; ++j)
      dl[j] = T(std::exp(double(l[j] - top)) * inv) * grad_scale;  // l[j] read before written
    dl[t] -= grad_scale;
  }
  double total = 0;
  for (double v : row_loss) total += v;
  return total;
}

#define LOWBIT_TRAIN_OPS(T)                                                                        \
  template void rms_norm_forward<T>(const T*, const T*, int, int, T, T*, T*);                      \
  template void rms_norm_backward<T>(const T*, const T*, const T*, const T*, int, int, T*, T*);    \
  template class Rope<T>;                                                                          \
  template void attention_forward<T>(const AttentionShape&, const T*, const T*, const T*, T*, T*); \
  template void attention_backward<T>(const AttentionShape&, const T*, const T*, const T*,         \
                                      const T*, const T*, T*, T*, T*);                             \
  template void swiglu_forward<T>(const T*, const T*, size_t, T*);                                 \
  template void swiglu_backward<T>(const T*, const T*, const T*, size_t, T*, T*);                  \
  template double cross_entropy<T>(const T*, const int32_t*, int, int, T, T*);
LOWBIT_TRAIN_OPS(float)
LOWBIT_TRAIN_OPS(double)
#undef LOWBIT_TRAIN_OPS

}  // namespace lowbit::train
