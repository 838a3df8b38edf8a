// Trainable fixed point (src/train/learned_fixed_point.h).
#include "train/learned_fixed_point.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace lowbit::train {

using json = nlohmann::json;

LearnedFixedPoint::Point& LearnedFixedPoint::point(int site, int operand, const float* x,
                                                   size_t n) {
  auto it = points_.find({site, operand});
  if (it != points_.end()) return it->second;
  // First sight: the binary point where the largest magnitude just fits, f = (bits - 1) -
  // ceil(log2 amax), so that (2^(bits-1) - 1)·2^-f covers it up to one step.
  float amax = 0;
  for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  Point p;
  p.f = amax > 0 ? double(bits_ - 1) - std::ceil(std::log2(double(amax))) : 0.0;
  return points_.emplace(std::make_pair(site, operand), p).first->second;
}

float LearnedFixedPoint::quantize(const Point& p, const float* x, size_t n, float* out) const {
  const float s = float(std::ldexp(1.0, -int(std::lround(p.f))));
  const float lo = -float(1 << (bits_ - 1)), hi = float((1 << (bits_ - 1)) - 1);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) out[i] = s * std::min(hi, std::max(lo, std::nearbyint(x[i] / s)));
  return s;
}

double LearnedFixedPoint::scale_gradient(const float* x, size_t n, float s, float* g) const {
  const float lo = -float(1 << (bits_ - 1)), hi = float((1 << (bits_ - 1)) - 1);
  double sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i] / s, gi = g[i];
    double dq_ds = double(std::nearbyint(v)) - double(v);
    if (v < lo || v > hi) {  // clipped: q is the bound times s, and x gets no gradient
      dq_ds = v < lo ? lo : hi;
      g[i] = 0;
    }
    sum += double(gi) * dq_ds;
  }
  return sum;
}

void LearnedFixedPoint::forward(int site, const float* x, int n, const float* w, int out, int in,
                                float* y) {
  if (site == head_site_ && !head_)
    return LinearProducts<float>::forward(site, x, n, w, out, in, y);
  const size_t nx = size_t(n) * in, nw = size_t(out) * in;
  xq_.resize(nx);
  wq_.resize(nw);
  quantize(point(site, 0, x, nx), x, nx, xq_.data());
  quantize(point(site, 1, w, nw), w, nw, wq_.data());
  LinearProducts<float>::forward(site, xq_.data(), n, wq_.data(), out, in, y);
}

void LearnedFixedPoint::backward(int site, const float* dy, const float* x, int n, const float* w,
                                 int out, int in, float* dx, bool add_dx, float* dw) {
  if (site == head_site_ && !head_)
    return LinearProducts<float>::backward(site, dy, x, n, w, out, in, dx, add_dx, dw);
  const size_t nx = size_t(n) * in, nw = size_t(out) * in;
  Point& px = point(site, 0, x, nx);
  Point& pw = point(site, 1, w, nw);
  xq_.resize(nx);
  wq_.resize(nw);
  const float sx = quantize(px, x, nx, xq_.data());
  const float sw = quantize(pw, w, nw, wq_.data());
  // dL/dXq = dY·Wq, dL/dWq = dYᵀ·Xq; then the scale gradients and the range masks.
  tmp_.assign(nx, 0.0f);
  gemm<float>(false, false, n, in, out, 1.0f, dy, out, wq_.data(), in, 0.0f, tmp_.data(), in);
  px.grad += scale_gradient(x, nx, sx, tmp_.data()) * -double(sx) * std::log(2.0);
  for (size_t i = 0; i < nx; ++i) dx[i] = (add_dx ? dx[i] : 0.0f) + tmp_[i];
  tmp_.assign(nw, 0.0f);
  gemm<float>(true, false, out, in, n, 1.0f, dy, out, xq_.data(), in, 0.0f, tmp_.data(), in);
  pw.grad += scale_gradient(w, nw, sw, tmp_.data()) * -double(sw) * std::log(2.0);
  for (size_t i = 0; i < nw; ++i) dw[i] += tmp_[i];
}

void LearnedFixedPoint::end_step() {
  constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-12;
  for (auto& [key, p] : points_) {
    ++p.updates;
    p.m = b1 * p.m + (1 - b1) * p.grad;
    p.v = b2 * p.v + (1 - b2) * p.grad * p.grad;
    const double mh = p.m / (1 - std::pow(b1, double(p.updates)));
    const double vh = p.v / (1 - std::pow(b2, double(p.updates)));
    p.f -= lr_ * mh / (std::sqrt(vh) + eps);
    p.grad = 0;
  }
}

double LearnedFixedPoint::mean_fraction_bits() const {
  double s = 0;
  for (const auto& [key, p] : points_) s += double(std::lround(p.f));
  return points_.empty() ? 0 : s / double(points_.size());
}

std::string LearnedFixedPoint::state() const {
  json j = json::array();
  for (const auto& [key, p] : points_)
    j.push_back({key.first, key.second, p.f, p.m, p.v, p.updates});
  return json{{"binary_points", j}}.dump();
}

void LearnedFixedPoint::restore(const std::string& text) {
  points_.clear();
  const json j = json::parse(text);
  if (!j.contains("binary_points")) return;
  for (const json& e : j["binary_points"]) {
    Point p;
    p.f = e[2].get<double>(), p.m = e[3].get<double>(), p.v = e[4].get<double>();
    p.updates = e[5].get<int64_t>();
    points_[{e[0].get<int>(), e[1].get<int>()}] = p;
  }
}

}  // namespace lowbit::train
