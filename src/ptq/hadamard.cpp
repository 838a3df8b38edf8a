// Hadamard matrices (Sylvester, Paley I and II) and the fast randomized transform.
#include "lowbit/ptq/hadamard.h"

#include <cmath>
#include <random>

#include "lowbit/util/error.h"

namespace lowbit::ptq {
namespace {

bool is_prime(int q) {
  if (q < 2) return false;
  for (int d = 2; d * d <= q; ++d)
    if (q % d == 0) return false;
  return true;
}

// The quadratic character of a mod q (q an odd prime): 0, +1 (a square) or -1.
int legendre(int a, int q) {
  a = ((a % q) + q) % q;
  if (a == 0) return 0;
  long r = 1, b = a, e = (q - 1) / 2;
  while (e > 0) {  // a^((q-1)/2) mod q
    if (e & 1) r = r * b % q;
    b = b * b % q;
    e >>= 1;
  }
  return r == 1 ? 1 : -1;
}

// Jacobsthal matrix Q[i][j] = χ(j - i) of order q.
std::vector<int> jacobsthal(int q) {
  std::vector<int> j(size_t(q) * size_t(q));
  for (int r = 0; r < q; ++r)
    for (int c = 0; c < q; ++c) j[size_t(r) * size_t(q) + size_t(c)] = legendre(c - r, q);
  return j;
}

bool is_hadamard(const std::vector<double>& h, int m) {
  for (int a = 0; a < m; ++a)
    for (int b = 0; b < m; ++b) {
      double dot = 0;
      for (int k = 0; k < m; ++k)
        dot += h[size_t(a) * size_t(m) + size_t(k)] * h[size_t(b) * size_t(m) + size_t(k)];
      if (dot != (a == b ? m : 0)) return false;
    }
  return true;
}

// Paley I: q prime, q ≡ 3 (mod 4), order q + 1: H = I + S with S = [[0, 1ᵀ], [-1, Q]].
std::vector<double> paley1(int q) {
  const int m = q + 1;
  const std::vector<int> Q = jacobsthal(q);
  std::vector<double> h(size_t(m) * size_t(m));
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < m; ++c) {
      int s;
      if (r == 0)
        s = c == 0 ? 0 : 1;
      else if (c == 0)
        s = -1;
      else
        s = Q[size_t(r - 1) * size_t(q) + size_t(c - 1)];
      h[size_t(r) * size_t(m) + size_t(c)] = s + (r == c ? 1 : 0);
    }
  return h;
}

// Paley II: q prime, q ≡ 1 (mod 4), order 2(q + 1): the symmetric conference matrix
// C = [[0, 1ᵀ], [1, Q]] with each 0 replaced by [[1, -1], [-1, -1]] and each ±1 by ±[[1, 1], [1,
// -1]].
std::vector<double> paley2(int q) {
  const int c_order = q + 1, m = 2 * c_order;
  const std::vector<int> Q = jacobsthal(q);
  std::vector<double> h(size_t(m) * size_t(m));
  for (int r = 0; r < c_order; ++r)
    for (int c = 0; c < c_order; ++c) {
      int v;
      if (r == 0)
        v = c == 0 ? 0 : 1;
      else if (c == 0)
        v = 1;
      else
        v = Q[size_t(r - 1) * size_t(q) + size_t(c - 1)];
      const int block[2][2] = {{v == 0 ? 1 : v, v == 0 ? -1 : v},
                               {v == 0 ? -1 : v, v == 0 ? -1 : -v}};
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          h[size_t(2 * r + a) * size_t(m) + size_t(2 * c + b)] = block[a][b];
    }
  return h;
}

// Splits n = 2^k · m with the largest power of two for which H_m exists.
bool factor(int n, int& p, int& m) {
  if (n < 1) return false;
  for (p = 1; n % (2 * p) == 0; p *= 2) {
  }
  for (; p >= 1; p /= 2) {
    m = n / p;
    if (m == 1 || m == 2 || !hadamard_matrix(m).empty()) return true;
  }
  return false;
}

}  // namespace

std::vector<double> hadamard_matrix(int m) {
  if (m == 1) return {1};
  if (m == 2) return {1, 1, 1, -1};
  if (m % 4 != 0) return {};
  std::vector<double> h;
  if (is_prime(m - 1) && (m - 1) % 4 == 3)
    h = paley1(m - 1);
  else if (m % 2 == 0 && is_prime(m / 2 - 1) && (m / 2 - 1) % 4 == 1)
    h = paley2(m / 2 - 1);
  else if ((m & (m - 1)) == 0) {  // Sylvester
    const std::vector<double> half = hadamard_matrix(m / 2);
    h.resize(size_t(m) * size_t(m));
    const int k = m / 2;
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < m; ++c)
        h[size_t(r) * size_t(m) + size_t(c)] =
            half[size_t(r % k) * size_t(k) + size_t(c % k)] * (r >= k && c >= k ? -1 : 1);
  }
  if (!h.empty() && !is_hadamard(h, m))
    throw Error("internal: Hadamard construction of order " + std::to_string(m) + " failed");
  return h;
}

bool HadamardTransform::supported(int n) {
  int p, m;
  return factor(n, p, m);
}

