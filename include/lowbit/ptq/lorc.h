// lowbit/ptq/lorc.h — low-rank compensation of the quantization error (the `lorc` method).
#pragma once

#include <memory>
#include <vector>

#include "lowbit/model/linear.h"

namespace lowbit::ptq {

// The rank-`rank` correction U·Vᵀ of W − Q (both [rows, cols] row-major) by SVD, U = U_r·Σ_r^½,
// V = V_r·Σ_r^½, the factors rounded to `bits` = 8 (FP8 E4M3, one float32 scale per component)
// or 16 (BF16), with their storage in bits. A rank above min(rows, cols) is lowered to it.
std::shared_ptr<const model::LowRank> low_rank_correction(const std::vector<float>& w,
                                                          const std::vector<float>& q, int rows,
                                                          int cols, int rank, int bits);

}  // namespace lowbit::ptq
