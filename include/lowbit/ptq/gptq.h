// lowbit/ptq/gptq.h — GPTQ (Frantar et al. 2022): layer-wise second-order rounding. Columns of a
// weight are quantized one at a time and each one's rounding error is spread over the columns not
// yet quantized, weighted by the inverse of the calibration Hessian H = 2/N · Σ xᵀx, so that the
// layer's output on the calibration inputs moves as little as possible. Works with any scheme:
// a group's scale is fixed (from the current, already-updated weights) when its first column is
// reached; with activation order the scales are fixed from the original weights up front.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::ptq {

struct GptqOptions {
  double damp = 0.01;      // added to H's diagonal: damp · mean(diag H)
  int block = 128;         // columns per lazy batch update (rounded up to a multiple of the group)
  bool act_order = false;  // quantize columns in order of decreasing H diagonal
};

// Accumulates H = 2/N Σ xᵀx over rows x of length n (double precision).
class Hessian {
 public:
  explicit Hessian(int n);
  void add(const float* x, int rows);
  int size() const { return n_; }
  int64_t samples() const { return samples_; }
  std::vector<double> matrix() const;  // n x n, row-major; 2/N Σ xᵀx

 private:
  int n_;
  int64_t samples_ = 0;
  std::vector<double> sum_;   // Σ xᵀx, full matrix
  std::vector<float> chunk_;  // float accumulator of the current batch
};

// GPTQ of W [out, in] (row-major) with `scheme` under Hessian `h` (in x in). Returns the quantized
// weights (values on the scheme's grid, as float). Throws lowbit::Error when the damped Hessian is
// not positive definite even after raising the damping.
// `codes`, when given, receives the result as a QTensor in the scheme GPTQ rounded with (the
// ggml_* schemes' lowbit grid), with the group scales it fixed: dequantize(*codes) == the result.
std::vector<float> gptq_quantize(const Scheme& scheme, const std::vector<float>& w, int out, int in,
                                 const std::vector<double>& h, const GptqOptions& options = {},
                                 QTensor* codes = nullptr);

// GPTQ of every layer Linear whose weights `scheme_of(site)` quantizes, one transformer block at a
// time on the calibration data: block l's Hessians come from the inputs that blocks 0 .. l-1,
// already quantized, produce (full-precision activations; the recipe's run-time quantizers are not
// applied during calibration). Returns the quantized weights by site name. `progress(l, L)`.
PrequantizedWeights gptq_model(const model::Runtime& base,
                               const std::function<MaybeScheme(const std::string&)>& scheme_of,
                               const Calibration& calibration, const GptqOptions& options,
                               const std::function<void(int, int)>& progress = {});

}  // namespace lowbit::ptq