HadamardTransform::HadamardTransform(int n, uint64_t seed) : n_(n) {
  if (!factor(n, p_, m_))
    throw Error("no Hadamard transform of size " + std::to_string(n) +
                ": sizes are 2^k times 1, 2 or a Paley order (12, 20, 24, 28, 36, 44, ...)");
  small_ = hadamard_matrix(m_);
  signs_.assign(size_t(n), 1.0);
  if (seed != 0) {
    std::mt19937_64 rng(seed);
    for (double& s : signs_) s = (rng() >> 63) ? -1.0 : 1.0;
  }
}

// Row index i = a · p + b (a < m, b < p): y[c·p + d] = Σ_{a,b} x[a·p + b] H_m[a][c] H_p[b][d] /
// sqrt(n).
void HadamardTransform::transform_row(double* x, bool inverse) const {
  if (!inverse)
    for (int i = 0; i < n_; ++i) x[i] *= signs_[size_t(i)];
  for (int a = 0; a < m_;
       ++a) {  // fast Walsh–Hadamard over each run of p (Sylvester H_p is symmetric)
    double* v = x + size_t(a) * size_t(p_);
    for (int len = 1; len < p_; len *= 2)
      for (int i = 0; i < p_; i += 2 * len)
        for (int j = i; j < i + len; ++j) {
          const double u = v[j], w = v[j + len];
          v[j] = u + w;
          v[j + len] = u - w;
        }
  }
  if (m_ > 1) {  // dense H_m across the runs: y[c] = Σ_a t[a] H[a][c] (inverse: Σ_a t[a] H[c][a])
    std::vector<double> t(static_cast<size_t>(m_));
    for (int d = 0; d < p_; ++d) {
      for (int a = 0; a < m_; ++a) t[size_t(a)] = x[size_t(a) * size_t(p_) + size_t(d)];
      for (int c = 0; c < m_; ++c) {
        double s = 0;
        for (int a = 0; a < m_; ++a)
          s += t[size_t(a)] * (inverse ? small_[size_t(c) * size_t(m_) + size_t(a)]
                                       : small_[size_t(a) * size_t(m_) + size_t(c)]);
        x[size_t(c) * size_t(p_) + size_t(d)] = s;
      }
    }
  }
  const double norm = 1.0 / std::sqrt(double(n_));
  for (int i = 0; i < n_; ++i) x[i] *= norm;
  if (inverse)
    for (int i = 0; i < n_; ++i) x[i] *= signs_[size_t(i)];
}

void HadamardTransform::apply(float* x, size_t rows) const {
#pragma omp parallel for schedule(static) if (rows * size_t(n_) > (1u << 16))
  for (size_t r = 0; r < rows; ++r) {
    std::vector<double> row(x + r * size_t(n_), x + (r + 1) * size_t(n_));
    transform_row(row.data(), false);
    for (int i = 0; i < n_; ++i) x[r * size_t(n_) + size_t(i)] = float(row[size_t(i)]);
  }
}

BlockHadamardTransform::BlockHadamardTransform(int n, int block, uint64_t seed)
    : n_(n), inner_(block, 0) {
  if (block <= 0 || n % block != 0)
    throw Error("a block rotation of " + std::to_string(block) + " does not divide the width " +
                std::to_string(n));
  signs_.assign(size_t(n), 1.0f);
  if (seed != 0) {
    std::mt19937_64 rng(seed);
    for (float& s : signs_) s = (rng() >> 63) ? -1.0f : 1.0f;
  }
}

// x · diag(s) · blockdiag(H): the signs, then the inner transform on every run of `block`.
void BlockHadamardTransform::apply(float* x, size_t rows) const {
  for (size_t r = 0; r < rows; ++r)
    for (int i = 0; i < n_; ++i) x[r * size_t(n_) + size_t(i)] *= signs_[size_t(i)];
  inner_.apply(x, rows * size_t(n_ / inner_.size()));
}

// x · blockdiag(H)ᵀ · diag(s).
void BlockHadamardTransform::apply_inverse(float* x, size_t rows) const {
  inner_.apply_inverse(x, rows * size_t(n_ / inner_.size()));
  for (size_t r = 0; r < rows; ++r)
    for (int i = 0; i < n_; ++i) x[r * size_t(n_) + size_t(i)] *= signs_[size_t(i)];
}

std::vector<double> BlockHadamardTransform::dense() const {
  std::vector<float> rows(size_t(n_) * size_t(n_), 0.0f);
  for (int i = 0; i < n_; ++i) rows[size_t(i) * size_t(n_) + size_t(i)] = 1.0f;
  apply(rows.data(), size_t(n_));
  return std::vector<double>(rows.begin(), rows.end());
}

void HadamardTransform::apply_inverse(float* x, size_t rows) const {
#pragma omp parallel for schedule(static) if (rows * size_t(n_) > (1u << 16))
  for (size_t r = 0; r < rows; ++r) {
    std::vector<double> row(x + r * size_t(n_), x + (r + 1) * size_t(n_));
    transform_row(row.data(), true);
    for (int i = 0; i < n_; ++i) x[r * size_t(n_) + size_t(i)] = float(row[size_t(i)]);
  }
}

std::vector<double> HadamardTransform::dense() const {
  std::vector<double> q(size_t(n_) * size_t(n_), 0.0);
  for (int r = 0; r < n_; ++r) {  // row r of Q = e_r · Q
    double* row = q.data() + size_t(r) * size_t(n_);
    row[r] = 1.0;
    transform_row(row, false);
  }
  return q;
}

}  // namespace lowbit::ptq
