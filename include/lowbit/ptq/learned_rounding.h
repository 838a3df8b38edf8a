// lowbit/ptq/learned_rounding.h — learned rounding for any element format (the `learnround`
// method): each weight goes up or down to one of its two neighbouring values on the scheme's grid
// (a float grid is not uniform), chosen to minimise the layer's reconstruction error on the
// calibration inputs, tr((W − Q)·H·(W − Q)ᵀ) with H = 2/N Σ xᵀx.
#pragma once

#include <memory>
#include <vector>

#include "lowbit/quant/qtensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::ptq {

struct LearnedRounding {
  std::vector<float> values;  // on the grid, with round to nearest's group scales
  std::shared_ptr<const QTensor> codes;
  double objective_nearest = 0, objective = 0;  // tr(ΔW H ΔWᵀ) before and after
  int passes = 0;                               // passes that changed something
  size_t flipped = 0;                           // weights that left their nearest value
};

// W [rows, cols] rounded by `scheme` with round to nearest's scales, then every weight moved
// between its two neighbouring grid values by coordinate descent on the objective (`h`:
// [cols, cols] row-major), at most `max_passes` passes; never worse than nearest on it.
LearnedRounding learned_rounding(const Scheme& scheme, const std::vector<float>& w, int rows,
                                 int cols, const std::vector<double>& h, int max_passes);

}  // namespace lowbit::ptq
