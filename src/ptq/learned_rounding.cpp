// The `learnround` method (lowbit/ptq/learned_rounding.h). AdaRound (Nagel et al. 2020) learns,
// per weight, whether to round up or down, by minimising the layer's output error on calibration
// data; FP4DiT (2025) extends the choice to floating-point grids, where the two neighbours of a
// weight are not a fixed step apart. lowbit solves the same binary problem on the same objective,
// tr((W − Q)·H·(W − Q)ᵀ), by exact coordinate descent instead of AdaRound's continuous relaxation
// (rectified sigmoid, annealed regulariser, Adam): moving weight (r, c) by δ changes the objective
// by 2δ·(E·H)_rc + δ²·H_cc (E = W − Q), so every move that lowers it is taken and E·H updated in
// O(cols). Scales (and zero points) stay those of round to nearest, as in AdaRound.
#include "lowbit/ptq/learned_rounding.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/format/reference.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/util/error.h"
#include "ptq/input_hessians.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// The element grid of a symmetric scheme: every finite value of the format within ± the largest
// magnitude both signs reach, sorted.
std::vector<float> symmetric_grid(const Scheme& s) {
  if (s.element.bits() > 8)
    throw Error("learnround: elements of " + std::to_string(s.element.bits()) +
                " bits have no small grid to choose on; use a format of up to 8 bits");
  const float limit = float(element_max(s));
  std::vector<float> g;
  for (uint32_t c = 0; c < code_count(s.element); ++c) {
    const float v = ref::decode(s.element, c);
    if (std::isfinite(v) && std::fabs(v) <= limit) g.push_back(v);
  }
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
  return g;
}

}  // namespace

LearnedRounding learned_rounding(const Scheme& scheme, const std::vector<float>& w, int rows,
                                 int cols, const std::vector<double>& h, int max_passes) {
  if (scheme.ggml)
    throw Error("learnround: " + scheme_name(scheme) +
                " rounds by llama.cpp's own rule; use a lowbit scheme");
  const std::vector<size_t> shape{size_t(rows), size_t(cols)};
  const QTensor nearest = quantize(scheme, w.data(), shape);
  std::vector<float> q(w.size());
  dequantize(nearest, q.data());
  const std::vector<float> grid = scheme.asymmetric ? std::vector<float>{} : symmetric_grid(scheme);
  const float levels = float(element_max(scheme));  // asymmetric: codes 0 .. levels
  // Each weight's two candidates: the grid values either side of w / scale.
  std::vector<float> down(w.size()), up(w.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const size_t k = size_t(r) * size_t(cols) + size_t(c);
      const size_t g =
          quant::matrix_group_of(scheme, size_t(r), size_t(c), size_t(rows), size_t(cols));
      const float s = nearest.group_scale(g);
      if (!(s > 0) || !std::isfinite(w[k])) {
        down[k] = up[k] = q[k];
        continue;
      }
      if (scheme.asymmetric) {
        const float z = float(nearest.zero_points[g]);
        const float t = std::clamp(w[k] / s + z, 0.0f, levels);
        down[k] = (std::floor(t) - z) * s;
        up[k] = (std::ceil(t) - z) * s;
      } else {
        // The first grid value >= t, and the one below it (t on the grid: both are t; beyond
        // either end: both are that end's value).
        const float t = w[k] / s;
        const auto hi = std::lower_bound(grid.begin(), grid.end(), t);
        const bool past_top = hi == grid.end(), on_grid = !past_top && *hi == t;
        const float above = past_top ? grid.back() : *hi;
        const float below = past_top || on_grid || hi == grid.begin() ? above : *(hi - 1);
        down[k] = below * s;
        up[k] = above * s;
      }
      // Round to nearest's value is one of the two (or both, on the grid).
      if (q[k] != down[k] && q[k] != up[k]) down[k] = up[k] = q[k];
    }
  // E = W − Q and G = E·H.
  std::vector<double> e(w.size()), g(w.size(), 0.0);
  for (size_t k = 0; k < w.size(); ++k) e[k] = double(w[k]) - double(q[k]);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < cols; ++i) {
      const double ei = e[size_t(r) * size_t(cols) + size_t(i)];
      if (ei == 0) continue;
      for (int j = 0; j < cols; ++j)
        g[size_t(r) * size_t(cols) + size_t(j)] += ei * h[size_t(i) * size_t(cols) + size_t(j)];
    }
  LearnedRounding out;
  // The objective is tr(E·H·Eᵀ) = Σ E ∘ G; G is kept up to date below, so it stays one sum.
  const auto objective = [&] {
    double f = 0;
    for (size_t k = 0; k < e.size(); ++k) f += e[k] * g[k];
    return f;
  };
  out.objective_nearest = objective();
  std::vector<bool> moved(w.size(), false);
  for (int pass = 0; pass < max_passes; ++pass) {
    size_t changes = 0;
    for (int r = 0; r < rows; ++r) {
      double* gr = g.data() + size_t(r) * size_t(cols);
      for (int c = 0; c < cols; ++c) {
        const size_t k = size_t(r) * size_t(cols) + size_t(c);
        if (down[k] == up[k]) continue;
        const float other = q[k] == down[k] ? up[k] : down[k];
        const double delta = double(q[k]) - double(other);  // E changes by +delta
        const double hcc = h[size_t(c) * size_t(cols) + size_t(c)];
        if (2 * delta * gr[c] + delta * delta * hcc >= 0) continue;
        q[k] = other;
        e[k] += delta;
        moved[k] = !moved[k];
        const double* hc = h.data() + size_t(c) * size_t(cols);
        for (int j = 0; j < cols; ++j) gr[j] += delta * hc[j];
        ++changes;
      }
    }
    if (changes == 0) break;
    out.passes = pass + 1;
  }
  out.objective = objective();
  out.flipped = size_t(std::count(moved.begin(), moved.end(), true));
  out.codes = std::make_shared<QTensor>(qtensor_on_grid(scheme, q.data(), shape, nearest.scales,
                                                        nearest.zero_points, nearest.global_scale));
  out.values = std::move(q);
  return out;
}

MethodInfo learned_rounding_method() {
  MethodInfo m;
  m.name = "learnround";
  m.summary =
      "learned rounding: each weight up or down on its format's grid by the layer's calibration "
      "error (AdaRound / FP4DiT objective, coordinate descent)";
  m.params = {{"passes", MethodParam::Kind::Integer, 8, 1, 1000, false,
               "coordinate-descent passes over the weights at most"}};
  m.needs_calibration = true;
  m.chooses_weights = true;
  m.run = [](MethodRun& r) {
    if (r.cache && r.cache->restore(r)) return;
    const int passes = r.integer("passes");
    const QuantizeOne one = [&](const Scheme& scheme, const model::Linear& lin,
                                const std::vector<double>& h) {
      LearnedRounding lr =
          learned_rounding(scheme, lin.weight(), lin.out_features(), lin.in_features(), h, passes);
      return PrequantizedWeight{std::move(lr.values), std::move(lr.codes)};
    };
    r.prequantized = quantize_blockwise(*r.model, r.scheme_of, *r.calibration, one, r.progress);
    if (r.cache) r.cache->store(r);
  };
  return m;
}

}  // namespace lowbit::ptq
