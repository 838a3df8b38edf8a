// lowbit/ptq/weight_error_scores.h — what rounding each Linear's weight W to a candidate scheme
// does, without running the model to the loss: the squared error ‖Q(W) − W‖² (HAWQ's factor) and
// the output-error proxy tr(ΔW H_x ΔWᵀ) with ΔW = Q(W) − W and H_x = 2/N Σ xᵀx the calibration
// Hessian of the Linear's inputs (the one GPTQ builds), i.e. twice the mean squared output error
// ‖ΔW x‖² over the calibration tokens. Inputs come from the full-precision model, block by block.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::ptq {

struct WeightErrorScores {
  std::string site;                   // "layers.3.down_proj"
  std::vector<double> squared_error;  // per candidate ‖Q(W) − W‖² (0 for full precision)
  std::vector<double> output_proxy;   // per candidate tr(ΔW H_x ΔWᵀ); empty without calibration
};

// Every layer Linear of `fp` in forward order. `calibration` nullptr: squared errors only.
// `progress(done, blocks)` after each block.
std::vector<WeightErrorScores> weight_error_scores(const model::Runtime& fp,
                                                   const std::vector<MaybeScheme>& candidates,
                                                   const Calibration* calibration,
                                                   const std::function<void(int, int)>& progress);

}  // namespace lowbit::ptq
