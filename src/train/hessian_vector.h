// Hessian-vector products of the mean training loss on one batch, by central finite differences of
// float64 gradients: Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε with ε = 1e-4 (the truncation error is
// O(ε²) times the third derivative, the rounding error O(1e-16 / ε): both far below the float32
// noise the curvature is compared with). What sharpness (Lanczos) and the Hessian traces
// (Hutchinson) are built on.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/train/train_model.h"

namespace lowbit::train {

class HessianVectorProduct {
 public:
  // At the weights of `model` (float32, widened to float64).
  HessianVectorProduct(const model::Llama& model, std::vector<int32_t> tokens,
                       std::vector<int32_t> targets, int batch, int seq)
      : m_(TrainLlama<double>::from_runtime(model)),
        tokens_(std::move(tokens)),
        targets_(std::move(targets)),
        batch_(batch),
        seq_(seq) {
    int64_t scored = 0;
    for (int32_t t : targets_) scored += t >= 0;
    scale_ = scored ? 1.0 / double(scored) : 1.0;
  }
  int64_t size() const { return m_.parameter_count(); }
  const TrainLlama<double>& model() const { return m_; }

  // H v, flattened in parameter order.
  std::vector<double> operator()(const std::vector<double>& v) {
    constexpr double eps = 1e-4;
    add_scaled(v, eps);
    const std::vector<double> up = gradient();
    add_scaled(v, -2 * eps);
    const std::vector<double> down = gradient();
    add_scaled(v, eps);
    std::vector<double> hv(v.size());
    for (size_t i = 0; i < v.size(); ++i) hv[i] = (up[i] - down[i]) / (2 * eps);
    return hv;
  }

 private:
  std::vector<double> gradient() {
    m_.zero_grad();
    m_.forward_backward(tokens_.data(), targets_.data(), batch_, seq_, true, scale_);
    std::vector<double> g;
    g.reserve(size_t(size()));
    for (const Parameter<double>& p : m_.parameters())
      g.insert(g.end(), p.grad.begin(), p.grad.end());
    return g;
  }
  void add_scaled(const std::vector<double>& v, double s) {
    size_t k = 0;
    for (Parameter<double>& p : m_.parameters())
      for (double& x : p.value) x += s * v[k++];
  }

  TrainLlama<double> m_;
  std::vector<int32_t> tokens_, targets_;
  int batch_, seq_;
  double scale_ = 1;
};

}  // namespace lowbit::train
