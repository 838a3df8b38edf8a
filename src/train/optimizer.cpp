// AdamW, the schedule and clipping (lowbit/train/optimizer.h).
#include "lowbit/train/optimizer.h"

#include <cmath>

#include "lowbit/util/error.h"

namespace lowbit::train {

double scheduled_lr(const AdamWOptions& o, int64_t step, int64_t steps) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  const int64_t decay = steps - o.warmup;
  if (decay <= 1) return o.lr;
  const double progress = std::min(1.0, double(step - o.warmup) / double(decay - 1));
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * progress));
}

double clip_gradients(std::vector<Parameter<float>>& params, double max_norm) {
  double ss = 0;
  for (const Parameter<float>& p : params)
    for (float g : p.grad) ss += double(g) * double(g);
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float f = float(max_norm / norm);
    for (Parameter<float>& p : params)
      for (float& g : p.grad) g *= f;
  }
  return norm;
}

AdamW::AdamW(const std::vector<Parameter<float>>& params, AdamWOptions options)
    : options_(options) {
  if (!(options_.lr > 0) || options_.min_lr < 0 || options_.beta1 < 0 || options_.beta1 >= 1 ||
      options_.beta2 < 0 || options_.beta2 >= 1 || !(options_.eps > 0) ||
      options_.weight_decay < 0 || options_.clip < 0)
    throw Error(
        "optimizer: need lr > 0, min_lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0 "
        "and clip >= 0");
  for (const Parameter<float>& p : params) {
    m_.emplace_back(p.value.size(), 0.0f);
    v_.emplace_back(p.value.size(), 0.0f);
  }
}

void AdamW::step(std::vector<Parameter<float>>& params, double lr) {
  ++t_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double c1 = 1.0 - std::pow(b1, double(t_)), c2 = 1.0 - std::pow(b2, double(t_));
  const float fb1 = float(b1), fb2 = float(b2), step = float(lr / c1), inv_c2 = float(1.0 / c2),
              eps = float(options_.eps);
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter<float>& p = params[i];
    std::vector<float>& m = m_[i];
    std::vector<float>& v = v_[i];
    const float decay = p.is_matrix ? float(1.0 - lr * options_.weight_decay) : 1.0f;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < p.value.size(); ++j) {
      const float g = p.grad[j];
      m[j] = fb1 * m[j] + (1.0f - fb1) * g;
      v[j] = fb2 * v[j] + (1.0f - fb2) * g * g;
      p.value[j] = p.value[j] * decay - step * m[j] / (std::sqrt(v[j] * inv_c2) + eps);
    }
  }
}

}  // namespace lowbit::train
