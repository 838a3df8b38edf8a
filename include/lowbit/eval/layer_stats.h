// lowbit/eval/layer_stats.h — where a recipe's error comes from: per Linear, the weight's
// quantization error, the input activations' range and tails, and how far the Linear's output has
// drifted from the full-precision model's on the same tokens (which includes everything upstream).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::eval {

// Every block Linear's output in one full-precision forward over `window`, by site name.
class ReferenceOutputs {
 public:
  ReferenceOutputs(const model::Runtime& fp, std::vector<int32_t> window);
  const std::vector<int32_t>& window() const { return window_; }
  const std::vector<float>* find(const std::string& site) const;

 private:
  std::vector<int32_t> window_;
  std::map<std::string, std::vector<float>> outputs_;
};

struct LayerRow {
  std::string site;  // "layers.3.down_proj"
  int layer = -1;
  std::string role;                         // "down_proj"
  std::string weight_scheme, input_scheme;  // "fp" when kept
  ErrorStats weight;                        // of the weight's quantization (count 0 when kept)
  // The input activations as they arrive (before this Linear's own input quantization): largest
  // magnitude and Pearson kurtosis E[(x-mean)^4] / var^2 over all tokens and channels (3 for a
  // Gaussian; outlier channels push it far higher).
  double input_absmax = 0, input_kurtosis = 0;
  ErrorStats input;  // of the input's quantization (count 0 when not quantized)
  // 10 log10(sum y_fp^2 / sum (y - y_fp)^2) against the full-precision model's output.
  double output_sqnr_db = std::numeric_limits<double>::infinity();
};

// Runs `quantized` over the reference's window and returns one row per layer Linear, in forward
// order; weight errors come from the recipe's ApplyReport.
std::vector<LayerRow> layer_statistics(const model::Runtime& quantized,
                                       const ReferenceOutputs& reference,
                                       const ptq::ApplyReport& applied);

}  // namespace lowbit::eval
