// λ_max of the loss Hessian by Lanczos on finite-difference Hessian-vector products
// (lowbit/train/sharpness.h).
#include "lowbit/train/sharpness.h"

#include <Eigen/Dense>
#include <cmath>
#include <random>

#include "train/hessian_vector.h"

namespace lowbit::train {

namespace {
double normalize(std::vector<double>& v) {
  double ss = 0;
  for (double x : v) ss += x * x;
  const double n = std::sqrt(ss);
  if (n > 0)
    for (double& x : v) x /= n;
  return n;
}
}  // namespace

double loss_sharpness(const TrainLlama<float>& model, const std::vector<int32_t>& tokens,
                      const std::vector<int32_t>& targets, int batch, int seq, int iterations,
                      uint64_t seed) {
  HessianVectorProduct hessian_times(model.to_runtime(), tokens, targets, batch, seq);
  // Lanczos: k steps build the tridiagonal T = Vᵀ H V over a Krylov basis; T's extreme
  // eigenvalues approach H's from inside within a few steps, the largest and the most negative
  // alike (power iteration would find only the one of largest magnitude). The three-term
  // recurrence without reorthogonalisation can repeat converged values, which leaves the
  // extremes right.
  std::vector<double> v(size_t(hessian_times.size())), previous(v.size(), 0.0);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  for (double& x : v) x = normal(rng);
  normalize(v);
  std::vector<double> alpha, beta;
  for (int it = 0; it < iterations; ++it) {
    std::vector<double> w = hessian_times(v);
    const double b_prev = beta.empty() ? 0.0 : beta.back();
    double a = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] -= b_prev * previous[i];
      a += w[i] * v[i];
    }
    for (size_t i = 0; i < w.size(); ++i) w[i] -= a * v[i];
    alpha.push_back(a);
    const double b = normalize(w);
    if (b < 1e-12 * std::abs(a) || it + 1 == iterations) break;  // an invariant subspace: exact
    beta.push_back(b);
    previous.swap(v);
    v.swap(w);
  }
  const int k = int(alpha.size());
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(k, k);
  for (int i = 0; i < k; ++i) {
    t(i, i) = alpha[size_t(i)];
    if (i + 1 < k) t(i, i + 1) = t(i + 1, i) = beta[size_t(i)];
  }
  return Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(t, Eigen::EigenvaluesOnly)
      .eigenvalues()
      .maxCoeff();
}

}  // namespace lowbit::train
